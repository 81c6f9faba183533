//! The shared segment: a POSIX shared-memory object (`shm_open`, so a file
//! `/dev/shm/breakwater.<segment>` on Linux), mapped by every process that attaches it.
//!
//! Layout (all words `u64`, native byte order, every block on its own 128-byte line):
//!
//! | offset | content |
//! |---|---|
//! | 0 | header, [`HEADER_WORDS`] words (table below) |
//! | 128 | process entries: `entries` owner words, then `entries` reclaimer words ([`lease`](super::lease)) |
//! | `breaker` | the breaker's state block and its window (all zero = `Closed`, empty window) |
//! | `limiter` | the limiter's TAT and refund ledger (all zero = full bucket at `epoch`) |
//! | `slots` | one word per bulkhead permit: 0 free, else the holder's entry + 1 |
//! | `probes` | one word per half-open probe: 0 free, else holder and generation |
//!
//! Header words: magic, layout version, total size, configuration hash, epoch (the
//! creator's `CLOCK_MONOTONIC` reading), entries, breaker offset, breaker bytes, window
//! kind, limiter offset, slots offset, slots, probes offset, probes, last reclaim (the
//! only header word written after creation), reserved.
//!
//! Creation and attachment run under `flock` on the object (a kernel lock, released when
//! its holder dies, and never taken on a decision's path): the first process sizes it,
//! writes the header, and publishes the magic last; every later one validates the whole
//! header against the layout its own configuration needs, and uses only the offsets it
//! computed itself. Nothing read from the segment is used as an index or a length.

use std::ffi::CString;
use std::ptr::NonNull;

use super::error::HostError;
use super::lease::{Leases, MAX_ENTRIES};
use super::process;
use crate::breaker::core::Core;
use crate::sync::AtomicU64;
use crate::sync::Ordering;

/// The first word of every segment: `"BWSHM"`, two zero bytes, and 1.
pub const MAGIC: u64 = u64::from_le_bytes(*b"BWSHM\0\0\x01");
/// The layout version this library reads and writes.
pub const LAYOUT_VERSION: u64 = 2;
/// Words in the header.
pub const HEADER_WORDS: usize = 16;
/// Process entries in every segment: processes that may use one segment at once.
pub const ENTRIES: usize = 1024;
const LINE: usize = 128;
/// How often, at most, a slow path scans a segment for dead processes' permits: a dead
/// process's permits are back by the first rejection (a full bulkhead, a full half-open
/// trial) that comes at least this long after it died, or at once on demand.
pub const RECLAIM_INTERVAL_NANOS: u64 = 10_000_000;

/// Header word indices.
mod word {
    pub(super) const MAGIC: usize = 0;
    pub(super) const VERSION: usize = 1;
    pub(super) const TOTAL: usize = 2;
    pub(super) const HASH: usize = 3;
    pub(super) const EPOCH: usize = 4;
    pub(super) const ENTRIES: usize = 5;
    pub(super) const BREAKER: usize = 6;
    pub(super) const BREAKER_BYTES: usize = 7;
    pub(super) const WINDOW_KIND: usize = 8;
    pub(super) const LIMITER: usize = 9;
    pub(super) const SLOTS_AT: usize = 10;
    pub(super) const SLOTS: usize = 11;
    pub(super) const PROBES_AT: usize = 12;
    pub(super) const PROBES: usize = 13;
    pub(super) const LAST_RECLAIM: usize = 14;
}

/// Where each block of a segment lies, computed from the configuration alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Total bytes.
    pub total: usize,
    /// Process entries.
    pub entries: usize,
    /// Offset of the breaker's block (0 = no breaker).
    pub breaker: usize,
    /// Bytes of the breaker's block.
    pub breaker_bytes: usize,
    /// 0 none, 1 count window, 2 time window.
    pub window_kind: u64,
    /// Offset of the limiter's block (0 = no limiter).
    pub limiter: usize,
    /// Offset of the bulkhead slots.
    pub slots_at: usize,
    /// Bulkhead slots (0 = no bulkhead).
    pub slots: usize,
    /// Offset of the probe leases.
    pub probes_at: usize,
    /// Probe leases.
    pub probes: usize,
}

