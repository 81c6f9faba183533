//! The README's examples are the files the test command runs, word for word.
#![cfg(not(loom))]

const README: &str = include_str!("../README.md");

#[test]
fn the_c_quick_start_is_the_example_file() {
    let file = include_str!("../bindings/c/examples/hello.c");
    let body = file.split_once("*/\n").map_or(file, |(_, rest)| rest);
    assert!(
        README.contains(body),
        "README's C block differs from bindings/c/examples/hello.c"
    );
}

#[test]
fn the_readme_has_exactly_the_two_commands_at_the_top() {
    let first_block = README
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let commands: Vec<&str> = first_block
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        commands,
        [
            "cargo run --release --features cli -- demo --out demo.svg",
            "bash scripts/test.sh"
        ]
    );
    assert!(include_str!("../.ci/run").contains("bash scripts/test.sh"));
}
