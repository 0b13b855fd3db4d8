//! OpenVEX documents (https://github.com/openvex/spec): statements that a vulnerability does
//! not affect (or is fixed in) a product. `not_affected` and `fixed` statements accept the
//! matching findings; `affected` and `under_investigation` change nothing.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::gate::{Basis, Suppressed};
use crate::model::Finding;
use crate::oci::ImageMeta;

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
        identifiers: IdentifiersJson,
        #[serde(default)]
        subcomponents: Vec<ProductJson>,
    },
}

#[derive(Debug, Default, Deserialize)]
struct IdentifiersJson {
    #[serde(default)]
    purl: Option<String>,
}

/// What one product of a statement covers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// Findings in this package (purl without a version: every version), in any image, or
    /// only in the image with one of `image` digests when the product is an image with a
    /// digest listing the package as a subcomponent.
    Package { purl: String, image: Vec<String> },
    /// Every finding of the scanned image, when its digest is one of these.
    Image(Vec<String>),
}

#[derive(Debug, Clone)]
struct Statement {
    ids: Vec<String>,
    /// The products the statement covers; never empty (a statement whose products picket
    /// cannot use is dropped).
    scopes: Vec<Scope>,
    accepts: bool,
    status: String,
    justification: Option<String>,
    reason: String,
}

#[derive(Debug, Clone)]
pub struct VexDocument {
    pub path: PathBuf,
    pub id: String,
    statements: Vec<Statement>,
}

impl ProductJson {
    /// The package URLs naming this component: its `@id` and `identifiers.purl`.
    fn purls(&self) -> Vec<String> {
        let candidates: Vec<&String> = match self {
            Self::Id(id) => vec![id],
            Self::Object { id, identifiers, .. } => id.iter().chain(identifiers.purl.iter()).collect(),
        };
        let mut purls: Vec<String> =
            candidates.into_iter().filter(|p| p.starts_with("pkg:")).map(|p| p.trim().to_string()).collect();
        purls.dedup();
        purls
    }

    fn subcomponents(&self) -> &[ProductJson] {
        match self {
            Self::Id(_) => &[],
            Self::Object { subcomponents, .. } => subcomponents,
        }
    }

    /// Subcomponents (at any depth) as package scopes bound to `image` digests.
    fn collect_subcomponents(&self, image: &[String], out: &mut Vec<Scope>) {
        for sub in self.subcomponents() {
            for purl in sub.purls() {
                if !purl.starts_with("pkg:oci/") {
                    out.push(Scope::Package { purl, image: image.to_vec() });
                }
            }
            sub.collect_subcomponents(image, out);
        }
    }

    /// What this product covers. An image (`pkg:oci/…`) covers the whole image only with a
    /// digest; with subcomponents it covers those packages (in that image when it has a
    /// digest). Identifiers that are not package URLs (CPEs, URLs) cover nothing.
    fn scopes(&self, out: &mut Vec<Scope>) {
        let purls = self.purls();
        let digests: Vec<String> =
            purls.iter().filter(|p| p.starts_with("pkg:oci/")).filter_map(|p| oci_digest(p)).collect();
        let is_image = purls.iter().any(|p| p.starts_with("pkg:oci/"));
        if !self.subcomponents().is_empty() {
            // An image named without a digest cannot be told apart from another image: its
            // subcomponents are matched wherever they are, as before.
            self.collect_subcomponents(&digests, out);
            return;
        }
        if is_image {
            if !digests.is_empty() {
                out.push(Scope::Image(digests));
            }
            return;
        }
        out.extend(purls.into_iter().map(|purl| Scope::Package { purl, image: Vec::new() }));
    }
}