fn round_up(n: usize) -> usize {
    n.div_ceil(LINE) * LINE
}

impl Layout {
    /// The layout for a breaker block of `breaker_bytes` (0 = none) with `window_kind`,
    /// a limiter block of `limiter_bytes` (0 = none), `slots` bulkhead permits and
    /// `probes` half-open probes.
    pub fn new(
        breaker_bytes: usize,
        window_kind: u64,
        limiter_bytes: usize,
        slots: usize,
        probes: usize,
    ) -> Layout {
        let mut at = LINE + round_up(2 * ENTRIES * 8);
        let mut place = |bytes: usize| {
            if bytes == 0 {
                return 0;
            }
            let here = at;
            at += round_up(bytes);
            here
        };
        let breaker = place(breaker_bytes);
        let limiter = place(limiter_bytes);
        let slots_at = place(slots * 8);
        let probes_at = place(probes * 8);
        Layout {
            total: at,
            entries: ENTRIES,
            breaker,
            breaker_bytes,
            window_kind,
            limiter,
            slots_at,
            slots,
            probes_at,
            probes,
        }
    }

    /// The header a segment of this layout has (last reclaim 0).
    fn header(&self, hash: u64, epoch: u64) -> [u64; HEADER_WORDS] {
        let mut h = [0u64; HEADER_WORDS];
        h[word::MAGIC] = MAGIC;
        h[word::VERSION] = LAYOUT_VERSION;
        h[word::TOTAL] = self.total as u64;
        h[word::HASH] = hash;
        h[word::EPOCH] = epoch;
        h[word::ENTRIES] = self.entries as u64;
        h[word::BREAKER] = self.breaker as u64;
        h[word::BREAKER_BYTES] = self.breaker_bytes as u64;
        h[word::WINDOW_KIND] = self.window_kind;
        h[word::LIMITER] = self.limiter as u64;
        h[word::SLOTS_AT] = self.slots_at as u64;
        h[word::SLOTS] = self.slots as u64;
        h[word::PROBES_AT] = self.probes_at as u64;
        h[word::PROBES] = self.probes as u64;
        h
    }
}

