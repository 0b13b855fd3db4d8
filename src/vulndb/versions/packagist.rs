//! Packagist (Composer) ordering: PHP's `version_compare` after canonicalisation (`-_+` become
//! dots, dots between digit/letter runs), with `dev < alpha < beta < RC < number < patch`.

use std::cmp::Ordering;

use super::compare_digits;

fn canonicalize(version: &str) -> Vec<String> {
    let text = version.trim();
    let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
    let mut out = String::with_capacity(text.len() + 4);
    let mut previous: Option<char> = None;
    for c in text.chars() {
        let separator = matches!(c, '-' | '_' | '+');
        if separator {
            if !out.ends_with('.') {
                out.push('.');
            }
        } else {
            let digit = |x: char| x.is_ascii_digit();
            let letter = |x: char| !x.is_ascii_digit() && x != '.';
            if let Some(p) = previous
                && ((letter(p) && digit(c)) || (digit(p) && letter(c)))
                && !out.ends_with('.')
            {
                out.push('.');
            }
            out.push(c);
        }
        previous = Some(c);
    }
    out.split('.').filter(|part| !part.is_empty()).map(str::to_string).collect()
}

fn special_order(form: &str) -> i32 {
    const FORMS: [(&str, i32); 10] = [
        ("dev", 0),
        ("alpha", 1),
        ("a", 1),
        ("beta", 2),
        ("b", 2),
        ("RC", 3),
        ("rc", 3),
        ("#", 4),
        ("pl", 5),
        ("p", 5),
    ];
    FORMS.iter().find(|(name, _)| form.starts_with(name)).map_or(-1, |(_, order)| *order)
}

fn is_number(part: &str) -> bool {
    part.starts_with(|c: char| c.is_ascii_digit())
}

/// The `#` PHP pads the shorter version with: a number, for `special_order`.
const NUMBER: &str = "#N#";

fn compare_parts(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ordering = match (is_number(x), is_number(y)) {
            (true, true) => compare_digits(leading_digits(x), leading_digits(y)),
            (false, false) => special_order(x).cmp(&special_order(y)),
            (true, false) => special_order(NUMBER).cmp(&special_order(y)),
            (false, true) => special_order(x).cmp(&special_order(NUMBER)),
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    match a.len().cmp(&b.len()) {
        Ordering::Equal => Ordering::Equal,
        Ordering::Greater => compare_tail(&a[b.len()..]),
        Ordering::Less => compare_tail(&b[a.len()..]).reverse(),
    }
}

/// How the longer version's extra parts order against the shorter one's end: greater at the
/// first number, otherwise each part against a number until one differs. A loop, as crafted
/// versions (`1.#.#.#…`) have as many parts as they are long.
fn compare_tail(rest: &[String]) -> Ordering {
    for part in rest {
        if is_number(part) {
            return Ordering::Greater;
        }
        let ordering = special_order(part).cmp(&special_order(NUMBER));
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

fn leading_digits(part: &str) -> &str {
    super::split_while(part, |c| c.is_ascii_digit()).0
}

pub fn compare(a: &str, b: &str) -> Ordering {
    compare_parts(&canonicalize(a), &canonicalize(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_tails_compare_without_recursing_per_part() {
        let long = format!("1{}", ".#".repeat(300_000));
        assert_eq!(compare(&long, "1"), Ordering::Equal, "# pads like a number");
        assert_eq!(compare("1", &long), Ordering::Equal);
        assert_eq!(compare(&format!("{long}.1"), "1"), Ordering::Greater);
        assert_eq!(compare("1", &format!("{long}.1")), Ordering::Less);
        assert_eq!(compare(&format!("{long}.beta"), "1"), Ordering::Less);
        assert_eq!(compare("1.0", "1.0-beta"), Ordering::Greater);
        assert_eq!(compare("1.0-patch1", "1.0"), Ordering::Greater);
    }
}
