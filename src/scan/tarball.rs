//! Tar members with their real names, read with bounds: GNU long names and links and pax
//! extended headers are metadata entries whose data the `tar` crate would buffer whole, so a
//! few megabytes of layer declaring a 2 GiB long name (or a pax bomb) would take gigabytes.
//! Here each is capped before it is read, and a pax `size` that disagrees with the header (the
//! only way a member's data could outgrow the entry limits) is refused.

use std::borrow::Cow;
use std::io::{self, Read};

/// A path or link target longer than this is not a path (PATH_MAX is 4 KiB).
pub const MAX_LONG_NAME: u64 = 64 * 1024;
/// A pax header larger than this is not metadata (BuildKit's xattrs fit in a few KiB).
pub const MAX_PAX: u64 = 1024 * 1024;

/// Why a tar member was refused; a hostile or broken archive, not an I/O failure.
#[derive(Debug)]
pub struct TarRefused(pub String);

impl std::fmt::Display for TarRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TarRefused {}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TarRefused(message))
}

/// One member: its entry (for the header and the data) and its full name and link target.
pub struct Member<'a, R: Read> {
    pub entry: tar::Entry<'a, R>,
    pub path: Vec<u8>,
    pub link: Option<Vec<u8>>,
}

impl<R: Read> Member<'_, R> {
    pub fn path_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.path)
    }

    pub fn path(&self) -> &std::path::Path {
        std::path::Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&self.path))
    }

    pub fn link(&self) -> Option<&std::path::Path> {
        let link = self.link.as_deref()?;
        Some(std::path::Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(link)))
    }
}

/// The members of an archive, metadata entries applied to the member they describe.
pub struct Members<'a, R: 'a + Read> {
    inner: tar::Entries<'a, R>,
}

pub fn members<R: Read>(archive: &mut tar::Archive<R>) -> io::Result<Members<'_, R>> {
    Ok(Members { inner: archive.entries()?.raw(true) })
}

/// The data of a metadata entry, refused past `max` before anything is read.
fn capped<R: Read>(entry: &mut tar::Entry<'_, R>, what: &str, max: u64) -> io::Result<Vec<u8>> {
    let size = entry.header().entry_size()?;
    if size > max {
        return Err(refused(format!("{what} of {size} bytes (at most {max})")));
    }
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    entry.take(max).read_to_end(&mut data)?;
    Ok(data)
}

fn trim_nuls(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

/// The value of `key` in pax records (`LEN key=value\n` each).
fn pax_value<'b>(records: &'b [u8], key: &str) -> io::Result<Option<&'b [u8]>> {
    let mut found = None;
    let mut rest = records;
    while !rest.is_empty() {
        let space =
            rest.iter().position(|b| *b == b' ').ok_or_else(|| refused("a pax record without a length".into()))?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|n| *n > space && *n <= rest.len())
            .ok_or_else(|| refused("a pax record with a bad length".into()))?;
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|b| *b == b'=')
            && &record[..eq] == key.as_bytes()
        {
            found = Some(&record[eq + 1..]);
        }
        rest = &rest[len..];
    }
    Ok(found)
}

impl<'a, R: Read> Iterator for Members<'a, R> {
    type Item = io::Result<Member<'a, R>>;

    fn next(&mut self) -> Option<Self::Item> {
        let (mut long_name, mut long_link, mut pax) = (None, None, None);
        loop {
            let mut entry = match self.inner.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            let kind = entry.header().entry_type();
            let step = if kind.is_gnu_longname() {
                capped(&mut entry, "a GNU long name", MAX_LONG_NAME).map(|d| long_name = Some(trim_nuls(d)))
            } else if kind.is_gnu_longlink() {
                capped(&mut entry, "a GNU long link", MAX_LONG_NAME).map(|d| long_link = Some(trim_nuls(d)))
            } else if kind.is_pax_local_extensions() {
                capped(&mut entry, "a pax header", MAX_PAX).map(|d| pax = Some(d))
            } else if kind.is_pax_global_extensions() {
                capped(&mut entry, "a pax global header", MAX_PAX).map(|_| ())
            } else {
                return Some(self.member(entry, long_name, long_link, pax));
            };
            if let Err(e) = step {
                return Some(Err(e));
            }
        }
    }
}

