//! SBOMs other tools wrote, read for `picket scan sbom FILE` (as Grype and Trivy scan them):
//! CycloneDX JSON (components, nested ones too), SPDX JSON (packages' purl references) and Syft
//! JSON (artifacts). Packages are taken from their package URLs, named the way picket's own
//! catalogers name them so the same advisories match; the distribution comes from the `distro`
//! qualifier of OS packages (or Syft's `distro`). Packages without a usable purl are counted in
//! a warning, never guessed.

use std::path::Path;
use std::str::FromStr;

use serde_json::Value;

use super::ScanError;
use crate::model::{Distro, Ecosystem, Package, SBOM_FORMAT_VERSION, Sbom, SbomSource, SourcePackage};

/// SBOM documents are read whole; larger than this is no SBOM a build makes.
const MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Nested CycloneDX components deeper than this are not followed.
const MAX_DEPTH: usize = 64;

/// Reads `path` as a CycloneDX, SPDX or Syft JSON document.
pub fn read(path: &Path) -> Result<Sbom, ScanError> {
    let what = path.display().to_string();
    let bytes = crate::input::read_limited(path, MAX_BYTES).map_err(|e| ScanError::io(&what, e))?;
    parse(&what, &bytes)
}

pub fn parse(what: &str, bytes: &[u8]) -> Result<Sbom, ScanError> {
    let format = |message: String| ScanError::Format { what: what.to_string(), message };
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format(format!("not JSON: {e}")))?;
    let (kind, purls, mut distro): (&str, Vec<Option<Entry>>, _) =
        if doc.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
            let mut purls = Vec::new();
            collect_cyclonedx(doc.get("components"), 0, &mut purls);
            ("cyclonedx", purls, None)
        } else if doc.get("spdxVersion").is_some() {
            let purls = array(&doc, "packages")
                .iter()
                .map(|p| {
                    array(p, "externalRefs")
                        .iter()
                        .filter(|r| r.get("referenceType").and_then(Value::as_str) == Some("purl"))
                        .find_map(|r| r.get("referenceLocator").and_then(Value::as_str))
                        .map(|purl| entry(purl, p))
                })
                .collect();
            ("spdx", purls, None)
        } else if doc.get("artifacts").is_some() {
            let purls = array(&doc, "artifacts")
                .iter()
                .map(|a| a.get("purl").and_then(Value::as_str).map(|p| entry(p, a)))
                .collect();
            let distro = doc.get("distro").and_then(|d| {
                let id = d.get("id")?.as_str()?.to_string();
                let version_id = d.get("versionID").and_then(Value::as_str).unwrap_or_default().to_string();
                let pretty_name = d.get("prettyName").and_then(Value::as_str).unwrap_or_default().to_string();
                (!id.is_empty()).then_some(Distro { id, version_id, pretty_name })
            });
            ("syft", purls, distro)
        } else {
            return Err(format("neither CycloneDX (bomFormat), SPDX (spdxVersion) nor Syft JSON (artifacts)".into()));
        };
    let mut packages = Vec::new();
    let mut unusable = 0usize;
    for purl in &purls {
        match purl.as_ref().and_then(|(purl, name)| package_of(purl, name.as_deref())) {
            Some((package, os)) => {
                if distro.is_none() {
                    distro = os;
                }
                packages.push(package);
            }
            None => unusable += 1,
        }
    }
    packages.sort_by(|a, b| (a.ecosystem, &a.name, &a.version).cmp(&(b.ecosystem, &b.name, &b.version)));
    packages.dedup_by(|a, b| a.ecosystem == b.ecosystem && a.name == b.name && a.version == b.version);
    let mut warnings = Vec::new();
    if unusable > 0 {
        warnings.push(format!("{unusable} entries have no package URL picket can match (skipped)"));
    }
    Ok(Sbom {
        format_version: SBOM_FORMAT_VERSION,
        source: SbomSource { kind: format!("sbom-{kind}"), name: what.to_string(), image: None },
        distro,
        packages,
        catalogers: vec![format!("{kind}-sbom@1")],
        warnings,
        secrets: Vec::new(),
    })
}

fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// A purl and the name the document gives its package (purls lowercase some names: PyPI's).
type Entry = (String, Option<String>);

fn entry(purl: &str, item: &Value) -> Entry {
    (purl.to_string(), item.get("name").and_then(Value::as_str).map(String::from))
}

/// Every component's purl (None: it has none), nested components too.
fn collect_cyclonedx(components: Option<&Value>, depth: usize, out: &mut Vec<Option<Entry>>) {
    if depth > MAX_DEPTH {
        return;
    }
    for component in components.and_then(Value::as_array).map_or(&[][..], Vec::as_slice) {
        let nested = component.get("components");
        // A component made only of others (an application) is not a package itself.
        if component.get("purl").is_some() || nested.is_none() {
            out.push(component.get("purl").and_then(Value::as_str).map(|p| entry(p, component)));
        }
        collect_cyclonedx(nested, depth + 1, out);
    }
}

