//! The Alpine secdb (`https://secdb.alpinelinux.org/<release>/<repo>.json`, and the YAML of the
//! old repository): per release and package, which version fixed which CVEs.

use serde::Deserialize;

use super::Advisory;
use super::advisory::{AffectedRange, RangeEvent, RangeKind};
use crate::model::{FixState, Severity};

#[derive(Debug, Deserialize)]
struct SecDb {
    distroversion: String,
    #[serde(default)]
    packages: Vec<PackageEntry>,
}

#[derive(Debug, Deserialize)]
struct PackageEntry {
    pkg: Pkg,
}

#[derive(Debug, Deserialize)]
struct Pkg {
    name: String,
    #[serde(default)]
    secfixes: std::collections::BTreeMap<String, Option<Vec<String>>>,
}

/// Converts a secdb document (JSON or YAML); returns advisories and the package count.
pub fn parse(name: &str, bytes: &[u8]) -> Result<(Vec<Advisory>, u64), String> {
    let db: SecDb = match serde_json::from_slice(bytes) {
        Ok(db) => db,
        Err(json_error) => {
            let text = std::str::from_utf8(bytes).map_err(|_| format!("{name}: not an Alpine secdb document"))?;
            serde_saphyr::from_str(text)
                .map_err(|e| format!("{name}: not an Alpine secdb document (JSON: {json_error}; YAML: {e})"))?
        }
    };
    let release = db.distroversion.trim();
    if !release.starts_with('v') {
        return Err(format!("{name}: distroversion '{release}' is not an Alpine release like v3.19"));
    }
    let mut out = Vec::new();
    for entry in &db.packages {
        for (version, ids) in &entry.pkg.secfixes {
            // Version 0: the package was never affected in this release.
            if version == "0" {
                continue;
            }
            for text in ids.iter().flatten() {
                for id in text.split_whitespace().filter(|word| looks_like_id(word)) {
                    out.push(Advisory {
                        id: id.to_string(),
                        aliases: Vec::new(),
                        ecosystem: format!("Alpine:{release}"),
                        package: entry.pkg.name.clone(),
                        summary: String::new(),
                        details: String::new(),
                        severity: Severity::Unknown,
                        cvss: None,
                        ranges: vec![AffectedRange {
                            kind: RangeKind::Ecosystem,
                            events: vec![RangeEvent::Introduced("0".into()), RangeEvent::Fixed(version.clone())],
                        }],
                        versions: Default::default(),
                        fix_state: Some(FixState::Fixed),
                        informational: None,
                        references: Vec::new(),
                        modified: String::new(),
                    });
                }
            }
        }
    }
    Ok((out, db.packages.len() as u64))
}

fn looks_like_id(word: &str) -> bool {
    let Some((prefix, rest)) = word.split_once('-') else { return false };
    !prefix.is_empty() && prefix.bytes().all(|c| c.is_ascii_uppercase()) && rest.bytes().any(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_yaml_secdb_of_3_11() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/alpine-secdb-2020/v3.11/main.yaml");
        let (advisories, packages) = parse("main.yaml", &std::fs::read(path).unwrap()).unwrap();
        assert!(packages > 100, "{packages}");
        let ansible: Vec<_> =
            advisories.iter().filter(|a| a.package == "ansible" && a.id == "CVE-2019-14904").collect();
        assert_eq!(ansible.len(), 1);
        assert_eq!(ansible[0].ecosystem, "Alpine:v3.11");
        assert!(ansible[0].affects(crate::model::Ecosystem::Alpine, "2.9.2-r0").is_some());
        assert!(ansible[0].affects(crate::model::Ecosystem::Alpine, "2.9.3-r0").is_none());
    }

    #[test]
    fn json_feed_and_errors() {
        let doc = br#"{"distroversion":"v3.19","reponame":"main","packages":[{"pkg":{"name":"openssl",
            "secfixes":{"3.1.4-r1":["CVE-2023-5678"],"0":["CVE-2022-1"],"3.1.4-r3":["CVE-2023-6129 CVE-2023-6237"]}}}]}"#;
        let (advisories, _) = parse("main.json", doc).unwrap();
        let ids: Vec<&str> = advisories.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["CVE-2023-5678", "CVE-2023-6129", "CVE-2023-6237"]);
        assert!(parse("x.json", b"{}").unwrap_err().contains("x.json"));
    }
}
