//! A PicketPolicy as a Kubernetes NetworkPolicy (k8s-openapi's types): the group's pods by
//! labels, ingress and egress with ports, CIDR peers as ipBlocks, namespace peers by the
//! `kubernetes.io/metadata.name` label, group peers by their pods' labels, and the learned
//! name-lookup rule as egress to the cluster's DNS pods by their real labels. NetworkPolicy is an
//! allowlist: Block and Audit rules, DNS names and applications cannot be said in it, and each is
//! noted rather than dropped silently.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{ExportError, Exported, Labels, Target, is_dns_rule};
use crate::policy::PicketPolicy;
use crate::policy::spec::{Action, NetworkRule, PortRule, Protocol};

const FORMAT: &str = "NetworkPolicy";
/// The label every namespace carries from Kubernetes 1.21 on (older clusters: label them).
pub const NAMESPACE_LABEL: &str = "kubernetes.io/metadata.name";

fn selector(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector { match_labels: Some(labels), match_expressions: None }
}

fn ports(rules: &[PortRule]) -> Option<Vec<NetworkPolicyPort>> {
    if rules.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for rule in rules {
        let (low, high) = crate::policy::validate::parse_ports(&rule.port).unwrap_or((1, 65535));
        let protocols: Vec<&str> = match rule.protocol {
            Some(Protocol::Tcp) => vec!["TCP"],
            Some(Protocol::Udp) => vec!["UDP"],
            // NetworkPolicy's port defaults to TCP: both, said.
            None => vec!["TCP", "UDP"],
        };
        for protocol in protocols {
            out.push(NetworkPolicyPort {
                port: Some(IntOrString::Int(i32::from(low))),
                end_port: (high > low).then_some(i32::from(high)),
                protocol: Some(protocol.into()),
            });
        }
    }
    Some(out)
}

/// The peers of a rule; None: any peer. Peers a NetworkPolicy cannot name are noted.
fn peers(rule: &NetworkRule, labels: &Labels, at: &str, notes: &mut Vec<String>) -> Option<Vec<NetworkPolicyPeer>> {
    if rule.peers.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for peer in &rule.peers {
        if let Some(cidr) = &peer.cidr {
            out.push(NetworkPolicyPeer {
                ip_block: Some(IPBlock { cidr: cidr.clone(), except: None }),
                ..Default::default()
            });
        } else if let Some(namespace) = &peer.namespace {
            let by_name = BTreeMap::from([(NAMESPACE_LABEL.to_string(), namespace.clone())]);
            out.push(NetworkPolicyPeer { namespace_selector: Some(selector(by_name)), ..Default::default() });
        } else if let Some(group) = &peer.group {
            match super::group_labels(group, labels) {
                Some((namespace, pods)) => {
                    let by_name = BTreeMap::from([(NAMESPACE_LABEL.to_string(), namespace)]);
                    out.push(NetworkPolicyPeer {
                        namespace_selector: Some(selector(by_name)),
                        pod_selector: Some(selector(pods)),
                        ..Default::default()
                    });
                }
                None => {
                    notes.push(format!("{at}: group {group}: its pods' labels are unknown (give --cluster); left out"))
                }
            }
        } else if let Some(fqdn) = &peer.fqdn {
            notes.push(format!(
                "{at}: {fqdn}: a NetworkPolicy cannot name DNS names (CiliumNetworkPolicy can); left out"
            ));
        }
    }
    // Every peer left out: the rule would allow everyone; it allows no one instead.
    Some(out)
}

/// The NetworkPolicy of one PicketPolicy.
pub fn export(policy: &PicketPolicy, labels: &Labels) -> Result<Exported<NetworkPolicy>, ExportError> {
    let Target { name, namespace, title, pods } = Target::of(policy, labels, FORMAT)?;
    let spec = &policy.spec;
    let mut notes = Vec::new();
    let mut ingress = Vec::new();
    for (i, rule) in spec.ingress.iter().enumerate() {
        let at = format!("{title}: spec.ingress[{i}]");
        if !usable(rule, &at, &mut notes) {
            continue;
        }
        ingress
            .push(NetworkPolicyIngressRule { from: peers(rule, labels, &at, &mut notes), ports: ports(&rule.ports) });
    }
    let mut egress = Vec::new();
    for (i, rule) in spec.egress.iter().enumerate() {
        let at = format!("{title}: spec.egress[{i}]");
        if !usable(rule, &at, &mut notes) {
            continue;
        }
        let to = if is_dns_rule(rule) {
            let dns = labels.dns.clone().unwrap_or_else(|| {
                notes.push(format!(
                    "{at}: name lookups go to pods labelled k8s-app=kube-dns in kube-system (the cluster's DNS Service was not read: give --cluster)"
                ));
                BTreeMap::from([("k8s-app".to_string(), "kube-dns".to_string())])
            });
            let system = BTreeMap::from([(NAMESPACE_LABEL.to_string(), "kube-system".to_string())]);
            Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(selector(system)),
                pod_selector: Some(selector(dns)),
                ..Default::default()
            }])
        } else {
            peers(rule, labels, &at, &mut notes)
        };
        egress.push(NetworkPolicyEgressRule { to, ports: ports(&rule.ports) });
    }
    if spec.mode != crate::policy::spec::Mode::Protect {
        notes.push(format!(
            "{title}: mode {:?}: a NetworkPolicy always denies what it does not allow (there is no monitor mode)",
            spec.mode
        ));
    }
    let object = NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace),
            labels: Some(BTreeMap::from([("app.kubernetes.io/managed-by".to_string(), "picket".to_string())])),
            ..Default::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(pods)),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(ingress),
            egress: Some(egress),
        }),
    };
    Ok(Exported { object, notes })
}

