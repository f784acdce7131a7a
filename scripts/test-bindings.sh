#!/usr/bin/env bash
# Builds and tests the Rust, Go and C# bindings against an installed libmemberlist.
#
#   scripts/test-bindings.sh [PREFIX]
#
# PREFIX (or $MEMBERLIST_PREFIX): an install prefix holding lib/libmemberlist.so and
# lib/pkgconfig/memberlist.pc. Without one, the library is built and installed into
# $ML_BUILD_DIR/prefix (default build dir: build-bindings).
#
# Steps: library, regenerate + diff-check generated files, layout check, cargo test, cargo doc
# as docs.rs (no library), the Rust build from source (CMake fallback), cargo package,
# go vet + go test (plain, -race, cgocheck=2), the Go consumer module, pytest (Python, with
# its wheel test), dotnet test, dotnet pack. Every step runs; the script prints each runner's
# summary, a table at the end, and fails if any step failed.
#
# Needs: cmake, gcc, pkg-config, cargo, bindgen, rustfmt, python3 + libclang1-14 (see
# scripts/gen-bindings/clang_gen.py), golang-go (>= 1.19), python3-pytest + python3-venv
# (Debian's /usr/bin/python3, or $ML_PYTHON), dotnet SDK 10.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${ML_BUILD_DIR:-$root/build-bindings}")  # absolute: steps cd elsewhere
prefix=${1:-${MEMBERLIST_PREFIX:-}}
[ -z "$prefix" ] || prefix=$(realpath -m "$prefix")
mkdir -p "$build"
log_dir=$build/test-logs
mkdir -p "$log_dir"

declare -a results=()
failed=0

# run NAME SUMMARY_REGEX CMD...: runs CMD with output in a log, prints the lines matching
# SUMMARY_REGEX (the runner's own summary) or the log's tail on failure, records the time.
run() {
  local name=$1 summary=$2
  shift 2
  local logf="$log_dir/$name.log" start end rc
  echo "==> $name"
  start=$(date +%s)
  "$@" >"$logf" 2>&1
  rc=$?
  end=$(date +%s)
  if [ -n "$summary" ]; then grep -E "$summary" "$logf" | sed 's/^/    /'; fi
  if [ $rc -ne 0 ]; then
    echo "    FAILED (exit $rc); last lines of $logf:"
    tail -n 40 "$logf" | sed 's/^/    | /'
    failed=1
    results+=("$(printf '%-22s FAIL %4ss' "$name" $((end - start)))")
  else
    results+=("$(printf '%-22s ok   %4ss' "$name" $((end - start)))")
  fi
  return $rc
}

# ---- library --------------------------------------------------------------------------------
build_library() {
  cmake -S "$root" -B "$build" -DML_BUILD_TESTS=OFF -DML_BUILD_TOOLS=OFF &&
    cmake --build "$build" -j2 --target memberlist &&
    cmake --install "$build" --prefix "$build/prefix"
}
if [ -z "$prefix" ]; then
  run library "" build_library || { echo "cannot test bindings without the library"; exit 1; }
  prefix=$build/prefix
fi
prefix=$(cd "$prefix" && pwd)
libdir=$prefix/lib
[ -f "$libdir/pkgconfig/memberlist.pc" ] || { echo "no $libdir/pkgconfig/memberlist.pc"; exit 1; }
export PKG_CONFIG_PATH=$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export MEMBERLIST_LIB_DIR=$libdir
echo "library: $(pkg-config --modversion memberlist) in $libdir"

# ---- generated files ------------------------------------------------------------------------
generated=(
  bindings/rust/memberlist-sys/src/bindings.rs
  bindings/csharp/Memberlist/Native.g.cs
  bindings/go/memberlist/consts_g.go
  bindings/go/memberlist/layout_g.go
  tests/layout/layout.g.c
  tests/layout/expected.g.txt
  bindings/python/libmemberlist/_native_g.py
)
check_generated() {
  "$root/scripts/gen-bindings/gen-bindings" || return 1
  local untracked
  untracked=$(git -C "$root" ls-files --others --exclude-standard -- "${generated[@]}")
  if [ -n "$untracked" ]; then
    echo "generated but not committed: $untracked"
    return 1
  fi
  git -C "$root" diff --exit-code --stat -- "${generated[@]}" && echo "generated files up to date"
}
run generated "up to date|not committed|\|" check_generated

# ---- layout: the C compiler's view against libclang's (the C# and Go tests check theirs) ----
check_layout() {
  gcc -std=c11 -Wall -Wextra -Werror -I "$root/include" "$root/tests/layout/layout.g.c" \
    -o "$build/layout" &&
    "$build/layout" >"$build/layout.txt" &&
    diff -u "$root/tests/layout/expected.g.txt" "$build/layout.txt" &&
    echo "layout: $(wc -l <"$build/layout.txt") rows match"
}
run layout "rows match|^[-+]" check_layout

