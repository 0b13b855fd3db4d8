//! RubyGems ordering (`Gem::Version#<=>`): numeric and text segments, `-` meaning `.pre.`,
//! trailing zeros of the release and pre-release parts dropped, text sorting before numbers.

use std::cmp::Ordering;

use super::compare_digits;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Number(String),
    Text(String),
}

impl Segment {
    fn is_zero(&self) -> bool {
        matches!(self, Self::Number(n) if n.bytes().all(|c| c == b'0'))
    }
}

fn canonical_segments(version: &str) -> Vec<Segment> {
    let text = version.trim().replace('-', ".pre.");
    let mut segments = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if bytes[i].is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            segments.push(Segment::Number(text[start..i].to_string()));
        } else if bytes[i].is_ascii_alphabetic() {
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            segments.push(Segment::Text(text[start..i].to_string()));
        } else {
            i += 1;
        }
    }
    let split = segments.iter().position(|s| matches!(s, Segment::Text(_))).unwrap_or(segments.len());
    let pre = segments.split_off(split);
    let trim = |mut part: Vec<Segment>| {
        while part.last().is_some_and(Segment::is_zero) {
            part.pop();
        }
        part
    };
    let mut canonical = trim(segments);
    canonical.extend(trim(pre));
    canonical
}

pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (canonical_segments(a), canonical_segments(b));
    let zero = Segment::Number("0".into());
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).unwrap_or(&zero), b.get(i).unwrap_or(&zero));
        let ordering = match (x, y) {
            (Segment::Number(x), Segment::Number(y)) => compare_digits(x, y),
            (Segment::Text(_), Segment::Number(_)) => Ordering::Less,
            (Segment::Number(_), Segment::Text(_)) => Ordering::Greater,
            (Segment::Text(x), Segment::Text(y)) => x.cmp(y),
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}
