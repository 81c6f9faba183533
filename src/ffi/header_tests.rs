//! Checks of the committed header, `include/breakwater.h` (the test command separately
//! checks that it is what `build.rs` generates from this module).
//!
//! - The ABI cannot drift silently: the header's declarations (comments and version
//!   macros aside) are fingerprinted, and the fingerprint is recorded with the ABI
//!   version it belongs to. Any change of a type, field, constant or signature fails
//!   the test until `BW_ABI_VERSION` is bumped and the pair appended to
//!   [`ABI_FINGERPRINTS`]. An addition counts too: bindings accept exactly the version
//!   they were built against.
//! - The header's comments name only what the header declares.

use super::version::BW_ABI_VERSION;

/// Every ABI version with the fingerprint of its declarations, oldest first. Append a
/// pair when the ABI changes; never edit a recorded one.
const ABI_FINGERPRINTS: &[(u32, u64)] = &[
    (1, 0x2674_c860_2f9d_89d9),
    // The stable permit: opaque words, `injected_latency_ns`, `flags`, `reserved`;
    // `BW_PERMIT_INJECTED_LATENCY`.
    (2, 0x6aa1_21cf_9635_bbd6),
    // The retry step: `bw_policy_retry_begin(.., deadline_ns, ..)`, `bw_policy_now`;
    // `bw_policy_stats` loses `budget_refusals` (refusals are rejections).
    (3, 0xfc00_3448_7f16_c3e9),
    // `bw_policy_timeout`: the per-attempt timeout a binding that can cancel cuts at.
    (4, 0xa078_4488_217e_2a6f),
    // `bw_engine_policy_names`: the names a binding lists when a lookup fails.
    (5, 0x5b8a_64ef_8fd3_9cfc),
    // Per-key limits (`bw_keyed_permit`, `bw_policy_acquire_keyed`,
    // `bw_policy_complete_keyed`), trace context (`bw_trace_context`, `bw_event.trace`,
    // `bw_policy_acquire_traced`, `bw_policy_complete_traced`,
    // `bw_policy_retry_next_traced`) and `BW_HOST_SEGMENT` (a host-wide segment,
    // `scope = "host"`, could not be used).
    (6, 0x4251_d545_9971_a864),
    // Trace context on keyed calls: `bw_policy_acquire_keyed_traced`,
    // `bw_policy_complete_keyed_traced`.
    (7, 0xd528_69f2_618c_ca2c),
    // A bulkhead wait a binding can cancel: `bw_policy_acquire_within` (waits in
    // slices the caller chooses, counts the call once), `bw_policy_bulkhead_max_wait`.
    (8, 0x3001_4262_968c_47b1),
];

fn header() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/breakwater.h");
    std::fs::read_to_string(path).expect("include/breakwater.h is committed")
}

/// The header split into comment text and code text (`//` and `/* */` comments).
fn split_comments(header: &str) -> (String, String) {
    let (mut comments, mut code) = (String::new(), String::new());
    let mut rest = header;
    while !rest.is_empty() {
        let line = rest.find("//");
        let block = rest.find("/*");
        match (line, block) {
            (Some(l), b) if b.is_none_or(|b| l < b) => {
                code.push_str(&rest[..l]);
                let end = rest[l..].find('\n').map_or(rest.len(), |e| l + e);
                comments.push_str(&rest[l + 2..end]);
                comments.push('\n');
                code.push('\n');
                rest = &rest[end..];
            }
            (_, Some(b)) => {
                code.push_str(&rest[..b]);
                let end = rest[b..].find("*/").map_or(rest.len(), |e| b + e + 2);
                comments.push_str(&rest[b + 2..end.saturating_sub(2).max(b + 2)]);
                comments.push('\n');
                rest = &rest[end..];
            }
            _ => {
                code.push_str(rest);
                rest = "";
            }
        }
    }
    (comments, code)
}

