//! CycloneDX 1.5 JSON (ECMA-424): the image (or directory) as the metadata component, the OS
//! as an `operating-system` component, every package as a `library` with its purl, licences and
//! locations.

use serde_json::{Value, json};

use super::{DocumentInfo, content_uuid};
use crate::scan::Sbom;

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
            // purls repeat when one package is installed in several places; the index keeps refs unique.
            "bom-ref": format!("{}#{index}", package.purl),
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
}