# ---- Rust -----------------------------------------------------------------------------------
export CARGO_TARGET_DIR=$build/cargo
rust=$root/bindings/rust/Cargo.toml
# Unit, integration and doc tests (every public item is documented: #![deny(missing_docs)]).
run rust "^test result|^test .*FAILED|panicked" cargo test --offline --manifest-path "$rust"
# The host-transport example runs: 3 nodes over TCP only must converge (it exits 1 otherwise).
run rust-example "sees:|^error" cargo run --offline --quiet --manifest-path "$rust" -p libmemberlist --example tcp_transport
# docs.rs builds without the library: DOCS_RS set, nothing to find and no source tree to
# build from (MEMBERLIST_SOURCE_DIR points nowhere), rustdoc warnings are errors.
run rust-docs "^error|warning|Generated" env -u MEMBERLIST_LIB_DIR DOCS_RS=1 \
  PKG_CONFIG_PATH=/nonexistent MEMBERLIST_SOURCE_DIR=/nonexistent RUSTDOCFLAGS="-D warnings" \
  CARGO_TARGET_DIR="$build/cargo-docs" cargo doc --offline --no-deps --manifest-path "$rust"
# Without pkg-config's copy, the build script builds the library from this tree with CMake
# into OUT_DIR, and the tests link and run against that copy.
rust_from_source() {
  local target=$build/cargo-from-source log=$log_dir/rust-from-source.cargo.log bin
  env -u MEMBERLIST_LIB_DIR MEMBERLIST_BUILD_FROM_SOURCE=1 CARGO_TARGET_DIR="$target" \
    cargo test --offline --manifest-path "$rust" -p libmemberlist --test events_channel \
    2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || return 1
  grep -q 'building libmemberlist from .* with CMake' "$log" || { echo "no CMake build"; return 1; }
  bin=$(sed -n 's/.*Running tests\/events_channel.rs (\(.*\))/\1/p' "$log")
  ldd "$bin" | grep 'libmemberlist.so.0 => .*/out/prefix/lib/libmemberlist.so.0' ||
    { echo "the test did not run against the library built from source"; return 1; }
}
run rust-from-source "^test result|with CMake|=> .*libmemberlist" rust_from_source
# cargo package (offline; --workspace packages libmemberlist-sys first for libmemberlist to
# verify against) builds each packed crate from its .crate file. Its own, empty CARGO_HOME:
# cargo unpacks the packed libmemberlist-sys under CARGO_HOME/registry/src, keyed by the
# temporary registry's path, and reuses an earlier run's copy there (same version, same path)
# instead of the crate just packed.
rm -rf "$build/cargo-package-home"
run rust-package "Packaged|Verifying|^error" env CARGO_TARGET_DIR="$build/cargo-package" \
  CARGO_HOME="$build/cargo-package-home" \
  cargo package --offline --workspace --allow-dirty --manifest-path "$rust"

# ---- Go -------------------------------------------------------------------------------------
export GOFLAGS=-mod=mod GOPROXY=off
export CGO_LDFLAGS="-Wl,-rpath,$libdir${CGO_LDFLAGS:+ $CGO_LDFLAGS}"
gomod=$root/bindings/go/memberlist
# Go 1.19/1.20 switch cgocheck=2 on at run time; 1.21+ moved it to GOEXPERIMENT.
if go version 2>/dev/null | grep -E 'go1\.(19|20)[ .]' >/dev/null; then
  cgocheck=(env GODEBUG=cgocheck=2)
else
  cgocheck=(env GOEXPERIMENT=cgocheck2)
fi
run go-vet "" bash -c "cd '$gomod' && go vet ./..."
run go-test "^(ok|FAIL|---)" bash -c "cd '$gomod' && go test -count=1 ./..."
run go-test-race "^(ok|FAIL|---)|DATA RACE" bash -c "cd '$gomod' && go test -race -count=1 ./..."
run go-test-cgocheck2 "^(ok|FAIL|---)" bash -c "cd '$gomod' && ${cgocheck[*]} go test -count=1 ./..."
# A consumer module outside the repository using the binding through a replace directive
# (bindings/go/consumer, copied with the replace path made absolute), built offline and run.
go_consumer() {
  local dir=$build/go-consumer
  rm -rf "$dir" && cp -r "$root/bindings/go/consumer" "$dir" &&
    sed -i "s#=> ../memberlist#=> $gomod#" "$dir/go.mod" &&
    (cd "$dir" && go vet . && go build -o consumer . && ./consumer)
}
run go-consumer "^consumer" go_consumer

# ---- Python ---------------------------------------------------------------------------------
# Debian's python3 (python3-pytest is a Debian package); the suite loads the library through
# MEMBERLIST_LIB_DIR and also builds a wheel, installs it into a fresh venv and runs an example.
python=${ML_PYTHON:-/usr/bin/python3}
run python-test "passed|failed|error" env MEMBERLIST_LIB_DIR="$libdir" PYTHONDONTWRITEBYTECODE=1 \
  "$python" -m pytest -q -p no:cacheprovider "$root/bindings/python/tests"