/// The declarations of the code text, whitespace-normalised and sorted (so that moving
/// a declaration is not a change): each `#define` line, and each top-level statement
/// ending in `;`. The include guard, the `extern "C"` wrapper, the library version
/// macros and `BW_ABI_VERSION` itself are left out.
fn declarations(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut statement = String::new();
    let mut depth = 0usize;
    for line in code.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            let skip = [
                "#define BW_VERSION_",
                "#define BW_ABI_VERSION ",
                "#define BREAKWATER_H",
            ];
            if line.starts_with("#define") && !skip.iter().any(|s| line.starts_with(s)) {
                found.push(line.split_whitespace().collect::<Vec<_>>().join(" "));
            }
            continue;
        }
        if line.starts_with("extern \"C\"") || line == "}" && depth == 0 {
            continue;
        }
        for c in line.chars() {
            statement.push(c);
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                ';' if depth == 0 => {
                    found.push(statement.split_whitespace().collect::<Vec<_>>().join(" "));
                    statement.clear();
                }
                _ => {}
            }
        }
        statement.push(' ');
    }
    found.sort();
    found
}

/// FNV-1a, 64 bits: stable across Rust releases (unlike `DefaultHasher`).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn fingerprint(header: &str) -> u64 {
    fnv1a(&declarations(&split_comments(header).1).join("\n"))
}

/// The `bw_…` and `BW_…` identifiers in `text`, with a trailing `*` kept (a family:
/// `BW_OUTCOME_*`).
fn identifiers(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    let mut i = 0;
    while i + 3 <= bytes.len() {
        let starts = (bytes[i..].starts_with(b"bw_") || bytes[i..].starts_with(b"BW_"))
            && (i == 0 || !word(bytes[i - 1]));
        if !starts {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < bytes.len() && word(bytes[end]) {
            end += 1;
        }
        if end < bytes.len() && bytes[end] == b'*' {
            end += 1;
        }
        found.push(text[i..end].to_string());
        i = end;
    }
    found
}

#[test]
fn the_abi_version_moves_with_the_declarations() {
    let versions: Vec<u32> = ABI_FINGERPRINTS.iter().map(|&(v, _)| v).collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "ABI versions are recorded in increasing order: {versions:?}"
    );
    let now = fingerprint(&header());
    let &(version, recorded) = ABI_FINGERPRINTS.last().expect("at least one version");
    assert!(
        version == BW_ABI_VERSION && recorded == now,
        "the C ABI's declarations changed (fingerprint {now:#018x}; recorded: version \
         {version} = {recorded:#018x}, BW_ABI_VERSION = {BW_ABI_VERSION}): bump \
         BW_ABI_VERSION in src/ffi/version.rs and append ({}, {now:#018x}) to \
         ABI_FINGERPRINTS in src/ffi/header_tests.rs",
        BW_ABI_VERSION.max(version) + 1
    );
}

#[test]
fn the_fingerprint_ignores_comments_and_order_but_not_a_field() {
    let header = "// a\n#define BW_A 1\n// b\ntypedef struct {\n  // c\n  uint64_t x;\n} bw_t;\nvoid bw_f(void);\n";
    let moved = "void bw_f(void);\n/* other words */\ntypedef struct { uint64_t x; } bw_t;\n#define BW_A 1\n";
    let changed = "#define BW_A 1\ntypedef struct { uint32_t x; } bw_t;\nvoid bw_f(void);\n";
    assert_eq!(fingerprint(header), fingerprint(moved));
    assert_ne!(fingerprint(header), fingerprint(changed));
    assert_eq!(
        declarations(&split_comments(header).1),
        [
            "#define BW_A 1",
            "typedef struct { uint64_t x; } bw_t;",
            "void bw_f(void);"
        ]
    );
}

#[test]
fn the_comments_name_only_what_the_header_declares() {
    let (comments, code) = split_comments(&header());
    let declared = identifiers(&code);
    let mut unknown: Vec<String> = identifiers(&comments)
        .into_iter()
        .filter(|name| {
            // `BW_OUTCOME_*` and "every `bw_` function" name a family: some declared
            // name must start with it.
            let family = name
                .strip_suffix('*')
                .or(name.ends_with('_').then_some(name));
            match family {
                Some(prefix) => !declared.iter().any(|d| d.starts_with(prefix)),
                None => !declared.contains(name),
            }
        })
        .collect();
    unknown.sort();
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "the header's comments name identifiers it does not declare: {unknown:?}"
    );
}

#[test]
fn the_name_check_sees_an_undeclared_name() {
    let (comments, code) = split_comments("// see bw_gone and BW_X_*\nvoid bw_here(void);\n");
    assert_eq!(identifiers(&comments), ["bw_gone", "BW_X_*"]);
    assert_eq!(identifiers(&code), ["bw_here"]);
}