/// Whether a rule can be said as an allow rule; what cannot is noted.
fn usable(rule: &NetworkRule, at: &str, notes: &mut Vec<String>) -> bool {
    if rule.action != Action::Allow {
        notes.push(format!(
            "{at}: {:?}: a NetworkPolicy only allows (what it does not allow is denied); left out",
            rule.action
        ));
        return false;
    }
    if !rule.applications.is_empty() {
        notes.push(format!(
            "{at}: applications {}: a NetworkPolicy works on ports, not protocols; the ports are kept",
            rule.applications.join(", ")
        ));
    }
    if !rule.http.is_empty() || !rule.dns.is_empty() || !rule.server_names.is_empty() {
        notes.push(format!(
            "{at}: HTTP requests, DNS names and server names are layer 7: a NetworkPolicy allows the rule's ports whole"
        ));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learned_policy_becomes_a_networkpolicy_with_dns_to_the_clusters_dns_pods() {
        let p = super::super::one_policy(
            "apiVersion: picket.dev/v1
kind: PicketPolicy
metadata: { name: web, namespace: shop }
spec:
  selector: { owner: { kind: Deployment, name: web } }
  mode: protect
  ingress:
    - ports: [{ port: '8080', protocol: TCP }]
  egress:
    - peers: [{ cidr: 10.1.2.3/32 }]
      ports: [{ port: '5432', protocol: TCP }]
    - peers: [{ group: shop/Deployment/api }, { fqdn: api.example.com }]
      ports: [{ port: 8000-8080 }]
    - ports: [{ port: '53', protocol: UDP }, { port: '53', protocol: TCP }]
    - ports: [{ port: '25' }]
      action: Block
",
        );
        let mut labels = Labels::default();
        assert!(matches!(export(&p, &labels), Err(ExportError::NeedsLabels { .. })));
        labels.workloads.insert("shop/Deployment/web".into(), BTreeMap::from([("app".into(), "web".into())]));
        labels.workloads.insert("shop/Deployment/api".into(), BTreeMap::from([("app".into(), "api".into())]));
        labels.dns = Some(BTreeMap::from([("k8s-app".into(), "coredns".into())]));
        let out = export(&p, &labels).expect("exported");
        let spec = out.object.spec.as_ref().expect("spec");
        assert_eq!(spec.pod_selector.as_ref().and_then(|s| s.match_labels.clone()).unwrap()["app"], "web");
        let egress = spec.egress.as_ref().expect("egress");
        assert_eq!(egress.len(), 3, "the Block rule is left out");
        assert_eq!(egress[0].to.as_ref().unwrap()[0].ip_block.as_ref().unwrap().cidr, "10.1.2.3/32");
        let api = &egress[1].to.as_ref().unwrap()[0];
        assert_eq!(api.pod_selector.as_ref().and_then(|s| s.match_labels.clone()).unwrap()["app"], "api");
        let range = &egress[1].ports.as_ref().unwrap()[0];
        assert_eq!((range.port.clone(), range.end_port), (Some(IntOrString::Int(8000)), Some(8080)));
        let dns = &egress[2].to.as_ref().unwrap()[0];
        assert_eq!(dns.pod_selector.as_ref().and_then(|s| s.match_labels.clone()).unwrap()["k8s-app"], "coredns");
        assert!(out.notes.iter().any(|n| n.contains("api.example.com")), "{:?}", out.notes);
        assert!(out.notes.iter().any(|n| n.contains("spec.egress[3]") && n.contains("Block")), "{:?}", out.notes);
        // It reads back as the API's own type.
        let json = serde_json::to_value(&out.object).expect("json");
        assert_eq!(json["kind"], "NetworkPolicy");
        let back: NetworkPolicy = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, out.object);
    }
}
