//! `picket policy validate`: every mistake in a policy file, each with its file, line and
//! column: YAML and shape errors from the parser, then the meaning of each field (paths absolute,
//! CIDRs, ports, DNS names, known applications, one kind of peer). Never a panic.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::yaml::{Step, locate, split_documents};

use super::spec::{
    APPLICATIONS, ClusterPolicySpec, DirectoryMatch, FileRule, NetworkRule, PicketClusterPolicy, PicketPolicy,
    PolicySpec, ProcessRule,
};

/// One mistake, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.path.display(), self.line, self.column, self.message)
    }
}

/// A policy read from a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    Policy(PicketPolicy),
    ClusterPolicy(PicketClusterPolicy),
}

impl Document {
    /// The document as YAML (as the history keeps what was applied).
    pub fn yaml(&self) -> Result<String, serde_saphyr::ser::Error> {
        match self {
            Self::Policy(p) => serde_saphyr::to_string(p),
            Self::ClusterPolicy(p) => serde_saphyr::to_string(p),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::Policy(p) => format!(
                "PicketPolicy {}/{}",
                p.metadata.namespace.as_deref().unwrap_or("default"),
                p.metadata.name.as_deref().unwrap_or_default()
            ),
            Self::ClusterPolicy(p) => format!("PicketClusterPolicy {}", p.metadata.name.as_deref().unwrap_or_default()),
        }
    }
}

/// Reads every YAML document of `text` as a policy; what is valid, and every problem.
pub fn validate_text(path: &Path, text: &str) -> (Vec<Document>, Vec<Problem>) {
    let mut documents = Vec::new();
    let mut problems = Vec::new();
    for (first_line, doc) in split_documents(text) {
        // `line` is 0-based within the document.
        let at = |line: u64, column: u64, message: String| Problem {
            path: path.to_path_buf(),
            line: line + first_line + 1,
            column,
            message,
        };
        let parse_error = |err: serde_saphyr::Error| {
            let (line, column, message) = crate::yaml::explain(doc, &err);
            at(line.saturating_sub(1), column, message)
        };
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Head {
            #[serde(default)]
            api_version: String,
            #[serde(default)]
            kind: String,
        }
        let head: Head = match serde_saphyr::from_str(doc) {
            Ok(head) => head,
            Err(err) => {
                problems.push(parse_error(err));
                continue;
            }
        };
        let expected = format!("{}/{}", super::spec::GROUP, super::spec::VERSION);
        if head.api_version != expected {
            let (line, column) = locate(doc, &[Step::Key("apiVersion")]);
            problems.push(at(line, column, format!("apiVersion must be {expected}, not '{}'", head.api_version)));
            continue;
        }
        let mut found = Vec::new();
        match head.kind.as_str() {
            "PicketPolicy" => match serde_saphyr::from_str::<PicketPolicy>(doc) {
                Ok(policy) => {
                    check_rules(&policy.spec, &mut found);
                    if found.is_empty() {
                        documents.push(Document::Policy(policy));
                    }
                }
                Err(err) => problems.push(parse_error(err)),
            },
            "PicketClusterPolicy" => match serde_saphyr::from_str::<PicketClusterPolicy>(doc) {
                Ok(policy) => {
                    check_cluster(&policy.spec, &mut found);
                    if found.is_empty() {
                        documents.push(Document::ClusterPolicy(policy));
                    }
                }
                Err(err) => problems.push(parse_error(err)),
            },
            other => {
                let (line, column) = locate(doc, &[Step::Key("kind")]);
                problems.push(at(
                    line,
                    column,
                    format!("kind must be PicketPolicy or PicketClusterPolicy, not '{other}'"),
                ));
                continue;
            }
        }
        for (steps, message) in found {
            let (line, column) = locate(doc, &steps);
            problems.push(at(line, column, message));
        }
    }
    (documents, problems)
}

type Found = Vec<(Vec<Step>, String)>;

fn under(prefix: &[Step], more: &[Step]) -> Vec<Step> {
    prefix.iter().chain(more).cloned().collect()
}

fn check_cluster(spec: &ClusterPolicySpec, found: &mut Found) {
    for (i, pattern) in spec.namespaces.iter().enumerate() {
        if pattern.trim().is_empty() {
            found.push((
                vec![Step::Key("spec"), Step::Key("namespaces"), Step::Index(i)],
                "an empty namespace pattern".into(),
            ));
        }
    }
    check_rules(&spec.rules(), found);
}

