//! [`FleetConcurrencyLimiter`]: at most N calls in flight across the fleet (Stripe's
//! "concurrent requests" limiter), on expiring leases.
//!
//! Each slot is a member of one Redis sorted set whose score is its lease's expiry on
//! the server's `TIME`; taking a slot first drops the expired ones, so a crashed or
//! partitioned process's slots come back after `lease_ttl` and are never leaked. A
//! background thread extends the leases this process holds every third of the TTL.
//!
//! Taking and releasing a slot is one Redis round trip each, bounded by `timeout` in
//! all (a fresh connection's connect, the command, and the `EVAL` after a `NOSCRIPT`
//! share it; only a host name's lookup comes on top): the wait a caller can see. While Redis is unavailable, and until the next attempt
//! of the backoff, no call waits on it: the limit follows `on_unavailable` at once.
//!
//! # Bounds
//!
//! - Fleet mode: at most `max_concurrent` slots are leased at any time. A process
//!   paused longer than `lease_ttl` loses its leases (counted once each in
//!   `leases_lost`, and no longer refreshed); its calls then run without a slot, at most
//!   its in-flight count over the limit. A Redis restart without persistence forgets
//!   the set: the calls then in flight run on without slots while up to
//!   `max_concurrent` more are admitted, so at most `2·max_concurrent` in flight until
//!   they complete (their lost leases counted at the next refresh).
//! - `"local"`: each process adds at most `⌊share·max_concurrent⌋` (at least 1) calls.
//! - `"deny"`: nothing is admitted without a slot. `"allow"`: no bound.

use std::collections::HashSet;
use std::fmt;

use super::config::{FleetConfig, OnUnavailable};
use super::link::{Link, LuaScript};
use super::scripts::{SLOT_ACQUIRE, SLOT_REFRESH};
use super::snapshot::FleetConcurrencySnapshot;
use crate::bulkhead::{Bulkhead, BulkheadConfig};
use crate::clock::AnyClock;
use crate::sync::{thread, Arc, AtomicBool, AtomicU64, Condvar, Mutex, Ordering};
use crate::{ConfigError, RejectReason, Rejection};

/// A concurrency limit shared by every process on the same Redis, namespace and name.
pub struct FleetConcurrencyLimiter {
    shared: Arc<Shared>,
    worker: Option<thread::JoinHandle<()>>,
}

/// What a taken permit holds; give it back with [`FleetConcurrencyLimiter::release`].
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "a slot must be released"]
pub struct FleetSlot {
    kind: SlotKind,
}

#[derive(Debug, PartialEq, Eq, Hash)]
enum SlotKind {
    /// A leased member of the fleet's set.
    Fleet(u64),
    /// A permit of the `local` fallback.
    Local,
    /// Admitted by `allow` without a slot.
    Unbounded,
}

struct Shared {
    link: Link,
    key: String,
    limit: u32,
    fleet: FleetConfig,
    /// This process's prefix of slot names: distinct across processes and limits.
    owner: String,
    /// Ids of slots this process holds, for the refresh (cold: each next to a round trip).
    held: Mutex<HashSet<u64>>,
    next_id: AtomicU64,
    leases_lost: AtomicU64,
    admitted_fallback: AtomicU64,
    rejected: AtomicU64,
    local: Option<Bulkhead>,
    /// Relaxed: re-read under `stop_lock` before every wait (see `Drop`).
    stop: AtomicBool,
    /// The owner takes no new slots (see `retire`): the thread exits once `held` is
    /// empty. Relaxed, as `stop`.
    retired: AtomicBool,
    stop_lock: Mutex<()>,
    stop_cv: Condvar,
}

impl FleetConcurrencyLimiter {
    /// At most `max_concurrent` calls in flight across the fleet under `name` (key
    /// `NAMESPACE:NAME:slots`), on the system clock. Starts the lease refresh thread.
    pub fn new(name: &str, max_concurrent: u32, fleet: FleetConfig) -> Result<Self, ConfigError> {
        Self::with_clock(name, max_concurrent, fleet, AnyClock::default())
    }

