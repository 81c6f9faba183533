//! Events for a listener: breaker transitions, budget exhaustion, rejections, reloads.

use std::time::Duration;

use crate::breaker::BreakerState;
use crate::sync::OnceCell;
use crate::telemetry::TraceContext;
use crate::RejectReason;

/// The stable snake_case name of breaker state code `code` (as
/// [`BreakerState::as_str`] spells it), `"unknown"` for any other code.
pub fn state_name(code: u8) -> &'static str {
    BreakerState::from_code(code.into()).map_or("unknown", BreakerState::as_str)
}

/// Something that happened in a policy or the engine.
///
/// Independent of the breaker types: states are codes plus their names
/// ([`state_name`]).
///
/// An [`EventSink`] holds at most one listener, set once. [`EventSink::emit`] costs one
/// atomic load when no listener is set (plus, with the `tracing` feature, tracing's own
/// per-callsite interest check). The listener runs synchronously on the thread that
/// emitted, with no lock of the sink held, so it may call back into breakwater (take a
/// snapshot, acquire a permit) without deadlocking. Emitters call `emit` *after* their
/// state change is committed (after the winning compare-exchange), never while holding a
/// lock, so each transition is delivered exactly once, by the thread that made it.
///
/// A panic in the listener unwinds into the emitting call; the C ABI layer catches it at
/// its boundary as for any other panic.
///
/// Events borrow their policy name (`Event<'a>`), so emitting allocates nothing.
///
/// With the cargo feature `tracing`, every emitted event is also a `tracing` event at
/// target `breakwater` (level `INFO` for transitions and reloads, `WARN` for budget
/// exhaustion and load shedding, `DEBUG` for other rejections), with the fields
/// `trace_id`, `span_id` (when the causing call was traced), `policy`, `from`, `to`,
/// `generation`, `reason`, `retry_after_ns`, `added`, `removed`, `changed` as they
/// apply (the names table: `docs/telemetry.md`).
///
/// Transitions, budget exhaustion and rejections carry the W3C trace context of the
/// call that caused them, when that call was traced (see [`crate::telemetry`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A circuit breaker changed state.
    Transition {
        /// The policy (or standalone breaker) name.
        policy: &'a str,
        /// Code of the state left (`0..=4`).
        from_code: u8,
        /// Code of the state entered.
        to_code: u8,
        /// Name of the state left (`state_name(from_code)`).
        from: &'static str,
        /// Name of the state entered.
        to: &'static str,
        /// The breaker's generation after the transition (increments on each one).
        generation: u64,
        /// Clock time of the transition, nanoseconds.
        at_nanos: u64,
        /// The trace context of the call whose acquire or completion made the
        /// transition, when it was traced.
        trace: Option<TraceContext>,
    },
    /// A policy's retry budget refused a retry (the rule: see
    /// [`Policy::retry_next`](crate::policy::Policy::retry_next)).
    BudgetExhausted {
        /// The policy name.
        policy: &'a str,
        /// Clock time, nanoseconds.
        at_nanos: u64,
        /// The trace context of the call whose retry was refused, when it was traced.
        trace: Option<TraceContext>,
    },
    /// A call was rejected. A policy emits it for load shedding (`LoadShed`), the
    /// rejection that says the service is overloaded; the other reasons are counted,
    /// not emitted, so a rejection storm costs no listener call per rejection.
    Rejected {
        /// The policy name.
        policy: &'a str,
        /// Why.
        reason: RejectReason,
        /// The rejection's hint, when it has one.
        retry_after: Option<Duration>,
        /// Clock time, nanoseconds.
        at_nanos: u64,
        /// The trace context of the rejected call, when it was traced.
        trace: Option<TraceContext>,
    },
    /// The engine applied a new configuration.
    Reload {
        /// Policies added.
        added: usize,
        /// Policies removed.
        removed: usize,
        /// Policies whose configuration changed (their state was rebuilt).
        changed: usize,
    },
}

