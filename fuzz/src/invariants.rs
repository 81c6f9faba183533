//! What must hold for any input. Each function panics (the fuzzer's "crash") when an
//! invariant is broken, and returns normally otherwise.

use breakwater::config::{explain, PolicyFile};

/// The policy-file reader on arbitrary bytes: an error, or a configuration whose
/// `explain` re-parses to itself (and explains to the same text again).
pub fn policy_file(data: &[u8]) {
    let Ok(file) = PolicyFile::from_bytes(data) else {
        return;
    };
    let explained = explain(&file.policies);
    let reparsed = match PolicyFile::parse(&explained) {
        Ok(reparsed) => reparsed,
        Err(error) => panic!("explain wrote a file that does not load: {error}\n{explained}"),
    };
    assert_eq!(reparsed, file, "explain changed the meaning:\n{explained}");
    assert_eq!(
        explain(&reparsed.policies),
        explained,
        "explain is not stable"
    );
}
