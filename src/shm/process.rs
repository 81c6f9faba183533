//! Who owns a lease: a process named by its id and its start time, so that a recycled
//! pid is never mistaken for the process that held the lease.
//!
//! An owner word packs both (see [`owner_word`]); liveness is read from
//! `/proc/<pid>/stat` (field 3, the state, and field 22, the start time in clock ticks
//! since boot). A zombie (`Z`) or dead (`X`) process owns nothing: its threads are gone,
//! even if its parent has not reaped it yet.

use super::error::HostError;

/// Bits of the pid in an owner word (Linux's `pid_max` is at most 2^22).
pub(crate) const PID_BITS: u32 = 22;
/// Mask of the pid in an owner word.
pub(crate) const PID_MASK: u64 = (1 << PID_BITS) - 1;

/// The owner word of `pid` started at `start_ticks`.
///
/// | bits | content |
/// |---|---|
/// | 0..22 | pid (never 0, so an owner word is never 0 = "free") |
/// | 22..64 | start time in clock ticks since boot (2^42 ticks at 100 Hz: 1.4 billion years) |
pub fn owner_word(pid: u32, start_ticks: u64) -> u64 {
    (u64::from(pid) & PID_MASK) | (start_ticks << PID_BITS)
}

/// State letter and start time of `pid`, from `/proc/<pid>/stat`; `None` if there is no
/// such process (or the file cannot be parsed, which is treated the same way by callers
/// that ask about liveness, and as an error by [`current_owner`]).
fn stat_of(pid: u32) -> Option<(u8, u64)> {
    let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses the state letter (field 3) and start time (field 22) of a `/proc/<pid>/stat`
/// line. The command name (field 2) is in parentheses and may contain anything, so the
/// fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &[u8]) -> Option<(u8, u64)> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(text.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    // Field 3 was the state; field 22 is 19 further on.
    let start = fields.nth(18)?.parse::<u64>().ok()?;
    Some((state, start))
}

/// Whether the process named by `owner` still runs (not exited, not a zombie, and its pid
/// not reused by a later process).
pub fn is_alive(owner: u64) -> bool {
    let pid = (owner & PID_MASK) as u32;
    if pid == 0 {
        return false;
    }
    match stat_of(pid) {
        Some((state, start)) => state != b'Z' && state != b'X' && start == owner >> PID_BITS,
        None => false,
    }
}

/// This process's owner word. Read once per process (and again in a forked child:
/// `fork` gives the child a new pid, which a segment notices through its fork epoch).
pub fn current_owner() -> Result<u64, HostError> {
    let pid = std::process::id();
    match stat_of(pid) {
        Some((_, start)) => Ok(owner_word(pid, start)),
        None => Err(HostError::Io {
            segment: String::new(),
            action: "read /proc/self/stat",
            reason: "unreadable or unparsable".into(),
        }),
    }
}

/// Counts forks in this process's lineage, so an attachment made before `fork` notices
/// in the child that its registration belongs to the parent. A plain std atomic: a
/// process-wide counter written by the atfork handler, which loom does not model.
static FORK_EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

extern "C" fn after_fork_in_child() {
    // Relaxed: the child is single-threaded when this runs; later reads in the same
    // thread see it, and threads it starts later are ordered by their spawn.
    FORK_EPOCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Registers the fork handler (once per process): before the first registration in a
/// segment, so that every fork after a registration is counted.
pub(crate) fn install_fork_handler() {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        // SAFETY: the handler is a plain `extern "C"` function with no captured state,
        // valid for the whole program; it only touches an atomic, which is
        // async-signal-safe, as a child-side atfork handler must be.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
    });
}

/// The number of forks since this process image started (0 in a process that never
/// forked after [`install_fork_handler`]). One load: it is read on every host-wide
/// bulkhead acquire and release.
#[inline]
pub(crate) fn fork_epoch() -> u64 {
    // Relaxed: see `after_fork_in_child`.
    FORK_EPOCH.load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_parentheses_and_spaces_is_skipped() {
        let line = b"42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some((b'S', 987654)));
        assert_eq!(parse_stat(b"42 (x"), None);
        assert_eq!(parse_stat(b"42 (x) S 1 2"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = current_owner().unwrap();
        assert!(is_alive(me));
        assert!(
            !is_alive(me ^ (1 << PID_BITS)),
            "pid reuse: another start time"
        );
        assert!(!is_alive(0));
    }
}