/// The package a purl names, as picket's catalogers name it, and the distribution its
/// `distro` qualifier gives (OS packages).
fn package_of(text: &str, given_name: Option<&str>) -> Option<(Package, Option<Distro>)> {
    let purl = packageurl::PackageUrl::from_str(text).ok()?;
    let version = purl.version()?.to_string();
    let namespace = purl.namespace().unwrap_or_default();
    let name = purl.name();
    let qualifier = |key: &str| purl.qualifiers().iter().find(|(k, _)| k.as_ref() == key).map(|(_, v)| v.to_string());
    let joined = |separator: &str| {
        if namespace.is_empty() { name.to_string() } else { format!("{namespace}{separator}{name}") }
    };
    let (ecosystem, name) = match purl.ty() {
        "deb" if namespace.eq_ignore_ascii_case("ubuntu") => (Ecosystem::Ubuntu, name.to_string()),
        "deb" => (Ecosystem::Debian, name.to_string()),
        "apk" if namespace.eq_ignore_ascii_case("wolfi") => (Ecosystem::Wolfi, name.to_string()),
        "apk" => (Ecosystem::Alpine, name.to_string()),
        "rpm" => (Ecosystem::RedHat, name.to_string()),
        // The document's spelling (`Django`), where the purl's is its normalised form.
        "pypi" => {
            let spelled = given_name.filter(|given| pypi_normal(given) == pypi_normal(name));
            (Ecosystem::PyPI, spelled.unwrap_or(name).to_string())
        }
        "npm" => (Ecosystem::Npm, joined("/")),
        "cargo" => (Ecosystem::CratesIo, name.to_string()),
        "golang" => (Ecosystem::Go, joined("/")),
        "maven" => (Ecosystem::Maven, joined(":")),
        "gem" => (Ecosystem::RubyGems, name.to_string()),
        "composer" => (Ecosystem::Packagist, joined("/")),
        "nuget" => (Ecosystem::NuGet, name.to_string()),
        _ => return None,
    };
    let package = Package {
        source: ecosystem.is_os().then(|| SourcePackage {
            name: qualifier("upstream")
                .map_or_else(|| name.clone(), |u| u.split(['@', ' ']).next().unwrap_or(&u).to_string()),
            version: source_version(&version),
        }),
        name,
        version,
        ecosystem,
        purl: text.to_string(),
        licenses: Vec::new(),
        locations: Vec::new(),
        files: Vec::new(),
        cataloger: "sbom".into(),
    };
    if super::catalogers::implausible(&package).is_some() {
        return None;
    }
    let distro = qualifier("distro").and_then(|d| {
        // `debian-12`, `alpine-3.18.4`, `ubuntu-22.04`.
        let (id, version_id) = d.split_once('-')?;
        Some(Distro { id: id.to_string(), version_id: version_id.to_string(), pretty_name: String::new() })
    });
    Some((package, distro.filter(|_| ecosystem.is_os())))
}

fn pypi_normal(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// A Debian binary package's source version: its own, less a binNMU suffix (`+b8`).
fn source_version(version: &str) -> String {
    match version.rsplit_once("+b") {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base.to_string(),
        _ => version.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_become_packages_named_as_the_catalogers_name_them() {
        let (deb, distro) = package_of("pkg:deb/debian/bash@5.2.15-2%2Bb8?arch=amd64&distro=debian-12", None).unwrap();
        assert_eq!(
            (deb.ecosystem, deb.name.as_str(), deb.version.as_str()),
            (Ecosystem::Debian, "bash", "5.2.15-2+b8")
        );
        assert_eq!(deb.source.as_ref().map(|s| (s.name.as_str(), s.version.as_str())), Some(("bash", "5.2.15-2")));
        assert_eq!(distro.map(|d| (d.id, d.version_id)), Some(("debian".into(), "12".into())));
        let (sub, _) = package_of("pkg:deb/debian/libssl3@3.0.11-1?distro=debian-12&upstream=openssl", None).unwrap();
        assert_eq!(sub.source.map(|s| s.name), Some("openssl".into()));
        let (npm, _) = package_of("pkg:npm/%40babel/core@7.0.0", None).unwrap();
        assert_eq!(npm.name, "@babel/core");
        let (go, _) = package_of("pkg:golang/github.com/gin-gonic/gin@v1.6.0", None).unwrap();
        assert_eq!(go.name, "github.com/gin-gonic/gin");
        let (maven, _) = package_of("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", None).unwrap();
        assert_eq!(maven.name, "org.apache.logging.log4j:log4j-core");
        assert!(package_of("pkg:generic/thing@1", None).is_none());
        assert!(package_of("pkg:pypi/django", None).is_none(), "no version");
        assert!(package_of("not a purl", None).is_none());
    }

    #[test]
    fn documents_of_each_format_and_bad_ones() {
        let cyclonedx = br#"{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [
            {"name": "app", "components": [{"purl": "pkg:pypi/django@2.2"}]},
            {"purl": "pkg:npm/lodash@4.17.4"}, {"name": "no purl"}]}"#;
        let sbom = parse("bom.json", cyclonedx).unwrap();
        let names: Vec<&str> = sbom.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["django", "lodash"]);
        assert_eq!(sbom.warnings, ["1 entries have no package URL picket can match (skipped)"]);
        let spdx = br#"{"spdxVersion": "SPDX-2.3", "packages": [{"name": "x", "externalRefs": [
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:cargo/smallvec@0.6.9"}]}]}"#;
        assert_eq!(parse("s.json", spdx).unwrap().packages[0].ecosystem, Ecosystem::CratesIo);
        let syft = br#"{"artifacts": [{"purl": "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?upstream=zlib"}],
            "distro": {"id": "debian", "versionID": "12", "prettyName": "Debian 12"}}"#;
        let sbom = parse("syft.json", syft).unwrap();
        assert_eq!(sbom.distro.map(|d| d.version_id), Some("12".into()));
        for (bad, says) in [(&b"{"[..], "not JSON"), (&b"{\"x\": 1}"[..], "neither CycloneDX")] {
            let err = parse("bad.json", bad).unwrap_err().to_string();
            assert!(err.starts_with("bad.json: ") && err.contains(says), "{err}");
        }
    }
}