fn check_rules(spec: &PolicySpec, found: &mut Found) {
    let root = [Step::Key("spec")];
    let selector = &spec.selector;
    if selector.match_labels.is_empty()
        && selector.owner.is_none()
        && selector.container.is_none()
        && selector.image.is_none()
    {
        found.push((
            under(&root, &[Step::Key("selector")]),
            "the selector picks no group: name matchLabels, owner, container or image".into(),
        ));
    }
    if selector.owner.as_ref().is_some_and(|o| o.name.trim().is_empty()) {
        found.push((
            under(&root, &[Step::Key("selector"), Step::Key("owner"), Step::Key("name")]),
            "an empty owner name".into(),
        ));
    }
    for (i, rule) in spec.process.iter().enumerate() {
        let at = under(&root, &[Step::Key("process"), Step::Index(i)]);
        check_process(rule, &at, found);
    }
    for (i, rule) in spec.file.iter().enumerate() {
        let at = under(&root, &[Step::Key("file"), Step::Index(i)]);
        check_file(rule, &at, found);
    }
    for (key, rules) in [("ingress", &spec.ingress), ("egress", &spec.egress)] {
        for (i, rule) in rules.iter().enumerate() {
            let at = under(&root, &[Step::Key(key), Step::Index(i)]);
            check_network(rule, key == "ingress", &at, found);
        }
    }
}

fn check_paths(paths: &[String], directories: &[DirectoryMatch], at: &[Step], found: &mut Found) {
    if paths.is_empty() && directories.is_empty() {
        found.push((at.to_vec(), "a rule matches nothing: give matchPaths or matchDirectories".into()));
    }
    for (i, path) in paths.iter().enumerate() {
        if !path.starts_with('/') || path.ends_with('/') {
            found.push((
                under(at, &[Step::Key("matchPaths"), Step::Index(i)]),
                format!("'{path}' is not an absolute file path (a directory goes under matchDirectories)"),
            ));
        }
    }
    for (i, directory) in directories.iter().enumerate() {
        if !directory.dir.starts_with('/') || !directory.dir.ends_with('/') {
            found.push((
                under(at, &[Step::Key("matchDirectories"), Step::Index(i), Step::Key("dir")]),
                format!("'{}' is not an absolute directory ending in /", directory.dir),
            ));
        }
    }
}

fn check_sources(sources: &[String], at: &[Step], found: &mut Found) {
    for (i, source) in sources.iter().enumerate() {
        if !source.starts_with('/') {
            found.push((
                under(at, &[Step::Key("fromSource"), Step::Index(i)]),
                format!("'{source}' is not an absolute executable path"),
            ));
        }
    }
}

fn check_process(rule: &ProcessRule, at: &[Step], found: &mut Found) {
    check_paths(&rule.match_paths, &rule.match_directories, at, found);
    check_sources(&rule.from_source, at, found);
    if rule.user.as_ref().is_some_and(|u| u.trim().is_empty()) {
        found.push((under(at, &[Step::Key("user")]), "an empty user".into()));
    }
}

fn check_file(rule: &FileRule, at: &[Step], found: &mut Found) {
    check_paths(&rule.match_paths, &rule.match_directories, at, found);
    check_sources(&rule.from_source, at, found);
}

