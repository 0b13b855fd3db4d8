//! Secret scanning: credentials and private keys in the files of every layer (including files a
//! later layer deletes: they are still in the image) or of a directory.
//!
//! A file goes through an Aho-Corasick prefilter over every rule's keywords first; only the rules
//! whose keywords occur run their regex over it. Binaries (a NUL byte in the first 8 KiB), files
//! over `Limits::max_secret_file_bytes` and well-known noise paths are skipped. Secrets never leave
//! this module whole: findings carry masked evidence only. docs/secrets.md documents the rules.

mod rules;

use std::io::{self, Read};
use std::ops::Range;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind};
use base64::Engine;
use regex::bytes::{Regex, RegexBuilder};

use super::Limits;
use crate::model::{Finding, FindingKind, Location};
pub use rules::{Check, GENERIC_MIN_ENTROPY, RULES, RULES_VERSION, Rule};

/// `Finding::data_source` of secret findings.
pub const DATA_SOURCE: &str = "picket-secrets";
/// A NUL byte in this many leading bytes marks a binary.
pub const BINARY_PROBE_BYTES: usize = 8 * 1024;
/// Characters of a secret kept in evidence, at most (fewer for short values: a quarter of them).
pub const MASK_KEEP: usize = 4;
/// Masked characters shown as `*`, at most, so that a key body does not fill a screen.
const MASK_MAX_STARS: usize = 32;
/// Matches reported per file, at most: a file of a thousand tokens is one problem, not a thousand.
/// Each rule keeps this many, then the most severe are kept, so that many hits of one rule do
/// not hide another rule's.
const MAX_PER_FILE: usize = 100;
/// Findings kept per scan, at most (a hostile image must not exhaust memory through findings).
const MAX_FINDINGS: usize = 10_000;
const REMEDIATION: &str = "Remove the secret from the image (and from every layer: deleting it in a later layer \
    leaves it in the earlier one), rotate the credential, and pass secrets at run time instead.";

/// Paths whose contents are documentation, locale data or public certificates.
const SKIP_PREFIXES: &[&str] = &[
    "usr/share/doc/",
    "usr/share/man/",
    "usr/share/info/",
    "usr/share/locale/",
    "usr/share/i18n/",
    "usr/share/zoneinfo/",
    "usr/share/common-licenses/",
    "usr/share/ca-certificates/",
    "usr/local/share/ca-certificates/",
    "etc/ssl/certs/",
    "etc/pki/ca-trust/",
    "etc/pki/tls/certs/",
    "etc/ca-certificates/",
];

/// File name endings of compiled or compressed files, which the rules cannot read anyway.
const SKIP_SUFFIXES: &[&str] = &[
    ".pyc", ".pyo", ".mo", ".gz", ".xz", ".bz2", ".zst", ".zip", ".jar", ".whl", ".png", ".jpg", ".jpeg", ".gif",
    ".ico", ".woff", ".woff2", ".ttf", ".otf", ".so", ".a", ".o", ".class", ".wasm", ".pdf",
];

/// Directories of third-party packages' own tests, whose fixtures hold sample keys.
const TEST_DIRS: &[&str] = &["test", "tests", "testdata"];

/// Whether `path` (inside the image, no leading `/`) is on the skip list: noise paths and the
/// allow rules for third-party test fixtures (docs/secrets.md lists them).
pub fn skips_path(path: &str) -> bool {
    if SKIP_PREFIXES.iter().any(|p| path.starts_with(p)) || SKIP_SUFFIXES.iter().any(|s| path.ends_with(s)) {
        return true;
    }
    let parts: Vec<&str> = path.split('/').collect();
    let Some((_, dirs)) = parts.split_last() else { return false };
    // The Python standard library's test suite: usr/lib/python3*/test, usr/local/lib/python3*/test.
    let lib = match dirs {
        ["usr", "lib", rest @ ..] | ["usr", "local", "lib", rest @ ..] => rest,
        _ => &[],
    };
    if let [python, "test", ..] = lib
        && python.starts_with("python3")
    {
        return true;
    }
    // Tests inside installed packages (pip, npm) and Go trees (the toolchain's own sources,
    // the module cache): `_test.go` files and `testdata` directories.
    for (i, dir) in dirs.iter().enumerate() {
        if matches!(*dir, "site-packages" | "dist-packages" | "node_modules")
            && dirs[i + 1..].iter().any(|d| TEST_DIRS.contains(d))
        {
            return true;
        }
    }
    // Installed packages' metadata (`METADATA`, `PKG-INFO`) is their README.
    if dirs.iter().any(|d| d.ends_with(".dist-info") || d.ends_with(".egg-info")) {
        return true;
    }
    let go_tree = path.contains("/go/src/") || path.starts_with("go/src/") || path.contains("/pkg/mod/");
    go_tree && (path.ends_with("_test.go") || dirs.contains(&"testdata"))
}

