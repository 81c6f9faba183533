//! [`TraceContext`]: the W3C trace context of a call, and the *cause* of the events that
//! call makes happen.
//!
//! Events are emitted synchronously by the thread whose call changed the state (see
//! [`Event`](crate::metrics::Event)). So the call that caused an event is
//! the one running on the emitting thread, and its trace context can travel in a
//! thread-local for the length of that call: [`with_cause`] sets it around a closure,
//! and every event emitted inside (a breaker transition, a budget exhaustion, a
//! load-shed rejection) carries it. The traced permit methods
//! ([`Policy::acquire_traced`](crate::policy::Policy::acquire_traced),
//! [`Policy::complete_raw_traced`](crate::policy::Policy::complete_raw_traced)) do the
//! same for one acquire or one completion.
//!
//! Cost: nothing on an untraced call (no thread-local is touched on the hot path); an
//! emitter reads the thread-local once, on its cold path. A traced call writes it
//! twice (set and restore); `benches/telemetry.rs` measures it.

use std::cell::Cell;
use std::fmt;

/// The W3C trace context of one call: trace id, parent span id and trace flags.
///
/// Both ids are non-zero (the W3C rule: an all-zero id is invalid), which
/// [`TraceContext::new`] and [`TraceContext::from_traceparent`] enforce.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

/// Why a trace context was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceContextError {
    /// The trace id is all zeros.
    ZeroTraceId,
    /// The span id is all zeros.
    ZeroSpanId,
    /// A `traceparent` header that is not `version-traceid-spanid-flags` in lowercase
    /// hex (version `00`: exactly 55 characters; later versions: at least that).
    MalformedTraceparent,
}

impl fmt::Display for TraceContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TraceContextError::ZeroTraceId => "trace id must not be all zeros",
            TraceContextError::ZeroSpanId => "span id must not be all zeros",
            TraceContextError::MalformedTraceparent => {
                "traceparent must be `vv-<32 hex>-<16 hex>-ff` in lowercase hex"
            }
        })
    }
}

impl std::error::Error for TraceContextError {}

/// The W3C trace flag "sampled".
pub const TRACE_FLAG_SAMPLED: u8 = 0x01;

impl TraceContext {
    /// A trace context from its parts; both ids must be non-zero.
    pub fn new(trace_id: [u8; 16], span_id: [u8; 8], flags: u8) -> Result<Self, TraceContextError> {
        if trace_id == [0; 16] {
            return Err(TraceContextError::ZeroTraceId);
        }
        if span_id == [0; 8] {
            return Err(TraceContextError::ZeroSpanId);
        }
        Ok(TraceContext {
            trace_id,
            span_id,
            flags,
        })
    }

    /// Parses a W3C `traceparent` header value (`00-<trace id>-<span id>-<flags>`).
    /// Version `ff` is invalid; a later version may carry more fields after the four,
    /// which are ignored as the W3C specification asks.
    pub fn from_traceparent(header: &str) -> Result<Self, TraceContextError> {
        let bytes = header.as_bytes();
        let malformed = Err(TraceContextError::MalformedTraceparent);
        if bytes.len() < 55 || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return malformed;
        }
        let mut version = [0u8; 1];
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        let mut flags = [0u8; 1];
        if !(decode_hex(&bytes[0..2], &mut version)
            && decode_hex(&bytes[3..35], &mut trace_id)
            && decode_hex(&bytes[36..52], &mut span_id)
            && decode_hex(&bytes[53..55], &mut flags))
        {
            return malformed;
        }
        let exact_length = bytes.len() == 55;
        match version[0] {
            0xff => return malformed,
            0 if !exact_length => return malformed,
            _ if !exact_length && bytes[55] != b'-' => return malformed,
            _ => {}
        }
        TraceContext::new(trace_id, span_id, flags[0])
    }

    /// The trace id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The span id of the call (the parent of anything the event becomes).
    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    /// The W3C trace flags ([`TRACE_FLAG_SAMPLED`]).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The trace id as 32 lowercase hex digits (a `Display` value, no allocation).
    pub fn trace_id_hex(&self) -> Hex<'_> {
        Hex(&self.trace_id)
    }

    /// The span id as 16 lowercase hex digits (a `Display` value, no allocation).
    pub fn span_id_hex(&self) -> Hex<'_> {
        Hex(&self.span_id)
    }

    /// The `traceparent` header value, version `00`.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id_hex(),
            self.span_id_hex(),
            self.flags
        )
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceContext({})", self.traceparent())
    }
}

