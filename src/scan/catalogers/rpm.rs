//! RPM packages: the sqlite rpmdb (`var/lib/rpm/rpmdb.sqlite`, `usr/lib/sysimage/rpm/`) of
//! RHEL 9, Fedora 33+, Rocky, Alma, Amazon Linux 2023 and friends. Each row of its `Packages`
//! table is an RPM header blob, parsed here.

use std::io::Write;

use super::{CatalogOutput, Cataloger, purl};
use crate::model::{Distro, Ecosystem, Package, SourcePackage};
use crate::scan::vfs::VirtualFs;

pub struct RpmCataloger;

const DATABASES: &[&str] = &["var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"];

const TAG_NAME: i32 = 1000;
const TAG_VERSION: i32 = 1001;
const TAG_RELEASE: i32 = 1002;
const TAG_EPOCH: i32 = 1003;
const TAG_LICENSE: i32 = 1014;
const TAG_ARCH: i32 = 1022;
const TAG_SOURCERPM: i32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// The fields picket reads from one RPM header.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RpmHeader {
    pub name: String,
    pub version: String,
    pub release: String,
    pub epoch: Option<u32>,
    pub arch: String,
    pub license: String,
    pub source_rpm: String,
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Parses a header blob: index count and data length (big-endian), 16-byte index entries
/// (tag, type, offset, count), then the data store. Every offset is bounds-checked.
pub fn parse_header(blob: &[u8]) -> Result<RpmHeader, String> {
    let entries = usize::try_from(be_u32(blob, 0).ok_or("header shorter than 8 bytes")?).map_err(|e| e.to_string())?;
    let data_len = usize::try_from(be_u32(blob, 4).ok_or("header shorter than 8 bytes")?).map_err(|e| e.to_string())?;
    let data_start = entries.checked_mul(16).and_then(|n| n.checked_add(8)).ok_or("index too large")?;
    let data =
        blob.get(data_start..data_start.checked_add(data_len).ok_or("data too large")?).ok_or("header truncated")?;
    let mut header = RpmHeader::default();
    for i in 0..entries {
        let at = 8 + i * 16;
        let tag = be_u32(blob, at).ok_or("index truncated")? as i32;
        let kind = be_u32(blob, at + 4).ok_or("index truncated")?;
        let offset = usize::try_from(be_u32(blob, at + 8).ok_or("index truncated")?).map_err(|e| e.to_string())?;
        let string = || -> Option<String> {
            let bytes = data.get(offset..)?;
            let end = bytes.iter().position(|b| *b == 0)?;
            Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
        };
        match (tag, kind) {
            (TAG_NAME, TYPE_STRING) => header.name = string().ok_or("bad NAME")?,
            (TAG_VERSION, TYPE_STRING) => header.version = string().ok_or("bad VERSION")?,
            (TAG_RELEASE, TYPE_STRING) => header.release = string().ok_or("bad RELEASE")?,
            (TAG_ARCH, TYPE_STRING) => header.arch = string().unwrap_or_default(),
            (TAG_LICENSE, TYPE_STRING | TYPE_I18NSTRING) => header.license = string().unwrap_or_default(),
            (TAG_SOURCERPM, TYPE_STRING) => header.source_rpm = string().unwrap_or_default(),
            (TAG_EPOCH, TYPE_INT32) => header.epoch = be_u32(data, offset),
            _ => {}
        }
    }
    if header.name.is_empty() || header.version.is_empty() {
        return Err("no NAME or VERSION".into());
    }
    Ok(header)
}

/// `openssl-3.0.7-16.el9.src.rpm` → (`openssl`, `3.0.7-16.el9`).
fn source_of(source_rpm: &str) -> Option<(String, String)> {
    let stem = source_rpm.strip_suffix(".src.rpm").or_else(|| source_rpm.strip_suffix(".nosrc.rpm"))?;
    let (rest, release) = stem.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    Some((name.to_string(), format!("{version}-{release}")))
}

/// The header blobs of a sqlite rpmdb. rusqlite needs a file, so the captured bytes go to a temp
/// file first; the database is opened read-only and immutable (no journal files are created).
fn blobs(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut temp = tempfile::NamedTempFile::new().map_err(|e| format!("temp file: {e}"))?;
    temp.write_all(bytes).map_err(|e| format!("temp file: {e}"))?;
    let uri = format!("file:{}?immutable=1", temp.path().display());
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    let db = rusqlite::Connection::open_with_flags(uri, flags).map_err(|e| format!("not an sqlite rpmdb: {e}"))?;
    let mut statement = db.prepare("SELECT blob FROM Packages").map_err(|e| format!("no Packages table: {e}"))?;
    let rows = statement.query_map([], |row| row.get::<_, Vec<u8>>(0)).map_err(|e| e.to_string())?;
    rows.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
}

