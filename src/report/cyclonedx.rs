//! CycloneDX 1.5 JSON (ECMA-424): the image (or directory) as the metadata component, the OS
//! as an `operating-system` component, every package as a `library` with its purl, licences and
//! locations. A findings scan adds `vulnerabilities[]` (vulnerabilities and advisories, each
//! pointing at the components it affects); secrets and misconfigurations are not about a
//! component and stay out.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::findings::reference_url;
use super::{DocumentInfo, content_uuid};
use crate::gate::{Basis, Suppressed};
use crate::model::Sbom;
use crate::model::{Finding, FindingKind, FindingPackage, FixState, Severity};
use crate::scan::Scan;

/// The bom-ref of the package at `index`: purls repeat when one package is installed in several
/// places, the index keeps refs unique.
fn package_ref(purl: &str, index: usize) -> String {
    format!("{purl}#{index}")
}

pub fn document(sbom: &Sbom, info: &DocumentInfo) -> Value {
    let subject = match &sbom.source.image {
        Some(image) => json!({
            "bom-ref": image.store_key(),
            "type": "container",
            "name": image.name,
            "version": image.store_key(),
        }),
        None => json!({ "bom-ref": format!("dir:{}", sbom.source.name), "type": "file", "name": sbom.source.name }),
    };
    let mut components: Vec<Value> = Vec::new();
    if let Some(distro) = &sbom.distro {
        components.push(json!({
            "bom-ref": format!("os:{}@{}", distro.id, distro.version_id),
            "type": "operating-system",
            "name": distro.id,
            "version": distro.version_id,
            "description": distro.pretty_name,
        }));
    }
    for (index, package) in sbom.packages.iter().enumerate() {
        let mut properties = vec![
            json!({ "name": "picket:cataloger", "value": package.cataloger }),
            json!({ "name": "picket:ecosystem", "value": package.ecosystem.osv_name() }),
        ];
        for (i, location) in package.locations.iter().enumerate() {
            properties.push(json!({ "name": format!("picket:location:{i}:path"), "value": location.path }));
            if let Some(layer) = &location.layer {
                properties.push(json!({ "name": format!("picket:location:{i}:layerID"), "value": layer }));
            }
        }
        if let Some(source) = &package.source {
            properties.push(json!({ "name": "picket:source:name", "value": source.name }));
            properties.push(json!({ "name": "picket:source:version", "value": source.version }));
        }
        let mut component = json!({
            "bom-ref": package_ref(&package.purl, index),
            "type": "library",
            "name": package.name,
            "version": package.version,
            "purl": package.purl,
            "properties": properties,
        });
        if !package.licenses.is_empty() {
            component["licenses"] = package.licenses.iter().map(|l| json!({ "license": { "name": l } })).collect();
        }
        components.push(component);
    }
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", content_uuid(&format!("{}{}", sbom.store_key(), info.created))),
        "version": 1,
        "metadata": {
            "timestamp": info.created,
            "tools": { "components": [ { "type": "application", "author": "picket", "name": "picket", "version": info.tool_version } ] },
            "component": subject,
        },
        "components": components,
    })
}

/// The scan's SBOM (or an empty one for a Dockerfile scan) with the findings as
/// `vulnerabilities[]`. A finding's package that the SBOM does not list is added as a component,
/// so that every `affects[].ref` resolves.
pub fn findings_document(report: &Scan, info: &DocumentInfo) -> Value {
    let inventory = report.sbom.clone().unwrap_or_else(|| Sbom {
        format_version: 1,
        source: report.source.clone(),
        distro: report.distro.clone(),
        packages: Vec::new(),
        catalogers: Vec::new(),
        warnings: Vec::new(),
        secrets: Vec::new(),
    });
    let mut doc = document(&inventory, info);
    doc["serialNumber"] =
        json!(format!("urn:uuid:{}", content_uuid(&format!("{}{}findings", inventory.store_key(), info.created))));

    let mut by_purl: HashMap<&str, Vec<String>> = HashMap::new();
    for (index, package) in inventory.packages.iter().enumerate() {
        by_purl.entry(package.purl.as_str()).or_default().push(package_ref(&package.purl, index));
    }
    let mut extra: Vec<Value> = Vec::new();
    let mut vulnerabilities: Vec<Value> = Vec::new();
    let entries =
        report.findings.iter().map(|f| (f, None)).chain(report.suppressed.iter().map(|s| (&s.finding, Some(s))));
    for (finding, suppressed) in entries {
        if !matches!(finding.kind, FindingKind::Vulnerability | FindingKind::Advisory) {
            continue;
        }
        let mut affects = Vec::new();
        if let Some(package) = &finding.package {
            let refs = by_purl.entry(package.purl.as_str()).or_insert_with(|| {
                let bom_ref = package_ref(&package.purl, inventory.packages.len() + extra.len());
                extra.push(extra_component(package, &bom_ref));
                vec![bom_ref]
            });
            for bom_ref in refs.iter() {
                affects.push(
                    json!({ "ref": bom_ref, "versions": [{ "version": package.version, "status": "affected" }] }),
                );
            }
        }
        vulnerabilities.push(vulnerability(finding, suppressed, affects));
    }
    if let Some(components) = doc["components"].as_array_mut() {
        components.extend(extra);
    }
    doc["vulnerabilities"] = json!(vulnerabilities);
    doc
}