/// Installed third-party packages, where the generic rule does not run: their code, docstrings
/// and READMEs are full of `token = …` examples, and credentials are not shipped there.
pub fn third_party(path: &str) -> bool {
    path.split('/').any(|dir| matches!(dir, "site-packages" | "dist-packages" | "node_modules"))
}

/// Whether the leading bytes hold a NUL byte (a binary, or UTF-16 text the rules cannot read).
pub fn is_binary(bytes: &[u8]) -> bool {
    memchr::memchr(0, &bytes[..bytes.len().min(BINARY_PROBE_BYTES)]).is_some()
}

/// Keeps the first characters of `secret` (at most [`MASK_KEEP`], a quarter of a short value)
/// and replaces the rest with `*`. Whitespace inside (a key body's line breaks) is dropped.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().filter(|c| !c.is_whitespace()).collect();
    let keep = (chars.len() / 4).min(MASK_KEEP);
    let stars = (chars.len() - keep).min(MASK_MAX_STARS);
    let mut out: String = chars[..keep].iter().collect();
    out.push_str(&"*".repeat(stars));
    out
}

/// Shannon entropy in bits per byte.
pub fn shannon_entropy(value: &[u8]) -> f64 {
    if value.is_empty() {
        return 0.0;
    }
    let mut counts = [0usize; 256];
    for &b in value {
        counts[usize::from(b)] += 1;
    }
    let len = value.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / len;
            -p * p.log2()
        })
        .sum()
}

const PLACEHOLDER_WORDS: &[&str] = &[
    "example",
    "xxxx",
    "changeme",
    "change_me",
    "change-me",
    "placeholder",
    "redacted",
    "dummy",
    "sample",
    "replace",
    "your_",
    "your-",
    "yourpassword",
    "${",
    "$(",
    "{{",
    "%(",
    "****",
    "....",
];

/// A well-known placeholder: `EXAMPLE`, `xxxx`, `changeme`, `${VAR}`, `<token>`, `{{ .Token }}`,
/// or a value of very few distinct characters (`000000…`).
pub fn is_placeholder(value: &[u8]) -> bool {
    let lower = value.to_ascii_lowercase();
    let has = |word: &str| memchr::memmem::find(&lower, word.as_bytes()).is_some();
    if PLACEHOLDER_WORDS.iter().any(|w| has(w)) {
        return true;
    }
    if matches!(lower.first(), Some(b'$' | b'%' | b'<' | b'{' | b'(' | b'@')) {
        return true;
    }
    let mut seen = [false; 256];
    lower.iter().for_each(|&b| seen[usize::from(b)] = true);
    seen.iter().filter(|&&s| s).count() < 6
}

/// The generic rule's test of an assigned value: not a placeholder, a path or a URL; entropy at
/// least `min` bits per character; a digit with one more class, or three classes. An unquoted
/// value must also look like a token, not code (`list(x)`, `a&b`, `[],p`).
fn high_entropy(value: &[u8], quoted: bool, min: f64) -> bool {
    let token_like = |b: &u8| b.is_ascii_alphanumeric() || b"+/=_-.~!@#%^*:".contains(b);
    let value = if quoted { value } else { value.strip_suffix(b";").or(value.strip_suffix(b",")).unwrap_or(value) };
    if is_placeholder(value)
        || !quoted && !value.iter().all(token_like)
        || matches!(value.first(), Some(b'/' | b'.' | b'~'))
        || memchr::memmem::find(value, b"://").is_some()
    {
        return false;
    }
    let lower = value.iter().any(u8::is_ascii_lowercase);
    let upper = value.iter().any(u8::is_ascii_uppercase);
    let digit = value.iter().any(u8::is_ascii_digit);
    let symbol = value.iter().any(|b| !b.is_ascii_alphanumeric() && !matches!(b, b'_' | b'-' | b'.'));
    let classes = [lower, upper, digit, symbol].iter().filter(|&&c| c).count();
    (classes >= 3 || digit && classes >= 2) && shannon_entropy(value) >= min
}

