//! What executables say about how they were built: Go's build info (`.go.buildinfo`) and
//! cargo-auditable's dependency list (`.dep-v0`). Extracted while a layer streams, so the
//! binary itself is never kept.

use std::io::Read;

use object::{Object, ObjectSection};

/// Build facts found in one executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryExtract {
    pub go: Option<GoBuildInfo>,
    /// cargo-auditable's JSON (decompressed).
    pub rust_audit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoBuildInfo {
    /// `go1.19.8`
    pub go_version: String,
    /// The module info text: `path`, `mod`, `dep`, `=>` and `build` lines.
    pub modinfo: String,
}

const GO_MAGIC: &[u8] = b"\xff Go buildinf:";
/// cargo-auditable data is small; a larger section is not its.
const MAX_AUDIT_JSON: u64 = 8 * 1024 * 1024;

/// Whether bytes start like an ELF file.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

pub fn extract(bytes: &[u8]) -> Option<BinaryExtract> {
    if !is_elf(bytes) {
        return None;
    }
    let file = object::File::parse(bytes).ok();
    let section = |name: &str| file.as_ref().and_then(|f| f.section_by_name(name)).and_then(|s| s.data().ok());
    let go = section(".go.buildinfo").and_then(go_buildinfo).or_else(|| {
        // Stripped of section headers: the header is 16-byte aligned wherever it landed.
        let mut from = 0;
        while let Some(pos) = memchr_find(&bytes[from..], GO_MAGIC) {
            let at = from + pos;
            if at % 16 == 0 {
                return go_buildinfo(&bytes[at..]);
            }
            from = at + 1;
        }
        None
    });
    let rust_audit = section(".dep-v0").and_then(|data| {
        let mut json = String::new();
        flate2::read::ZlibDecoder::new(data).take(MAX_AUDIT_JSON).read_to_string(&mut json).ok()?;
        Some(json)
    });
    (go.is_some() || rust_audit.is_some()).then_some(BinaryExtract { go, rust_audit })
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// Go 1.18+ build info with inline strings: a 32-byte header (magic, pointer size, flags), then
/// the Go version and the module info, each length-prefixed (uvarint). Older pointer-based
/// layouts are not read.
fn go_buildinfo(data: &[u8]) -> Option<GoBuildInfo> {
    if !data.starts_with(GO_MAGIC) || data.len() < 32 {
        return None;
    }
    let flags = data[15];
    if flags & 2 == 0 {
        return None;
    }
    let mut rest = &data[32..];
    let go_version = String::from_utf8_lossy(read_bytes(&mut rest)?).into_owned();
    let raw = read_bytes(&mut rest).unwrap_or_default();
    // The module info is wrapped in 16-byte (binary) sentinels.
    let modinfo = if raw.len() >= 33 && raw[raw.len() - 17] == b'\n' { &raw[16..raw.len() - 16] } else { raw };
    Some(GoBuildInfo { go_version, modinfo: String::from_utf8_lossy(modinfo).into_owned() })
}

fn read_bytes<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let (&byte, tail) = rest.split_first()?;
        *rest = tail;
        len |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let len = usize::try_from(len).ok()?;
    if len > rest.len() {
        return None;
    }
    let (text, tail) = rest.split_at(len);
    *rest = tail;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buildinfo(version: &str, modinfo: &str) -> Vec<u8> {
        let mut data = GO_MAGIC.to_vec();
        data.push(8);
        data.push(2);
        data.resize(32, 0);
        let sentinel = [0xf9u8; 16];
        let mut wrapped = sentinel.to_vec();
        wrapped.extend_from_slice(modinfo.as_bytes());
        wrapped.extend_from_slice(&sentinel);
        for text in [version.as_bytes().to_vec(), wrapped] {
            data.push(u8::try_from(text.len()).unwrap());
            data.extend_from_slice(&text);
        }
        data
    }

    #[test]
    fn reads_inline_go_buildinfo() {
        let info = go_buildinfo(&buildinfo("go1.21.5", "path\texample.com/app\nmod\texample.com/app\tv1.2.3\th1:x\n"))
            .unwrap();
        assert_eq!(info.go_version, "go1.21.5");
        assert!(info.modinfo.starts_with("path\texample.com/app\n"), "{:?}", info.modinfo);
        assert!(go_buildinfo(b"\xff Go buildinf:short").is_none());
        let mut pointer_style = buildinfo("go1.17", "x");
        pointer_style[15] = 0;
        assert!(go_buildinfo(&pointer_style).is_none());
    }

    #[test]
    fn non_elf_and_plain_elf_yield_nothing() {
        assert!(extract(b"#!/bin/sh\necho hi\n").is_none());
        let ls = std::fs::read("/bin/ls").unwrap();
        assert!(extract(&ls).is_none(), "a C program has neither section");
    }

    #[test]
    fn truncated_elf_does_not_panic() {
        let ls = std::fs::read("/bin/ls").unwrap();
        for len in [4, 64, 1000, ls.len() / 2] {
            let _ = extract(&ls[..len]);
        }
    }
}