/// The digest in `pkg:oci/name@sha256%3A…`, as `sha256:…` in lower case.
fn oci_digest(purl: &str) -> Option<String> {
    let base = purl.split(['?', '#']).next().unwrap_or(purl);
    let (_, version) = base.rsplit_once('@')?;
    let decoded = version.replace("%3A", ":").replace("%3a", ":").to_ascii_lowercase();
    let (algorithm, hex) = decoded.split_once(':')?;
    (!algorithm.is_empty() && !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(decoded)
}

/// The digests identifying a scanned image: its manifest digest, the image index it was chosen
/// from, and its config digest (the image id, all a Docker archive has).
fn image_digests(image: Option<&ImageMeta>) -> Vec<String> {
    image
        .map(|i| {
            i.manifest_digest
                .iter()
                .chain(i.index_digest.iter())
                .chain(std::iter::once(&i.config_digest))
                .map(|d| d.to_ascii_lowercase())
        })
        .into_iter()
        .flatten()
        .collect()
}

impl VexDocument {
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = crate::input::read_limited(path, crate::input::MAX_DOCUMENT)
            .map_err(|e| format!("{}: {e}", path.display()))?;
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
            // The spec lets products cascade from an encapsulating document (an attestation's
            // subject); a standalone document without them has an incomplete statement.
            if raw.products.is_empty() {
                return Err(format!(
                    "{}: statement {} ({}): no products (a statement must name the products it applies to)",
                    path.display(),
                    index + 1,
                    ids.join(", ")
                ));
            }
            let mut scopes = Vec::new();
            for product in &raw.products {
                product.scopes(&mut scopes);
            }
            if scopes.is_empty() {
                // Nothing picket can match (CPEs only, an image without a digest): the
                // statement matches no finding.
                continue;
            }
            let justification = raw.justification.clone();
            let reason = [Some(raw.status.clone()), raw.justification, raw.impact_statement, raw.status_notes]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            statements.push(Statement { ids, scopes, accepts, status: raw.status, justification, reason });
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

impl Scope {
    fn matches(&self, finding: &Finding, digests: &[String]) -> bool {
        match self {
            Self::Package { purl, image } => {
                (image.is_empty() || image.iter().any(|d| digests.contains(d)))
                    && finding.package.as_ref().is_some_and(|p| purl_matches(purl, &p.purl))
            }
            Self::Image(image) => image.iter().any(|d| digests.contains(d)),
        }
    }
}

impl super::Exceptions for VexDocument {
    fn accepts(&self, finding: &Finding, image: Option<&ImageMeta>) -> Option<Suppressed> {
        let digests = image_digests(image);
        // The last statement about a vulnerability and product wins, as documents amend themselves.
        let statement = self.statements.iter().rev().find(|s| {
            s.ids.iter().any(|id| finding.ids().any(|f| f.eq_ignore_ascii_case(id)))
                && s.scopes.iter().any(|scope| scope.matches(finding, &digests))
        })?;
        statement.accepts.then(|| Suppressed {
            finding: finding.clone(),
            reason: statement.reason.clone(),
            by: format!("openvex:{}", self.id),
            expires: None,
            basis: Basis::OpenVex { status: statement.status.clone(), justification: statement.justification.clone() },
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
        {"vulnerability": {"name": "CVE-2024-1"}, "products": ["pkg:pypi/urllib3"], "status": "affected",
         "action_statement": "upgrade"}
      ]}"#;

    #[test]
    fn not_affected_and_fixed_accept_scoped_findings() {
        let vex = VexDocument::parse(Path::new("app.vex.json"), DOC.as_bytes()).unwrap();
        let hit = vex.accepts(&finding("CVE-2023-43804", "pkg:pypi/urllib3@1.26.4"), None).unwrap();
        assert_eq!(hit.by, "openvex:https://example.com/vex/1");
        assert!(hit.reason.contains("vulnerable_code_not_in_execute_path"));
        assert_eq!(
            hit.basis,
            Basis::OpenVex {
                status: "not_affected".into(),
                justification: Some("vulnerable_code_not_in_execute_path".into())
            }
        );
        assert!(vex.accepts(&finding("CVE-2023-43804", "pkg:pypi/urllib3@2.0.0"), None).is_none(), "other version");
        assert!(
            vex.accepts(&finding("CVE-2024-1", "pkg:pypi/urllib3@1.26.4"), None).is_none(),
            "affected accepts nothing"
        );
        // GHSA-aaaa is fixed for requests only
        assert!(vex.accepts(&finding("CVE-9", "pkg:pypi/urllib3@1.26.4"), None).is_none());
        assert!(vex.accepts(&finding("CVE-9", "pkg:pypi/requests@2.0"), None).is_some());
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

    const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const OTHER: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn image(digest: &str) -> ImageMeta {
        ImageMeta {
            name: "app".into(),
            manifest_digest: Some(digest.into()),
            index_digest: None,
            config_digest: "sha256:cccc".into(),
            os: "linux".into(),
            architecture: "amd64".into(),
            tags: Vec::new(),
            layers: Vec::new(),
        }
    }

    fn doc(products: &str) -> VexDocument {
        let text = format!(
            r#"{{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [
                {{"vulnerability": {{"name": "CVE-1"}}, "products": {products}, "status": "fixed"}}]}}"#
        );
        VexDocument::parse(Path::new("v.json"), text.as_bytes()).unwrap()
    }

    #[test]
    fn products_named_by_identifiers_purl_are_scoped_to_that_package() {
        let vex = doc(r#"[{"identifiers": {"purl": "pkg:pypi/urllib3@1.26.4"}}]"#);
        let img = image(DIGEST);
        assert!(vex.accepts(&finding("CVE-1", "pkg:pypi/urllib3@1.26.4"), Some(&img)).is_some());
        assert!(vex.accepts(&finding("CVE-1", "pkg:pypi/requests@2.0"), Some(&img)).is_none(), "other package");
        let vex = doc(r#"[{"@id": "https://example.com/app", "subcomponents": [
            {"identifiers": {"purl": "pkg:pypi/urllib3"}}]}]"#);
        assert!(vex.accepts(&finding("CVE-1", "pkg:pypi/urllib3@1.26.4"), None).is_some());
        assert!(vex.accepts(&finding("CVE-1", "pkg:pypi/requests@2.0"), None).is_none());
    }

    #[test]
    fn unusable_products_match_nothing() {
        for products in [
            r#"[{"identifiers": {"cpe23": "cpe:2.3:a:x:y:1:*:*:*:*:*:*:*"}}]"#,
            r#"[{"@id": "https://example.com/product"}]"#,
            r#"["pkg:oci/app"]"#,
            r#"[{"@id": "pkg:oci/app?repository_url=ghcr.io/x/app"}]"#,
        ] {
            let vex = doc(products);
            let img = image(DIGEST);
            assert!(vex.accepts(&finding("CVE-1", "pkg:pypi/urllib3@1.26.4"), Some(&img)).is_none(), "{products}");
            assert!(vex.accepts(&finding("CVE-1", "pkg:pypi/urllib3@1.26.4"), None).is_none(), "{products}");
        }
    }

    #[test]
    fn an_image_product_covers_only_the_image_with_its_digest() {
        let encoded = DIGEST.replace(':', "%3A");
        let vex = doc(&format!(r#"[{{"@id": "pkg:oci/app@{encoded}?repository_url=ghcr.io/x/app"}}]"#));
        let f = finding("CVE-1", "pkg:pypi/urllib3@1.26.4");
        assert!(vex.accepts(&f, Some(&image(DIGEST))).is_some());
        assert!(vex.accepts(&f, Some(&image(OTHER))).is_none(), "another image");
        assert!(vex.accepts(&f, None).is_none(), "not an image scan");
        // A platform image of a multi-platform index: the index digest names it too.
        let platform = ImageMeta { index_digest: Some(DIGEST.into()), ..image(OTHER) };
        assert!(vex.accepts(&f, Some(&platform)).is_some(), "named by its index digest");
        // Subcomponents of an image with a digest apply in that image only.
        let vex =
            doc(&format!(r#"[{{"@id": "pkg:oci/app@{DIGEST}", "subcomponents": [{{"@id": "pkg:pypi/urllib3"}}]}}]"#));
        assert!(vex.accepts(&f, Some(&image(DIGEST))).is_some());
        assert!(vex.accepts(&f, Some(&image(OTHER))).is_none());
        assert!(vex.accepts(&finding("CVE-1", "pkg:pypi/requests@1"), Some(&image(DIGEST))).is_none());
    }

    #[test]
    fn statements_without_products_are_refused() {
        for products in ["", r#""products": [], "#] {
            let text = format!(
                r#"{{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [
                    {{"vulnerability": {{"name": "CVE-0"}}, "products": ["pkg:pypi/a"], "status": "fixed"}},
                    {{"vulnerability": {{"name": "CVE-1"}}, {products}"status": "fixed"}}]}}"#
            );
            let err = VexDocument::parse(Path::new("v.json"), text.as_bytes()).unwrap_err();
            assert!(err.contains("v.json") && err.contains("statement 2") && err.contains("no products"), "{err}");
        }
    }
}
