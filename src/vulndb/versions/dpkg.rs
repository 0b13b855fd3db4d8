//! dpkg version ordering (deb-version(7)): `[epoch:]upstream[-revision]`.

use std::cmp::Ordering;

use super::{compare_digits, split_while};

pub fn compare(a: &str, b: &str) -> Ordering {
    let (a_epoch, a_upstream, a_revision) = split(a);
    let (b_epoch, b_upstream, b_revision) = split(b);
    compare_digits(a_epoch, b_epoch)
        .then_with(|| verrevcmp(a_upstream, b_upstream))
        .then_with(|| verrevcmp(a_revision, b_revision))
}

fn split(version: &str) -> (&str, &str, &str) {
    let version = version.trim();
    let (epoch, rest) = match version.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => (epoch, rest),
        _ => ("0", version),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// The weight dpkg gives a character of a non-digit run: `~` before the end, the end before
/// letters, letters before everything else.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(mut a: &str, mut b: &str) -> Ordering {
    while !a.is_empty() || !b.is_empty() {
        let (a_text, a_rest) = split_while(a, |c| !c.is_ascii_digit());
        let (b_text, b_rest) = split_while(b, |c| !c.is_ascii_digit());
        let (a_bytes, b_bytes) = (a_text.as_bytes(), b_text.as_bytes());
        for i in 0..a_bytes.len().max(b_bytes.len()) {
            let ordering = order(a_bytes.get(i).copied()).cmp(&order(b_bytes.get(i).copied()));
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        let (a_num, a_next) = split_while(a_rest, |c| c.is_ascii_digit());
        let (b_num, b_next) = split_while(b_rest, |c| c.is_ascii_digit());
        let ordering = compare_digits(a_num, b_num);
        if ordering != Ordering::Equal {
            return ordering;
        }
        a = a_next;
        b = b_next;
    }
    Ordering::Equal
}
