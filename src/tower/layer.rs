//! [`PolicyLayer`] and the [`PolicyService`] it wraps around a service.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_layer::Layer;
use tower_service::Service;

use crate::clock::duration_to_nanos;
use crate::policy::Policy;
use crate::rng::{mix64, SharedRng, GOLDEN_GAMMA};
use crate::sync::{AtomicU64, Ordering};

use super::classify::{Classify, HttpClassifier};
use super::error::PolicyError;
use super::gate::Gate;
use super::hedge::Hedge;

/// How often a percentile hedge delay is read again from the policy's latencies.
const HEDGE_REFRESH_NANOS: u64 = 1_000_000_000;

/// Runs one [`Policy`] around a tower service: every call takes a permit of every stage
/// (waiting asynchronously for a full bulkhead with a `max_wait`), is cut by the
/// policy's `timeout` (the inner future is dropped and the attempt recorded as a
/// timeout), is judged by a [`Classify`] ([`HttpClassifier`] by default), and is
/// retried with backoff on tokio's timers as the policy's retry section says, under its
/// retry budget and the call's deadline; optionally hedged ([`Hedge`]). A rate limit's
/// `retry_after` is waited on a timer when the policy retries `rate_limited`.
///
/// Requests are cloned for each attempt (`Req: Clone`), and so is the inner service
/// (`S: Clone`, as tower's retry needs).
///
/// ```
/// use breakwater::policy::{Policy, PolicyConfig};
/// use breakwater::tower::{PolicyLayer, TokioClock};
/// use std::{sync::Arc, time::Duration};
///
/// let policy = Policy::with_clock(
///     PolicyConfig::new("inventory").with_timeout(Duration::from_millis(250)),
///     TokioClock::new().into_any(),
/// ).unwrap();
/// let layer = PolicyLayer::new(Arc::new(policy)).with_deadline(Duration::from_secs(2));
/// # let _ = layer;
/// ```
#[derive(Debug)]
pub struct PolicyLayer<C = HttpClassifier, A = Retrying> {
    attempts: PhantomData<fn() -> A>,
    policy: Arc<Policy>,
    classifier: C,
    deadline: Option<Duration>,
    hedge: Option<Hedge>,
    seed: u64,
    gate: Arc<Gate>,
}

/// The calls of a [`PolicyService`] are retried and hedged as the policy and the layer
/// say (the default); requests must be `Clone`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retrying;

/// One attempt per call: neither retried nor hedged, so requests need not be `Clone` (a
/// server's `http::Request`). See [`PolicyLayer::single_attempt`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleAttempt;

impl<C: Clone, A> Clone for PolicyLayer<C, A> {
    fn clone(&self) -> Self {
        Self {
            attempts: PhantomData,
            policy: self.policy.clone(),
            classifier: self.classifier.clone(),
            deadline: self.deadline,
            hedge: self.hedge,
            seed: self.seed,
            gate: self.gate.clone(),
        }
    }
}

impl PolicyLayer<HttpClassifier> {
    /// A layer running `policy`, judging HTTP responses with [`HttpClassifier`].
    pub fn new(policy: Arc<Policy>) -> Self {
        let seed = policy
            .name()
            .bytes()
            .fold(GOLDEN_GAMMA, |h, b| mix64(h ^ u64::from(b)));
        Self {
            attempts: PhantomData,
            policy,
            classifier: HttpClassifier,
            deadline: None,
            hedge: None,
            seed,
            gate: Arc::new(Gate::default()),
        }
    }
}

impl<C, A> PolicyLayer<C, A> {
    /// Judges results with `classifier` instead (a closure
    /// `Fn(&Result<Res, E>) -> Classification`, or [`ResultClassifier`](super::ResultClassifier)
    /// for services that are not HTTP).
    pub fn with_classifier<C2>(self, classifier: C2) -> PolicyLayer<C2, A> {
        PolicyLayer {
            attempts: PhantomData,
            policy: self.policy,
            classifier,
            deadline: self.deadline,
            hedge: self.hedge,
            seed: self.seed,
            gate: self.gate,
        }
    }

    /// Gives every call an overall deadline, `deadline` after it starts: no retry whose
    /// backoff would end past it is started, and a running attempt is cut at it
    /// (recorded as a timeout).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Hedges every attempt as `hedge` says. Fails on a percentile outside (0, 1].
    pub fn with_hedge(mut self, hedge: Hedge) -> Result<Self, crate::ConfigError> {
        hedge.validate()?;
        self.hedge = Some(hedge);
        Ok(self)
    }

    /// Seeds the retries' jitter (calls draw from one generator started here), for a
    /// reproducible schedule.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// One attempt per call, for a server in front of its handlers (the client retries,
    /// not the server): the policy's retry section and any hedge are not used, and
    /// requests need not be `Clone`.
    pub fn single_attempt(self) -> PolicyLayer<C, SingleAttempt> {
        PolicyLayer {
            attempts: PhantomData,
            policy: self.policy,
            classifier: self.classifier,
            deadline: self.deadline,
            hedge: self.hedge,
            seed: self.seed,
            gate: self.gate,
        }
    }