/// Refuses a segment that `uid` does not own, or that its group or others may open
/// (`owner` and `mode` as `fstat` gives them). Pure, so it is tested with any uid.
pub(crate) fn check_access(
    segment: &str,
    owner: libc::uid_t,
    mode: libc::mode_t,
    uid: libc::uid_t,
) -> Result<(), HostError> {
    if owner != uid {
        return Err(HostError::NotOwner {
            segment: segment.to_string(),
            owner,
            uid,
        });
    }
    if mode & 0o077 != 0 {
        return Err(HostError::Permissions {
            segment: segment.to_string(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// Checks a segment's header words (`words`, as read) and size against the layout and
/// configuration hash this process needs; returns the segment's epoch. Every mismatch is
/// a named error. This is the whole of what is read from a segment before it is used;
/// the fuzz target `shm_segment` feeds it arbitrary bytes.
pub fn check_header(
    segment: &str,
    words: &[u64],
    size: u64,
    layout: &Layout,
    hash: u64,
    now: u64,
) -> Result<u64, HostError> {
    let seg = || segment.to_string();
    let header_bytes = (HEADER_WORDS * 8) as u64;
    if words.len() < HEADER_WORDS || size < header_bytes {
        return Err(HostError::Truncated {
            segment: seg(),
            size,
            expected: layout.total as u64,
        });
    }
    if words[word::MAGIC] != MAGIC {
        return Err(HostError::WrongMagic {
            segment: seg(),
            found: words[word::MAGIC],
        });
    }
    if words[word::VERSION] != LAYOUT_VERSION {
        return Err(HostError::VersionMismatch {
            segment: seg(),
            found: words[word::VERSION],
            expected: LAYOUT_VERSION,
        });
    }
    if words[word::HASH] != hash {
        return Err(HostError::ConfigMismatch {
            segment: seg(),
            found: words[word::HASH],
            expected: hash,
        });
    }
    let expected = layout.header(hash, 0);
    const NAMES: [&str; HEADER_WORDS] = [
        "magic",
        "version",
        "total_size",
        "config_hash",
        "epoch",
        "entries",
        "breaker_offset",
        "breaker_bytes",
        "window_kind",
        "limiter_offset",
        "slots_offset",
        "slots",
        "probes_offset",
        "probes",
        "last_reclaim",
        "reserved",
    ];
    for i in word::TOTAL..=word::PROBES {
        if i != word::EPOCH && i != word::HASH && words[i] != expected[i] {
            return Err(HostError::LayoutMismatch {
                segment: seg(),
                field: NAMES[i],
                found: words[i],
                expected: expected[i],
            });
        }
    }
    if size < layout.total as u64 {
        return Err(HostError::Truncated {
            segment: seg(),
            size,
            expected: layout.total as u64,
        });
    }
    let epoch = words[word::EPOCH];
    if epoch == 0 || epoch > now {
        return Err(HostError::LayoutMismatch {
            segment: seg(),
            field: "epoch",
            found: epoch,
            expected: now,
        });
    }
    Ok(epoch)
}

/// Checks a segment name: 1–200 characters of `A-Z a-z 0-9 . _ -`, not `.` or `..`.
pub fn check_name(segment: &str) -> Result<(), HostError> {
    object_name(segment).map(|_| ())
}

/// The name of the shared-memory object of `segment`, checked.
fn object_name(segment: &str) -> Result<CString, HostError> {
    let ok = !segment.is_empty()
        && segment.len() <= 200
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        && segment != "."
        && segment != "..";
    if !ok {
        return Err(HostError::InvalidName {
            segment: segment.to_string(),
        });
    }
    CString::new(format!("/breakwater.{segment}")).map_err(|_| HostError::InvalidName {
        segment: segment.to_string(),
    })
}

fn os_error(segment: &str, action: &'static str) -> HostError {
    HostError::Io {
        segment: segment.to_string(),
        action,
        reason: std::io::Error::last_os_error().to_string(),
    }
}

/// Removes `segment`'s shared-memory object (processes that mapped it keep their
/// mapping; the next attach creates a fresh one). Removing one that does not exist is
/// not an error.
pub fn remove_segment(segment: &str) -> Result<(), HostError> {
    let name = object_name(segment)?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::shm_unlink(name.as_ptr()) };
    if rc != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT) {
        return Err(os_error(segment, "shm_unlink"));
    }
    Ok(())
}

/// This process has no entry in a segment: every entry belongs to a live process, or
/// its own `/proc/self/stat` could not be read ([`Segment::register`] says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unregistered;

impl std::fmt::Display for Unregistered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("this process has no entry in the segment")
    }
}

impl std::error::Error for Unregistered {}

/// Whether `count` words at byte `offset` lie inside a mapping of `len` bytes, 8-aligned.
fn fits(offset: usize, count: usize, len: usize) -> bool {
    offset % 8 == 0
        && count
            .checked_mul(8)
            .and_then(|b| b.checked_add(offset))
            .is_some_and(|end| end <= len)
}

/// A mapped segment. Dropping the last reference unmaps it; the object itself stays for
/// the other processes (see [`remove_segment`]).
pub struct Segment {
    base: NonNull<u8>,
    len: usize,
    name: String,
    layout: Layout,
    epoch: u64,
    /// `fork epoch << 32 | entry + 1` of this process's registration (0 = none yet). A
    /// plain std atomic: process-local bookkeeping, not a modelled decision.
    registration: std::sync::atomic::AtomicU64,
    /// This process's owner word, for the fork epoch in `registration`.
    owner: std::sync::atomic::AtomicU64,
    /// The lease arrays (owners, reclaimers, slots, probes) as (byte offset, words),
    /// checked against the mapping once in `map` so that [`leases`](Self::leases), on
    /// every bulkhead acquire and release, only builds four slices.
    lease_arrays: [(usize, usize); 4],
}

// SAFETY: the mapping is shared memory accessed only through atomics; the pointer is
// valid from any thread until `drop` unmaps it.
unsafe impl Send for Segment {}
// SAFETY: as `Send`: every access goes through `&AtomicU64` views.
unsafe impl Sync for Segment {}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name)
            .field("layout", &self.layout)
            .finish()
    }
}

