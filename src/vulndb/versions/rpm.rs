//! rpm version ordering (`rpmvercmp` on version and release, after the epoch).

use std::cmp::Ordering;

use super::compare_digits;

pub fn compare(a: &str, b: &str) -> Ordering {
    let (a_epoch, a_version, a_release) = split(a);
    let (b_epoch, b_version, b_release) = split(b);
    compare_digits(a_epoch, b_epoch).then_with(|| rpmvercmp(a_version, b_version)).then_with(|| {
        match (a_release, b_release) {
            (Some(a), Some(b)) => rpmvercmp(a, b),
            // A version without a release sorts before the same version with any release.
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    })
}

fn split(evr: &str) -> (&str, &str, Option<&str>) {
    let evr = evr.trim();
    let (epoch, rest) = match evr.split_once(':') {
        Some((epoch, rest)) if epoch.bytes().all(|b| b.is_ascii_digit()) => (epoch, rest),
        _ => ("0", evr),
    };
    match rest.rsplit_once('-') {
        Some((version, release)) => (epoch, version, Some(release)),
        None => (epoch, rest, None),
    }
}

fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut one, mut two) = (a.as_bytes(), b.as_bytes());
    let separator = |c: &u8| !c.is_ascii_alphanumeric() && *c != b'~' && *c != b'^';
    loop {
        while one.first().is_some_and(separator) {
            one = &one[1..];
        }
        while two.first().is_some_and(separator) {
            two = &two[1..];
        }
        // `~` sorts before everything, even the end.
        if one.first() == Some(&b'~') || two.first() == Some(&b'~') {
            if one.first() != Some(&b'~') {
                return Ordering::Greater;
            }
            if two.first() != Some(&b'~') {
                return Ordering::Less;
            }
            (one, two) = (&one[1..], &two[1..]);
            continue;
        }
        // `^` sorts after the end but before anything else.
        if one.first() == Some(&b'^') || two.first() == Some(&b'^') {
            if one.is_empty() {
                return Ordering::Less;
            }
            if two.is_empty() {
                return Ordering::Greater;
            }
            if one.first() != Some(&b'^') {
                return Ordering::Greater;
            }
            if two.first() != Some(&b'^') {
                return Ordering::Less;
            }
            (one, two) = (&one[1..], &two[1..]);
            continue;
        }
        if one.is_empty() || two.is_empty() {
            break;
        }
        let numeric = one[0].is_ascii_digit();
        let class = |c: &u8| if numeric { c.is_ascii_digit() } else { c.is_ascii_alphabetic() };
        let one_len = one.iter().position(|c| !class(c)).unwrap_or(one.len());
        let two_len = two.iter().position(|c| !class(c)).unwrap_or(two.len());
        if two_len == 0 {
            // Segments of different types: numeric ones are newer.
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        let (seg_one, seg_two) = (&one[..one_len], &two[..two_len]);
        let ordering = if numeric { compare_digits(ascii(seg_one), ascii(seg_two)) } else { seg_one.cmp(seg_two) };
        if ordering != Ordering::Equal {
            return ordering;
        }
        (one, two) = (&one[one_len..], &two[two_len..]);
    }
    match (one.is_empty(), two.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}