    /// The policy the layer runs.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }
}

impl<S, C: Clone, A> Layer<S> for PolicyLayer<C, A> {
    type Service = PolicyService<S, C, A>;

    fn layer(&self, inner: S) -> Self::Service {
        PolicyService {
            attempts: PhantomData,
            inner,
            shared: Arc::new(Shared {
                policy: self.policy.clone(),
                classifier: self.classifier.clone(),
                deadline: self.deadline,
                hedge: self.hedge,
                seeds: SharedRng::new(self.seed),
                gate: self.gate.clone(),
                hedge_delay: AtomicU64::new(0),
                hedge_read_at: AtomicU64::new(0),
            }),
        }
    }
}

/// What every call of one [`PolicyService`] (and its clones) shares.
#[derive(Debug)]
pub(super) struct Shared<C> {
    pub(super) policy: Arc<Policy>,
    pub(super) classifier: C,
    pub(super) deadline: Option<Duration>,
    pub(super) hedge: Option<Hedge>,
    pub(super) seeds: SharedRng,
    pub(super) gate: Arc<Gate>,
    /// A percentile hedge's delay in nanoseconds (0: not read yet), and when it was read
    /// on the policy's clock.
    hedge_delay: AtomicU64,
    hedge_read_at: AtomicU64,
}

impl<C> Shared<C> {
    /// The delay before a hedge, for a call starting now.
    pub(super) fn hedge_delay(&self) -> Duration {
        let (q, fallback, min_samples) = match self.hedge {
            None => return Duration::MAX,
            Some(Hedge::After(delay)) => return delay,
            Some(Hedge::Percentile {
                q,
                fallback,
                min_samples,
            }) => (q, fallback, min_samples),
        };
        let now = self.policy.now();
        // Relaxed: a cached estimate; a stale or doubly refreshed value is harmless.
        let read_at = self.hedge_read_at.load(Ordering::Relaxed);
        let cached = self.hedge_delay.load(Ordering::Relaxed);
        if cached != 0 && now.saturating_sub(read_at) < HEDGE_REFRESH_NANOS {
            return Duration::from_nanos(cached);
        }
        self.refresh_hedge_delay(now, q, fallback, min_samples)
    }

    #[cold]
    fn refresh_hedge_delay(&self, now: u64, q: f64, fallback: Duration, min: u64) -> Duration {
        let latency = self.policy.metrics().snapshot().latency;
        let delay = match latency.quantile(q) {
            Some(d) if latency.count >= min => d,
            _ => fallback,
        };
        // Relaxed: see `hedge_delay`.
        self.hedge_delay
            .store(duration_to_nanos(delay).max(1), Ordering::Relaxed);
        self.hedge_read_at.store(now, Ordering::Relaxed);
        delay
    }
}

/// A service behind a [`PolicyLayer`]: see there. Its error is [`PolicyError`] of the
/// inner service's.
#[derive(Debug)]
pub struct PolicyService<S, C = HttpClassifier, A = Retrying> {
    attempts: PhantomData<fn() -> A>,
    inner: S,
    shared: Arc<Shared<C>>,
}

impl<S: Clone, C, A> Clone for PolicyService<S, C, A> {
    fn clone(&self) -> Self {
        Self {
            attempts: PhantomData,
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S, C, A> PolicyService<S, C, A> {
    /// The policy the service runs.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.shared.policy
    }
}

/// The future of a [`PolicyService`] call.
pub type PolicyFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, PolicyError<E>>> + Send>>;

/// What an attempt mode asks of requests: [`Retrying`] copies them (`Clone`) for
/// retries and hedges, [`SingleAttempt`] never does. Sealed: these two are all.
pub trait Attempts<Req>: sealed::Sealed {
    /// How a request is copied for a further attempt; `None`: one attempt per call.
    #[doc(hidden)]
    fn copy() -> Option<fn(&Req) -> Req>;
}

mod sealed {
    /// Keeps [`Attempts`](super::Attempts) to the layer's two modes.
    pub trait Sealed {}
    impl Sealed for super::Retrying {}
    impl Sealed for super::SingleAttempt {}
}

impl<Req: Clone> Attempts<Req> for Retrying {
    fn copy() -> Option<fn(&Req) -> Req> {
        Some(Req::clone)
    }
}

impl<Req> Attempts<Req> for SingleAttempt {
    fn copy() -> Option<fn(&Req) -> Req> {
        None
    }
}

impl<S, Req, C, A> Service<Req> for PolicyService<S, C, A>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Send + 'static,
    C: Classify<S::Response, S::Error>,
    A: Attempts<Req>,
{
    type Response = S::Response;
    type Error = PolicyError<S::Error>;
    type Future = PolicyFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(PolicyError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // The ready service goes with the call; this handle keeps a fresh clone, to be
        // driven ready before its next call (tower's usual hand-off).
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        Box::pin(super::call::run(
            self.shared.clone(),
            ready,
            request,
            A::copy(),
        ))
    }
}
