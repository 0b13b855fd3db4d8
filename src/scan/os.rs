//! Which operating system a filesystem holds: os-release first, then the older marker files.

use crate::model::{Distro, OsRelease};
use crate::scan::vfs::VirtualFs;

/// The files OS detection reads.
pub fn wants(path: &str) -> bool {
    matches!(
        path,
        "etc/os-release" | "usr/lib/os-release" | "etc/alpine-release" | "etc/debian_version" | "etc/redhat-release"
    )
}

pub fn detect(fs: &VirtualFs) -> Option<Distro> {
    let text = |path: &str| fs.read(path).map(|b| String::from_utf8_lossy(&b).trim().to_string());
    if let Some(os) = text("etc/os-release").or_else(|| text("usr/lib/os-release")).map(|t| OsRelease::parse(&t))
        && let Some(id) = os.id()
    {
        return Some(Distro {
            id: id.to_string(),
            version_id: os.version_id().unwrap_or_default().to_string(),
            pretty_name: os.pretty_name(),
        });
    }
    if let Some(version) = text("etc/alpine-release") {
        return Some(Distro {
            id: "alpine".into(),
            pretty_name: format!("Alpine Linux v{version}"),
            version_id: version,
        });
    }
    if let Some(version) = text("etc/debian_version") {
        let major = version.split('.').next().unwrap_or_default().to_string();
        return Some(Distro {
            id: "debian".into(),
            pretty_name: format!("Debian GNU/Linux {version}"),
            version_id: major,
        });
    }
    if let Some(release) = text("etc/redhat-release") {
        let version = release
            .split_whitespace()
            .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .unwrap_or_default();
        return Some(Distro { id: "rhel".into(), version_id: version.to_string(), pretty_name: release.clone() });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_wins_and_markers_are_fallbacks() {
        let fs = VirtualFs::from_files(&[
            ("usr/lib/os-release", "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
            ("etc/debian_version", "12.15\n"),
        ]);
        let distro = detect(&fs).unwrap();
        assert_eq!((distro.id.as_str(), distro.version_id.as_str()), ("debian", "12"));
        let fs = VirtualFs::from_files(&[("etc/alpine-release", "3.19.1\n")]);
        assert_eq!(detect(&fs).unwrap().version_id, "3.19.1");
        let fs = VirtualFs::from_files(&[("etc/debian_version", "11.9\n")]);
        assert_eq!(detect(&fs).unwrap().version_id, "11");
        let fs = VirtualFs::from_files(&[("etc/redhat-release", "Rocky Linux release 9.3 (Blue Onyx)\n")]);
        assert_eq!(detect(&fs).unwrap().version_id, "9.3");
        assert!(detect(&VirtualFs::from_files(&[("bin/app", "elf")])).is_none());
    }
}