/// Unlocks (see `attach`) and closes a descriptor when dropped. The unlock must be
/// explicit: a mapping keeps the open file description, and with it the `flock`, alive
/// after the descriptor is closed.
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a descriptor this module opened and nothing else closes;
        // unlocking a descriptor that holds no lock does nothing.
        unsafe {
            libc::flock(self.0, libc::LOCK_UN);
            libc::close(self.0);
        }
    }
}

impl Segment {
    /// Creates or attaches `segment` with `layout`, for the configuration hashed as
    /// `hash`; `now` is a `CLOCK_MONOTONIC` reading (the epoch of a new segment).
    pub fn attach(
        segment: &str,
        layout: Layout,
        hash: u64,
        now: u64,
    ) -> Result<crate::sync::Arc<Segment>, HostError> {
        if cfg!(loom) {
            return Err(HostError::Unsupported {
                segment: segment.to_string(),
                reason: "no shared memory under loom",
            });
        }
        // Before any registration can be cached: `entry` reads the fork epoch on every
        // call without checking the handler is in place.
        process::install_fork_handler();
        let name = object_name(segment)?;
        // SAFETY: `name` is NUL-terminated and outlives the call; the flags and mode are
        // plain integers.
        let fd = unsafe {
            libc::shm_open(
                name.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC,
                0o600 as libc::mode_t,
            )
        };
        if fd < 0 {
            return Err(os_error(segment, "shm_open"));
        }
        let fd = Fd(fd);
        // SAFETY: `fd` is open; flock only blocks until the lock is ours (the kernel
        // drops it if its holder dies).
        if unsafe { libc::flock(fd.0, libc::LOCK_EX) } != 0 {
            return Err(os_error(segment, "flock"));
        }
        let stat = Self::stat(segment, &fd)?;
        // SAFETY: `geteuid` cannot fail.
        let uid = unsafe { libc::geteuid() };
        check_access(segment, stat.st_uid, stat.st_mode, uid)?;
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        let header_bytes = (HEADER_WORDS * 8) as u64;
        let fresh = size == 0 || (size >= header_bytes && Self::peek_magic(segment, &fd)? == 0);
        if fresh {
            // A zero magic is a creator that died before publishing it (it wrote only
            // header words, under this flock, and its mapping died with it), or a
            // stray write by this same user (0600) to a live segment. Either way the
            // object is only ever grown, never shrunk, so no process that may still map
            // it can fault for want of backing (SIGBUS); the words are zeroed through
            // atomic stores, so a process still using a segment that was overwritten
            // sees zeroes (its leases gone), never undefined behaviour.
            if size < layout.total as u64 {
                // SAFETY: `fd` is open for writing; the length is a plain integer.
                if unsafe { libc::ftruncate(fd.0, layout.total as i64) } != 0 {
                    return Err(os_error(segment, "ftruncate"));
                }
            }
            let mapped = Self::map(segment, &fd, layout.total, layout, now)?;
            if size != 0 {
                for w in mapped.words(0, layout.total / 8) {
                    // Relaxed: published by the Release store of the magic below.
                    w.store(0, Ordering::Relaxed);
                }
            }
            let header = layout.header(hash, now);
            let words = mapped.words(0, HEADER_WORDS);
            for (w, v) in words.iter().zip(header).skip(1) {
                // Relaxed: published by the Release store of the magic below.
                w.store(v, Ordering::Relaxed);
            }
            // Release: a process that reads the magic (under the same flock, which
            // orders it anyway) sees the header words written before it.
            words[word::MAGIC].store(MAGIC, Ordering::Release);
            return Ok(crate::sync::Arc::new(mapped));
        }
        let len = usize::try_from(size).unwrap_or(usize::MAX);
        if size < header_bytes {
            return Err(HostError::Truncated {
                segment: segment.to_string(),
                size,
                expected: layout.total as u64,
            });
        }
        let mut mapped = Self::map(segment, &fd, len.min(layout.total), layout, 0)?;
        let words: Vec<u64> = mapped
            .words(0, HEADER_WORDS)
            .iter()
            // Acquire: pairs with the creator's Release of the magic.
            .map(|w| w.load(Ordering::Acquire))
            .collect();
        mapped.epoch = check_header(segment, &words, size, &layout, hash, now)?;
        Ok(crate::sync::Arc::new(mapped))
    }

