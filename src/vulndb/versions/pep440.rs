//! PEP 440 ordering, with the normalisations `packaging` applies (`alpha`→`a`, `c`/`pre`→`rc`,
//! `rev`/`r`/`-N`→`post`, separators, case). Versions that are not PEP 440 sort before every
//! valid one, ordered among themselves by their text, as `packaging`'s legacy versions did.

use std::cmp::Ordering;

use super::compare_digits;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pep440 {
    epoch: String,
    release: Vec<String>,
    /// (0 = a, 1 = b, 2 = rc, number)
    pre: Option<(u8, String)>,
    post: Option<String>,
    dev: Option<String>,
    local: Vec<LocalPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LocalPart {
    Number(String),
    Text(String),
}

impl LocalPart {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Number(a), Self::Number(b)) => compare_digits(a, b),
            (Self::Number(_), Self::Text(_)) => Ordering::Greater,
            (Self::Text(_), Self::Number(_)) => Ordering::Less,
            (Self::Text(a), Self::Text(b)) => a.cmp(b),
        }
    }
}

pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => compare_parsed(&a, &b),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => a.trim().to_ascii_lowercase().cmp(&b.trim().to_ascii_lowercase()),
    }
}

fn compare_parsed(a: &Pep440, b: &Pep440) -> Ordering {
    compare_digits(&a.epoch, &b.epoch)
        .then_with(|| compare_release(&a.release, &b.release))
        .then_with(|| pre_key(a).cmp(&pre_key(b)))
        .then_with(|| compare_optional_number(&a.post, &b.post, Ordering::Less))
        .then_with(|| compare_optional_number(&a.dev, &b.dev, Ordering::Greater))
        .then_with(|| compare_local(&a.local, &b.local))
}

fn compare_release(a: &[String], b: &[String]) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        let zero = String::from("0");
        let ordering = compare_digits(a.get(i).unwrap_or(&zero), b.get(i).unwrap_or(&zero));
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

/// Pre-release key: a dev release without pre or post sorts before every pre-release; a final
/// release after them.
fn pre_key(version: &Pep440) -> (i8, u8, NumberKey) {
    match &version.pre {
        Some((kind, number)) => (0, *kind, NumberKey(number.clone())),
        None if version.post.is_none() && version.dev.is_some() => (-1, 0, NumberKey::default()),
        None => (1, 0, NumberKey::default()),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct NumberKey(String);

impl PartialOrd for NumberKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NumberKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_digits(&self.0, &other.0)
    }
}

/// Compares optional numbers; `missing` is how an absent one compares to a present one.
fn compare_optional_number(a: &Option<String>, b: &Option<String>, missing: Ordering) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => compare_digits(a, b),
        (None, None) => Ordering::Equal,
        (None, Some(_)) => missing,
        (Some(_), None) => missing.reverse(),
    }
}

fn compare_local(a: &[LocalPart], b: &[LocalPart]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ordering = x.cmp(y);
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    a.len().cmp(&b.len())
}

/// A small cursor over the lower-cased version text.
struct Cursor<'a> {
    text: &'a str,
}

impl<'a> Cursor<'a> {
    fn eat(&mut self, prefix: &str) -> bool {
        match self.text.strip_prefix(prefix) {
            Some(rest) => {
                self.text = rest;
                true
            }
            None => false,
        }
    }

    fn eat_separator(&mut self) -> bool {
        self.eat(".") || self.eat("-") || self.eat("_")
    }

    fn digits(&mut self) -> Option<&'a str> {
        let end = self.text.bytes().position(|c| !c.is_ascii_digit()).unwrap_or(self.text.len());
        if end == 0 {
            return None;
        }
        let (digits, rest) = self.text.split_at(end);
        self.text = rest;
        Some(digits)
    }

    /// Tries a sub-parse; restores the position when it fails.
    fn attempt<T>(&mut self, parse: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let saved = self.text;
        let result = parse(self);
        if result.is_none() {
            self.text = saved;
        }
        result
    }
}

fn parse(version: &str) -> Option<Pep440> {
    let lower = version.trim().to_ascii_lowercase();
    let mut cursor = Cursor { text: &lower };
    cursor.eat("v");
    let epoch = cursor
        .attempt(|c| {
            let epoch = c.digits()?;
            c.eat("!").then_some(epoch)
        })
        .unwrap_or("0")
        .to_string();
    let mut release = vec![cursor.digits()?.to_string()];
    while let Some(part) = cursor.attempt(|c| {
        c.eat(".").then_some(())?;
        c.digits()
    }) {
        release.push(part.to_string());
    }
    let pre = cursor.attempt(|c| {
        c.eat_separator();
        let kind = [("alpha", 0), ("a", 0), ("beta", 1), ("b", 1), ("preview", 2), ("pre", 2), ("rc", 2), ("c", 2)]
            .into_iter()
            .find_map(|(word, kind)| c.eat(word).then_some(kind))?;
        c.eat_separator();
        Some((kind, c.digits().unwrap_or("0").to_string()))
    });
    let post = cursor
        .attempt(|c| {
            c.eat_dash()?;
            c.digits().map(str::to_string)
        })
        .or_else(|| {
            cursor.attempt(|c| {
                c.eat_separator();
                ["post", "rev", "r"].into_iter().find(|word| c.eat(word))?;
                c.eat_separator();
                Some(c.digits().unwrap_or("0").to_string())
            })
        });
    let dev = cursor.attempt(|c| {
        c.eat_separator();
        c.eat("dev").then_some(())?;
        c.eat_separator();
        Some(c.digits().unwrap_or("0").to_string())
    });
    let local = match cursor.text.strip_prefix('+') {
        Some(local) => {
            let parts: Vec<LocalPart> = local
                .split(['.', '-', '_'])
                .map(|part| {
                    if !part.is_empty() && part.bytes().all(|c| c.is_ascii_digit()) {
                        Some(LocalPart::Number(part.to_string()))
                    } else if !part.is_empty() && part.bytes().all(|c| c.is_ascii_alphanumeric()) {
                        Some(LocalPart::Text(part.to_string()))
                    } else {
                        None
                    }
                })
                .collect::<Option<_>>()?;
            cursor.text = "";
            parts
        }
        None => Vec::new(),
    };
    cursor.text.is_empty().then_some(Pep440 { epoch, release, pre, post, dev, local })
}

impl Cursor<'_> {
    fn eat_dash(&mut self) -> Option<()> {
        self.eat("-").then_some(())
    }
}
