//! SPDX 2.3 JSON: a root package for the image (or directory) that CONTAINS every package;
//! purls as external references; licences as SPDX expressions only when they are valid ones.

use serde_json::{Value, json};

use super::{DocumentInfo, content_uuid};
use crate::model::Sbom;

/// Licence identifiers that are valid SPDX expressions as written. Others (Debian's `GPL-2+`,
/// free text) go to `licenseComments`, and `licenseDeclared` says NOASSERTION.
const SPDX_IDS: &[&str] = &[
    "0BSD",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.1",
    "Apache-2.0",
    "Artistic-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSL-1.0",
    "CC0-1.0",
    "EPL-2.0",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "ISC",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "MIT",
    "MIT-0",
    "MPL-2.0",
    "PSF-2.0",
    "Python-2.0",
    "Unlicense",
    "Zlib",
];

fn spdx_id_part(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect()
}

pub fn document(sbom: &Sbom, info: &DocumentInfo) -> Value {
    let root_id = "SPDXRef-Root";
    let root = match &sbom.source.image {
        Some(image) => json!({
            "name": image.name,
            "SPDXID": root_id,
            "versionInfo": image.store_key(),
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "CONTAINER",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
        }),
        None => json!({
            "name": sbom.source.name,
            "SPDXID": root_id,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "FILE",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
        }),
    };
    let mut packages = vec![root];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": root_id,
    })];
    for (index, package) in sbom.packages.iter().enumerate() {
        let id = format!(
            "SPDXRef-Package-{}-{}-{index}",
            package.ecosystem.osv_name().replace(' ', ""),
            spdx_id_part(&package.name)
        );
        let (valid, other): (Vec<&String>, Vec<&String>) =
            package.licenses.iter().partition(|l| SPDX_IDS.contains(&l.as_str()));
        let declared = if valid.is_empty() {
            "NOASSERTION".to_string()
        } else {
            valid.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" AND ")
        };
        let locations: Vec<&str> = package.locations.iter().map(|l| l.path.as_str()).collect();
        let mut entry = json!({
            "name": package.name,
            "SPDXID": id,
            "versionInfo": package.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": declared,
            "copyrightText": "NOASSERTION",
            "sourceInfo": format!("found by picket's {} cataloger at {}", package.cataloger, locations.join(", ")),
            "externalRefs": [ { "referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": package.purl } ],
        });
        if !other.is_empty() {
            entry["licenseComments"] =
                json!(format!("declared: {}", other.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")));
        }
        packages.push(entry);
        relationships
            .push(json!({ "spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": id }));
    }
    let uuid = content_uuid(&format!("{}{}", sbom.store_key(), info.created));
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": sbom.source.name,
        "documentNamespace": format!("https://picket.invalid/spdx/{}-{uuid}", spdx_id_part(&sbom.source.name)),
        "creationInfo": { "created": info.created, "creators": [ format!("Tool: picket-{}", info.tool_version) ] },
        "packages": packages,
        "relationships": relationships,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spdx_document() {
        let info = DocumentInfo { created: "2026-11-24T03:00:00Z".into(), tool_version: "0.1.0" };
        let doc = document(&super::super::fixtures::sbom(), &info);
        insta::with_settings!({ snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"), prepend_module_to_snapshot => false }, {
            insta::assert_json_snapshot!("sbom_spdx", doc);
        });
        assert_eq!(doc["packages"][1]["licenseDeclared"], "NOASSERTION", "GPL-2 is not an SPDX id");
        assert_eq!(doc["packages"][2]["licenseDeclared"], "MIT");
    }
}