    fn stat(segment: &str, fd: &Fd) -> Result<libc::stat, HostError> {
        // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is open and `stat` is writable.
        if unsafe { libc::fstat(fd.0, &mut stat) } != 0 {
            return Err(os_error(segment, "fstat"));
        }
        Ok(stat)
    }

    fn peek_magic(segment: &str, fd: &Fd) -> Result<u64, HostError> {
        let mut buf = [0u8; 8];
        // SAFETY: `buf` is writable for 8 bytes; `fd` is open.
        let n = unsafe { libc::pread(fd.0, buf.as_mut_ptr().cast(), 8, 0) };
        if n != 8 {
            return Err(os_error(segment, "pread"));
        }
        Ok(u64::from_ne_bytes(buf))
    }

    fn map(
        segment: &str,
        fd: &Fd,
        len: usize,
        layout: Layout,
        epoch: u64,
    ) -> Result<Segment, HostError> {
        // SAFETY: a fresh shared mapping of `len` bytes of an open object; the kernel
        // picks the address. `len` is at most the object's size (checked by callers),
        // so no access within it can fault for lack of backing.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.0,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(os_error(segment, "mmap"));
        }
        let entries = layout.entries.min(MAX_ENTRIES);
        let fit = |offset: usize, count: usize| {
            if fits(offset, count, len) {
                (offset, count)
            } else {
                (0, 0)
            }
        };
        let (owners, reclaimers) = (fit(LINE, entries), fit(LINE + entries * 8, entries));
        // Owners and reclaimers pair up by index: both or neither.
        let (owners, reclaimers) = if owners.1 == reclaimers.1 {
            (owners, reclaimers)
        } else {
            ((0, 0), (0, 0))
        };
        Ok(Segment {
            base: NonNull::new(base.cast()).ok_or_else(|| os_error(segment, "mmap"))?,
            len,
            name: segment.to_string(),
            layout,
            epoch,
            registration: std::sync::atomic::AtomicU64::new(0),
            owner: std::sync::atomic::AtomicU64::new(0),
            lease_arrays: [
                owners,
                reclaimers,
                fit(layout.slots_at, layout.slots),
                fit(layout.probes_at, layout.probes),
            ],
        })
    }

    /// The mapping's first byte.
    pub(crate) fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layout in force.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The creator's `CLOCK_MONOTONIC` reading.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// `count` words at byte `offset` (clamped to the mapping: an empty slice if they do
    /// not fit, which only a bug in the layout could cause).
    fn words(&self, offset: usize, count: usize) -> &[AtomicU64] {
        if !fits(offset, count, self.len) || count == 0 {
            return &[];
        }
        // SAFETY: the range is inside the mapping (checked above), 8-aligned (the
        // mapping is page-aligned and `offset` a multiple of 8), and every bit pattern
        // is a valid `AtomicU64`; the mapping lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.base().add(offset).cast::<AtomicU64>(), count) }
    }

    /// `count` words at byte `offset`, as read now (none if they lie outside the
    /// mapping): for checks of what another process left in the segment.
    pub(super) fn load_words(&self, offset: usize, count: usize) -> Vec<u64> {
        self.words(offset, count)
            .iter()
            // Acquire: every stage publishes its words with Release or stronger; a
            // check must see what the writer published before.
            .map(|w| w.load(Ordering::Acquire))
            .collect()
    }

    /// The lease words.
    #[inline]
    pub fn leases(&self) -> Leases<'_> {
        let [owners, reclaimers, slots, probes] = self.lease_arrays.map(|(offset, count)| {
            // SAFETY: `map` kept only ranges inside the mapping with an 8-aligned offset
            // (the mapping is page-aligned), and (0, 0) otherwise, which is the mapping's
            // first byte: non-null and aligned for an empty slice. Every bit pattern is a
            // valid `AtomicU64`, and the slice borrows `self`, which keeps it mapped.
            unsafe {
                std::slice::from_raw_parts(self.base().add(offset).cast::<AtomicU64>(), count)
            }
        });
        // `map` paired owners with reclaimers (same length, at most `MAX_ENTRIES`).
        Leases::trusted(owners, reclaimers, slots, probes)
    }

    /// This process's entry, registering it on first use (and again after a fork).
    ///
    /// The error is a plain `Copy` value, so that a caller on a hot path (every
    /// host-wide bulkhead acquire and release) carries no destructor;
    /// [`register`](Self::register) says why registration failed.
    #[inline]
    pub fn entry(&self) -> Result<u32, Unregistered> {
        let epoch = process::fork_epoch();
        // Relaxed: process-local cache; a racing registration finds the same entry.
        let r = self.registration.load(std::sync::atomic::Ordering::Relaxed);
        if r != 0 && r >> 32 == epoch {
            return Ok((r & 0xFFFF_FFFF) as u32 - 1);
        }
        self.register().map_err(|_| Unregistered)
    }

    /// Takes a bulkhead slot for this process (registering it on first use); false when
    /// every slot is taken or the process cannot register. The hot path of a host-wide
    /// bulkhead: a cached entry and one compare-exchange while the bulkhead is not
    /// crowded.
    #[inline]
    pub fn take_slot(&self) -> bool {
        match self.entry() {
            Ok(entry) => self.leases().take_slot(entry, Self::slot_start(entry)),
            Err(_) => false,
        }
    }

    /// Gives back one bulkhead slot of this process; false when it holds none.
    #[inline]
    pub fn give_slot(&self) -> bool {
        match self.entry() {
            Ok(entry) => self.leases().give_slot(entry, Self::slot_start(entry)),
            Err(_) => false,
        }
    }

    /// Where an entry's walk over the slots starts: entries start 7 slots apart, so a
    /// few processes each find their own slots first instead of all fighting over
    /// slot 0.
    #[inline(always)]
    fn slot_start(entry: u32) -> usize {
        entry as usize * 7
    }

    /// This process's owner word (after [`entry`](Self::entry)).
    pub fn owner(&self) -> u64 {
        // Relaxed: process-local cache written before the registration it belongs to.
        self.owner.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Registers this process (again after a fork; the entry it already has otherwise)
    /// and returns its entry, or why it cannot have one.
    #[cold]
    pub fn register(&self) -> Result<u32, HostError> {
        let epoch = process::fork_epoch();
        let me =
            process::current_owner().map_err(|_| os_error(&self.name, "read /proc/self/stat"))?;
        let entry = self
            .leases()
            .register(me, &process::is_alive, &mut |g| self.give_back_probe(g))
            .ok_or_else(|| HostError::ProcessTableFull {
                segment: self.name.clone(),
                entries: self.layout.entries as u64,
            })?;
        // Relaxed: see `entry`.
        self.owner.store(me, std::sync::atomic::Ordering::Relaxed);
        self.registration.store(
            (epoch << 32) | (u64::from(entry) + 1),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(entry)
    }

    /// Gives back every permit of every dead process now; returns the processes whose
    /// permits were given back.
    pub fn reclaim(&self) -> usize {
        let me = match self.entry() {
            Ok(_) => self.owner(),
            Err(_) => return 0,
        };
        self.leases()
            .reclaim(me, &process::is_alive, &mut |g| self.give_back_probe(g))
    }

    /// A dead process's half-open probe of `generation`: its slot in the breaker's trial
    /// is freed as if it had completed `Ignored` (a stale generation changes nothing).
    fn give_back_probe(&self, generation: u64) {
        if self.layout.breaker == 0 || self.layout.breaker_bytes < std::mem::size_of::<Core>() {
            return;
        }
        // SAFETY: the layout (computed by this process from its configuration, and
        // checked against the header) puts a `Core` at `breaker`, inside the mapping
        // and 128-byte aligned; it is atomics only, valid in every bit pattern.
        let core = unsafe { &*self.base().add(self.layout.breaker).cast::<Core>() };
        let _ = core.complete_probe(generation, None);
    }

    /// [`reclaim`](Self::reclaim), unless some process did so less than `interval`
    /// nanoseconds before `now` (a slow path calls this on every rejection; the scan reads
    /// `/proc` once per registered process).
    pub fn reclaim_if_due(&self, now: u64, interval: u64) -> usize {
        let last = &self.words(0, HEADER_WORDS)[word::LAST_RECLAIM];
        // Relaxed: the stamp only rations scans; a lost race means one scan fewer.
        let seen = last.load(Ordering::Relaxed);
        if now < seen.saturating_add(interval)
            || last
                .compare_exchange(seen, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return 0;
        }
        self.reclaim()
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are the mapping made in `map`; every reference into it
        // borrows `self` (or an `Arc<Segment>` that is now gone), so none remains.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_users_or_a_shared_segment_is_refused_for_any_uid() {
        assert_eq!(check_access("s", 1000, 0o100600, 1000), Ok(()));
        assert_eq!(
            check_access("s", 65534, 0o100600, 1000),
            Err(HostError::NotOwner {
                segment: "s".into(),
                owner: 65534,
                uid: 1000,
            })
        );
        // Root gets no exemption: a segment another user made is theirs.
        assert!(matches!(
            check_access("s", 1000, 0o100600, 0),
            Err(HostError::NotOwner {
                owner: 1000,
                uid: 0,
                ..
            })
        ));
        for mode in [0o100640, 0o100604, 0o100660, 0o100666] {
            assert_eq!(
                check_access("s", 7, mode, 7),
                Err(HostError::Permissions {
                    segment: "s".into(),
                    mode: mode & 0o7777,
                }),
                "mode {mode:o}"
            );
        }
    }

    /// A zero magic is re-initialised without shrinking the object: a process that still
    /// maps the old, larger segment reads zeroes, not SIGBUS.
    #[test]
    #[cfg(not(loom))] // no shared memory under loom
    fn a_zeroed_magic_is_reinitialised_without_shrinking() {
        let name = format!("unit-zero-magic-{}", std::process::id());
        let _ = remove_segment(&name);
        let large = Layout::new(0, 0, 0, 4096, 0);
        let old = Segment::attach(&name, large, 1, 1).unwrap();
        let words = old.words(0, large.total / 8);
        words[words.len() - 1].store(7, Ordering::Relaxed);
        words[word::MAGIC].store(0, Ordering::Relaxed);
        let small = Layout::new(0, 0, 0, 4, 0);
        assert!(small.total < large.total);
        let new = Segment::attach(&name, small, 2, 2).expect("a zero magic is a fresh segment");
        assert_eq!(new.words(0, 1)[0].load(Ordering::Relaxed), MAGIC);
        // Every word of the old mapping is still backed (a shrink would fault here).
        let sum: u64 = words.iter().map(|w| w.load(Ordering::Relaxed)).sum();
        assert_eq!(
            words[words.len() - 1].load(Ordering::Relaxed),
            7,
            "beyond the new layout: untouched"
        );
        assert!(sum > 7, "the new header is visible through the old mapping");
        drop((old, new));
        remove_segment(&name).unwrap();
    }
}