impl Cataloger for RpmCataloger {
    fn name(&self) -> &'static str {
        "rpm"
    }

    fn version(&self) -> u32 {
        1
    }

    fn wants(&self, path: &str) -> bool {
        DATABASES.contains(&path)
    }

    fn catalog(&self, fs: &VirtualFs, distro: Option<&Distro>) -> CatalogOutput {
        let mut out = CatalogOutput::default();
        let namespace = distro.map_or("redhat", |d| d.id.as_str());
        let distro_qualifier = distro.map(|d| format!("{}-{}", d.id, d.version_id)).unwrap_or_default();
        for db in DATABASES {
            let Some(bytes) = fs.read(db) else { continue };
            let blobs = match blobs(&bytes) {
                Ok(blobs) => blobs,
                Err(err) => {
                    out.warnings.push(format!("/{db}: {err}"));
                    continue;
                }
            };
            for (row, blob) in blobs.iter().enumerate() {
                let header = match parse_header(blob) {
                    Ok(header) => header,
                    Err(err) => {
                        out.warnings.push(format!("/{db}: package {row}: {err}"));
                        continue;
                    }
                };
                // gpg-pubkey entries are keys in the keyring, not software.
                if header.name == "gpg-pubkey" {
                    continue;
                }
                let version = match header.epoch {
                    Some(epoch) => format!("{epoch}:{}-{}", header.version, header.release),
                    None => format!("{}-{}", header.version, header.release),
                };
                let epoch = header.epoch.map(|e| e.to_string()).unwrap_or_default();
                let source = source_of(&header.source_rpm);
                let upstream = header.source_rpm.clone();
                out.packages.push(Package {
                    purl: purl(
                        "rpm",
                        Some(namespace),
                        &header.name,
                        &format!("{}-{}", header.version, header.release),
                        &[
                            ("arch", &header.arch),
                            ("epoch", &epoch),
                            ("upstream", &upstream),
                            ("distro", &distro_qualifier),
                        ],
                    ),
                    source: source.map(|(name, version)| SourcePackage { name, version }),
                    licenses: if header.license.is_empty() { Vec::new() } else { vec![header.license.clone()] },
                    name: header.name,
                    version,
                    ecosystem: Ecosystem::RedHat,
                    locations: vec![fs.location(db)],
                    files: Vec::new(),
                    cataloger: self.name().to_string(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(entries: &[(i32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, value) in entries {
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&kind.to_be_bytes());
            index.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
            index.extend_from_slice(&1u32.to_be_bytes());
            data.extend_from_slice(value);
        }
        let mut blob = u32::try_from(entries.len()).unwrap().to_be_bytes().to_vec();
        blob.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    #[test]
    fn parses_header_fields_and_refuses_broken_blobs() {
        let blob = header(&[
            (TAG_NAME, TYPE_STRING, b"openssl-libs\0"),
            (TAG_VERSION, TYPE_STRING, b"3.0.7\0"),
            (TAG_RELEASE, TYPE_STRING, b"16.el9\0"),
            (TAG_EPOCH, TYPE_INT32, &1u32.to_be_bytes()),
            (TAG_SOURCERPM, TYPE_STRING, b"openssl-3.0.7-16.el9.src.rpm\0"),
        ]);
        let parsed = parse_header(&blob).unwrap();
        assert_eq!((parsed.name.as_str(), parsed.epoch), ("openssl-libs", Some(1)));
        assert_eq!(source_of(&parsed.source_rpm), Some(("openssl".into(), "3.0.7-16.el9".into())));
        for cut in [0, 7, 20, blob.len() - 3] {
            assert!(parse_header(&blob[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = blob.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_header(&huge).is_err());
    }

    #[test]
    fn garbage_database_is_a_warning() {
        let fs = VirtualFs::from_files(&[("var/lib/rpm/rpmdb.sqlite", "not sqlite at all")]);
        let out = RpmCataloger.catalog(&fs, None);
        assert!(out.packages.is_empty());
        assert!(out.warnings[0].contains("rpmdb.sqlite"), "{:?}", out.warnings);
    }
}
