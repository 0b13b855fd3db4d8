//! Version ordering, one module per ecosystem family. Each follows the reference implementation's
//! rules (dpkg, apk-tools, rpm, PEP 440, SemVer, Maven, RubyGems, NuGet, Composer) and is checked
//! against the shared version vectors. Comparison never fails: unparsable versions still get a
//! total order (the way the reference tool treats them), so matching stays deterministic.

mod apk;
mod dpkg;
mod maven;
mod nuget;
mod packagist;
mod pep440;
mod rpm;
mod rubygems;
mod semver;

use std::cmp::Ordering;

use crate::model::Ecosystem;

/// Orders two versions of one ecosystem.
pub fn compare(ecosystem: Ecosystem, a: &str, b: &str) -> Ordering {
    match ecosystem {
        Ecosystem::Debian | Ecosystem::Ubuntu => dpkg::compare(a, b),
        Ecosystem::Alpine | Ecosystem::Wolfi => apk::compare(a, b),
        Ecosystem::RedHat => rpm::compare(a, b),
        Ecosystem::PyPI => pep440::compare(a, b),
        Ecosystem::Npm | Ecosystem::CratesIo | Ecosystem::Go => semver::compare(a, b),
        Ecosystem::Maven => maven::compare(a, b),
        Ecosystem::RubyGems => rubygems::compare(a, b),
        Ecosystem::NuGet => nuget::compare(a, b),
        Ecosystem::Packagist => packagist::compare(a, b),
    }
}

/// Compares two runs of ASCII digits of any length as numbers.
fn compare_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Splits at the first byte where `pred` stops holding.
fn split_while(text: &str, pred: impl Fn(u8) -> bool) -> (&str, &str) {
    let end = text.bytes().position(|b| !pred(b)).unwrap_or(text.len());
    text.split_at(end)
}

#[cfg(test)]
mod tests;