fn check_network(rule: &NetworkRule, ingress: bool, at: &[Step], found: &mut Found) {
    for (i, peer) in rule.peers.iter().enumerate() {
        let here = under(at, &[Step::Key("peers"), Step::Index(i)]);
        let given = [&peer.group, &peer.namespace, &peer.cidr, &peer.fqdn].iter().filter(|f| f.is_some()).count();
        if given != 1 {
            found.push((here.clone(), "a peer is exactly one of group, namespace, cidr or fqdn".into()));
            continue;
        }
        if let Some(cidr) = &peer.cidr
            && let Err(why) = parse_cidr(cidr)
        {
            found.push((under(&here, &[Step::Key("cidr")]), why));
        }
        if let Some(fqdn) = &peer.fqdn {
            if ingress {
                found.push((
                    under(&here, &[Step::Key("fqdn")]),
                    "ingress peers are a group, a namespace or a CIDR: a DNS name says where a connection goes, not where it comes from".into(),
                ));
            } else if !valid_fqdn(fqdn) {
                found.push((
                    under(&here, &[Step::Key("fqdn")]),
                    format!("'{fqdn}' is not a DNS name (`*.` may start it)"),
                ));
            }
        }
        if let Some(namespace) = &peer.namespace
            && !valid_label(namespace)
        {
            found.push((under(&here, &[Step::Key("namespace")]), format!("'{namespace}' is not a namespace name")));
        }
        if let Some(group) = &peer.group
            && !valid_group(group)
        {
            found.push((
                under(&here, &[Step::Key("group")]),
                format!("'{group}' is not a group: write namespace/owner-kind/name, or local/image"),
            ));
        }
    }
    for (i, port) in rule.ports.iter().enumerate() {
        if let Err(why) = parse_ports(&port.port) {
            found.push((under(at, &[Step::Key("ports"), Step::Index(i), Step::Key("port")]), why));
        }
    }
    for (i, application) in rule.applications.iter().enumerate() {
        if !APPLICATIONS.iter().any(|a| a.eq_ignore_ascii_case(application)) {
            found.push((
                under(at, &[Step::Key("applications"), Step::Index(i)]),
                format!("'{application}' is not an application picket identifies ({})", APPLICATIONS.join(", ")),
            ));
        }
    }
    for (i, request) in rule.http.iter().enumerate() {
        let here = under(at, &[Step::Key("http"), Step::Index(i)]);
        if let Some(method) = &request.method
            && (method.is_empty() || method.len() > 8 || !method.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            found.push((
                under(&here, &[Step::Key("method")]),
                format!("'{method}' is not an HTTP method (GET, DELETE …)"),
            ));
        }
        if let Some(path) = &request.path {
            let bare = path.strip_suffix('*').unwrap_or(path);
            if !path.starts_with('/') || bare.contains(['*', ' ', '?']) || bare.len() > 96 {
                found.push((
                    under(&here, &[Step::Key("path")]),
                    format!("'{path}' is not a path pattern: it starts with /, has '*' only at its end, no spaces or '?', at most 96 bytes"),
                ));
            }
        }
        if let Some(host) = &request.host
            && (!valid_fqdn(host) || host.len() > 120)
        {
            found.push((
                under(&here, &[Step::Key("host")]),
                format!("'{host}' is not a host name (`*.` may start it; at most 120 bytes)"),
            ));
        }
    }
    for (i, name) in rule.dns.iter().enumerate() {
        if !valid_fqdn(name) || name.len() > 120 {
            found.push((
                under(at, &[Step::Key("dns"), Step::Index(i)]),
                format!("'{name}' is not a DNS name (`*.` may start it; at most 120 bytes)"),
            ));
        }
    }
    for (i, name) in rule.server_names.iter().enumerate() {
        if !valid_fqdn(name) || name.len() > 120 {
            found.push((
                under(at, &[Step::Key("serverNames"), Step::Index(i)]),
                format!("'{name}' is not a server name (`*.` may start it; at most 120 bytes)"),
            ));
        }
    }
}

/// `10.0.0.0/8`, `2001:db8::/32`, or one address.
pub fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let bad = |why: &str| format!("'{text}' is not a CIDR: {why}");
    let (address, prefix) = text.split_once('/').unwrap_or((text, ""));
    let address: IpAddr = address.parse().map_err(|_| bad("not an IP address"))?;
    let most = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        "" => most,
        text => text
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= most)
            .ok_or_else(|| bad(&format!("the prefix is not 0 to {most}")))?,
    };
    Ok((address, prefix))
}

/// `443` or `8000-8080`, within 1–65535.
pub fn parse_ports(text: &str) -> Result<(u16, u16), String> {
    let number = |s: &str| s.trim().parse::<u16>().ok().filter(|p| *p > 0);
    let range = match text.split_once('-') {
        Some((low, high)) => number(low).zip(number(high)),
        None => number(text).map(|p| (p, p)),
    };
    match range {
        Some((low, high)) if low <= high => Ok((low, high)),
        _ => Err(format!("'{text}' is not a port (1 to 65535) or a range such as 8000-8080")),
    }
}

fn valid_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

