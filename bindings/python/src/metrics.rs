//! `bw_metrics` (the exact counters of a standalone handle) as a Python snapshot, and
//! the field copying that every snapshot of a C stats struct shares.

use breakwater::ffi::metrics::bw_metrics;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// `d[field] = s.field` for each field named: the Python keys are the C names.
macro_rules! set_fields {
    ($d:expr, $s:expr; $($field:ident),+ $(,)?) => {
        $($d.set_item(stringify!($field), $s.$field)?;)+
    };
}
pub(crate) use set_fields;

/// The latency keys of a snapshot from a C struct's `latency_count` and
/// `latency_{sum,p50,p90,p99,p999}_ns`: the count as is, the rest in seconds.
macro_rules! set_latency {
    ($d:expr, $s:expr) => {
        $d.set_item("latency_count", $s.latency_count)?;
        for (key, ns) in [
            ("latency_sum", $s.latency_sum_ns),
            ("latency_p50", $s.latency_p50_ns),
            ("latency_p90", $s.latency_p90_ns),
            ("latency_p99", $s.latency_p99_ns),
            ("latency_p999", $s.latency_p999_ns),
        ] {
            $d.set_item(key, $crate::convert::seconds(ns))?;
        }
    };
}
pub(crate) use set_latency;

/// A C stats struct's `transitions_to_*` counts, in `bw_breaker_state` order.
macro_rules! transitions {
    ($s:expr) => {
        [
            $s.transitions_to_closed,
            $s.transitions_to_open,
            $s.transitions_to_half_open,
            $s.transitions_to_forced_open,
            $s.transitions_to_disabled,
        ]
    };
}
pub(crate) use transitions;

/// A `Metrics` dataclass (built by `breakwater._guard.metrics`).
pub(crate) fn to_python(py: Python<'_>, name: &str, m: &bw_metrics) -> PyResult<PyObject> {
    let d = PyDict::new(py);
    d.set_item("name", name)?;
    set_fields!(d, m; permitted, rejected, success, failure, timeout, ignored, slow);
    set_latency!(d, m);
    crate::guard::call_helper(py, "metrics", (d,))
}
