//! What one run of the demo recorded, and what is computed from it: per-bucket series
//! for the picture and the time to recover.

use breakwater::breaker::BreakerState;
use breakwater::metrics::MetricsSnapshot;
use breakwater::RejectReason;

use crate::scenario::Kind;

/// How a request ended, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Answered successfully within the client's timeout.
    Ok,
    /// The payment service answered with an error.
    PaymentError,
    /// The policy's timeout cut the payment call short.
    PaymentTimeout,
    /// The policy refused the payment call (breaker open, bulkhead full, ...).
    Rejected(RejectReason),
    /// Every worker was busy and the queue full: turned away at the door.
    QueueFull,
    /// No answer within the client's timeout.
    ClientTimeout,
}

/// One request's story.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    /// What it asked for.
    pub(crate) kind: Kind,
    /// When it arrived (incident seconds).
    pub(crate) arrival: f64,
    /// When its client got an answer or gave up.
    pub(crate) end: f64,
    /// How it ended.
    pub(crate) fate: Fate,
}

impl Record {
    /// The latency its client saw.
    pub(crate) fn latency(&self) -> f64 {
        (self.end - self.arrival).max(0.0)
    }
}

/// The gateway's state at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// Incident seconds.
    pub(crate) t: f64,
    /// Workers busy.
    pub(crate) busy: u32,
    /// Requests waiting for a worker.
    pub(crate) queued: u32,
    /// The policy's breaker, in the protected run.
    pub(crate) breaker: Option<BreakerState>,
}

/// Everything one run recorded.
#[derive(Debug, Clone)]
pub(crate) struct Trace {
    /// Every request, in arrival order.
    pub(crate) records: Vec<Record>,
    /// The gateway's state, sampled regularly.
    pub(crate) samples: Vec<Sample>,
    /// Worker threads.
    pub(crate) workers: u32,
    /// Length of the run, incident seconds.
    pub(crate) seconds: f64,
    /// When the incident started and ended, if anything went wrong.
    pub(crate) incident: Option<(f64, f64)>,
    /// The policy's counters at the end (protected run only).
    pub(crate) policy: Option<MetricsSnapshot>,
    /// What the simulator saw of the policy's stages (simulated protected runs only).
    pub(crate) seen: Option<crate::diagnosis::Seen>,
    /// Every answer the payment service gave (simulated runs only): when the call
    /// started and how long the service took to answer it (whether or not the caller
    /// waited that long).
    pub(crate) answers: Vec<(f64, f64)>,
}

/// Per-bucket values of one run, for the picture.
#[derive(Debug, Clone, Default)]
pub(crate) struct Series {
    /// Success rate (0..=1) of checkouts ending in each bucket; 0 for a bucket where
    /// none ended while some were in flight all through it (their clients were all
    /// still waiting: no answer), `None` where none ended and none was waiting through
    /// it (no traffic, nothing to draw).
    pub(crate) checkout: Vec<Option<f64>>,
    /// Success rate of healthy-endpoint requests ending in each bucket, alike.
    pub(crate) healthy: Vec<Option<f64>>,
    /// Median latency (seconds) of the requests ending in each bucket that the gateway
    /// admitted (those turned away at the door are answered at once and left out).
    pub(crate) p50: Vec<Option<f64>>,
    /// 99th percentile latency.
    pub(crate) p99: Vec<Option<f64>>,
    /// Buckets where no request the gateway admitted finished while some were in flight
    /// all through the bucket or were turned away at the door (every worker stuck): no
    /// latency to draw, which the picture marks. A bucket without traffic is not one of
    /// them.
    pub(crate) unanswered: Vec<bool>,
    /// Mean share of busy workers (0..=1).
    pub(crate) busy: Vec<Option<f64>>,
    /// Breaker state samples `(t, state)`.
    pub(crate) breaker: Vec<(f64, BreakerState)>,
}

/// The `q` quantile of sorted values (nearest rank).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// The success rate of a bucket where `all` requests ended, `ok` of them well, and
/// `in_flight` were waiting all through it.
fn rate(ok: u32, all: u32, in_flight: i64) -> Option<f64> {
    match (all, in_flight) {
        (0, 0) => None,
        (0, _) => Some(0.0),
        _ => Some(f64::from(ok) / f64::from(all)),
    }
}

