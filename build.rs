//! Compiles the node agent's kernel programs (src/agent/bpf/*.bpf.c) with clang for the BPF
//! target, CO-RE against a vmlinux.h that bpftool writes from this machine's BTF; the objects are
//! embedded in the binary (src/agent/programs.rs). Fails with what to install when a tool is
//! missing.

use std::path::{Path, PathBuf};
use std::process::Command;

const INSTALL: &str = "install them with: sudo apt-get install clang llvm libbpf-dev bpftool (or ./install.sh)";

fn main() {
    println!("cargo:rerun-if-changed=src/agent/bpf");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let vmlinux = out.join("vmlinux.h");
    if !vmlinux.exists() {
        write_vmlinux_h(&vmlinux);
    }
    let arch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok(other) => panic!("picket's kernel programs are built for x86_64 and aarch64, not {other}"),
        Err(e) => panic!("CARGO_CFG_TARGET_ARCH: {e}"),
    };
    let sources: Vec<PathBuf> = std::fs::read_dir("src/agent/bpf")
        .expect("src/agent/bpf")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    for source in sources {
        let name =
            source.file_name().and_then(|n| n.to_str()).unwrap_or_default().trim_end_matches(".bpf.c").to_string();
        let object = out.join(format!("{name}.bpf.o"));
        let status = Command::new("clang")
            .args(["-target", "bpf", "-O2", "-g", "-Wall", "-Werror"])
            .arg(format!("-D__TARGET_ARCH_{arch}"))
            .arg("-I")
            .arg(&out)
            .arg("-I")
            .arg("src/agent/bpf")
            .arg("-c")
            .arg(&source)
            .arg("-o")
            .arg(&object)
            .status()
            .unwrap_or_else(|e| panic!("cannot run clang to build {}: {e}; {INSTALL}", source.display()));
        assert!(status.success(), "clang failed on {}", source.display());
    }
}

fn write_vmlinux_h(path: &Path) {
    let btf = "/sys/kernel/btf/vmlinux";
    assert!(
        Path::new(btf).exists(),
        "{btf} is missing: the kernel programs are built against the running kernel's BTF (CONFIG_DEBUG_INFO_BTF)"
    );
    let output = Command::new("bpftool")
        .args(["btf", "dump", "file", btf, "format", "c"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run bpftool to write vmlinux.h: {e}; {INSTALL}"));
    assert!(output.status.success(), "bpftool failed: {}", String::from_utf8_lossy(&output.stderr));
    std::fs::write(path, output.stdout).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
