//! CVSS base scores from vectors (the `cvss` crate does the arithmetic).

use std::str::FromStr;

use crate::model::Cvss;

/// Scores an OSV `severity[]` entry; `None` for types or vectors it cannot score.
pub fn score(kind: &str, vector: &str) -> Option<Cvss> {
    if !matches!(kind, "CVSS_V3" | "CVSS_V4") {
        return None;
    }
    let vector = vector.trim();
    let parsed = cvss::Cvss::from_str(vector).ok()?;
    let version = match parsed {
        cvss::Cvss::CvssV30(_) => "3.0",
        cvss::Cvss::CvssV31(_) => "3.1",
        cvss::Cvss::CvssV40(_) => "4.0",
        _ => return None,
    };
    Some(Cvss { version: version.into(), vector: vector.into(), score: parsed.score() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_v3_and_v4_vectors() {
        let v3 = score("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").unwrap();
        assert_eq!((v3.version.as_str(), v3.score), ("3.1", 9.8));
        let v31 = score("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N").unwrap();
        assert_eq!(v31.score, 6.1);
        let v4 = score("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N").unwrap();
        assert_eq!((v4.version.as_str(), v4.score), ("4.0", 9.3));
        assert!(score("CVSS_V3", "CVSS:3.1/AV:X").is_none());
        assert!(score("Ubuntu", "high").is_none());
    }
}
