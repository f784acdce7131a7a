#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the tests and the bindings need.
# Safe to run again: apt skips what is already installed. Needs root (or sudo).
set -euo pipefail

packages=(
  # C++ build
  cmake g++ make pkg-config
  libboost-dev libflatbuffers-dev flatbuffers-compiler libspdlog-dev libfmt-dev libssl-dev zlib1g-dev
  # hashicorp/memberlist wire format (msgpack-c, header-only)
  libmsgpack-cxx-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # fuzzing and sanitizers (clang's libFuzzer runtime)
  clang-14 libclang-rt-14-dev
  # bindings: Go (cgo), bindgen for Rust's raw layer, libclang for the C# generator
  golang-go bindgen python3-clang-14
  # Debian packages (CPack's dpkg-shlibdeps) and their test (scripts/test-packages.sh)
  dpkg-dev file binutils
  # Python binding: its tests, and the venv its wheel test installs into
  python3-pytest python3-venv
  # interop tests: Go memberlist 0.2.2 and its dependencies, built offline (GOPATH mode)
  golang-github-hashicorp-memberlist-dev
  # ABI baseline check (abidw, abidiff: scripts/abi-baseline.sh, ctest capi.abi_baseline)
  abigail-tools
  # fault tests (tests/faults): network namespaces and nftables rules
  iproute2 nftables
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
