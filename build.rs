//! Generates `include/breakwater.h` with the pinned cbindgen, when the `capi` feature is on.
//!
//! A Rust dependent (no `capi`) runs none of this: cbindgen is an optional
//! build-dependency, so it is not even compiled. With `capi`, the header is written only
//! when its bytes change (so builds stay incremental and a clean tree stays clean), and
//! not at all when `BW_NO_HEADER` is set (for builds from a read-only source tree).
//! `BW_HEADER_OUT=PATH` writes it to PATH instead, which is how the test command checks
//! that the committed header is fresh without touching the tree.
//! Version macros come from the crate version.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "capi")]
    header::generate();
}

#[cfg(feature = "capi")]
mod header {
    use std::env;
    use std::path::PathBuf;

    pub(super) fn generate() {
        println!("cargo:rerun-if-changed=src/ffi");
        println!("cargo:rerun-if-changed=cbindgen.toml");
        // A hand-edited or stale header is rewritten by the next build.
        println!("cargo:rerun-if-changed=include/breakwater.h");
        println!("cargo:rerun-if-env-changed=BW_NO_HEADER");
        println!("cargo:rerun-if-env-changed=BW_HEADER_OUT");
        if env::var_os("BW_NO_HEADER").is_some() {
            return;
        }
        let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
        let out = env::var_os("BW_HEADER_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate_dir.join("include/breakwater.h"));
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
                bindings.write_to_file(out);
            }
            Err(error) => {
                // A parse error must not hide: fail the build with cbindgen's message.
                panic!("cbindgen could not generate include/breakwater.h: {error}");
            }
        }
    }
}
