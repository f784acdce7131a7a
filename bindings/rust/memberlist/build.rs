//! Link arguments from a build script only reach the package's own targets, so the rpath that
//! memberlist-sys adds for its tests is repeated here for this crate's tests and examples;
//! memberlist-sys passes the directory on as `links` metadata (DEP_MEMBERLIST_LIB_DIR).
fn main() {
    if let Ok(dir) = std::env::var("DEP_MEMBERLIST_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