fn valid_fqdn(text: &str) -> bool {
    let name = text.strip_prefix("*.").unwrap_or(text).trim_end_matches('.');
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn valid_group(text: &str) -> bool {
    let parts: Vec<&str> = text.split('/').collect();
    match parts.as_slice() {
        ["local", image @ ..] => !image.is_empty() && image.iter().all(|p| !p.is_empty()),
        [namespace, kind, name] => {
            valid_label(namespace)
                && ["deployment", "statefulset", "daemonset", "cronjob", "job", "pod"]
                    .contains(&kind.to_ascii_lowercase().as_str())
                && !name.is_empty()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: picket.dev/v1
kind: PicketPolicy
metadata:
  name: web
  namespace: shop
spec:
  selector:
    owner: { kind: Deployment, name: web }
  mode: protect
  process:
    - matchPaths: [/usr/sbin/nginx]
    - matchDirectories:
        - dir: /usr/lib/
          recursive: true
      fromSource: [/usr/sbin/nginx]
  file:
    - matchDirectories: [{ dir: /etc/nginx/ }]
      readOnly: true
  egress:
    - peers:
        - fqdn: '*.example.com'
        - cidr: 10.0.0.0/8
      ports: [{ port: '443', protocol: TCP }]
      applications: [TLS, http]
";

    #[test]
    fn a_good_policy_reads_whole() {
        let (documents, problems) = validate_text(Path::new("web.yaml"), GOOD);
        assert!(problems.is_empty(), "{problems:?}");
        let [Document::Policy(policy)] = documents.as_slice() else { panic!("{documents:?}") };
        assert_eq!(policy.spec.process.len(), 2);
        assert_eq!(policy.spec.egress[0].peers[1].cidr.as_deref(), Some("10.0.0.0/8"));
    }

    #[test]
    fn every_mistake_is_named_at_its_line_and_column() {
        let text = GOOD
            .replace("matchPaths: [/usr/sbin/nginx]", "matchPaths: [nginx]")
            .replace("- dir: /usr/lib/", "- dir: /usr/lib")
            .replace("cidr: 10.0.0.0/8", "cidr: 10.0.0.0/33")
            .replace("port: '443'", "port: '0'")
            .replace("applications: [TLS, http]", "applications: [TLS, gopher]");
        let (documents, problems) = validate_text(Path::new("web.yaml"), &text);
        assert!(documents.is_empty());
        let said: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            said,
            [
                "web.yaml:11:7: 'nginx' is not an absolute file path (a directory goes under matchDirectories)",
                "web.yaml:13:11: '/usr/lib' is not an absolute directory ending in /",
                "web.yaml:22:11: '10.0.0.0/33' is not a CIDR: the prefix is not 0 to 32",
                "web.yaml:23:7: '0' is not a port (1 to 65535) or a range such as 8000-8080",
                "web.yaml:24:7: 'gopher' is not an application picket identifies (HTTP, HTTP2, GRPC, TLS, DNS, SSH, MySQL, PostgreSQL, Redis, MongoDB, Kafka)",
            ]
        );
    }

    #[test]
    fn layer_7_requests_are_checked_at_their_place() {
        let text = GOOD.replace(
            "      applications: [TLS, http]\n",
            "      applications: [TLS, http]\n    - ports: [{ port: '8080' }]\n      action: Block\n      http: [{ method: DELETE, path: /admin*, host: '*.shop.example' }, { host: 'bad host' }]\n",
        );
        let (_, problems) = validate_text(Path::new("web.yaml"), &text);
        let said: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].starts_with("web.yaml:27:") && said[0].contains("'bad host' is not a host name"), "{said:?}");
    }

    #[test]
    fn shape_errors_and_other_documents_are_placed_too() {
        let text = format!(
            "{GOOD}---\napiVersion: picket.dev/v1\nkind: PicketClusterPolicy\nmetadata: {{ name: all }}\nspec:\n  selector: {{}}\n  mode: enforce\n---\napiVersion: v1\nkind: ConfigMap\n"
        );
        let (documents, problems) = validate_text(Path::new("p.yaml"), &text);
        assert_eq!(documents.len(), 1, "the good one: {problems:?}");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!((problems[0].line, problems[0].message.contains("enforce")), (31, true), "{}", problems[0]);
        assert_eq!(problems[1].to_string(), "p.yaml:33:1: apiVersion must be picket.dev/v1, not 'v1'");
    }

    #[test]
    fn hostile_text_is_an_error_not_a_panic() {
        for text in ["", "---\n---\n", "[[[[", "spec: !!binary ===", &"a:\n  ".repeat(5_000), "\u{0}\u{ffff}"] {
            let _ = validate_text(Path::new("x.yaml"), text);
        }
        assert_eq!(
            parse_ports("8000-80"),
            Err("'8000-80' is not a port (1 to 65535) or a range such as 8000-8080".into())
        );
        assert_eq!(parse_cidr("fd00::/8"), Ok(("fd00::".parse().unwrap(), 8)));
        assert!(valid_group("shop/deployment/web") && valid_group("local/nginx:1.25") && !valid_group("web"));
    }
}