/// Whether a PEM block is passphrase-protected: PKCS#8 `ENCRYPTED PRIVATE KEY`, a traditional
/// key with `Proc-Type: 4,ENCRYPTED`, or an OpenSSH key whose cipher is not `none`.
fn pem_encrypted(whole: &[u8], body: &[u8]) -> bool {
    let header_end = memchr::memchr(b'\n', whole).unwrap_or(whole.len());
    let header = &whole[..header_end];
    if memchr::memmem::find(header, b"ENCRYPTED").is_some() || memchr::memmem::find(body, b"4,ENCRYPTED").is_some() {
        return true;
    }
    if memchr::memmem::find(header, b"OPENSSH").is_some() {
        let b64: Vec<u8> = body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(&b64) else { return false };
        // openssh-key-v1\0, then the cipher name as an SSH string (u32 length, bytes).
        let Some(rest) = raw.strip_prefix(b"openssh-key-v1\0") else { return false };
        let Some((len, rest)) = rest.split_first_chunk::<4>() else { return false };
        let len = usize::try_from(u32::from_be_bytes(*len)).unwrap_or(usize::MAX);
        return rest.get(..len).is_some_and(|cipher| cipher != b"none");
    }
    false
}

/// Base64 characters in a PEM body, header lines (`Proc-Type:`, `Version:` …) aside.
fn pem_body_len(body: &[u8]) -> usize {
    body.split(|&b| b == b'\n')
        .filter(|line| !line.contains(&b':'))
        .map(|line| line.iter().filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/')).count())
        .sum()
}

fn jwt_header(token: &[u8]) -> bool {
    let Some(header) = token.split(|&b| b == b'.').next() else { return false };
    let Ok(json) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else { return false };
    serde_json::from_slice::<serde_json::Value>(&json).is_ok_and(|v| v.get("alg").is_some_and(|a| a.is_string()))
}

fn basic_auth(encoded: &[u8]) -> bool {
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else { return false };
    match memchr::memchr(b':', &decoded) {
        Some(colon) => colon > 0 && colon + 1 < decoded.len() && !is_placeholder(&decoded[colon + 1..]),
        None => false,
    }
}

fn passes(check: Check, whole: &[u8], secret: &[u8], quoted: bool) -> bool {
    match check {
        Check::NotPlaceholder => !is_placeholder(secret),
        Check::Entropy(min) => high_entropy(secret, quoted, min),
        Check::PlainKey => pem_body_len(secret) >= 64 && !pem_encrypted(whole, secret),
        Check::EncryptedKey => pem_body_len(secret) >= 64 && pem_encrypted(whole, secret),
        Check::Jwt => !is_placeholder(secret) && jwt_header(secret),
        Check::BasicAuth => basic_auth(secret),
    }
}

/// One reported match, already masked.
#[derive(Debug, Clone)]
pub struct SecretMatch {
    pub rule: &'static Rule,
    /// 1-based line where the match starts.
    pub line: u32,
    /// The text before the secret in the match (a key name, a PEM header) and the masked secret.
    pub evidence: String,
}

struct Hit {
    rule: usize,
    start: usize,
    secret: Range<usize>,
}

/// The compiled rule set.
pub struct SecretScanner {
    rules: Vec<(&'static Rule, Regex)>,
    prefilter: AhoCorasick,
    /// For each prefilter pattern, the rules it stands for.
    pattern_rules: Vec<Vec<usize>>,
}

impl SecretScanner {
    /// Compiles `rules`. Patterns are byte-oriented (no Unicode classes), so that files in any
    /// encoding are read and word boundaries stay on the fast engines.
    pub fn new(rules: &'static [Rule]) -> Result<Self, String> {
        let mut compiled = Vec::with_capacity(rules.len());
        let mut keywords: Vec<String> = Vec::new();
        let mut pattern_rules: Vec<Vec<usize>> = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            let regex = RegexBuilder::new(rule.regex)
                .unicode(false)
                .build()
                .map_err(|e| format!("secret rule '{}': {e}", rule.id))?;
            if regex.capture_names().all(|n| n != Some("secret")) {
                return Err(format!("secret rule '{}' has no 'secret' group", rule.id));
            }
            compiled.push((rule, regex));
            for keyword in rule.keywords {
                let keyword = keyword.to_ascii_lowercase();
                match keywords.iter().position(|k| *k == keyword) {
                    Some(at) => pattern_rules[at].push(index),
                    None => {
                        keywords.push(keyword);
                        pattern_rules.push(vec![index]);
                    }
                }
            }
        }
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&keywords)
            .map_err(|e| format!("secret keywords: {e}"))?;
        Ok(Self { rules: compiled, prefilter, pattern_rules })
    }

    /// The built-in rules ([`RULES`]), compiled once.
    pub fn builtin() -> &'static SecretScanner {
        static SCANNER: OnceLock<SecretScanner> = OnceLock::new();
        // The built-in patterns are constants; a unit test compiles them.
        SCANNER.get_or_init(|| Self::new(RULES).expect("the built-in secret rules compile"))
    }

    /// The secrets in a text file's bytes, in file order. Binaries give nothing.
    pub fn scan(&self, bytes: &[u8]) -> Vec<SecretMatch> {
        self.scan_with(bytes, true)
    }

    /// [`scan`](Self::scan), with or without the generic (entropy) rule.
    pub fn scan_with(&self, bytes: &[u8], generic: bool) -> Vec<SecretMatch> {
        self.scan_bounded(bytes, generic).0
    }

    /// [`scan_with`](Self::scan_with), and whether matches past [`MAX_PER_FILE`] (of one rule,
    /// or in all, the least severe first) were left out.
    pub fn scan_bounded(&self, bytes: &[u8], generic: bool) -> (Vec<SecretMatch>, bool) {
        if is_binary(bytes) {
            return (Vec::new(), false);
        }
        let mut triggered = vec![false; self.rules.len()];
        let mut pending = self.rules.len();
        for hit in self.prefilter.find_overlapping_iter(bytes) {
            for &rule in &self.pattern_rules[hit.pattern().as_usize()] {
                if !triggered[rule] {
                    triggered[rule] = true;
                    pending -= 1;
                }
            }
            if pending == 0 {
                break;
            }
        }
        let mut hits = Vec::new();
        let mut truncated = false;
        for (index, (rule, regex)) in self.rules.iter().enumerate() {
            if !triggered[index] || !generic && rule.is_generic() {
                continue;
            }
            let mut of_rule = 0;
            for captures in regex.captures_iter(bytes) {
                let (Some(whole), Some(secret)) = (captures.get(0), captures.name("secret")) else { continue };
                let quoted = secret.start().checked_sub(1).is_some_and(|i| matches!(bytes[i], b'"' | b'\''));
                if passes(rule.check, whole.as_bytes(), secret.as_bytes(), quoted) {
                    if of_rule == MAX_PER_FILE {
                        truncated = true;
                        break;
                    }
                    hits.push(Hit { rule: index, start: whole.start(), secret: secret.range() });
                    of_rule += 1;
                }
            }
        }
        let specific: Vec<Range<usize>> =
            hits.iter().filter(|h| !self.rules[h.rule].0.is_generic()).map(|h| h.secret.clone()).collect();
        hits.retain(|h| {
            !self.rules[h.rule].0.is_generic()
                || !specific.iter().any(|s| s.start < h.secret.end && h.secret.start < s.end)
        });
        if hits.len() > MAX_PER_FILE {
            // The most severe first, in file order among equals.
            hits.sort_by_key(|h| (std::cmp::Reverse(self.rules[h.rule].0.severity), h.start, h.rule));
            hits.truncate(MAX_PER_FILE);
            truncated = true;
        }
        hits.sort_by_key(|h| (h.start, h.rule));
        let (mut line, mut counted) = (1u32, 0usize);
        let matches = hits
            .into_iter()
            .map(|hit| {
                let newlines = memchr::memchr_iter(b'\n', &bytes[counted..hit.start]).count();
                line = line.saturating_add(u32::try_from(newlines).unwrap_or(u32::MAX));
                counted = hit.start;
                SecretMatch {
                    rule: self.rules[hit.rule].0,
                    line,
                    evidence: evidence(&bytes[hit.start..hit.secret.start], &bytes[hit.secret.clone()]),
                }
            })
            .collect();
        (matches, truncated)
    }
}

