//! Reading blobs by name from a directory or from inside a tar file (by offset, without
//! extracting), and verifying their digests while they are read.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ScanError;
pub use crate::oci::{blob_path, sha256_digest};

/// Where blobs come from: a directory tree, or the entries of a (plain) tar file.
pub enum BlobStore {
    Dir(PathBuf),
    Tar { path: PathBuf, entries: HashMap<String, (u64, u64)> },
}

impl BlobStore {
    /// Indexes a tar file's entries (name → offset, size) in one pass.
    pub fn tar(path: &Path) -> Result<Self, ScanError> {
        let what = path.display().to_string();
        let file = File::open(path).map_err(|e| ScanError::io(&what, e))?;
        let mut archive = tar::Archive::new(file);
        let mut entries = HashMap::new();
        for member in super::tarball::members(&mut archive).map_err(|e| ScanError::io(&what, e))? {
            let member = member.map_err(|e| ScanError::io(&what, e))?;
            if member.entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = member.path_lossy().trim_start_matches("./").to_string();
            entries.insert(name, (member.entry.raw_file_position(), member.entry.size()));
        }
        Ok(Self::Tar { path: path.to_path_buf(), entries })
    }

    pub fn contains(&self, name: &str) -> bool {
        match self {
            Self::Dir(root) => root.join(name).is_file(),
            Self::Tar { entries, .. } => entries.contains_key(name),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Dir(root) | Self::Tar { path: root, .. } => root.display().to_string(),
        }
    }

    /// Opens `name` (a relative path; `..` is refused).
    pub fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, ScanError> {
        let what = format!("{} in {}", name, self.describe());
        if name.split('/').any(|part| part == ".." || part.is_empty()) {
            return Err(ScanError::Format { what, message: "refusing a blob path with '..' or empty parts".into() });
        }
        match self {
            Self::Dir(root) => {
                let file = File::open(root.join(name)).map_err(|e| ScanError::io(&what, e))?;
                Ok(Box::new(file))
            }
            Self::Tar { path, entries } => {
                let (offset, size) = *entries.get(name).ok_or_else(|| ScanError::Format {
                    what: self.describe(),
                    message: format!("no entry '{name}' in the archive"),
                })?;
                let mut file = File::open(path).map_err(|e| ScanError::io(&what, e))?;
                file.seek(SeekFrom::Start(offset)).map_err(|e| ScanError::io(&what, e))?;
                Ok(Box::new(file.take(size)))
            }
        }
    }

    pub fn read_all(&self, name: &str, max: u64) -> Result<Vec<u8>, ScanError> {
        let mut buf = Vec::new();
        self.open(name)?.take(max + 1).read_to_end(&mut buf).map_err(|e| ScanError::io(name, e))?;
        if buf.len() as u64 > max {
            return Err(ScanError::Limit { what: name.to_string(), message: format!("is larger than {max} bytes") });
        }
        Ok(buf)
    }
}

/// Hashes what passes through and fails at EOF if the digest (sha256) or size is not the expected one.
pub struct Verifying<R> {
    inner: R,
    hasher: Sha256,
    expected: String,
    expected_size: Option<u64>,
    seen: u64,
    done: bool,
}

impl<R: Read> Verifying<R> {
    pub fn new(inner: R, expected: &str, expected_size: Option<u64>) -> Self {
        Self { inner, hasher: Sha256::new(), expected: expected.to_string(), expected_size, seen: 0, done: false }
    }
}

impl<R: Read> Read for Verifying<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen += n as u64;
        if n > 0 {
            self.hasher.update(&buf[..n]);
            return Ok(n);
        }
        if !self.done && !buf.is_empty() {
            self.done = true;
            let actual = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
            if self.expected.starts_with("sha256:") && actual != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("digest mismatch: expected {}, got {actual}", self.expected),
                ));
            }
            if let Some(size) = self.expected_size.filter(|s| *s != self.seen) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("digest check: size {} differs from the descriptor's {size}", self.seen),
                ));
            }
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_reader_checks_digest_and_size_at_eof() {
        let data = b"layer bytes".to_vec();
        let digest = sha256_digest(&data);
        let mut ok = Verifying::new(data.as_slice(), &digest, Some(data.len() as u64));
        assert_eq!(io::copy(&mut ok, &mut io::sink()).unwrap(), data.len() as u64);
        let mut bad = Verifying::new(&b"tampered!!!"[..], &digest, None);
        let err = io::copy(&mut bad, &mut io::sink()).unwrap_err();
        assert!(err.to_string().contains("digest mismatch"), "{err}");
        let mut short = Verifying::new(data.as_slice(), &digest, Some(99));
        assert!(io::copy(&mut short, &mut io::sink()).is_err());
    }

    #[test]
    fn tar_store_reads_entries_by_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.tar");
        let mut builder = tar::Builder::new(File::create(&path).unwrap());
        for (name, body) in [("index.json", &b"{}"[..]), ("blobs/sha256/x", &b"hello blob"[..])] {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, body).unwrap();
        }
        builder.finish().unwrap();
        drop(builder);
        let store = BlobStore::tar(&path).unwrap();
        assert!(store.contains("index.json"));
        assert_eq!(store.read_all("blobs/sha256/x", 100).unwrap(), b"hello blob");
        assert!(store.read_all("blobs/sha256/x", 3).is_err());
        assert!(store.open("../x").is_err());
        assert!(store.open("missing").is_err());
    }
}