impl<'a, R: Read> Members<'a, R> {
    fn member(
        &self,
        entry: tar::Entry<'a, R>,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
        pax: Option<Vec<u8>>,
    ) -> io::Result<Member<'a, R>> {
        let records = pax.as_deref().unwrap_or_default();
        if let Some(size) = pax_value(records, "size")? {
            let declared = entry.header().entry_size()?;
            if std::str::from_utf8(size).ok().and_then(|s| s.parse::<u64>().ok()) != Some(declared) {
                return Err(refused(format!(
                    "a pax size of {} for a member whose header says {declared} bytes",
                    String::from_utf8_lossy(size)
                )));
            }
        }
        let path = match (pax_value(records, "path")?, long_name) {
            (Some(path), _) => path.to_vec(),
            (None, Some(long)) => long,
            (None, None) => entry.header().path_bytes().into_owned(),
        };
        let link = match (pax_value(records, "linkpath")?, long_link) {
            (Some(link), _) => Some(link.to_vec()),
            (None, Some(long)) => Some(long),
            (None, None) => entry.header().link_name_bytes().map(Cow::into_owned),
        };
        Ok(Member { entry, path, link })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_path(name).unwrap();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        header
    }

    fn archive(parts: &[(tar::Header, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (header, data) in parts {
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn names(bytes: &[u8]) -> Result<Vec<(String, Option<String>)>, String> {
        let mut archive = tar::Archive::new(bytes);
        let mut out = Vec::new();
        for member in members(&mut archive).map_err(|e| e.to_string())? {
            let member = member.map_err(|e| e.to_string())?;
            out.push((member.path_lossy().into_owned(), member.link.map(|l| String::from_utf8_lossy(&l).into_owned())));
        }
        Ok(out)
    }

    #[test]
    fn long_names_and_pax_paths_name_the_next_member() {
        let long = format!("{}/file", "d".repeat(300));
        let pax = b"27 path=pax/named/file.txt\n".to_vec();
        let bytes = archive(&[
            (
                header("././@LongLink", tar::EntryType::GNULongName, long.len() as u64 + 1),
                format!("{long}\0").into_bytes(),
            ),
            (header("short", tar::EntryType::Regular, 0), vec![]),
            (header("pax", tar::EntryType::XHeader, pax.len() as u64), pax),
            (header("ignored", tar::EntryType::Regular, 0), vec![]),
            (header("plain", tar::EntryType::Regular, 0), vec![]),
        ]);
        let found = names(&bytes).unwrap();
        assert_eq!(found[0].0, long);
        assert_eq!(found[1].0, "pax/named/file.txt");
        assert_eq!(found[2].0, "plain", "metadata applies to one member only");
    }

    #[test]
    fn oversized_metadata_is_refused_before_it_is_read() {
        // Declares 2 GiB of long name; the archive holds only a block of it.
        let bomb = archive(&[(header("././@LongLink", tar::EntryType::GNULongName, 2 << 30), vec![b'a'; 512])]);
        let err = names(&bomb).unwrap_err();
        assert!(err.contains("GNU long name of 2147483648 bytes (at most 65536)"), "{err}");
        let pax = archive(&[(header("pax", tar::EntryType::XHeader, 8 << 20), vec![b'1'; 512])]);
        assert!(names(&pax).unwrap_err().contains("pax header of 8388608 bytes"));
        let lying = b"17 size=99999999\n".to_vec();
        let lie = archive(&[
            (header("pax", tar::EntryType::XHeader, lying.len() as u64), lying),
            (header("f", tar::EntryType::Regular, 0), vec![]),
        ]);
        assert!(names(&lie).unwrap_err().contains("pax size of 99999999"), "{:?}", names(&lie));
        let broken = archive(&[
            (header("pax", tar::EntryType::XHeader, 4), b"99 x".to_vec()),
            (header("f", tar::EntryType::Regular, 0), vec![]),
        ]);
        assert!(names(&broken).unwrap_err().contains("bad length"));
    }
}