/// Context before the secret (whitespace collapsed, its last 48 characters) and the masked secret.
fn evidence(context: &[u8], secret: &[u8]) -> String {
    let raw = String::from_utf8_lossy(context);
    let context: Vec<char> = raw.split_whitespace().collect::<Vec<_>>().join(" ").chars().collect();
    let mut out: String = context[context.len().saturating_sub(48)..].iter().collect();
    if !out.is_empty() && raw.ends_with(char::is_whitespace) {
        out.push(' ');
    }
    out.push_str(&mask(&String::from_utf8_lossy(secret)));
    out
}

/// Collects the secret findings of one scan as files stream past.
pub struct SecretCollector {
    scanner: &'static SecretScanner,
    max_file_bytes: u64,
    findings: Vec<Finding>,
    /// Text files the rules ran over.
    pub files_scanned: u64,
    dropped: u64,
    /// Files whose matches were cut to [`MAX_PER_FILE`], and the first of them.
    truncated_files: u64,
    first_truncated: Option<String>,
    /// Files not scanned for being over the size cap (counted where `wants` is asked).
    too_large: std::cell::Cell<u64>,
}

impl SecretCollector {
    pub fn new(limits: &Limits) -> Self {
        Self {
            scanner: SecretScanner::builtin(),
            max_file_bytes: limits.max_secret_file_bytes,
            findings: Vec::new(),
            files_scanned: 0,
            dropped: 0,
            truncated_files: 0,
            first_truncated: None,
            too_large: std::cell::Cell::new(0),
        }
    }

