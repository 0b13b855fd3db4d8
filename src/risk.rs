//! Risk: one score per workload, 0 to 100, from five parts with documented weights, each part
//! explained. Pure: [`score`] takes what is known of a workload ([`WorkloadFacts`]) and gives
//! the score and its reasons; [`gather`] collects the facts of a cluster's workloads from the
//! inventory, the stored scans and the kept alerts (what `picket risk` and the Risk pane call).
//!
//! | part | at most | from |
//! |---|---|---|
//! | vulnerabilities | 35 | each: critical 10, high 5, medium 2, low 0.5; × 1.5 with a fix released, × 2 known exploited (the record links an exploit), × 1.5 in use at run time (a program or shared object of the package was executed or mapped by the workload's processes, per the agents' baselines), × 0.25 known unused (its processes were read for a day and none mapped one) |
//! | exposure | 15 | host network 10, a LoadBalancer Service or an Ingress 8, a NodePort 6, a host port 5 |
//! | privileges | 20 | privileged 15, host PID 8, host IPC 4, runs as root 6, each dangerous capability 4, each host path 6 (the container runtime's socket 15), privilege escalation allowed 2 |
//! | compliance | 10 | each failed pod-security check: critical 4, high 2, medium 1, low 0.5 |
//! | runtime alerts | 20 | each open fold of alerts: critical 10, high 6, medium 2, low 1 |
//!
//! Each part's raw points are brought under its ceiling smoothly (`max × (1 − e^(−2 raw / max))`):
//! one item worth the ceiling fills most of the part, one more finding always adds a little, and
//! no part can swamp the others. Levels: critical from 70, high from 45, medium from 20, low
//! above 0.

pub mod gather;
pub mod in_use;

use serde::Serialize;

use crate::model::Severity;

