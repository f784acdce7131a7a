//! Finds libmemberlist: MEMBERLIST_LIB_DIR if set, else `pkg-config memberlist` (the binary,
//! no crate). Adds an rpath so test binaries run without LD_LIBRARY_PATH.
use std::{env, process::Command};

fn main() {
    println!("cargo:rerun-if-env-changed=MEMBERLIST_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let lib_dir = match env::var("MEMBERLIST_LIB_DIR") {
        Ok(dir) => dir,
        Err(_) => pkg_config_libdir(),
    };
    println!("cargo:rustc-link-search=native={lib_dir}");
    println!("cargo:rustc-link-lib=dylib=memberlist");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    println!("cargo:lib_dir={lib_dir}");
}

fn pkg_config_libdir() -> String {
    // The ABI window this crate was generated for: 0.x (ML_ABI_VERSION 0).
    let out = Command::new("pkg-config")
        .args(["--print-errors", "memberlist >= 0.1.0", "memberlist < 1.0.0"])
        .output()
        .expect("running pkg-config (set MEMBERLIST_LIB_DIR to skip it)");
    if !out.status.success() {
        panic!(
            "pkg-config could not find libmemberlist (set PKG_CONFIG_PATH or MEMBERLIST_LIB_DIR): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new("pkg-config")
        .args(["--variable=libdir", "memberlist"])
        .output()
        .expect("running pkg-config");
    String::from_utf8(out.stdout).expect("utf-8 libdir").trim().to_string()
}