    /// Whether a regular file of `size` bytes at `path` is to be scanned.
    pub fn wants(&self, path: &str, size: u64) -> bool {
        if size == 0 || skips_path(path) {
            return false;
        }
        if size > self.max_file_bytes {
            self.too_large.set(self.too_large.get() + 1);
            return false;
        }
        true
    }

    /// Scans a file already in memory. `layer` is the diff id of the layer it came from.
    pub fn scan_file(&mut self, layer: Option<&str>, path: &str, bytes: &[u8]) {
        if is_binary(bytes) {
            return;
        }
        self.files_scanned += 1;
        let (matches, truncated) = self.scanner.scan_bounded(bytes, !third_party(path));
        if truncated {
            self.truncated_files += 1;
            self.first_truncated.get_or_insert_with(|| format!("/{path}"));
        }
        for found in matches {
            if self.findings.len() >= MAX_FINDINGS {
                self.dropped += 1;
                continue;
            }
            let rule = found.rule;
            let mut finding = Finding::new(FindingKind::Secret, rule.id, rule.title, rule.severity);
            finding.locations = vec![Location { layer: layer.map(String::from), path: format!("/{path}") }];
            finding.line = Some(found.line);
            finding.evidence = Some(found.evidence);
            finding.remediation = Some(REMEDIATION.to_string());
            finding.data_source = DATA_SOURCE.to_string();
            self.findings.push(finding);
        }
    }

    /// Reads a file (at most the size cap) and scans it; a binary is recognised from its first
    /// bytes and not read further. `scratch` is a reusable buffer.
    pub fn read_and_scan(
        &mut self,
        layer: Option<&str>,
        path: &str,
        mut reader: impl Read,
        scratch: &mut Vec<u8>,
    ) -> io::Result<()> {
        scratch.clear();
        (&mut reader).take(self.max_file_bytes.min(BINARY_PROBE_BYTES as u64)).read_to_end(scratch)?;
        if is_binary(scratch) {
            return Ok(());
        }
        let rest = self.max_file_bytes.saturating_sub(scratch.len() as u64);
        reader.take(rest).read_to_end(scratch)?;
        self.scan_file(layer, path, scratch);
        Ok(())
    }

    /// The findings sorted by path, line and rule id (in layer order where those are equal), and
    /// warnings for files too large to scan and findings past the cap.
    pub fn finish(mut self) -> (Vec<Finding>, Vec<String>) {
        let key = |f: &Finding| (f.locations.first().map(|l| l.path.clone()), f.line, f.id.clone());
        self.findings.sort_by_cached_key(key);
        let mut warnings = Vec::new();
        if self.too_large.get() > 0 {
            warnings.push(format!(
                "{} files over {} bytes were not scanned for secrets",
                self.too_large.get(),
                self.max_file_bytes
            ));
        }
        if self.truncated_files > 0 {
            warnings.push(format!(
                "{} files had more secret matches than the {MAX_PER_FILE} kept per file (the most severe, at most \
                 {MAX_PER_FILE} per rule), first {}",
                self.truncated_files,
                self.first_truncated.as_deref().unwrap_or_default()
            ));
        }
        if self.dropped > 0 {
            warnings.push(format!("{} more secret findings past the first {MAX_FINDINGS} were not kept", self.dropped));
        }
        (self.findings, warnings)
    }
}

/// A built-in rule by id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests;
