//! A PicketPolicy as a CiliumNetworkPolicy (`cilium.io/v2`): the group's endpoints by labels,
//! one Cilium rule per kind of peer (CIDRs, endpoints of a namespace or a group, DNS names as
//! `toFQDNs`), ports with their protocol, and layer 7: the requests, names and server names an
//! Allow rule lists (`http` as Cilium's regular expressions, `dns` as `matchName`/`matchPattern`,
//! `serverNames`), or every request where the policy only names applications. Cilium's deny rules
//! take no layer 7, so a Block rule's requests are left out, said, never widened to its ports.
//! Name lookups go to the cluster's DNS pods with a DNS rule, which `toFQDNs` needs to learn the
//! names' addresses.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{ExportError, Exported, Labels, Target, is_dns_rule};
use crate::policy::PicketPolicy;
use crate::policy::spec::{Action, NetworkRule, Protocol};

const FORMAT: &str = "CiliumNetworkPolicy";
/// Cilium's label for an endpoint's namespace.
const NAMESPACE: &str = "k8s:io.kubernetes.pod.namespace";

fn to_ports(rule: &NetworkRule, dns: bool) -> Option<Value> {
    // Names listed with no port are looked up on port 53.
    let lookups = [crate::policy::spec::PortRule { port: "53".into(), protocol: None }];
    let listed = match (rule.ports.is_empty(), rule.http.is_empty() && rule.server_names.is_empty()) {
        (false, _) => rule.ports.as_slice(),
        (true, true) if !rule.dns.is_empty() => &lookups[..],
        (true, _) => return None,
    };
    let ports: Vec<Value> = listed
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
    if !rule.http.is_empty() {
        entry["rules"] = json!({ "http": rule.http.iter().map(http_rule).collect::<Vec<_>>() });
    } else if !rule.dns.is_empty() {
        entry["rules"] = json!({ "dns": rule.dns.iter().map(|n| dns_name(n)).collect::<Vec<_>>() });
    } else if dns || apps.iter().any(|a| a == "DNS") {
        entry["rules"] = json!({ "dns": [{ "matchPattern": "*" }] });
    } else if apps.iter().any(|a| a == "HTTP" || a == "HTTP2" || a == "GRPC") {
        entry["rules"] = json!({ "http": [{}] });
    }
    if !rule.server_names.is_empty() {
        entry["serverNames"] = json!(rule.server_names);
    }
    Some(json!([entry]))
}

/// An HTTP request pattern as Cilium's (regular expressions matched against the whole field):
/// `/admin*` is every path that starts so, a host `*.x.example` every name under it.
fn http_rule(request: &crate::policy::spec::HttpRequest) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(method) = &request.method {
        out.insert("method".into(), json!(method.to_ascii_uppercase()));
    }
    if let Some(path) = &request.path {
        let regex = match path.strip_suffix('*') {
            Some(prefix) => format!("{}.*", regex::escape(prefix)),
            None => regex::escape(path),
        };
        out.insert("path".into(), json!(regex));
    }
    if let Some(host) = &request.host {
        let regex = match host.strip_prefix("*.") {
            Some(domain) => format!(".+\\.{}", regex::escape(domain)),
            None => regex::escape(host),
        };
        out.insert("host".into(), json!(regex));
    }
    Value::Object(out)
}

fn dns_name(name: &str) -> Value {
    match name.contains('*') {
        true => json!({ "matchPattern": name }),
        false => json!({ "matchName": name }),
    }
}

/// Whether an Allow rule's layer 7 can be said in Cilium's terms (else it is left out, said:
/// allowing its ports whole would let through what the policy refuses).
fn layer_7_exportable(rule: &NetworkRule, at: &str, notes: &mut Vec<String>) -> bool {
    if rule.ports.is_empty() && (!rule.http.is_empty() || !rule.server_names.is_empty()) {
        notes.push(format!("{at}: Cilium judges HTTP and server names on given ports: give the rule ports; left out"));
        return false;
    }
    if rule.dns.iter().any(|n| n.starts_with("*.")) {
        notes.push(format!(
            "{at}: Cilium's `*` stays within one label: names more than one label under a `*.` pattern are refused by Cilium"
        ));
    }
    true
}

/// Whether a rule judges requests, names or server names (layer 7) rather than connections.
fn has_layer_7(rule: &NetworkRule) -> bool {
    !rule.http.is_empty() || !rule.dns.is_empty() || !rule.server_names.is_empty()
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
        if has_layer_7(rule) && rule.action != Action::Allow {
            notes.push(format!("{at}: Cilium's deny rules take no HTTP, DNS or server names; left out"));
            continue;
        }
        if has_layer_7(rule) && !layer_7_exportable(rule, &at, &mut notes) {
            continue;
        }
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
            if has_layer_7(rule) {
                layer_7_exportable(rule, &at, &mut notes);
            }
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
        if has_layer_7(rule) && rule.action != Action::Allow {
            notes.push(format!("{at}: Cilium's deny rules take no HTTP, DNS or server names; left out"));
            continue;
        }
        if has_layer_7(rule) && !layer_7_exportable(rule, &at, &mut notes) {
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

    /// Requests, names and server names an Allow rule lists become Cilium's layer 7; a Block
    /// rule's are left out and said, never turned into a deny of their whole port.
    #[test]
    fn listed_requests_names_and_server_names_become_ciliums_layer_7() {
        let text = "apiVersion: picket.dev/v1
kind: PicketPolicy
metadata: { name: web, namespace: shop }
spec:
  selector: { matchLabels: { app: web } }
  mode: protect
  ingress:
    - ports: [{ port: '8080', protocol: TCP }]
      http: [{ method: get, path: /api/v1.0/* }, { path: /health, host: '*.shop.example' }]
  egress:
    - ports: [{ port: '53', protocol: UDP }]
      dns: ['*.svc.cluster.local', api.example]
    - ports: [{ port: '443', protocol: TCP }]
      serverNames: [api.example]
    - ports: [{ port: '8080', protocol: TCP }]
      http: [{ method: DELETE, path: /admin* }]
      action: Block
";
        let policy = super::super::one_policy(text);
        let out = export(&policy, &Labels::default()).expect("labels given");
        let spec = &out.object["spec"];
        assert_eq!(
            spec["ingress"][0]["toPorts"][0]["rules"]["http"],
            json!([{ "method": "GET", "path": "/api/v1\\.0/.*" }, { "path": "/health", "host": ".+\\.shop\\.example" }])
        );
        let egress = spec["egress"].as_array().expect("egress");
        let dns = egress.iter().find_map(|r| r["toPorts"][0]["rules"].get("dns")).expect("a DNS rule");
        assert_eq!(dns, &json!([{ "matchPattern": "*.svc.cluster.local" }, { "matchName": "api.example" }]));
        assert!(egress.iter().any(|r| r["toPorts"][0]["serverNames"] == json!(["api.example"])), "{spec:#}");
        assert!(spec.get("egressDeny").is_none(), "port 8080 is not denied whole: {spec:#}");
        assert!(out.notes.iter().any(|n| n.contains("spec.egress[2]") && n.contains("left out")), "{:?}", out.notes);
        assert!(out.notes.iter().any(|n| n.contains("spec.egress[0]") && n.contains("one label")), "{:?}", out.notes);
        let errors = schema_errors(&cilium_schema(), &out.object);
        assert!(errors.is_empty(), "{errors:#?}");
    }

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
