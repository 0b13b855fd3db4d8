//! `picket scan dockerfile`: misconfiguration rules over a Dockerfile. The parser (`parse`)
//! follows BuildKit's syntax; the rules (`rules`) have stable ids `PKT-DF-NNN`, listed by
//! [`rules()`] and documented in docs/dockerfile.md.
//!
//! A rule is suppressed for one instruction by a comment directly above it:
//! `# picket:ignore=PKT-DF-003,PKT-DF-007`, or hadolint's `# hadolint ignore=DL3006` for the
//! rules that match a hadolint rule.

pub mod parse;
pub mod rules;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use crate::model::{Finding, FindingKind, Location};
pub use parse::{Dockerfile, Instruction, Keyword};
pub use rules::RuleInfo;

/// Dockerfiles larger than this are refused.
pub const MAX_DOCKERFILE_BYTES: u64 = 4 * 1024 * 1024;

const DATA_SOURCE: &str = "picket-dockerfile";
const EVIDENCE_CHARS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum DockerfileError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{name}: the file is over {limit} bytes, too large for a Dockerfile")]
    TooLarge { name: String, limit: u64 },
    #[error("{name}: not UTF-8 text")]
    NotText { name: String },
    #[error("{name}:{line}: {message}")]
    Syntax { name: String, line: u32, message: String },
}

/// Every rule, for documentation and listings.
pub fn rules() -> &'static [RuleInfo] {
    &rules::RULES
}

