//! NuGet ordering: up to four numeric parts, then release labels compared case-insensitively;
//! metadata after `+` is ignored.

use std::cmp::Ordering;

use super::{compare_digits, split_while};

pub fn compare(a: &str, b: &str) -> Ordering {
    let (a_parts, a_label) = parse(a);
    let (b_parts, b_label) = parse(b);
    for i in 0..a_parts.len().max(b_parts.len()) {
        let ordering = compare_digits(a_parts.get(i).map_or("0", |s| s), b_parts.get(i).map_or("0", |s| s));
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    match (a_label, b_label) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => super::semver::compare_pre_release(&x, &y),
    }
}

fn parse(version: &str) -> (Vec<&str>, Option<String>) {
    let text = version.trim();
    let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
    let text = text.split('+').next().unwrap_or_default();
    let (core, label) = match text.split_once('-') {
        Some((core, label)) => (core, Some(label.to_ascii_lowercase())),
        None => (text, None),
    };
    let mut parts = Vec::new();
    for part in core.split('.') {
        let (digits, _) = split_while(part, |c| c.is_ascii_digit());
        parts.push(digits);
    }
    (parts, label)
}
