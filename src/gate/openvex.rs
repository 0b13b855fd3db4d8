//! OpenVEX documents (https://github.com/openvex/spec): statements that a vulnerability does
//! not affect (or is fixed in) a product. `not_affected` and `fixed` statements accept the
//! matching findings; `affected` and `under_investigation` change nothing.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::Finding;
use crate::report::findings::Suppressed;

#[derive(Debug, Deserialize)]
struct Document {
    #[serde(rename = "@context")]
    context: String,
    #[serde(rename = "@id", default)]
    id: Option<String>,
    #[serde(default)]
    statements: Vec<StatementJson>,
}

#[derive(Debug, Deserialize)]
struct StatementJson {
    vulnerability: VulnerabilityJson,
    #[serde(default)]
    products: Vec<ProductJson>,
    status: String,
    #[serde(default)]
    justification: Option<String>,
    #[serde(default)]
    impact_statement: Option<String>,
    #[serde(default)]
    status_notes: Option<String>,
}

/// v0.2 writes `{"name": "CVE-…", "aliases": […]}`; v0.0.1 a bare string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum VulnerabilityJson {
    Name(String),
    Object {
        name: String,
        #[serde(default)]
        aliases: Vec<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ProductJson {
    Id(String),
    Object {
        #[serde(rename = "@id", default)]
        id: Option<String>,
        #[serde(default)]
        subcomponents: Vec<ProductJson>,
    },
}

#[derive(Debug, Clone)]
struct Statement {
    ids: Vec<String>,
    /// Package URLs the statement is scoped to; empty means every package.
    purls: Vec<String>,
    accepts: bool,
    reason: String,
}

#[derive(Debug, Clone)]
pub struct VexDocument {
    pub path: PathBuf,
    pub id: String,
    statements: Vec<Statement>,
}

impl ProductJson {
    fn collect(&self, out: &mut Vec<String>) {
        match self {
            Self::Id(id) => out.push(id.clone()),
            Self::Object { id, subcomponents } => {
                // An image-level product with subcomponents scopes to those; without, to all.
                if subcomponents.is_empty() {
                    out.extend(id.iter().cloned());
                }
                for sub in subcomponents {
                    sub.collect(out);
                }
            }
        }
    }
}

impl VexDocument {
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(path, &bytes)
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, String> {
        let doc: Document =
            serde_json::from_slice(bytes).map_err(|e| format!("{}: not an OpenVEX document: {e}", path.display()))?;
        if !doc.context.starts_with("https://openvex.dev/ns") {
            return Err(format!("{}: @context '{}' is not OpenVEX", path.display(), doc.context));
        }
        let mut statements = Vec::new();
        for (index, raw) in doc.statements.into_iter().enumerate() {
            let ids = match raw.vulnerability {
                VulnerabilityJson::Name(name) => vec![name],
                VulnerabilityJson::Object { name, aliases } => std::iter::once(name).chain(aliases).collect(),
            };
            let accepts = match raw.status.as_str() {
                "not_affected" | "fixed" => true,
                "affected" | "under_investigation" => false,
                other => {
                    return Err(format!("{}: statement {}: unknown status '{other}'", path.display(), index + 1));
                }
            };
            if raw.status == "not_affected" && raw.justification.is_none() && raw.impact_statement.is_none() {
                return Err(format!(
                    "{}: statement {} ({}): not_affected needs a justification or an impact_statement",
                    path.display(),
                    index + 1,
                    ids.join(", ")
                ));
            }
            let mut purls = Vec::new();
            for product in &raw.products {
                product.collect(&mut purls);
            }
            purls.retain(|p| !p.starts_with("pkg:oci/"));
            let reason = [Some(raw.status.clone()), raw.justification, raw.impact_statement, raw.status_notes]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            statements.push(Statement { ids, purls, accepts, reason });
        }
        Ok(Self { path: path.to_path_buf(), id: doc.id.unwrap_or_else(|| path.display().to_string()), statements })
    }
}

/// `pkg:pypi/urllib3@1.26.4?x=y` → (`pkg:pypi/urllib3`, `1.26.4`).
fn purl_parts(purl: &str) -> (String, Option<String>) {
    let base = purl.split(['?', '#']).next().unwrap_or(purl);
    match base.rsplit_once('@') {
        Some((name, version)) if !name.ends_with('/') => (name.to_ascii_lowercase(), Some(version.to_string())),
        _ => (base.to_ascii_lowercase(), None),
    }
}

fn purl_matches(statement: &str, package: &str) -> bool {
    let (s_name, s_version) = purl_parts(statement);
    let (p_name, p_version) = purl_parts(package);
    s_name == p_name && (s_version.is_none() || s_version == p_version)
}

impl super::Exceptions for VexDocument {
    fn accepts(&self, finding: &Finding) -> Option<Suppressed> {
        // The last statement about a vulnerability and product wins, as documents amend themselves.
        let statement = self.statements.iter().rev().find(|s| {
            s.ids.iter().any(|id| finding.ids().any(|f| f.eq_ignore_ascii_case(id)))
                && (s.purls.is_empty()
                    || finding.package.as_ref().is_some_and(|p| s.purls.iter().any(|purl| purl_matches(purl, &p.purl))))
        })?;
        statement.accepts.then(|| Suppressed {
            finding: finding.clone(),
            reason: statement.reason.clone(),
            by: format!("openvex:{}", self.id),
            expires: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::Exceptions as _;
    use crate::model::{Ecosystem, FindingKind, FindingPackage, Severity};

    fn finding(id: &str, purl: &str) -> Finding {
        let mut f = Finding::new(FindingKind::Vulnerability, id, "t", Severity::High);
        f.aliases = vec!["GHSA-aaaa".into()];
        f.package = Some(FindingPackage {
            name: "urllib3".into(),
            version: "1.26.4".into(),
            ecosystem: Ecosystem::PyPI,
            purl: purl.into(),
            source_name: None,
        });
        f
    }

    const DOC: &str = r#"{
      "@context": "https://openvex.dev/ns/v0.2.0",
      "@id": "https://example.com/vex/1",
      "author": "sec team",
      "timestamp": "2026-11-01T00:00:00Z",
      "statements": [
        {"vulnerability": {"name": "CVE-2023-43804"},
         "products": [{"@id": "pkg:oci/app", "subcomponents": [{"@id": "pkg:pypi/urllib3@1.26.4"}]}],
         "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"},
        {"vulnerability": "GHSA-aaaa", "products": ["pkg:pypi/requests"], "status": "fixed"},
        {"vulnerability": {"name": "CVE-2024-1"}, "status": "affected", "action_statement": "upgrade"}
      ]}"#;

    #[test]
    fn not_affected_and_fixed_accept_scoped_findings() {
        let vex = VexDocument::parse(Path::new("app.vex.json"), DOC.as_bytes()).unwrap();
        let hit = vex.accepts(&finding("CVE-2023-43804", "pkg:pypi/urllib3@1.26.4")).unwrap();
        assert_eq!(hit.by, "openvex:https://example.com/vex/1");
        assert!(hit.reason.contains("vulnerable_code_not_in_execute_path"));
        assert!(vex.accepts(&finding("CVE-2023-43804", "pkg:pypi/urllib3@2.0.0")).is_none(), "other version");
        assert!(vex.accepts(&finding("CVE-2024-1", "pkg:pypi/urllib3@1.26.4")).is_none(), "affected accepts nothing");
        // GHSA-aaaa is fixed for requests only
        assert!(vex.accepts(&finding("CVE-9", "pkg:pypi/urllib3@1.26.4")).is_none());
        assert!(vex.accepts(&finding("CVE-9", "pkg:pypi/requests@2.0")).is_some());
    }

    #[test]
    fn malformed_documents_are_refused_with_the_reason() {
        let err = VexDocument::parse(Path::new("v.json"), b"{\"@context\": \"x\", \"statements\": []}").unwrap_err();
        assert!(err.contains("v.json") && err.contains("not OpenVEX"), "{err}");
        let doc = br#"{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [
            {"vulnerability": {"name": "CVE-1"}, "status": "not_affected"}]}"#;
        let err = VexDocument::parse(Path::new("v.json"), doc).unwrap_err();
        assert!(err.contains("needs a justification"), "{err}");
        let doc = br#"{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [
            {"vulnerability": {"name": "CVE-1"}, "status": "maybe"}]}"#;
        assert!(VexDocument::parse(Path::new("v.json"), doc).unwrap_err().contains("unknown status 'maybe'"));
    }
}