    /// The same on `clock` (the backoff reads it; leases run on the server's `TIME`).
    pub fn with_clock(
        name: &str,
        max_concurrent: u32,
        fleet: FleetConfig,
        clock: AnyClock,
    ) -> Result<Self, ConfigError> {
        fleet.validate()?;
        if max_concurrent == 0 {
            return Err(ConfigError::new("max_concurrent", "must be at least 1"));
        }
        if name.is_empty() {
            return Err(ConfigError::new("name", "a fleet limit needs a name"));
        }
        let local = match fleet.on_unavailable {
            OnUnavailable::Local => {
                let share = ((f64::from(max_concurrent) * fleet.local_share) as u32).max(1);
                Some(
                    Bulkhead::new(BulkheadConfig::new(share))
                        .map_err(|e| e.within("local_share"))?,
                )
            }
            OnUnavailable::Deny | OnUnavailable::Allow => None,
        };
        let link = Link::new(&fleet, clock)?;
        let shared = Arc::new(Shared {
            link,
            key: format!("{}:{name}:slots", fleet.namespace),
            limit: max_concurrent,
            owner: owner_id(),
            fleet,
            held: Mutex::new(HashSet::new()),
            next_id: AtomicU64::new(1),
            leases_lost: AtomicU64::new(0),
            admitted_fallback: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            local,
            stop: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            stop_lock: Mutex::new(()),
            stop_cv: Condvar::new(),
        });
        let worker_shared = shared.clone();
        let worker = thread::Builder::new()
            .name(format!("bw-fleet-slots-{name}"))
            .spawn(move || worker_shared.refresh_loop())
            .map_err(|e| {
                ConfigError::new("fleet", format!("cannot start the lease thread: {e}"))
            })?;
        Ok(Self {
            shared,
            worker: Some(worker),
        })
    }

    /// Takes a slot: one Redis round trip (at most `timeout`), or the `on_unavailable`
    /// fallback at once while Redis is unavailable.
    pub fn try_acquire(&self) -> Result<FleetSlot, Rejection> {
        let s = &*self.shared;
        if s.link.may_attempt() {
            // Relaxed: only uniqueness matters.
            let id = s.next_id.fetch_add(1, Ordering::Relaxed);
            let member = s.member(id);
            let script = slot_acquire();
            let ttl_ms = s.ttl_ms();
            match s.link.eval::<u64>(
                script,
                &[s.key.as_str()],
                (u64::from(s.limit), ttl_ms, member),
            ) {
                Ok(1) => {
                    // Recorded only once taken, so every id the refresh sends names a
                    // slot that was in the set and a missing one is lost, not pending. A
                    // refresh that starts between the script and this line skips the
                    // slot once: its lease, a whole TTL from the script, outlives the
                    // next refresh a third of a TTL later.
                    s.held.lock().insert(id);
                    return Ok(FleetSlot {
                        kind: SlotKind::Fleet(id),
                    });
                }
                Ok(_) => {
                    s.rejected.fetch_add(1, Ordering::Relaxed);
                    return Err(Rejection::new(RejectReason::BulkheadFull, None));
                }
                // Unknown whether the script ran: the lease expires by itself.
                Err(_) => {}
            }
        }
        s.fallback()
    }

    /// Gives a slot back: a fleet slot with one Redis round trip (on failure its lease
    /// simply expires), a local one at once.
    pub fn release(&self, slot: FleetSlot) {
        let s = &*self.shared;
        match slot.kind {
            SlotKind::Fleet(id) => {
                s.held.lock().remove(&id);
                if s.link.may_attempt() {
                    let member = s.member(id);
                    let _ = s.link.run(|con, _| {
                        s.link.status.round_trips.fetch_add(1, Ordering::Relaxed);
                        redis::cmd("ZREM").arg(&s.key).arg(member).query::<u64>(con)
                    });
                }
            }
            SlotKind::Local => {
                if let Some(l) = &s.local {
                    l.release_raw();
                }
            }
            SlotKind::Unbounded => {}
        }
    }

    /// The limit's metrics.
    pub fn snapshot(&self) -> FleetConcurrencySnapshot {
        let s = &*self.shared;
        let status = &s.link.status;
        FleetConcurrencySnapshot {
            unavailable: status.is_unavailable(),
            message: status.message(),
            held: s.held.lock().len() as u64,
            leases_lost: s.leases_lost.load(Ordering::Relaxed),
            round_trips: status.round_trips.load(Ordering::Relaxed),
            failures: status.failures.load(Ordering::Relaxed),
            recoveries: status.recoveries.load(Ordering::Relaxed),
            admitted_fallback: s.admitted_fallback.load(Ordering::Relaxed),
            rejected: s.rejected.load(Ordering::Relaxed),
        }
    }

    /// The health message while Redis is unavailable, `None` on the fleet limit.
    pub fn unavailable_message(&self) -> Option<String> {
        self.shared.link.status.message()
    }

    /// The fleet-wide limit.
    pub fn max_concurrent(&self) -> u32 {
        self.shared.limit
    }
}

/// The scripts, built once per process (their SHA-1 is computed at first use).
fn slot_acquire() -> &'static LuaScript {
    static SCRIPT: crate::sync::Lazy<LuaScript> =
        crate::sync::Lazy::new(|| LuaScript::new(SLOT_ACQUIRE));
    &SCRIPT
}