fn extra_component(package: &FindingPackage, bom_ref: &str) -> Value {
    json!({
        "bom-ref": bom_ref,
        "type": "library",
        "name": package.name,
        "version": package.version,
        "purl": package.purl,
        "properties": [{ "name": "picket:ecosystem", "value": package.ecosystem.osv_name() }],
    })
}

fn vulnerability(finding: &Finding, suppressed: Option<&Suppressed>, affects: Vec<Value>) -> Value {
    let mut source = json!({ "name": finding.data_source });
    let url = reference_url(finding);
    if let Some(url) = &url {
        source["url"] = json!(url);
    }
    let mut v = json!({
        "id": finding.id,
        "source": source,
        "ratings": ratings(finding),
        "description": finding.title,
        "affects": affects,
        "properties": [
            { "name": "picket:kind", "value": finding.kind.as_str() },
            { "name": "picket:fixState", "value": fix_state(finding.fix_state) },
        ],
    });
    if !finding.description.is_empty() {
        v["detail"] = json!(finding.description);
    }
    if let Some(recommendation) = recommendation(finding) {
        v["recommendation"] = json!(recommendation);
    }
    if !finding.aliases.is_empty() {
        v["references"] = finding
            .aliases
            .iter()
            .map(|alias| json!({ "id": alias, "source": { "name": alias_source(alias) } }))
            .collect();
    }
    let advisories: Vec<&String> =
        if finding.references.is_empty() { url.iter().collect() } else { finding.references.iter().collect() };
    if !advisories.is_empty() {
        v["advisories"] = advisories.iter().map(|url| json!({ "url": url })).collect();
    }
    if let Some(s) = suppressed {
        v["analysis"] = analysis(s);
    }
    v
}

fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Unknown => "unknown",
    }
}

/// The CVSS rating with its own qualitative severity, and picket's severity apart when the
/// source rated it differently (a distribution's own rating).
fn ratings(finding: &Finding) -> Vec<Value> {
    let source = json!({ "name": finding.data_source });
    let mut ratings = Vec::new();
    if let Some(cvss) = &finding.cvss {
        let method = match cvss.version.as_str() {
            "2.0" => "CVSSv2",
            "3.0" => "CVSSv3",
            "3.1" => "CVSSv31",
            "4.0" => "CVSSv4",
            _ => "other",
        };
        let rated = Severity::from_cvss_score(cvss.score);
        ratings.push(json!({
            "source": source,
            "score": cvss.score,
            "severity": severity(rated),
            "method": method,
            "vector": cvss.vector,
        }));
        if rated == finding.severity {
            return ratings;
        }
    }
    ratings.push(json!({ "source": source, "severity": severity(finding.severity), "method": "other" }));
    ratings
}

fn fix_state(state: FixState) -> &'static str {
    match state {
        FixState::Fixed => "fixed",
        FixState::NotFixed => "not-fixed",
        FixState::WontFix => "wont-fix",
        FixState::Unknown => "unknown",
    }
}

fn recommendation(finding: &Finding) -> Option<String> {
    if let Some(remediation) = &finding.remediation {
        return Some(remediation.clone());
    }
    let package = finding.package.as_ref()?;
    (!finding.fixed_versions.is_empty())
        .then(|| format!("Upgrade {} to {}.", package.name, finding.fixed_versions.join(" or ")))
}

fn alias_source(alias: &str) -> &'static str {
    match alias.split('-').next().unwrap_or_default() {
        "CVE" => "NVD",
        "GHSA" => "GitHub",
        "RUSTSEC" => "RustSec",
        "PYSEC" => "PyPA",
        "GO" => "Go",
        _ => "OSV",
    }
}

