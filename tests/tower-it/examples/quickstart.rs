//! The README's tower quick starts, compiled and run by `cargo test` in tests/tower-it
//! (tests/readme.rs checks that the README shows exactly these lines): an axum server
//! whose routes run behind a policy, and a hyper client whose calls do.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use breakwater::engine::Engine;

// [readme:axum]
use axum::{error_handling::HandleErrorLayer, routing::get, Router};
use breakwater::tower::{PolicyError, PolicyLayer};
use tower::ServiceBuilder;

fn app(engine: &Engine) -> Router {
    // A bulkhead and a rate limit in front of every route; a refusal becomes a 503 or a
    // 429 with Retry-After. A server runs one attempt per request: the client retries.
    let inbound = engine.policy("inbound").expect("in the policy file");
    Router::new().route("/", get(|| async { "hello" })).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(|e: PolicyError<Infallible>| async move {
                e.to_http_response::<axum::body::Body>()
            }))
            .layer(PolicyLayer::new(inbound).single_attempt()),
    )
}
// [/readme:axum]

// [readme:client]
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tower::{Layer, ServiceExt};

async fn fetch(engine: &Engine, addr: SocketAddr) -> Result<u16, Box<dyn std::error::Error>> {
    // Timeout, breaker and retries around the client. Each attempt needs its own
    // request, so the service takes a cloneable one (here a path) and builds it.
    let upstream = engine.policy("upstream").expect("in the policy file");
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let get = client.map_request(move |path: &'static str| {
        http::Request::get(format!("http://{addr}{path}"))
            .body(Empty::new())
            .unwrap()
    });
    let service = PolicyLayer::new(upstream).layer(get);
    let response = service.oneshot("/").await?;
    Ok(response.status().as_u16())
}
// [/readme:client]

const POLICIES: &str = r#"
[policies.inbound.bulkhead]
max_concurrent = 64
[policies.inbound.rate_limiter]
rate = 1000
period = "1s"

[policies.upstream]
timeout = "2s"
[policies.upstream.circuit_breaker]
minimum_calls = 10
[policies.upstream.retry]
max_attempts = 3
"#;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let engine = Arc::new(Engine::from_toml_str(POLICIES).expect("valid policies"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = app(&engine);
    tokio::spawn(async move { axum::serve(listener, server).await.unwrap() });
    let status = fetch(&engine, addr).await.expect("the call went through");
    assert_eq!(status, 200);
    let served = engine.policy("inbound").unwrap().metrics().snapshot();
    let called = engine.policy("upstream").unwrap().metrics().snapshot();
    assert_eq!((served.success, called.success), (1, 1));
    println!("quickstart: 200 through both policies");
}
