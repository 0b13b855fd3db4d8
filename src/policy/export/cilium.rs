//! A PicketPolicy as a CiliumNetworkPolicy (`cilium.io/v2`): the group's endpoints by labels,
//! one Cilium rule per kind of peer (CIDRs, endpoints of a namespace or a group, DNS names as
//! `toFQDNs`), ports with their protocol, and layer 7 where the policy names applications (HTTP:
//! every request allowed through Cilium's proxy; DNS: every name). Name lookups go to the
//! cluster's DNS pods with a DNS rule, which `toFQDNs` needs to learn the names' addresses.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{ExportError, Exported, Labels, Target, is_dns_rule};
use crate::policy::PicketPolicy;
use crate::policy::spec::{Action, NetworkRule, Protocol};

const FORMAT: &str = "CiliumNetworkPolicy";
/// Cilium's label for an endpoint's namespace.
const NAMESPACE: &str = "k8s:io.kubernetes.pod.namespace";

fn to_ports(rule: &NetworkRule, dns: bool) -> Option<Value> {
    if rule.ports.is_empty() {
        return None;
    }
    let ports: Vec<Value> = rule
        .ports
        .iter()
        .map(|p| {
            let (low, high) = crate::policy::validate::parse_ports(&p.port).unwrap_or((1, 65535));
            let protocol = match p.protocol {
                Some(Protocol::Tcp) => "TCP",
                Some(Protocol::Udp) => "UDP",
                None => "ANY",
            };
            let mut port = json!({ "port": low.to_string(), "protocol": protocol });
            if high > low {
                port["endPort"] = json!(high);
            }
            port
        })
        .collect();
    let mut entry = json!({ "ports": ports });
    let apps: Vec<String> = rule.applications.iter().map(|a| a.to_ascii_uppercase()).collect();
    if dns || apps.iter().any(|a| a == "DNS") {
        entry["rules"] = json!({ "dns": [{ "matchPattern": "*" }] });
    } else if apps.iter().any(|a| a == "HTTP" || a == "HTTP2" || a == "GRPC") {
        entry["rules"] = json!({ "http": [{}] });
    }
    Some(json!([entry]))
}

/// Cilium rules for one picket rule: one per kind of peer, each with the ports.
fn rules(rule: &NetworkRule, labels: &Labels, egress: bool, at: &str, notes: &mut Vec<String>) -> Vec<Value> {
    let (cidr_key, endpoints_key) = if egress { ("toCIDR", "toEndpoints") } else { ("fromCIDR", "fromEndpoints") };
    let ports = to_ports(rule, false);
    let with_ports = |mut value: Value| {
        if let Some(ports) = &ports {
            value["toPorts"] = ports.clone();
        }
        value
    };
    if rule.peers.is_empty() {
        // Any peer: every endpoint and every address.
        let any = if egress { json!({ "toEntities": ["all"] }) } else { json!({ "fromEntities": ["all"] }) };
        return vec![with_ports(any)];
    }
    let cidrs: Vec<&String> = rule.peers.iter().filter_map(|p| p.cidr.as_ref()).collect();
    let mut endpoints: Vec<Value> = Vec::new();
    for peer in &rule.peers {
        if let Some(namespace) = &peer.namespace {
            endpoints.push(json!({ "matchLabels": { NAMESPACE: namespace } }));
        }
        if let Some(group) = &peer.group {
            match super::group_labels(group, labels) {
                Some((namespace, pods)) => {
                    let mut selector: BTreeMap<String, String> = pods;
                    selector.insert(NAMESPACE.into(), namespace);
                    endpoints.push(json!({ "matchLabels": selector }));
                }
                None => {
                    notes.push(format!("{at}: group {group}: its pods' labels are unknown (give --cluster); left out"))
                }
            }
        }
    }
    let fqdns: Vec<Value> = rule
        .peers
        .iter()
        .filter_map(|p| p.fqdn.as_ref())
        .map(|name| match name.contains('*') {
            true => json!({ "matchPattern": name }),
            false => json!({ "matchName": name }),
        })
        .collect();
    let mut out = Vec::new();
    if !cidrs.is_empty() {
        out.push(with_ports(json!({ cidr_key: cidrs })));
    }
    if !endpoints.is_empty() {
        out.push(with_ports(json!({ endpoints_key: endpoints })));
    }
    if !fqdns.is_empty() {
        if egress {
            out.push(with_ports(json!({ "toFQDNs": fqdns })));
        } else {
            notes.push(format!("{at}: DNS names say where a connection goes, not where it comes from; left out"));
        }
    }
    out
}

