//! Alpine (apk) version ordering:
//! `number{.number}[letter]{_suffix[number]}[~hash][-r[number]]`, compared part by part.
//! A version with trailing text that fits no part sorts below the same version without it;
//! two such versions compare as text.

use std::cmp::Ordering;

use super::compare_digits;

#[derive(Debug, Default)]
struct ApkVersion<'a> {
    components: Vec<&'a str>,
    letter: Option<u8>,
    /// (weight, number): `alpha beta pre rc` < no suffix (4) < `cvs svn git hg p`.
    suffixes: Vec<(u8, &'a str)>,
    revision: &'a str,
    remainder: &'a str,
    invalid: bool,
}

const SUFFIXES: [(&str, u8); 9] =
    [("alpha", 0), ("beta", 1), ("pre", 2), ("rc", 3), ("cvs", 5), ("svn", 6), ("git", 7), ("hg", 8), ("p", 9)];
const NO_SUFFIX: u8 = 4;

fn take_digits(text: &str) -> (&str, &str) {
    super::split_while(text, |c| c.is_ascii_digit())
}

fn parse(original: &str) -> ApkVersion<'_> {
    let mut version = ApkVersion { revision: "0", ..Default::default() };
    let mut rest = original;
    // Number components: `\d+` separated by single dots (a trailing dot is consumed).
    loop {
        let (digits, after) = take_digits(rest);
        if digits.is_empty() {
            break;
        }
        version.components.push(digits);
        rest = after;
        match rest.strip_prefix('.') {
            Some(after) => rest = after,
            None => break,
        }
    }
    if let Some(&c) = rest.as_bytes().first()
        && c.is_ascii_lowercase()
    {
        version.letter = Some(c);
        rest = &rest[1..];
    }
    while let Some(after) = rest.strip_prefix('_') {
        let Some((name, weight)) = SUFFIXES.iter().find(|(name, _)| after.starts_with(name)) else {
            break;
        };
        let (number, after) = take_digits(&after[name.len()..]);
        version.suffixes.push((*weight, if number.is_empty() { "0" } else { number }));
        rest = after;
    }
    if let Some(after) = rest.strip_prefix('~') {
        let hex = after.bytes().take_while(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()).count();
        if hex > 0 {
            rest = &after[hex..];
        }
    }
    if !rest.is_empty() {
        match rest.strip_prefix("-r") {
            Some(after) => {
                let (number, after) = take_digits(after);
                version.revision = if number.is_empty() { "0" } else { number };
                rest = after;
            }
            None => version.invalid = true,
        }
    }
    version.remainder = rest;
    version
}

/// After the first component, a leading zero makes the components compare as text
/// (`1.02 < 1.1`), as apk does.
fn compare_component(index: usize, a: &str, b: &str) -> Ordering {
    if index != 0 && (a.starts_with('0') || b.starts_with('0')) {
        return a.cmp(b);
    }
    compare_digits(a, b)
}

pub fn compare(a: &str, b: &str) -> Ordering {
    let (left, right) = (parse(a), parse(b));
    if left.invalid && right.invalid {
        return a.cmp(b);
    }
    for i in 0..left.components.len().max(right.components.len()) {
        let x = left.components.get(i).copied().unwrap_or("0");
        let y = right.components.get(i).copied().unwrap_or("0");
        let ordering = compare_component(i, x, y);
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    let ordering = left.letter.cmp(&right.letter);
    if ordering != Ordering::Equal {
        return ordering;
    }
    for i in 0..left.suffixes.len().max(right.suffixes.len()) {
        let (x_weight, x_number) = left.suffixes.get(i).copied().unwrap_or((NO_SUFFIX, "0"));
        let (y_weight, y_number) = right.suffixes.get(i).copied().unwrap_or((NO_SUFFIX, "0"));
        let ordering = x_weight.cmp(&y_weight).then_with(|| compare_digits(x_number, y_number));
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    let ordering = compare_digits(left.revision, right.revision);
    if ordering != Ordering::Equal {
        return ordering;
    }
    match (left.remainder.is_empty(), right.remainder.is_empty()) {
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => Ordering::Equal,
    }
}
