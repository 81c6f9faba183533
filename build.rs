//! Generates `include/breakwater.h` with the pinned cbindgen.
//!
//! The header is committed. It is written only when its bytes change (so builds stay
//! incremental and a clean tree stays clean), and not at all when `BW_NO_HEADER` is set
//! (for builds from a read-only source tree). Version macros come from the crate version.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    // A hand-edited or stale header is rewritten by the next build.
    println!("cargo:rerun-if-changed=include/breakwater.h");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BW_NO_HEADER");
    if env::var_os("BW_NO_HEADER").is_some() {
        return;
    }
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let version = env::var("CARGO_PKG_VERSION").expect("set by cargo");
    let part = |name: &str| env::var(name).expect("set by cargo");
    config.after_includes = Some(format!(
        "\n#define BW_VERSION_MAJOR {}\n#define BW_VERSION_MINOR {}\n#define BW_VERSION_PATCH {}\n#define BW_VERSION_STRING \"{}\"\n",
        part("CARGO_PKG_VERSION_MAJOR"),
        part("CARGO_PKG_VERSION_MINOR"),
        part("CARGO_PKG_VERSION_PATCH"),
        version
    ));
    match cbindgen::Builder::new()
        .with_src(crate_dir.join("src/ffi/mod.rs"))
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            // `write_to_file` compares with the file on disk and writes only on change.
            bindings.write_to_file(crate_dir.join("include/breakwater.h"));
        }
        Err(error) => {
            // A parse error must not hide: fail the build with cbindgen's message.
            panic!("cbindgen could not generate include/breakwater.h: {error}");
        }
    }
}
