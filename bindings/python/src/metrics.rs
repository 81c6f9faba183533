//! `bw_metrics` (the exact counters of a standalone handle) as a Python snapshot.

use breakwater::ffi::metrics::bw_metrics;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::seconds;

/// A `Metrics` dataclass (built by `breakwater._guard.metrics`).
pub(crate) fn to_python(py: Python<'_>, name: &str, m: &bw_metrics) -> PyResult<PyObject> {
    let d = PyDict::new(py);
    d.set_item("name", name)?;
    d.set_item("permitted", m.permitted)?;
    d.set_item("rejected", m.rejected)?;
    d.set_item("success", m.success)?;
    d.set_item("failure", m.failure)?;
    d.set_item("timeout", m.timeout)?;
    d.set_item("ignored", m.ignored)?;
    d.set_item("slow", m.slow)?;
    d.set_item("latency_count", m.latency_count)?;
    d.set_item("latency_sum", seconds(m.latency_sum_ns))?;
    d.set_item("latency_p50", seconds(m.latency_p50_ns))?;
    d.set_item("latency_p90", seconds(m.latency_p90_ns))?;
    d.set_item("latency_p99", seconds(m.latency_p99_ns))?;
    d.set_item("latency_p999", seconds(m.latency_p999_ns))?;
    Ok(crate::guard::helpers(py)?
        .getattr("metrics")?
        .call1((d,))?
        .unbind())
}