/// The CiliumNetworkPolicy of one PicketPolicy (a JSON value).
pub fn export(policy: &PicketPolicy, labels: &Labels) -> Result<Exported<Value>, ExportError> {
    let target = Target::of(policy, labels, FORMAT)?;
    let (title, pods) = (&target.title, target.pods.clone());
    let spec = &policy.spec;
    let mut notes = Vec::new();
    let mut ingress = Vec::new();
    let mut ingress_deny = Vec::new();
    for (i, rule) in spec.ingress.iter().enumerate() {
        let at = format!("{title}: spec.ingress[{i}]");
        let made = rules(rule, labels, false, &at, &mut notes);
        match rule.action {
            Action::Allow => ingress.extend(made),
            Action::Block => ingress_deny.extend(made),
            Action::Audit => notes
                .push(format!("{at}: Audit: Cilium has no audit rule (policy audit mode is per endpoint); left out")),
        }
    }
    let mut egress = Vec::new();
    let mut egress_deny = Vec::new();
    let mut dns_done = false;
    for (i, rule) in spec.egress.iter().enumerate() {
        let at = format!("{title}: spec.egress[{i}]");
        if is_dns_rule(rule) && rule.action == Action::Allow {
            let mut selector = labels.dns.clone().unwrap_or_else(|| {
                notes.push(format!(
                    "{at}: name lookups go to pods labelled k8s-app=kube-dns in kube-system (the cluster's DNS Service was not read: give --cluster)"
                ));
                BTreeMap::from([("k8s-app".to_string(), "kube-dns".to_string())])
            });
            selector.insert(NAMESPACE.into(), "kube-system".into());
            let mut lookup = json!({ "toEndpoints": [{ "matchLabels": selector }] });
            if let Some(ports) = to_ports(rule, true) {
                lookup["toPorts"] = ports;
            }
            egress.push(lookup);
            dns_done = true;
            continue;
        }
        let made = rules(rule, labels, true, &at, &mut notes);
        match rule.action {
            Action::Allow => egress.extend(made),
            Action::Block => egress_deny.extend(made),
            Action::Audit => notes.push(format!("{at}: Audit: Cilium has no audit rule; left out")),
        }
    }
    if !dns_done && spec.egress.iter().any(|r| r.peers.iter().any(|p| p.fqdn.is_some())) {
        notes.push(format!(
            "{title}: toFQDNs needs the pods' lookups to go through Cilium's DNS proxy: allow port 53 to the DNS pods"
        ));
    }
    let mut body = serde_json::Map::new();
    body.insert("endpointSelector".into(), json!({ "matchLabels": pods }));
    body.insert("ingress".into(), Value::Array(ingress));
    body.insert("egress".into(), Value::Array(egress));
    if !ingress_deny.is_empty() {
        body.insert("ingressDeny".into(), Value::Array(ingress_deny));
    }
    if !egress_deny.is_empty() {
        body.insert("egressDeny".into(), Value::Array(egress_deny));
    }
    if spec.mode != crate::policy::spec::Mode::Protect {
        notes.push(format!(
            "{title}: mode {:?}: Cilium enforces what it is given; to only watch, run the endpoints in policy audit mode",
            spec.mode
        ));
    }
    let object = target.object("cilium.io/v2", "CiliumNetworkPolicy", Value::Object(body));
    Ok(Exported { object, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdns_l7_and_dns_become_cilium_rules() {
        let text = "apiVersion: picket.dev/v1
kind: PicketPolicy
metadata: { name: web, namespace: shop }
spec:
  selector: { matchLabels: { app: web } }
  mode: protect
  ingress:
    - peers: [{ namespace: ingress }]
      ports: [{ port: '8080', protocol: TCP }]
      applications: [HTTP]
  egress:
    - peers: [{ fqdn: '*.payments.example' }, { cidr: 10.0.0.0/8 }]
      ports: [{ port: '443', protocol: TCP }]
    - ports: [{ port: '53', protocol: UDP }, { port: '53', protocol: TCP }]
    - peers: [{ cidr: 192.0.2.0/24 }]
      action: Block
";
        let policy = super::super::one_policy(text);
        let out = export(&policy, &Labels::default()).expect("labels given");
        let spec = &out.object["spec"];
        assert_eq!(spec["endpointSelector"]["matchLabels"]["app"], "web");
        assert_eq!(spec["ingress"][0]["fromEndpoints"][0]["matchLabels"][NAMESPACE], "ingress");
        assert_eq!(spec["ingress"][0]["toPorts"][0]["rules"]["http"], json!([{}]));
        assert_eq!(spec["egress"][0]["toCIDR"], json!(["10.0.0.0/8"]));
        assert_eq!(spec["egress"][1]["toFQDNs"], json!([{ "matchPattern": "*.payments.example" }]));
        assert_eq!(spec["egress"][2]["toPorts"][0]["rules"]["dns"], json!([{ "matchPattern": "*" }]));
        assert_eq!(spec["egressDeny"][0]["toCIDR"], json!(["192.0.2.0/24"]));
    }

    /// Cilium's own schema for the CRD (vendored, strict about unknown fields), with `cidr`
    /// checked as a real prefix.
    fn cilium_schema() -> jsonschema::Validator {
        let text = include_str!("../../../tests/fixtures/schemas/ciliumnetworkpolicy_v2.json");
        let schema: Value = serde_json::from_str(text).expect("schema is JSON");
        jsonschema::options()
            .should_validate_formats(true)
            .with_format("cidr", |s: &str| s.parse::<ipnet::IpNet>().is_ok())
            .build(&schema)
            .expect("schema compiles")
    }

    fn schema_errors(validator: &jsonschema::Validator, object: &Value) -> Vec<String> {
        validator.iter_errors(object).map(|e| format!("{}: {e}", e.instance_path())).collect()
    }

    #[test]
    fn every_kind_of_rule_passes_ciliums_schema() {
        let text = "apiVersion: picket.dev/v1
kind: PicketPolicy
metadata: { name: web, namespace: shop }
spec:
  selector: { owner: { kind: Deployment, name: web } }
  mode: monitor
  ingress:
    - peers: [{ namespace: ingress }, { group: shop/Deployment/api }, { cidr: 10.1.0.0/16 }]
      ports: [{ port: '8080', protocol: TCP }, { port: '9000-9100' }]
      applications: [HTTP]
    - ports: [{ port: '9090', protocol: TCP }]
    - peers: [{ cidr: 192.0.2.0/24 }]
      action: Block
  egress:
    - peers: [{ fqdn: '*.payments.example' }, { fqdn: api.example }, { cidr: '2001:db8::/64' }]
      ports: [{ port: '443', protocol: TCP }]
      applications: [gRPC]
    - peers: [{ group: shop/Deployment/api }]
      ports: [{ port: '5432', protocol: TCP }]
    - ports: [{ port: '53', protocol: UDP }, { port: '53', protocol: TCP }]
    - ports: [{ port: '8125', protocol: UDP }]
      applications: [DNS]
    - peers: [{ cidr: 198.51.100.0/24 }]
      action: Block
    - peers: [{ cidr: 203.0.113.0/24 }]
      action: Audit
";
        let policy = super::super::one_policy(text);
        let app = BTreeMap::from([("app".to_string(), "api".to_string())]);
        let web = BTreeMap::from([("app".to_string(), "web".to_string()), ("tier".to_string(), "front".to_string())]);
        let labels = Labels {
            workloads: BTreeMap::from([("shop/Deployment/api".into(), app), ("shop/Deployment/web".into(), web)]),
            dns: Some(BTreeMap::from([("k8s-app".into(), "coredns".into())])),
        };
        let out = export(&policy, &labels).expect("labels given");
        let validator = cilium_schema();
        let errors = schema_errors(&validator, &out.object);
        assert!(errors.is_empty(), "{errors:#?}\n{:#}", out.object);
        // Each part was there to be checked.
        let spec = &out.object["spec"];
        for key in ["ingress", "ingressDeny", "egress", "egressDeny"] {
            assert!(spec[key].as_array().is_some_and(|rules| !rules.is_empty()), "{key}: {spec:#}");
        }
        assert_eq!(spec["ingress"][0]["toPorts"][0]["ports"][1]["endPort"], 9100, "{spec:#}");

        // The schema is no rubber stamp: a misspelt field and a bad prefix are refused.
        let mut misspelt = out.object.clone();
        misspelt["spec"]["egress"][0]["toFQDN"] = misspelt["spec"]["egress"][0]["toCIDR"].take();
        assert!(!schema_errors(&validator, &misspelt).is_empty(), "toFQDN is not Cilium's");
        let mut bad_prefix = out.object.clone();
        bad_prefix["spec"]["egressDeny"][0]["toCIDR"] = json!(["198.51.100.0/33"]);
        assert!(!schema_errors(&validator, &bad_prefix).is_empty(), "a /33 is not a prefix");
    }
}
