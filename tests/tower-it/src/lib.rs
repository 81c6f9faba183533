//! Helpers of the `tower` feature's integration tests: a flaky upstream (an axum server
//! whose faults come from a breakwater chaos stage), a client over loopback, counting.