impl<'a> Event<'a> {
    /// A [`Event::Transition`] with the state names filled in from the codes.
    pub fn transition(
        policy: &'a str,
        from_code: u8,
        to_code: u8,
        generation: u64,
        at_nanos: u64,
    ) -> Self {
        Event::Transition {
            policy,
            from_code,
            to_code,
            from: state_name(from_code),
            to: state_name(to_code),
            generation,
            at_nanos,
            trace: None,
        }
    }

    /// The same event caused by the call with `cause` (`None`: untraced). Engine-wide
    /// events (reloads) have no cause and are returned unchanged.
    pub fn with_trace(mut self, cause: Option<TraceContext>) -> Self {
        match &mut self {
            Event::Transition { trace, .. }
            | Event::BudgetExhausted { trace, .. }
            | Event::Rejected { trace, .. } => *trace = cause,
            Event::Reload { .. } => {}
        }
        self
    }

    /// The trace context of the call that caused the event, when it was traced.
    pub fn trace(&self) -> Option<TraceContext> {
        match *self {
            Event::Transition { trace, .. }
            | Event::BudgetExhausted { trace, .. }
            | Event::Rejected { trace, .. } => trace,
            Event::Reload { .. } => None,
        }
    }

    /// The stable snake_case kind: `"transition"`, `"budget_exhausted"`, `"rejected"`,
    /// `"reload"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Transition { .. } => "transition",
            Event::BudgetExhausted { .. } => "budget_exhausted",
            Event::Rejected { .. } => "rejected",
            Event::Reload { .. } => "reload",
        }
    }

    /// The policy the event is about; `None` for engine-wide events.
    pub fn policy(&self) -> Option<&'a str> {
        match *self {
            Event::Transition { policy, .. }
            | Event::BudgetExhausted { policy, .. }
            | Event::Rejected { policy, .. } => Some(policy),
            Event::Reload { .. } => None,
        }
    }
}

/// The listener type: any thread-safe closure over a borrowed event.
pub type Listener = Box<dyn Fn(&Event<'_>) + Send + Sync + 'static>;

/// The error of [`EventSink::set_listener`] when a listener is already set; it gives the
/// rejected listener back.
pub struct ListenerAlreadySet(pub Listener);

impl std::fmt::Debug for ListenerAlreadySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListenerAlreadySet")
    }
}

impl std::fmt::Display for ListenerAlreadySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an event listener is already set")
    }
}

impl std::error::Error for ListenerAlreadySet {}

/// Where events go: an optional listener, set at most once.
///
/// ```
/// use breakwater::metrics::{Event, EventSink};
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let sink = EventSink::new();
/// sink.emit(&Event::transition("payments", 0, 1, 1, 42)); // no listener: one load
///
/// let seen = Arc::new(AtomicUsize::new(0));
/// let counter = Arc::clone(&seen);
/// sink.set_listener(move |event: &Event<'_>| {
///     if let Event::Transition { policy, from, to, .. } = *event {
///         assert_eq!((policy, from, to), ("payments", "closed", "open"));
///         counter.fetch_add(1, Ordering::Relaxed);
///     }
/// })
/// .unwrap();
/// sink.emit(&Event::transition("payments", 0, 1, 1, 42));
/// assert_eq!(seen.load(Ordering::Relaxed), 1);
/// assert!(sink.set_listener(|_: &Event<'_>| {}).is_err()); // set once
/// ```
#[derive(Default)]
pub struct EventSink {
    listener: OnceCell<Listener>,
}