/// Reads and checks a Dockerfile.
pub fn check_file(path: &Path) -> Result<Vec<Finding>, DockerfileError> {
    let name = path.display().to_string();
    let io = |source| DockerfileError::Io { path: name.clone(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_DOCKERFILE_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_DOCKERFILE_BYTES {
        return Err(DockerfileError::TooLarge { name, limit: MAX_DOCKERFILE_BYTES });
    }
    let text = String::from_utf8(bytes).map_err(|_| DockerfileError::NotText { name: name.clone() })?;
    check_str(&name, &text)
}

/// Checks Dockerfile text; `name` is the path reported in findings and errors.
pub fn check_str(name: &str, text: &str) -> Result<Vec<Finding>, DockerfileError> {
    if text.len() as u64 > MAX_DOCKERFILE_BYTES {
        return Err(DockerfileError::TooLarge { name: name.to_string(), limit: MAX_DOCKERFILE_BYTES });
    }
    let dockerfile = Dockerfile::parse(text).map_err(|e| DockerfileError::Syntax {
        name: name.to_string(),
        line: e.line,
        message: e.message,
    })?;
    let mut suppressions: HashMap<usize, Vec<String>> = HashMap::new();
    let mut findings: Vec<Finding> = rules::check(&dockerfile)
        .into_iter()
        .filter_map(|hit| {
            let rule = rules::info(hit.id)?;
            let instruction = &dockerfile.instructions[hit.instruction];
            let ignored = suppressions.entry(hit.instruction).or_insert_with(|| suppressed_ids(instruction));
            if ignored.iter().any(|id| id == rule.id) {
                return None;
            }
            let mut finding = Finding::new(FindingKind::Misconfiguration, rule.id, rule.title, rule.severity);
            finding.description = match hit.detail {
                Some(detail) => format!("{} {detail}", rule.description),
                None => rule.description.to_string(),
            };
            finding.locations = vec![Location { layer: None, path: name.to_string() }];
            finding.line = Some(instruction.start_line);
            finding.evidence = Some(evidence(hit.evidence.as_deref().unwrap_or(&instruction.logical)));
            finding.remediation = Some(rule.fix.to_string());
            finding.data_source = DATA_SOURCE.to_string();
            Some(finding)
        })
        .collect();
    findings.sort_by(|a, b| (a.line, &a.id).cmp(&(b.line, &b.id)));
    findings.dedup_by(|a, b| a.line == b.line && a.id == b.id && a.description == b.description);
    Ok(findings)
}

/// One line, whitespace collapsed, at most `EVIDENCE_CHARS` characters.
fn evidence(text: &str) -> String {
    // Whitespace collapses, so a prefix of a few times the limit is enough.
    let prefix: String = text.chars().take(EVIDENCE_CHARS * 8).collect();
    let line = prefix.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(EVIDENCE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// The rule ids the comments directly above an instruction suppress.
fn suppressed_ids(instruction: &Instruction) -> Vec<String> {
    let mut ids = Vec::new();
    for comment in &instruction.comments {
        let lower = comment.to_ascii_lowercase();
        for marker in ["picket:ignore=", "hadolint ignore="] {
            let Some(at) = lower.find(marker) else { continue };
            for id in lower[at + marker.len()..].split([',', ' ', '\t']).filter(|id| !id.is_empty()) {
                let id = id.to_ascii_uppercase();
                let picket_ids = rules::RULES.iter().filter(|r| r.id == id || r.hadolint.contains(&id.as_str()));
                ids.extend(picket_ids.map(|r| r.id.to_string()));
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    fn ids(findings: &[Finding]) -> Vec<(u32, &str)> {
        findings.iter().map(|f| (f.line.unwrap_or(0), f.id.as_str())).collect()
    }

    #[test]
    fn findings_are_complete_and_sorted() {
        let text = "FROM node:latest\nUSER node\nHEALTHCHECK CMD true\nRUN cd /app\nMAINTAINER me\n";
        let findings = check_str("app/Dockerfile", text).unwrap();
        assert_eq!(ids(&findings), vec![(1, "PKT-DF-004"), (4, "PKT-DF-016"), (5, "PKT-DF-017")]);
        let f = &findings[0];
        assert_eq!(f.kind, FindingKind::Misconfiguration);
        assert_eq!(f.severity, Severity::Medium);
        assert_eq!(f.locations, vec![Location { layer: None, path: "app/Dockerfile".into() }]);
        assert_eq!(f.evidence.as_deref(), Some("FROM node:latest"));
        assert_eq!(f.data_source, "picket-dockerfile");
        assert!(f.remediation.as_deref().is_some_and(|r| r.contains("Pin")));
    }

    #[test]
    fn suppression_comments() {
        let text = "# picket:ignore=PKT-DF-004, PKT-DF-002\nFROM node:latest\n# hadolint ignore=DL3003,DL3059\nRUN cd /app\n\n# picket:ignore=PKT-DF-017\n\nMAINTAINER me\nHEALTHCHECK NONE\n";
        let findings = check_str("Dockerfile", text).unwrap();
        assert_eq!(ids(&findings), vec![(8, "PKT-DF-017")]);
    }

    #[test]
    fn evidence_is_one_line_and_bounded() {
        let long = "x".repeat(500);
        let text =
            format!("FROM a:1\nUSER app\nHEALTHCHECK NONE\nRUN cd /a \\\n  && echo {long}\nENV API_TOKEN=s3cr3t\n");
        let findings = check_str("Dockerfile", &text).unwrap();
        let evidence = findings[0].evidence.as_deref().unwrap();
        assert!(evidence.starts_with("RUN cd /a && echo xxx") && evidence.chars().count() == 201, "{evidence}");
        assert_eq!(findings[1].evidence.as_deref(), Some("ENV API_TOKEN=****"));
        assert!(findings.iter().all(|f| !f.evidence.as_deref().unwrap_or("").contains("s3cr3t")));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let err = check_str("dir/Dockerfile", "FROM a:1\nRUN <<EOF\necho\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "dir/Dockerfile:2: unterminated heredoc '<<EOF': no line 'EOF' before the end of the file"
        );
        let err = check_str("Dockerfile", "").unwrap_err();
        assert!(err.to_string().starts_with("Dockerfile:1: no FROM"), "{err}");
        let big = format!("FROM a:1\n{}", "#".repeat(MAX_DOCKERFILE_BYTES as usize));
        assert!(matches!(check_str("big", &big), Err(DockerfileError::TooLarge { .. })));
    }

    #[test]
    fn check_file_reads_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Dockerfile");
        std::fs::write(&path, "FROM a:1\nUSER app\nHEALTHCHECK NONE\n").unwrap();
        assert!(check_file(&path).unwrap().is_empty());
        std::fs::write(&path, vec![b'#'; MAX_DOCKERFILE_BYTES as usize + 1]).unwrap();
        assert!(check_file(&path).unwrap_err().to_string().contains("too large"));
        std::fs::write(&path, b"FROM a:1\nRUN echo \xff\n").unwrap();
        assert!(matches!(check_file(&path), Err(DockerfileError::NotText { .. })));
        assert!(matches!(check_file(&dir.path().join("missing")), Err(DockerfileError::Io { .. })));
    }

    #[test]
    fn truncated_and_odd_input_never_panics() {
        let text = "# escape=`\nARG B=\"x y\"\nFROM --platform=$P ${B:-a} AS é\nRUN <<-E sh -c 'a \"b' `\n  && cat <<<x $(curl `\n\tx | sh\n\tE\nENV K=\"v\\\" w\" PASS='q\nCOPY --from= [\"a\", \nCMD [\"ü\"]\nEXPOSE 1-x/\nWORKDIR\nUSER :\n";
        for (cut, _) in text.char_indices() {
            let _ = check_str("t", &text[..cut]);
        }
        for odd in [
            "FROM",
            "FROM a\nRUN",
            "FROM a\nRUN \\",
            "FROM a\nRUN <<",
            "FROM a\nRUN <<''",
            "FROM a\nADD",
            "\u{0}FROM a",
        ] {
            let _ = check_str("t", odd);
        }
    }

    #[test]
    fn large_inputs_stay_linear() {
        let mut text = String::from("ARG A=a:1\nFROM ${A} AS s0\n");
        for n in 1..20_000 {
            text.push_str(&format!(
                "# picket:ignore=PKT-DF-999\nFROM s{} AS s{n}\nCOPY --from=s0 /a /b\nRUN pip install x\n",
                n - 1
            ));
        }
        let keys: Vec<String> = (0..20_000).map(|n| format!("K{n}_TOKEN=v")).collect();
        text.push_str(&"# comment\n".repeat(20_000));
        text.push_str(&format!("ENV {}\n", keys.join(" ")));
        let start = std::time::Instant::now();
        let findings = check_str("big", &text).unwrap();
        assert!(findings.len() > 40_000);
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "{:?}", start.elapsed());
    }

    #[test]
    fn rules_are_listed() {
        assert_eq!(rules().len(), 25);
        assert!(rules().iter().any(|r| r.id == "PKT-DF-013" && r.severity == Severity::High));
    }
}
