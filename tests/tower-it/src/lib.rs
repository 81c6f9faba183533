//! Helpers of the `tower` feature's integration tests: a flaky upstream (an axum server
//! behind a breakwater `PolicyLayer` whose chaos stage injects latency and errors, and
//! whose handler follows a script), and a client over loopback (hyper's client behind
//! a `PolicyLayer`).
//!
//! Everything runs on one current-thread tokio runtime with the clock paused, and every
//! policy reads that clock ([`TokioClock`]), so durations in the tests are exact.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::State;
use axum::http::{Request, Response, StatusCode, Uri};
use axum::routing::get;
use axum::Router;
use breakwater::chaos::ChaosConfig;
use breakwater::policy::{Policy, PolicyConfig};
use breakwater::tower::{PolicyError, PolicyLayer, TokioClock};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};

/// What the upstream's handler does for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// The response status.
    pub status: u16,
    /// How long the handler sleeps before answering (tokio time).
    pub delay: Duration,
    /// A `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
}

impl Reply {
    /// 200 at once.
    pub const OK: Reply = Reply::status(200);

    /// `status` at once.
    pub const fn status(status: u16) -> Reply {
        Reply {
            status,
            delay: Duration::ZERO,
            retry_after: None,
        }
    }

    /// The same reply after `delay`.
    pub const fn after(self, delay: Duration) -> Reply {
        Reply { delay, ..self }
    }

    /// The same reply with a `Retry-After` of `seconds`.
    pub const fn retry_after(self, seconds: u64) -> Reply {
        Reply {
            retry_after: Some(seconds),
            ..self
        }
    }
}

/// The handler's script: the reply to the `n`th request it runs (1-based) for `path`.
pub type Script = Arc<dyn Fn(u64, &str) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Handler {
    script: Script,
    hits: Arc<AtomicU64>,
}

/// A running upstream.
pub struct Upstream {
    /// Where it listens (loopback).
    pub addr: SocketAddr,
    /// How many requests reached the handler (past the server's policy).
    pub hits: Arc<AtomicU64>,
    /// The server's own policy: its chaos stage is the upstream's flakiness (switched
    /// off until a test switches it on).
    pub policy: Arc<Policy>,
}

impl Upstream {
    /// Requests that reached the handler.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// Switches the server's fault injection to `chaos` (enabled as it says).
    pub fn set_chaos(&self, chaos: ChaosConfig) {
        let stage = self.policy.chaos().expect("the upstream has a chaos stage");
        stage.reconfigure(chaos).expect("valid chaos");
    }
}

/// A policy named `name`-less config on tokio's clock.
pub fn policy(config: PolicyConfig) -> Arc<Policy> {
    Arc::new(Policy::with_clock(config, TokioClock::new().into_any()).expect("valid policy"))
}

/// Starts an upstream on 127.0.0.1 answering every path as `script` says, behind a
/// single-attempt `PolicyLayer` with a (disabled) chaos stage; a refused or faulted call
/// is answered by `PolicyError::to_http_response`.
pub async fn upstream(script: impl Fn(u64, &str) -> Reply + Send + Sync + 'static) -> Upstream {
    let mut chaos = ChaosConfig::default();
    chaos.seed = 7;
    let server_policy = policy(PolicyConfig::new("upstream").with_chaos(chaos));
    let handler = Handler {
        script: Arc::new(script),
        hits: Arc::new(AtomicU64::new(0)),
    };
    let hits = handler.hits.clone();
    let app = Router::new()
        .fallback(get(handle))
        .with_state(handler)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(
                    |e: PolicyError<Infallible>| async move {
                        e.to_http_response::<axum::body::Body>()
                    },
                ))
                .layer(PolicyLayer::new(server_policy.clone()).single_attempt()),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("server runs");
    });
    Upstream {
        addr,
        hits,
        policy: server_policy,
    }
}

async fn handle(State(handler): State<Handler>, uri: Uri) -> Response<axum::body::Body> {
    let n = handler.hits.fetch_add(1, Ordering::SeqCst) + 1;
    let reply = (handler.script)(n, uri.path());
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::new(axum::body::Body::from("upstream"));
    *response.status_mut() = StatusCode::from_u16(reply.status).expect("valid status");
    if let Some(seconds) = reply.retry_after {
        response.headers_mut().insert("retry-after", seconds.into());
    }
    response
}

/// A request the client can clone for each attempt (an `http::Request` cannot be).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Get(pub &'static str);

/// hyper's client to `addr`, taking [`Get`]s.
pub fn http_client(
    addr: SocketAddr,
) -> impl Service<
    Get,
    Response = Response<Incoming>,
    Error = hyper_util::client::legacy::Error,
    Future: Send,
> + Clone
       + Send
       + 'static {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    client.map_request(move |Get(path): Get| {
        Request::get(format!("http://{addr}{path}"))
            .body(Empty::new())
            .expect("valid request")
    })
}

/// The status of a response, or the error's name.
pub fn status<E: std::fmt::Debug>(r: &Result<Response<Incoming>, PolicyError<E>>) -> String {
    match r {
        Ok(response) => response.status().as_u16().to_string(),
        Err(PolicyError::Rejected(rejection)) => rejection.reason.to_string(),
        Err(PolicyError::Timeout) => "timeout".into(),
        Err(PolicyError::Injected) => "injected".into(),
        Err(PolicyError::Inner(e)) => format!("inner: {e:?}"),
    }
}
