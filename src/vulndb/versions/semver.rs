//! SemVer 2.0 ordering for npm, crates.io and Go (`v` prefix). Lenient like the registries'
//! own tools: missing minor/patch count as 0, build metadata and anything after the third
//! component is ignored, text that is not a pre-release still orders as one.

use std::cmp::Ordering;

use super::{compare_digits, split_while};

struct SemVer<'a> {
    core: [&'a str; 3],
    pre: Option<&'a str>,
}

fn parse(version: &str) -> SemVer<'_> {
    let text = version.trim();
    let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
    let mut core = ["0"; 3];
    let mut rest = text;
    for (index, slot) in core.iter_mut().enumerate() {
        if index > 0 {
            match rest.strip_prefix('.') {
                Some(after) if after.starts_with(|c: char| c.is_ascii_digit()) => rest = after,
                _ => break,
            }
        }
        let (digits, after) = split_while(rest, |c| c.is_ascii_digit());
        if digits.is_empty() {
            break;
        }
        *slot = digits;
        rest = after;
    }
    let rest = rest.split('+').next().unwrap_or_default();
    let pre = if let Some(pre) = rest.strip_prefix('-') {
        Some(pre)
    } else if rest.starts_with('.') || rest.is_empty() {
        None
    } else {
        Some(rest)
    };
    SemVer { core, pre }
}

pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (parse(a), parse(b));
    for (x, y) in a.core.iter().zip(b.core.iter()) {
        let ordering = compare_digits(x, y);
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    match (a.pre, b.pre) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => compare_pre_release(x, y),
    }
}

/// Dot-separated identifiers: numeric ones compare as numbers and sort before text ones.
pub(super) fn compare_pre_release(a: &str, b: &str) -> Ordering {
    let numeric = |part: &str| !part.is_empty() && part.bytes().all(|c| c.is_ascii_digit());
    let (mut left, mut right) = (a.split('.'), b.split('.'));
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ordering = match (numeric(x), numeric(y)) {
                    (true, true) => compare_digits(x, y),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
        }
    }
}
