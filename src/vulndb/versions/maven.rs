//! Maven ordering (`ComparableVersion`): items split at `.`, `-` and digit/letter changes,
//! nested lists after `-` and transitions, well-known qualifiers
//! (`alpha < beta < milestone < rc < snapshot < "" < sp`), trailing null items trimmed.

use std::cmp::Ordering;

use super::compare_digits;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Int(String),
    Text(String),
    List(Vec<Item>),
}

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE_INDEX: usize = 5;

/// The sortable key of a qualifier: its index, or after all known ones, by name.
fn qualifier_key(qualifier: &str) -> String {
    match QUALIFIERS.iter().position(|q| *q == qualifier) {
        Some(index) => index.to_string(),
        None => format!("{}-{qualifier}", QUALIFIERS.len()),
    }
}

fn text_item(value: &str, followed_by_digit: bool) -> Item {
    let value = match value {
        "a" if followed_by_digit => "alpha",
        "b" if followed_by_digit => "beta",
        "m" if followed_by_digit => "milestone",
        "ga" | "final" | "release" => "",
        "cr" => "rc",
        other => other,
    };
    Item::Text(value.to_string())
}

fn parse_item(is_digit: bool, text: &str) -> Item {
    if is_digit {
        let trimmed = text.trim_start_matches('0');
        Item::Int(if trimmed.is_empty() { "0".into() } else { trimmed.into() })
    } else {
        text_item(text, false)
    }
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Self::Int(value) => value == "0",
            Self::Text(value) => qualifier_key(value) == RELEASE_INDEX.to_string(),
            Self::List(items) => items.is_empty(),
        }
    }

    /// Compares with another item, or with "nothing" (`None`).
    fn compare(&self, other: Option<&Item>) -> Ordering {
        match (self, other) {
            (Self::Int(value), None) => {
                if value == "0" {
                    Ordering::Equal
                } else {
                    Ordering::Greater
                }
            }
            (Self::Text(value), None) => qualifier_key(value).cmp(&RELEASE_INDEX.to_string()),
            (Self::List(items), None) => items.first().map_or(Ordering::Equal, |first| first.compare(None)),
            (Self::Int(a), Some(Self::Int(b))) => compare_digits(a, b),
            (Self::Int(_), Some(_)) => Ordering::Greater,
            (Self::Text(_), Some(Self::Int(_) | Self::List(_))) => Ordering::Less,
            (Self::Text(a), Some(Self::Text(b))) => qualifier_key(a).cmp(&qualifier_key(b)),
            (Self::List(_), Some(Self::Int(_))) => Ordering::Less,
            (Self::List(_), Some(Self::Text(_))) => Ordering::Greater,
            (Self::List(a), Some(Self::List(b))) => {
                for i in 0..a.len().max(b.len()) {
                    let ordering = match (a.get(i), b.get(i)) {
                        (None, None) => Ordering::Equal,
                        (None, Some(right)) => right.compare(None).reverse(),
                        (Some(left), right) => left.compare(right),
                    };
                    if ordering != Ordering::Equal {
                        return ordering;
                    }
                }
                Ordering::Equal
            }
        }
    }
}

fn normalize(items: &mut Vec<Item>, nested: bool) {
    let mut i = items.len();
    while i > 0 {
        i -= 1;
        if items[i].is_null() {
            items.remove(i);
        } else if !matches!(items[i], Item::List(_)) {
            break;
        }
    }
    // A list left starting with a list only held null items before a `-` (`1-ga-1`, `1--1`):
    // the spec trims those at each hyphen, so `1-ga-1` equals `1-1`.
    if nested
        && let [Item::List(_), ..] = items.as_slice()
        && let Item::List(inner) = items.remove(0)
    {
        items.splice(0..0, inner);
    }
}

/// The deepest nesting of lists `parse` builds. Real versions nest a few levels (one per `-`
/// and digit/letter change); crafted ones (`1-1-1-…`) nest as deep as they are long, and
/// comparing or dropping such a list recurses once per level. Beyond this depth both versions
/// are compared flat.
const MAX_DEPTH: usize = 64;

/// Parses into nested lists; a new list starts after `-` and at each digit/letter change.
/// With `flat`, every item goes into one list (no nesting). `None` when the nesting would
/// exceed `MAX_DEPTH`.
fn parse(version: &str, flat: bool) -> Option<Item> {
    let version = version.trim().to_lowercase();
    let chars: Vec<char> = version.chars().collect();
    // The stack of open lists; each finished list is normalised and attached to its parent.
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    let mut is_digit = false;
    let mut start = 0;
    let slice = |from: usize, to: usize| chars[from..to].iter().collect::<String>();
    let open = |stack: &mut Vec<Vec<Item>>| {
        if !flat {
            stack.push(Vec::new());
        }
        stack.len() <= MAX_DEPTH
    };
    for (i, &c) in chars.iter().enumerate() {
        let current = stack.len() - 1;
        if c == '.' {
            let item = if i == start { Item::Int("0".into()) } else { parse_item(is_digit, &slice(start, i)) };
            stack[current].push(item);
            start = i + 1;
        } else if c == '-' {
            let item = if i == start { Item::Int("0".into()) } else { parse_item(is_digit, &slice(start, i)) };
            stack[current].push(item);
            start = i + 1;
            if !open(&mut stack) {
                return None;
            }
        } else if c.is_ascii_digit() {
            if !is_digit && i > start {
                stack[current].push(text_item(&slice(start, i), true));
                start = i;
                if !open(&mut stack) {
                    return None;
                }
            }
            is_digit = true;
        } else {
            if is_digit && i > start {
                stack[current].push(parse_item(true, &slice(start, i)));
                start = i;
                if !open(&mut stack) {
                    return None;
                }
            }
            is_digit = false;
        }
    }
    if chars.len() > start {
        let current = stack.len() - 1;
        stack[current].push(parse_item(is_digit, &slice(start, chars.len())));
    }
    // Close the nested lists innermost first, as Maven normalises them.
    while stack.len() > 1 {
        let mut inner = stack.pop().unwrap_or_default();
        normalize(&mut inner, true);
        if let Some(parent) = stack.last_mut() {
            parent.push(Item::List(inner));
        }
    }
    let mut root = stack.pop().unwrap_or_default();
    normalize(&mut root, false);
    Some(Item::List(root))
}

pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a, false), parse(b, false)) {
        (Some(a), Some(b)) => a.compare(Some(&b)),
        // Too deep to nest: compare both as flat lists of items, which recurses no further.
        _ => match (parse(a, true), parse(b, true)) {
            (Some(a), Some(b)) => a.compare(Some(&b)),
            _ => a.cmp(b),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deeply_nested_versions_compare_without_overflowing_the_stack() {
        let deep = "1-".repeat(200_000);
        let deeper = format!("{deep}2");
        assert_eq!(compare(&deep, &deep), Ordering::Equal);
        assert_eq!(compare(&deep, &deeper), Ordering::Less);
        assert_eq!(compare(&deeper, "1.0"), Ordering::Greater);
        let mixed = "1a".repeat(100_000);
        assert_eq!(compare(&mixed, &mixed), Ordering::Equal);
        assert_eq!(compare("1.0", &mixed), Ordering::Greater, "1a1… is 1-alpha-1…");
        // Ordinary versions keep their nested order.
        assert_eq!(compare("1-1", "1.1"), Ordering::Less);
        assert_eq!(compare("1.0-alpha-1", "1.0-beta"), Ordering::Less);
    }
}