impl EventSink {
    /// A sink without a listener.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            listener: OnceCell::new(),
        }
    }

    /// A sink without a listener (not `const` in models: loom's atomics are not).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            listener: OnceCell::new(),
        }
    }

    /// Sets the listener; fails (giving it back) when one is already set. The listener
    /// sees every event emitted after this returns.
    pub fn set_listener<F>(&self, listener: F) -> Result<(), ListenerAlreadySet>
    where
        F: Fn(&Event<'_>) + Send + Sync + 'static,
    {
        self.listener
            .set(Box::new(listener))
            .map_err(ListenerAlreadySet)
    }

    /// Whether a listener is set (so an emitter can skip building an expensive event).
    #[inline]
    pub fn has_listener(&self) -> bool {
        self.listener.get().is_some()
    }

    /// Delivers `event` to the listener, synchronously on this thread; with the
    /// `tracing` feature also as a `tracing` event.
    #[inline]
    pub fn emit(&self, event: &Event<'_>) {
        #[cfg(feature = "tracing")]
        trace_event(event);
        // One Acquire load inside `OnceCell::get` (pairs with the publishing store of
        // `set`, so the boxed closure is fully visible before it is called).
        if let Some(listener) = self.listener.get() {
            listener(event);
        }
    }
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink")
            .field("has_listener", &self.has_listener())
            .finish()
    }
}

/// Emits `event` as a structured `tracing` event.
#[cfg(feature = "tracing")]
#[inline]
fn trace_event(event: &Event<'_>) {
    use tracing::field::display;
    let cause = event.trace();
    let trace_id = cause.as_ref().map(|t| display(t.trace_id_hex()));
    let span_id = cause.as_ref().map(|t| display(t.span_id_hex()));
    match *event {
        Event::Transition {
            policy,
            from,
            to,
            generation,
            at_nanos,
            ..
        } => tracing::info!(
            target: "breakwater",
            trace_id,
            span_id,
            policy,
            from,
            to,
            generation,
            at_nanos,
            "circuit breaker transition"
        ),
        Event::BudgetExhausted {
            policy, at_nanos, ..
        } => tracing::warn!(
            target: "breakwater",
            trace_id,
            span_id,
            policy,
            reason = "retry_budget_exhausted",
            at_nanos,
            "retry budget exhausted"
        ),
        Event::Rejected {
            policy,
            reason: RejectReason::LoadShed,
            retry_after,
            at_nanos,
            ..
        } => tracing::warn!(
            target: "breakwater",
            trace_id,
            span_id,
            policy,
            reason = RejectReason::LoadShed.as_str(),
            retry_after_ns = retry_after.map(crate::clock::duration_to_nanos),
            at_nanos,
            "load shed"
        ),
        Event::Rejected {
            policy,
            reason,
            retry_after,
            at_nanos,
            ..
        } => tracing::debug!(
            target: "breakwater",
            trace_id,
            span_id,
            policy,
            reason = reason.as_str(),
            retry_after_ns = retry_after.map(crate::clock::duration_to_nanos),
            at_nanos,
            "call rejected"
        ),
        Event::Reload {
            added,
            removed,
            changed,
        } => tracing::info!(
            target: "breakwater",
            added,
            removed,
            changed,
            "configuration reloaded"
        ),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn names_and_kinds() {
        assert_eq!(state_name(0), "closed");
        assert_eq!(state_name(2), "half_open");
        assert_eq!(state_name(4), "disabled");
        assert_eq!(state_name(5), "unknown");
        let e = Event::transition("p", 1, 2, 7, 9);
        assert_eq!(e.kind(), "transition");
        assert_eq!(e.policy(), Some("p"));
        let r = Event::Reload {
            added: 1,
            removed: 0,
            changed: 2,
        };
        assert_eq!(r.kind(), "reload");
        assert_eq!(r.policy(), None);
    }

    #[test]
    fn listener_may_reenter_the_sink() {
        let sink = Arc::new(EventSink::new());
        let calls = Arc::new(AtomicUsize::new(0));
        // A weak reference: a listener owning its own sink would be a cycle (a leak).
        let (s2, c2) = (Arc::downgrade(&sink), Arc::clone(&calls));
        sink.set_listener(move |e: &Event<'_>| {
            c2.fetch_add(1, Ordering::Relaxed);
            if let (Event::Transition { .. }, Some(s2)) = (e, s2.upgrade()) {
                // Re-entrant emit: no lock is held, so this must not deadlock.
                s2.emit(&Event::BudgetExhausted {
                    policy: "p",
                    at_nanos: 0,
                    trace: None,
                });
            }
        })
        .unwrap();
        sink.emit(&Event::transition("p", 0, 1, 1, 0));
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }
}