impl Trace {
    /// Buckets of `width` incident seconds over the run.
    pub(crate) fn series(&self, width: f64) -> Series {
        let n = (self.seconds / width).ceil() as usize;
        let bucket = |t: f64| ((t / width) as usize).min(n - 1);
        let mut counts = vec![[0u32; 4]; n];
        let mut latencies = vec![Vec::new(); n];
        // Requests in flight over each whole bucket, by kind (checkout, healthy), as
        // differences: a request that arrived in bucket `a` and ended in bucket `e` was
        // waiting all through buckets `a + 1..e`. (One merely crossing a bucket's edge
        // is not: a bucket of a quiet run must not read as a stall.)
        let mut in_flight = vec![[0i64; 2]; n + 1];
        let mut turned_away = vec![0u32; n];
        for r in &self.records {
            let b = bucket(r.end);
            let ok = u32::from(r.fate == Fate::Ok);
            let k = if r.kind == Kind::Checkout { 0 } else { 2 };
            counts[b][k] += ok;
            counts[b][k + 1] += 1;
            if r.fate == Fate::QueueFull {
                turned_away[b] += 1;
            } else {
                latencies[b].push(r.latency());
            }
            let a = bucket(r.arrival) + 1;
            if a < b {
                in_flight[a][k / 2] += 1;
                in_flight[b][k / 2] -= 1;
            }
        }
        let mut open = [0i64; 2];
        let in_flight: Vec<[i64; 2]> = in_flight[..n]
            .iter()
            .map(|d| {
                open = [open[0] + d[0], open[1] + d[1]];
                open
            })
            .collect();
        let mut busy = vec![(0.0, 0u32); n];
        let mut breaker = Vec::new();
        for s in &self.samples {
            let b = bucket(s.t);
            busy[b].0 += f64::from(s.busy) / f64::from(self.workers);
            busy[b].1 += 1;
            if let Some(state) = s.breaker {
                breaker.push((s.t, state));
            }
        }
        let mut series = Series {
            breaker,
            ..Series::default()
        };
        let buckets = counts.into_iter().zip(latencies).zip(in_flight);
        for (((c, mut l), waiting), away) in buckets.zip(turned_away) {
            l.sort_by(f64::total_cmp);
            series.checkout.push(rate(c[0], c[1], waiting[0]));
            series.healthy.push(rate(c[2], c[3], waiting[1]));
            series.p50.push(quantile(&l, 0.5));
            series.p99.push(quantile(&l, 0.99));
            // Stuck: clients waited all through the bucket, or were turned away at the
            // door because every worker and queue place was taken, and no admitted
            // request finished.
            series
                .unanswered
                .push(l.is_empty() && (waiting[0] + waiting[1] > 0 || away > 0));
        }
        series.busy = busy
            .into_iter()
            .map(|(sum, n)| (n > 0).then(|| sum / f64::from(n)))
            .collect();
        series
    }

    /// How long after the payment service healed clients kept seeing failures: from
    /// healing to the last failure that was part of a burst. A failure here is anything
    /// but the payment service's ordinary errors (which a healthy service has too); a
    /// burst is two or more such failures in one 250 ms bucket, which keeps a lone
    /// straggler (a thread descheduled on a busy machine) from counting.
    /// 0 if there was no burst after healing.
    pub(crate) fn recovery(&self) -> f64 {
        const BUCKET: f64 = 0.25;
        let Some((_, heal_at)) = self.incident else {
            return 0.0;
        };
        let n = ((self.seconds - heal_at) / BUCKET).ceil().max(0.0) as usize + 1;
        let bucket = |t: f64| (((t - heal_at) / BUCKET) as usize).min(n - 1);
        let abnormal = |r: &Record| !matches!(r.fate, Fate::Ok | Fate::PaymentError);
        let mut counts = vec![0u32; n];
        for r in self
            .records
            .iter()
            .filter(|r| r.end >= heal_at && abnormal(r))
        {
            counts[bucket(r.end)] += 1;
        }
        self.records
            .iter()
            .filter(|r| r.end >= heal_at && abnormal(r))
            .filter(|r| counts[bucket(r.end)] >= 2)
            .map(|r| r.end - heal_at)
            .fold(0.0, f64::max)
    }

    /// How many requests match `pred`.
    pub(crate) fn count(&self, pred: impl Fn(&Record) -> bool) -> usize {
        self.records.iter().filter(|r| pred(r)).count()
    }

    /// Sorted latencies of the requests matching `pred`.
    pub(crate) fn latencies(&self, pred: impl Fn(&Record) -> bool) -> Vec<f64> {
        let mut l: Vec<f64> = self
            .records
            .iter()
            .filter(|r| pred(r))
            .map(Record::latency)
            .collect();
        l.sort_by(f64::total_cmp);
        l
    }
}