/// VEX (OpenVEX, CSAF) justifications and their CycloneDX equivalents.
const JUSTIFICATIONS: &[(&str, &str)] = &[
    ("component_not_present", "code_not_present"),
    ("vulnerable_code_not_present", "code_not_present"),
    ("code_not_present", "code_not_present"),
    ("vulnerable_code_not_in_execute_path", "code_not_reachable"),
    ("code_not_reachable", "code_not_reachable"),
    ("vulnerable_code_cannot_be_controlled_by_adversary", "protected_by_mitigating_control"),
    ("inline_mitigations_already_exist", "protected_by_mitigating_control"),
    ("requires_configuration", "requires_configuration"),
    ("requires_dependency", "requires_dependency"),
    ("requires_environment", "requires_environment"),
    ("protected_by_compiler", "protected_by_compiler"),
    ("protected_at_runtime", "protected_at_runtime"),
    ("protected_at_perimeter", "protected_at_perimeter"),
    ("protected_by_mitigating_control", "protected_by_mitigating_control"),
];

fn cyclonedx_justification(label: &str) -> Option<&'static str> {
    JUSTIFICATIONS.iter().find(|(token, _)| token.eq_ignore_ascii_case(label)).map(|(_, j)| *j)
}

/// An exception as CycloneDX impact analysis, from what accepted the finding:
/// - an OpenVEX `fixed` statement: `resolved`; `not_affected`: `not_affected`, with its
///   justification mapped to CycloneDX's;
/// - a `.picketignore` entry: an accepted risk (`exploitable`, response `will_not_fix`), unless
///   its reason starts with a label (`false_positive`, or a VEX or CycloneDX justification,
///   followed by `:`, a space or nothing), which gives `false_positive` or `not_affected`.
///
/// The wording of a reason is never read otherwise.
fn analysis(suppressed: &Suppressed) -> Value {
    let mut analysis = json!({ "detail": suppressed.explanation() });
    let state = match &suppressed.basis {
        Basis::OpenVex { status, .. } if status == "fixed" => "resolved",
        Basis::OpenVex { justification, .. } => {
            if let Some(justification) = justification.as_deref().and_then(cyclonedx_justification) {
                analysis["justification"] = json!(justification);
            }
            "not_affected"
        }
        Basis::IgnoreFile => {
            let label = suppressed.reason.trim_start().split(|c: char| c == ':' || c.is_whitespace()).next();
            match label {
                Some(label) if label.eq_ignore_ascii_case("false_positive") => "false_positive",
                Some(label) if let Some(justification) = cyclonedx_justification(label) => {
                    analysis["justification"] = json!(justification);
                    "not_affected"
                }
                _ => {
                    analysis["response"] = json!(["will_not_fix"]);
                    "exploitable"
                }
            }
        }
    };
    analysis["state"] = json!(state);
    analysis
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyclonedx_document() {
        let info = DocumentInfo { created: "2026-11-24T03:00:00Z".into(), tool_version: "0.1.0" };
        let doc = document(&super::super::fixtures::sbom(), &info);
        insta::with_settings!({ snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"), prepend_module_to_snapshot => false }, {
            insta::assert_json_snapshot!("sbom_cyclonedx", doc);
        });
        assert_eq!(doc["components"].as_array().map(Vec::len), Some(3));
        assert_eq!(doc["components"][0]["type"], "operating-system");
    }

    fn findings_doc() -> Value {
        let info = DocumentInfo { created: "2026-11-24T03:00:00Z".into(), tool_version: "0.1.0" };
        findings_document(&crate::report::findings::fixtures::report(), &info)
    }

    #[test]
    fn every_affects_ref_is_a_component() {
        let doc = findings_doc();
        let refs: Vec<&str> =
            doc["components"].as_array().expect("components").iter().filter_map(|c| c["bom-ref"].as_str()).collect();
        let vulnerabilities = doc["vulnerabilities"].as_array().expect("vulnerabilities");
        // PyYAML, libc6 ×2 (one suppressed) and the advisory; not the secret nor the misconfigurations.
        assert_eq!(vulnerabilities.len(), 4);
        for v in vulnerabilities {
            let affects = v["affects"].as_array().expect("affects");
            assert!(!affects.is_empty(), "{v}");
            for a in affects {
                assert!(a["ref"].as_str().is_some_and(|r| refs.contains(&r)), "{a} not in {refs:?}");
            }
        }
        assert_eq!(vulnerabilities[0]["affects"][0]["ref"], "pkg:pypi/pyyaml@6.0#1");
        // atty is not in the SBOM: added as a component after the SBOM's.
        assert_eq!(vulnerabilities[2]["affects"][0]["ref"], "pkg:cargo/atty@0.2.14#2");
        assert_eq!(refs.len(), 4);
        assert_eq!(refs.iter().filter(|r| r.starts_with("pkg:deb/debian/libc6")).count(), 1);
    }

    #[test]
    fn ratings_recommendations_and_analysis() {
        let doc = findings_doc();
        let v = &doc["vulnerabilities"];
        assert_eq!(v[0]["ratings"][0]["method"], "CVSSv4");
        assert_eq!(v[0]["ratings"][0]["severity"], "critical");
        assert_eq!(v[0]["ratings"].as_array().map(Vec::len), Some(1));
        assert_eq!(v[0]["references"][0]["id"], "CVE-2020-14343");
        assert_eq!(v[0]["recommendation"], "Upgrade PyYAML to 6.0.1.");
        assert_eq!(v[0]["advisories"][0]["url"], "https://github.com/advisories/GHSA-8q59-q68h-6hv4");
        assert_eq!(v[1]["ratings"][0]["method"], "CVSSv31");
        assert_eq!(v[1]["ratings"][0]["vector"], "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H");
        assert_eq!(v[1]["source"]["url"], "https://nvd.nist.gov/vuln/detail/CVE-2023-4911");
        assert_eq!(
            v[2]["ratings"][0],
            json!({ "source": { "name": "osv:crates.io" }, "severity": "unknown", "method": "other" })
        );
        assert!(v[1].get("analysis").is_none());
        let analysis = &v[3]["analysis"];
        assert_eq!(analysis["state"], "not_affected");
        assert_eq!(analysis["justification"], "code_not_reachable");
        assert!(analysis["detail"].as_str().is_some_and(|d| d.contains(".picketignore:3, expires 2027-01-01")));
    }

    #[test]
    fn analysis_states_from_the_exception() {
        let mut s = crate::report::findings::fixtures::report().suppressed.remove(0);
        let state = |s: &Suppressed| analysis(s)["state"].as_str().map(str::to_string);
        // A .picketignore entry is an accepted risk; its wording never makes it resolved.
        for reason in ["no fixed version yet; risk accepted", "fixed by a backport in our base image", "not used"] {
            s.reason = reason.into();
            assert_eq!(state(&s).as_deref(), Some("exploitable"), "{reason}");
            assert_eq!(analysis(&s)["response"], json!(["will_not_fix"]));
            assert!(analysis(&s).get("justification").is_none());
        }
        s.reason = "false_positive: the binary is not glibc".into();
        assert_eq!(state(&s).as_deref(), Some("false_positive"));
        s.reason = "component_not_present".into();
        assert_eq!(state(&s).as_deref(), Some("not_affected"));
        assert_eq!(analysis(&s)["justification"], "code_not_present");
        // OpenVEX statements by status and justification label.
        s.reason = "fixed".into();
        s.basis = Basis::OpenVex { status: "fixed".into(), justification: None };
        assert_eq!(state(&s).as_deref(), Some("resolved"));
        s.reason = "not_affected: inline_mitigations_already_exist".into();
        s.basis = Basis::OpenVex {
            status: "not_affected".into(),
            justification: Some("inline_mitigations_already_exist".into()),
        };
        assert_eq!(state(&s).as_deref(), Some("not_affected"));
        assert_eq!(analysis(&s)["justification"], "protected_by_mitigating_control");
        assert!(analysis(&s).get("response").is_none());
        s.reason = "not_affected: the fixed build is deployed".into();
        s.basis = Basis::OpenVex { status: "not_affected".into(), justification: None };
        assert_eq!(state(&s).as_deref(), Some("not_affected"));
        assert!(analysis(&s).get("justification").is_none());
    }

    #[test]
    fn a_dockerfile_scan_has_no_components_but_is_a_bom() {
        let mut report = crate::report::findings::fixtures::report();
        report.sbom = None;
        report.source.image = None;
        let info = DocumentInfo { created: "2026-11-24T03:00:00Z".into(), tool_version: "0.1.0" };
        let doc = findings_document(&report, &info);
        assert_eq!(doc["bomFormat"], "CycloneDX");
        // The OS component, then the three packages the findings name.
        assert_eq!(doc["components"].as_array().map(Vec::len), Some(4));
        assert_ne!(doc["serialNumber"], document(&super::super::fixtures::sbom(), &info)["serialNumber"]);
    }
}