/// Bytes shown as lowercase hex digits.
#[derive(Clone, Copy)]
pub struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Decodes lowercase hex `text` into `out` (exactly twice its length); false on any
/// other character.
fn decode_hex(text: &[u8], out: &mut [u8]) -> bool {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if text.len() != out.len() * 2 {
        return false;
    }
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(high), Some(low)) => *byte = high << 4 | low,
            _ => return false,
        }
    }
    true
}

crate::sync::thread_locals! {
    /// The trace context of the call running on this thread, while it is traced.
    static CAUSE: Cell<Option<TraceContext>> = const { Cell::new(None) };
}

/// Runs `f` with `trace` as the cause of every event emitted on this thread meanwhile
/// (nested calls restore the outer cause when they return, also by unwinding).
///
/// ```
/// use breakwater::telemetry::{current_cause, with_cause, TraceContext};
///
/// let trace = TraceContext::from_traceparent(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
/// )
/// .unwrap();
/// assert_eq!(current_cause(), None);
/// with_cause(trace, || assert_eq!(current_cause(), Some(trace)));
/// assert_eq!(current_cause(), None);
/// ```
pub fn with_cause<R>(trace: TraceContext, f: impl FnOnce() -> R) -> R {
    let _restore = CauseScope::enter(Some(trace));
    f()
}

/// The trace context of the call running on this thread, if it is traced (what an
/// emitter attaches to its event).
#[inline]
pub fn current_cause() -> Option<TraceContext> {
    CAUSE.with(Cell::get)
}

/// Sets the thread's cause and restores the previous one when dropped.
pub(crate) struct CauseScope {
    previous: Option<TraceContext>,
}

impl CauseScope {
    pub(crate) fn enter(trace: Option<TraceContext>) -> CauseScope {
        CauseScope {
            previous: CAUSE.with(|cause| cause.replace(trace)),
        }
    }
}

impl Drop for CauseScope {
    fn drop(&mut self) {
        let previous = self.previous;
        CAUSE.with(|cause| cause.set(previous));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const HEADER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_round_trips() {
        let t = TraceContext::from_traceparent(HEADER).unwrap();
        assert_eq!(t.trace_id()[0], 0x4b);
        assert_eq!(t.span_id()[7], 0xb7);
        assert_eq!(t.flags(), TRACE_FLAG_SAMPLED);
        assert_eq!(t.traceparent(), HEADER);
        assert_eq!(
            t.trace_id_hex().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(t.span_id_hex().to_string(), "00f067aa0ba902b7");
    }

    #[test]
    fn bad_traceparents_are_refused_with_their_reason() {
        use TraceContextError::*;
        let cases = [
            ("", MalformedTraceparent),
            (&HEADER[..54], MalformedTraceparent),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                MalformedTraceparent,
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                MalformedTraceparent,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
                MalformedTraceparent,
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                ZeroTraceId,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                ZeroSpanId,
            ),
        ];
        for (text, error) in cases {
            assert_eq!(TraceContext::from_traceparent(text), Err(error), "{text:?}");
        }
        // A later version may carry more fields.
        let later = format!("01{}-more", &HEADER[2..]);
        assert!(TraceContext::from_traceparent(&later).is_ok());
    }

    #[test]
    fn scopes_nest_and_restore_on_unwind() {
        let outer = TraceContext::new([1; 16], [1; 8], 0).unwrap();
        let inner = TraceContext::new([2; 16], [2; 8], 1).unwrap();
        with_cause(outer, || {
            with_cause(inner, || assert_eq!(current_cause(), Some(inner)));
            assert_eq!(current_cause(), Some(outer));
            let unwound = std::panic::catch_unwind(|| with_cause(inner, || panic!("boom")));
            assert!(unwound.is_err());
            assert_eq!(current_cause(), Some(outer));
        });
        assert_eq!(current_cause(), None);
    }
}