/// One vulnerability of the workload's images (each id once).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VulnFact {
    pub id: String,
    pub severity: Severity,
    pub package: String,
    pub has_fix: bool,
    pub known_exploited: bool,
    /// Whether the package's programs or shared objects were executed or mapped at run time,
    /// per the agent; None: not known.
    pub in_use: Option<bool>,
    /// The file of it the agent saw mapped, when in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_file: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Exposure {
    pub host_network: bool,
    pub host_ports: Vec<u16>,
    /// `Service shop/api (LoadBalancer)`, `Ingress shop/web`.
    pub public: Vec<String>,
    /// `Service shop/api (NodePort 30080)`.
    pub node_ports: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Privileges {
    /// Containers that run privileged.
    pub privileged: Vec<String>,
    pub host_pid: bool,
    pub host_ipc: bool,
    /// Containers that run as root (no runAsNonRoot, no non-zero runAsUser).
    pub root: Vec<String>,
    /// Dangerous capabilities added (`SYS_ADMIN` …), with the container.
    pub capabilities: Vec<String>,
    /// Host paths mounted.
    pub host_paths: Vec<String>,
    pub escalation: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckFact {
    pub id: String,
    pub title: String,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertFact {
    pub rule: String,
    pub severity: Severity,
    pub count: u64,
}

/// What is known of one workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WorkloadFacts {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub images: Vec<String>,
    /// Whether any of its images was scanned (else the vulnerability part is unknown, not 0).
    pub scanned: bool,
    pub vulnerabilities: Vec<VulnFact>,
    pub exposure: Exposure,
    pub privileges: Privileges,
    pub compliance: Vec<CheckFact>,
    /// Open folds of alerts from its containers.
    pub alerts: Vec<AlertFact>,
}

impl WorkloadFacts {
    /// `Deployment shop/api`.
    pub fn subject(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part {
    /// `vulnerabilities`, `exposure`, `privileges`, `compliance`, `alerts`.
    pub name: &'static str,
    pub points: f64,
    pub max: f64,
    /// Why, biggest first: `CVE-2024-1234 (critical, fix in 1.2.3, exploited): 30`.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub subject: String,
    /// 0–100.
    pub total: u32,
    pub level: Severity,
    pub parts: Vec<Part>,
    /// Said when a part could not be judged (images never scanned).
    pub unknown: Vec<String>,
}

pub const VULNERABILITIES_MAX: f64 = 35.0;
pub const EXPOSURE_MAX: f64 = 15.0;
pub const PRIVILEGES_MAX: f64 = 20.0;
pub const COMPLIANCE_MAX: f64 = 10.0;
pub const ALERTS_MAX: f64 = 20.0;

/// Capabilities that give a container the host's keys.
pub const DANGEROUS_CAPABILITIES: &[&str] =
    &["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "DAC_READ_SEARCH", "SYS_RAWIO", "BPF", "PERFMON", "ALL"];

fn under(raw: f64, max: f64) -> f64 {
    max * (1.0 - (-2.0 * raw / max).exp())
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn part(name: &'static str, max: f64, mut items: Vec<(f64, String)>) -> Part {
    items.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let raw: f64 = items.iter().map(|(p, _)| p).sum();
    Part {
        name,
        points: round1(under(raw, max)),
        max,
        reasons: items.into_iter().map(|(p, why)| format!("{why}: {}", round1(p))).collect(),
    }
}

fn severity_points(severity: Severity, critical: f64, high: f64, medium: f64, low: f64) -> f64 {
    match severity {
        Severity::Critical => critical,
        Severity::High => high,
        Severity::Medium => medium,
        Severity::Low => low,
        Severity::Unknown => 0.0,
    }
}

/// The score of one workload, with every part's reasons.
pub fn score(facts: &WorkloadFacts) -> Score {
    let vulnerabilities = facts
        .vulnerabilities
        .iter()
        .map(|v| {
            let mut points = severity_points(v.severity, 10.0, 5.0, 2.0, 0.5);
            let mut marks = vec![v.severity.as_str().to_lowercase()];
            if v.has_fix {
                points *= 1.5;
                marks.push("fix released".into());
            }
            if v.known_exploited {
                points *= 2.0;
                marks.push("exploited".into());
            }
            match v.in_use {
                Some(true) => {
                    points *= 1.5;
                    let file = v.used_file.as_deref().map(|f| f.rsplit('/').next().unwrap_or(f));
                    marks.push(file.map_or_else(|| "in use".to_string(), |f| format!("in use: {f}")));
                }
                Some(false) => {
                    points *= 0.25;
                    marks.push("not in use".into());
                }
                None => {}
            }
            (points, format!("{} in {} ({})", v.id, v.package, marks.join(", ")))
        })
        .filter(|(p, _)| *p > 0.0)
        .collect();
    let e = &facts.exposure;
    let mut exposure = Vec::new();
    if e.host_network {
        exposure.push((10.0, "host network".to_string()));
    }
    exposure.extend(e.public.iter().map(|p| (8.0, p.clone())));
    exposure.extend(e.node_ports.iter().map(|p| (6.0, p.clone())));
    exposure.extend(e.host_ports.iter().map(|p| (5.0, format!("host port {p}"))));
    let p = &facts.privileges;
    let mut privileges: Vec<(f64, String)> = Vec::new();
    privileges.extend(p.privileged.iter().map(|c| (15.0, format!("privileged container {c}"))));
    if p.host_pid {
        privileges.push((8.0, "host PID namespace".into()));
    }
    if p.host_ipc {
        privileges.push((4.0, "host IPC namespace".into()));
    }
    privileges.extend(p.root.iter().map(|c| (6.0, format!("container {c} runs as root"))));
    privileges.extend(p.capabilities.iter().map(|c| (4.0, format!("capability {c}"))));
    privileges.extend(p.host_paths.iter().map(|path| {
        let socket = ["docker.sock", "containerd.sock", "crio.sock", "podman.sock"].iter().any(|s| path.contains(s));
        (if socket { 15.0 } else { 6.0 }, format!("host path {path}"))
    }));
    if p.escalation {
        privileges.push((2.0, "privilege escalation allowed".into()));
    }
    let compliance = facts
        .compliance
        .iter()
        .map(|c| (severity_points(c.severity, 4.0, 2.0, 1.0, 0.5), format!("{} {}", c.id, c.title)))
        .filter(|(p, _)| *p > 0.0)
        .collect();
    let alerts = facts
        .alerts
        .iter()
        .map(|a| {
            (
                severity_points(a.severity, 10.0, 6.0, 2.0, 1.0),
                format!("{} ×{} ({})", a.rule, a.count, a.severity.as_str().to_lowercase()),
            )
        })
        .filter(|(p, _)| *p > 0.0)
        .collect();
    let parts = vec![
        part("vulnerabilities", VULNERABILITIES_MAX, vulnerabilities),
        part("exposure", EXPOSURE_MAX, exposure),
        part("privileges", PRIVILEGES_MAX, privileges),
        part("compliance", COMPLIANCE_MAX, compliance),
        part("alerts", ALERTS_MAX, alerts),
    ];
    let total = parts.iter().map(|p| p.points).sum::<f64>().round().clamp(0.0, 100.0) as u32;
    let level = match total {
        70.. => Severity::Critical,
        45..=69 => Severity::High,
        20..=44 => Severity::Medium,
        1..=19 => Severity::Low,
        0 => Severity::Unknown,
    };
    let mut unknown = Vec::new();
    if !facts.scanned && !facts.images.is_empty() {
        unknown.push("vulnerabilities: no image of it was scanned here (picket cluster scan)".into());
    }
    Score { subject: facts.subject(), total, level, parts, unknown }
}

impl Score {
    /// The score explained, as lines: each part, its points of its most, and why (what
    /// `picket risk --workload` prints and the Risk pane shows).
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!("{}: {} of 100 ({})", self.subject, self.total, self.level)];
        for part in &self.parts {
            lines.push(String::new());
            lines.push(format!("{} {:.1} of {:.0}", part.name, part.points, part.max));
            if part.reasons.is_empty() {
                lines.push("  nothing".into());
            }
            lines.extend(part.reasons.iter().map(|r| format!("  {r}")));
        }
        for unknown in &self.unknown {
            lines.push(String::new());
            lines.push(format!("not known: {unknown}"));
        }
        lines
    }
}

/// Whether a finding's record links an exploit (Exploit-DB, Packet Storm, Metasploit, CISA's
/// Known Exploited Vulnerabilities catalog).
pub fn known_exploited(references: &[String]) -> bool {
    const MARKS: &[&str] =
        &["exploit-db.com", "packetstormsecurity", "metasploit", "known-exploited-vulnerabilities", "/exploits/"];
    references.iter().any(|r| {
        let r = r.to_ascii_lowercase();
        MARKS.iter().any(|m| r.contains(m))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vuln(id: &str, severity: Severity, has_fix: bool, known_exploited: bool, in_use: Option<bool>) -> VulnFact {
        let used_file = (in_use == Some(true)).then(|| "/usr/lib/x86_64-linux-gnu/libssl.so.3".to_string());
        VulnFact { id: id.into(), severity, package: "openssl".into(), has_fix, known_exploited, in_use, used_file }
    }

    fn facts() -> WorkloadFacts {
        WorkloadFacts {
            namespace: "shop".into(),
            kind: "Deployment".into(),
            name: "api".into(),
            images: vec!["registry.local/api:1".into()],
            scanned: true,
            ..WorkloadFacts::default()
        }
    }

    #[test]
    fn each_part_counts_and_is_explained() {
        let quiet = score(&facts());
        assert_eq!((quiet.total, quiet.level), (0, Severity::Unknown));
        assert!(quiet.unknown.is_empty());

        let mut risky = facts();
        risky.vulnerabilities = vec![
            vuln("CVE-1", Severity::Critical, true, true, None),
            vuln("CVE-2", Severity::Low, false, false, Some(false)),
        ];
        risky.exposure.host_network = true;
        risky.privileges.privileged = vec!["app".into()];
        risky.privileges.host_paths = vec!["/var/run/docker.sock".into()];
        risky.compliance = vec![CheckFact { id: "PSS-1".into(), title: "privileged".into(), severity: Severity::High }];
        risky.alerts = vec![AlertFact { rule: "crypto-pool-port".into(), severity: Severity::Critical, count: 3 }];
        let scored = score(&risky);
        let by_name = |n: &str| scored.parts.iter().find(|p| p.name == n).expect("a part").clone();
        let vulns = by_name("vulnerabilities");
        // 10 × 1.5 × 2 = 30 for the critical one, 0.5 × 0.25 for the unused low one.
        assert_eq!(vulns.reasons[0], "CVE-1 in openssl (critical, fix released, exploited): 30");
        assert_eq!(vulns.reasons[1], "CVE-2 in openssl (low, not in use): 0.1");
        assert!(vulns.points < VULNERABILITIES_MAX && vulns.points > 20.0, "{vulns:?}");
        assert_eq!(by_name("privileges").reasons[0], "host path /var/run/docker.sock: 15");
        assert_eq!(by_name("alerts").reasons, ["crypto-pool-port ×3 (critical): 10"]);
        assert!(scored.total >= 70 && scored.level == Severity::Critical, "{scored:?}");
        let sum: f64 = scored.parts.iter().map(|p| p.points).sum();
        assert_eq!(scored.total, sum.round() as u32);

        // More of a kind always adds, never past the part's ceiling.
        let mut more = risky.clone();
        more.vulnerabilities
            .extend((0..200).map(|i| vuln(&format!("CVE-X{i}"), Severity::Critical, true, true, Some(true))));
        let more = score(&more);
        let v = more.parts.iter().find(|p| p.name == "vulnerabilities").expect("part");
        assert!(v.points > vulns.points && v.points <= VULNERABILITIES_MAX);
        assert!(v.reasons.iter().any(|r| r.ends_with("(critical, fix released, exploited, in use: libssl.so.3): 45")));
        assert!(more.total <= 100);

        // Not scanned: said, not scored as clean.
        let mut unscanned = facts();
        unscanned.scanned = false;
        assert_eq!(score(&unscanned).unknown.len(), 1);
    }

    #[test]
    fn exploits_are_known_from_the_records_links() {
        assert!(known_exploited(&["https://www.exploit-db.com/exploits/51234".into()]));
        assert!(known_exploited(&["https://www.cisa.gov/known-exploited-vulnerabilities-catalog".into()]));
        assert!(!known_exploited(&["https://security-tracker.debian.org/tracker/CVE-2024-1".into()]));
    }
}
