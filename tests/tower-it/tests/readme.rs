//! The README's tower quick starts are the lines of examples/quickstart.rs between its
//! `// [readme:NAME]` markers, which `cargo test` compiles and runs: this test keeps the
//! two the same.

fn region(text: &str, name: &str) -> String {
    let open = format!("// [readme:{name}]\n");
    let close = format!("// [/readme:{name}]");
    let start = text.find(&open).unwrap_or_else(|| panic!("no {open:?}")) + open.len();
    let end = text[start..]
        .find(&close)
        .unwrap_or_else(|| panic!("no {close:?}"))
        + start;
    text[start..end].to_string()
}

#[test]
fn the_readme_shows_the_quickstart_example_verbatim() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/quickstart.rs"
    ))
    .unwrap();
    for name in ["axum", "client"] {
        let code = region(&example, name);
        let block = format!("```rust,ignore\n{code}```");
        assert!(
            readme.contains(&block),
            "README.md must show examples/quickstart.rs [readme:{name}] verbatim:\n{block}"
        );
    }
}

/// `cargo test` builds the examples (as plain programs) before it runs the tests, into
/// `examples/` beside this test's own directory (`deps/`), named `quickstart-HASH`.
#[test]
fn the_quickstart_example_runs() {
    let test = std::env::current_exe().unwrap();
    let examples = test
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples");
    let example = std::fs::read_dir(&examples)
        .unwrap_or_else(|e| panic!("{}: {e}", examples.display()))
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with("quickstart-") && !name.contains('.')
        })
        .max_by_key(|entry| entry.metadata().and_then(|m| m.modified()).ok())
        .expect("cargo test built examples/quickstart")
        .path();
    let output = std::process::Command::new(&example)
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", example.display()));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("200 through both policies"));
}