# ---- C# -------------------------------------------------------------------------------------
export ML_DOTNET_OUT=$build/dotnet
cs=$root/bindings/csharp
run dotnet-test "Passed!|Failed!|\[FAIL\]|error" dotnet test "$cs/Memberlist.Tests" --nologo
pack() {
  rm -rf "$build/nupkg"
  local repo=()
  repo+=("-p:RepositoryCommit=$(git -C "$root" rev-parse HEAD)")
  # Only a URL: NuGet drops the whole <repository> element for a local path (a clone of a
  # clone has one as its origin).
  if url=$(git -C "$root" remote get-url origin 2>/dev/null) && [[ $url == *://* ]]; then
    repo+=("-p:RepositoryUrl=$url")
  fi
  dotnet pack "$cs/Memberlist" --nologo -c Release -o "$build/nupkg" \
    -p:MemberlistNativeLib="$libdir/libmemberlist.so" "${repo[@]}" || return 1
  python3 -m zipfile -l "$build/nupkg"/LibMemberlist.*.nupkg >"$build/nupkg/contents.txt"
  # The library, the assembly, its XML docs and the README.
  local files='runtimes/linux-x64/native/libmemberlist.so |lib/net10.0/Memberlist.dll |lib/net10.0/Memberlist.xml |README.md '
  grep -E "$files" "$build/nupkg/contents.txt"
  [ "$(grep -cE "$files" "$build/nupkg/contents.txt")" = 4 ] || { echo "package lacks a file"; return 1; }
  # The metadata: license, readme, repository (type and commit); documented members in the XML.
  python3 -m zipfile -e "$build"/nupkg/LibMemberlist.*.nupkg "$build/nupkg/unpacked" || return 1
  local nuspec=$build/nupkg/unpacked/LibMemberlist.nuspec
  for want in '<license type="expression">MPL-2.0</license>' '<readme>README.md</readme>' \
    '<repository type="git" commit="'; do
    grep -qF "$want" "$nuspec" || { echo "nuspec lacks $want"; return 1; }
  done
  grep -c '<member name=' "$build/nupkg/unpacked/lib/net10.0/Memberlist.xml" |
    sed 's/^/package XML docs: members documented: /'
  grep -q '<member name="T:LibMemberlist.Memberlist">' "$build/nupkg/unpacked/lib/net10.0/Memberlist.xml" ||
    { echo "Memberlist.xml does not document the Memberlist class"; return 1; }
  # The symbols package: the portable PDB.
  python3 -m zipfile -l "$build"/nupkg/LibMemberlist.*.snupkg | grep -E 'lib/net10.0/Memberlist.pdb ' ||
    { echo "no .snupkg with Memberlist.pdb"; return 1; }
  # It carries the stripped library cmake --install ships (docs/packaging.md), not a debug
  # build: no debug sections, and the whole package stays small.
  local nupkg size
  nupkg=$(ls "$build"/nupkg/LibMemberlist.*.nupkg) || return 1
  if readelf -S "$build/nupkg/unpacked/runtimes/linux-x64/native/libmemberlist.so" |
    grep '\.debug_' >/dev/null; then
    echo "the packed libmemberlist.so carries debug info"
    return 1
  fi
  size=$(stat -c %s "$nupkg")
  echo "package size: $size bytes ($(basename "$nupkg")), native library stripped"
  [ "$size" -lt $((5 * 1024 * 1024)) ] || { echo "package over 5 MB"; return 1; }
  # A consumer restoring the package (own packages folder, so no stale cached copy) must find
  # the native library through the package alone.
  local c=$build/nupkg/consumer
  mkdir -p "$c"
  cp "$cs/examples/PackageConsumer/Program.cs" "$c/Program.cs"
  cat >"$c/Consumer.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework>
    <ImplicitUsings>enable</ImplicitUsings><Nullable>enable</Nullable>
    <RestorePackagesPath>$c/packages</RestorePackagesPath></PropertyGroup>
  <ItemGroup><PackageReference Include="LibMemberlist" Version="*" /></ItemGroup>
</Project>
EOF
  cat >"$c/nuget.config" <<EOF
<configuration><packageSources><clear /><add key="built" value="$build/nupkg" /></packageSources></configuration>
EOF
  (cd "$c" && env -u ML_DOTNET_OUT -u MEMBERLIST_LIB_DIR -u LD_LIBRARY_PATH dotnet run --nologo)
}
run dotnet-pack "runtimes/|lib/net|README|package size|package XML|package consumer" pack
run dotnet-examples "error|Build succeeded" bash -c \
  "dotnet build '$cs/examples/Join' --nologo && dotnet build '$cs/examples/Chat' --nologo && dotnet build '$cs/examples/Bench' --nologo && dotnet build '$cs/examples/BenchEvents' --nologo && dotnet build '$cs/examples/TlsTransport' --nologo && dotnet run --no-build --project '$cs/examples/TlsTransport'"

# ---- summary --------------------------------------------------------------------------------
echo
echo "bindings summary (logs in $log_dir):"
printf '  %s\n' "${results[@]}"
if [ $failed -ne 0 ]; then
  echo "FAILED"
  exit 1
fi
echo "all binding checks passed"
