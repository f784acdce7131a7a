//! Finds libmemberlist, in this order:
//! 1. `DOCS_RS` set (docs.rs, or `cargo doc` without the library): links nothing.
//! 2. `MEMBERLIST_LIB_DIR`: the directory holding `libmemberlist.so`.
//! 3. `pkg-config memberlist` (the program, no crate), within the ABI window below.
//! 4. Otherwise builds the library from the source tree with CMake (into `OUT_DIR`): the
//!    tree this crate sits in (a git checkout or git dependency), or `MEMBERLIST_SOURCE_DIR`.
//!    `MEMBERLIST_BUILD_FROM_SOURCE=1` takes this step even when pkg-config would succeed.
//!
//! Adds an rpath to the library's directory so that test binaries run without
//! LD_LIBRARY_PATH, and passes the directory on as `links` metadata (`DEP_MEMBERLIST_LIB_DIR`)
//! for the `libmemberlist` crate to do the same.
use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

fn main() {
    for var in [
        "DOCS_RS",
        "MEMBERLIST_LIB_DIR",
        "MEMBERLIST_SOURCE_DIR",
        "MEMBERLIST_BUILD_FROM_SOURCE",
        "PKG_CONFIG_PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if env::var_os("DOCS_RS").is_some() {
        return;
    }
    let from_source = env::var("MEMBERLIST_BUILD_FROM_SOURCE").is_ok_and(|v| v == "1");
    let lib_dir = match env::var("MEMBERLIST_LIB_DIR") {
        Ok(dir) => dir,
        Err(_) => match pkg_config_libdir() {
            Ok(dir) if !from_source => dir,
            Ok(_) => build_from_source("MEMBERLIST_BUILD_FROM_SOURCE=1"),
            Err(why) => build_from_source(&why),
        },
    };
    println!("cargo:rustc-link-search=native={lib_dir}");
    println!("cargo:rustc-link-lib=dylib=memberlist");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    println!("cargo:lib_dir={lib_dir}");
}

/// The library directory pkg-config reports, or why there is none.
fn pkg_config_libdir() -> Result<String, String> {
    // The ABI window this crate was generated for: 0.x (ML_ABI_VERSION 0).
    let out = Command::new("pkg-config")
        .args(["--print-errors", "memberlist >= 0.1.0", "memberlist < 1.0.0"])
        .output()
        .map_err(|e| format!("running pkg-config: {e}"))?;
    if !out.status.success() {
        let detail = String::from_utf8_lossy(&out.stderr).split_whitespace().collect::<Vec<_>>().join(" ");
        return Err(format!("pkg-config did not find libmemberlist: {detail}"));
    }
    let out = Command::new("pkg-config")
        .args(["--variable=libdir", "memberlist"])
        .output()
        .map_err(|e| format!("running pkg-config: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Builds and installs the library with CMake into OUT_DIR; returns its lib directory.
fn build_from_source(why: &str) -> String {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let source = match env::var_os("MEMBERLIST_SOURCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        // bindings/rust/memberlist-sys -> the repository root
        None => manifest.join("../../.."),
    };
    if !source.join("include/memberlist.h").is_file() || !source.join("CMakeLists.txt").is_file() {
        panic!(
            "libmemberlist not found ({why}), and {} is no libmemberlist source tree to build it \
             from. Install the library (Debian: apt install libmemberlist-dev; or cmake --install \
             and set PKG_CONFIG_PATH), set MEMBERLIST_LIB_DIR, or set MEMBERLIST_SOURCE_DIR.",
            source.display()
        );
    }
    let source = source.canonicalize().unwrap();
    println!("cargo:rerun-if-changed={}", source.join("include/memberlist.h").display());
    for dir in ["src", "CMakeLists.txt", "cmake"] {
        println!("cargo:rerun-if-changed={}", source.join(dir).display());
    }
    println!("cargo:warning=building libmemberlist from {} with CMake ({why})", source.display());

    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let (build, prefix) = (out.join("cmake-build"), out.join("prefix"));
    let (src, bld, pfx) = (path_str(&source), path_str(&build), path_str(&prefix));
    let jobs = env::var("NUM_JOBS").unwrap_or_else(|_| "2".into());
    let release = "-DCMAKE_BUILD_TYPE=Release";
    cmake(&["-S", &src, "-B", &bld, release, "-DML_BUILD_TESTS=OFF", "-DML_BUILD_TOOLS=OFF"]);
    cmake(&["--build", &bld, "--target", "memberlist", "-j", &jobs]);
    for component in ["runtime", "dev"] {
        cmake(&["--install", &bld, "--prefix", &pfx, "--component", component]);
    }
    // GNUInstallDirs: lib, or lib64 on some systems.
    let lib = ["lib", "lib64"]
        .iter()
        .map(|d| prefix.join(d))
        .find(|d| d.join("libmemberlist.so").exists())
        .expect("cmake --install put no libmemberlist.so under lib or lib64");
    lib.display().to_string()
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("a UTF-8 path").to_string()
}

fn cmake(args: &[&str]) {
    let status = Command::new("cmake")
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("running cmake (needed to build libmemberlist from source): {e}"));
    if !status.success() {
        panic!("cmake {args:?} failed with {status}");
    }
}