fn slot_refresh() -> &'static LuaScript {
    static SCRIPT: crate::sync::Lazy<LuaScript> =
        crate::sync::Lazy::new(|| LuaScript::new(SLOT_REFRESH));
    &SCRIPT
}

/// A name for this process's slots: host-unique by pid, and by the creation time so a
/// reused pid does not adopt a dead process's slots.
fn owner_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    // A plain std atomic: a process-wide counter for uniqueness, any ordering will do.
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{nanos:x}-{seq}", std::process::id())
}

impl Shared {
    fn member(&self, id: u64) -> String {
        format!("{}:{id}", self.owner)
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.fleet.lease_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    #[cold]
    fn fallback(&self) -> Result<FleetSlot, Rejection> {
        let kind = match self.fleet.on_unavailable {
            OnUnavailable::Allow => Ok(SlotKind::Unbounded),
            OnUnavailable::Deny => Err(Rejection::new(RejectReason::BulkheadFull, None)),
            OnUnavailable::Local => match &self.local {
                Some(l) => l.try_acquire_raw().map(|()| SlotKind::Local),
                None => Err(Rejection::new(RejectReason::BulkheadFull, None)),
            },
        };
        match kind {
            Ok(kind) => {
                self.admitted_fallback.fetch_add(1, Ordering::Relaxed);
                Ok(FleetSlot { kind })
            }
            Err(r) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                Err(r)
            }
        }
    }

    /// Every third of the TTL: extends the held leases, or, while Redis is unavailable,
    /// tries it again (a ping) when the backoff allows, so the limit returns by itself.
    fn refresh_loop(&self) {
        let period = self.fleet.lease_ttl / 3;
        loop {
            {
                let mut guard = self.stop_lock.lock();
                if self.stop.load(Ordering::Relaxed) {
                    return;
                }
                // Checked under `stop_lock`, which `retire` takes to notify: a retire
                // is seen here or wakes the wait below.
                if self.retired.load(Ordering::Relaxed) && self.held.lock().is_empty() {
                    self.link.close_idle();
                    return;
                }
                let wait = if self.link.status.is_unavailable() {
                    period.min(self.fleet.timeout)
                } else {
                    period
                };
                self.stop_cv.wait_timeout(&mut guard, wait);
                if self.stop.load(Ordering::Relaxed) {
                    return;
                }
            }
            if !self.link.may_attempt() {
                continue;
            }
            let ids: Vec<u64> = self.held.lock().iter().copied().collect();
            if ids.is_empty() {
                if self.link.status.is_unavailable() {
                    let _ = self.link.run(|con, _| {
                        self.link.status.round_trips.fetch_add(1, Ordering::Relaxed);
                        redis::cmd("PING").query::<String>(con)
                    });
                }
                continue;
            }
            let mut args: Vec<String> = Vec::with_capacity(ids.len() + 1);
            args.push(self.ttl_ms().to_string());
            args.extend(ids.iter().map(|id| self.member(*id)));
            if let Ok(lost) = self
                .link
                .eval::<Vec<u64>>(slot_refresh(), &[self.key.as_str()], args)
            {
                // A lost slot is dropped from `held`, so it is counted once and not
                // refreshed again; one released since `ids` was read is no longer in
                // `held` (its release removed it from the set) and is not lost.
                let mut held = self.held.lock();
                let lost = lost
                    .iter()
                    .filter_map(|&at| ids.get(usize::try_from(at).ok()?.checked_sub(1)?))
                    .filter(|id| held.remove(id))
                    .count();
                drop(held);
                self.leases_lost.fetch_add(lost as u64, Ordering::Relaxed);
            }
        }
    }
}

impl FleetConcurrencyLimiter {
    /// The owner will take no new slots (see `FleetStage::retire`): the lease thread
    /// keeps refreshing the slots still held and exits once none is, closing the idle
    /// connections. Wakes it so an idle limit's thread goes at once.
    pub(crate) fn retire(&self) {
        let _guard = self.shared.stop_lock.lock();
        self.shared.retired.store(true, Ordering::Relaxed);
        self.shared.stop_cv.notify_one();
    }
}

impl Drop for FleetConcurrencyLimiter {
    fn drop(&mut self) {
        {
            let _guard = self.shared.stop_lock.lock();
            self.shared.stop.store(true, Ordering::Relaxed);
            self.shared.stop_cv.notify_one();
        }
        // Not joined, for the same reason as the rate limiter's thread.
        drop(self.worker.take());
    }
}

impl fmt::Debug for FleetConcurrencyLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetConcurrencyLimiter")
            .field("key", &self.shared.key)
            .field("max_concurrent", &self.shared.limit)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}
