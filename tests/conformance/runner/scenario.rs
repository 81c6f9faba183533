//! The scenario format of `tests/conformance/README.md`, read strictly into types: an
//! unknown key, a missing key, a wrong type or an unknown name is an error naming the
//! step, never a default.

use super::json::{self, Json};
use breakwater::adaptive::Priority;
use breakwater::breaker::BreakerState;
use breakwater::retry::GiveUpReason;
use breakwater::{Outcome, RejectReason};

/// The largest integer a scenario may hold (every JSON library reads it exactly).
pub const MAX_INT: i64 = (1 << 53) - 1;

/// One scenario file.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub clock_start_ns: u64,
    pub policy_file: String,
    pub limiters: Vec<LimiterSpec>,
    pub steps: Vec<Step>,
}

/// A standalone rate limiter of the scenario.
#[derive(Debug, Clone)]
pub struct LimiterSpec {
    pub name: String,
    pub rate: u64,
    pub period_ns: u64,
    pub burst: u64,
}

/// What an acquire must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Permitted,
    Rejected(RejectReason),
}

/// What a standalone limiter must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimiterAnswer {
    /// Taken (`limiter_acquire`) or reserved (`reserve`).
    Granted,
    RateLimited,
    NeverPasses,
}

/// The answer of a `retry_next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAnswer {
    Retry { delay_ns: u64 },
    GiveUp(GiveUpReason),
}

/// The breaker switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    ForceOpen,
    Disable,
    Reset,
}

/// An event the listener must have received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedEvent {
    Transition {
        policy: String,
        from: BreakerState,
        to: BreakerState,
        generation: u64,
        at_ns: u64,
    },
    BudgetExhausted {
        policy: String,
        at_ns: u64,
    },
    Reload {
        added: u64,
        removed: u64,
        changed: u64,
    },
}

/// The counters `expect_counters` may name, in `bw_policy_stats` order.
pub const COUNTERS: &[&str] = &[
    "permitted",
    "success",
    "failure",
    "timeout",
    "ignored",
    "slow",
    "retries",
    "rejected_circuit_open",
    "rejected_rate_limited",
    "rejected_bulkhead_full",
    "rejected_load_shed",
    "rejected_retry_budget_exhausted",
    "rejected_injected",
    "transitions_to_closed",
    "transitions_to_open",
    "transitions_to_half_open",
    "transitions_to_forced_open",
    "transitions_to_disabled",
    "latency_count",
    "latency_sum_ns",
    "breaker_generation",
    "limiter_available",
    "bulkhead_in_flight",
    "bulkhead_max_concurrent",
    "adaptive_limit",
    "adaptive_in_flight",
];

/// One step.
#[derive(Debug, Clone)]
pub enum Step {
    Advance {
        ns: u64,
    },
    SetClock {
        ns: u64,
    },
    Acquire {
        policy: String,
        id: Option<String>,
        priority: Priority,
        expect: Admission,
        retry_after_ns: u64,
        injected_failure: bool,
        injected_latency_ns: u64,
    },
    Complete {
        id: String,
        outcome: Outcome,
    },
    LimiterAcquire {
        limiter: String,
        permits: u64,
        expect: LimiterAnswer,
        retry_after_ns: u64,
    },
    Reserve {
        limiter: String,
        id: Option<String>,
        permits: u64,
        max_wait_ns: u64,
        expect: LimiterAnswer,
        wait_ns: u64,
        retry_after_ns: u64,
    },
    Cancel {
        id: String,
        cancelled: bool,
    },
    ExpectLimiter {
        limiter: String,
        available: Option<u64>,
        permitted: Option<u64>,
        rejected: Option<u64>,
    },
    Reload {
        policy_file: String,
        ok: bool,
    },
    Lookup {
        policy: String,
        found: bool,
    },
    Chaos {
        policy: String,
        enabled: bool,
    },
    Switch {
        policy: String,
        switch: Switch,
        has_stage: bool,
    },
    ExpectState {
        policy: String,
        state: BreakerState,
        generation: Option<u64>,
    },
    ExpectCounters {
        policy: String,
        counters: Vec<(String, i64)>,
    },
    ExpectEvents {
        events: Vec<ExpectedEvent>,
    },
    RetryBegin {
        policy: String,
        id: String,
        seed: u64,
        deadline_ns: Option<u64>,
    },
    RetryNext {
        id: String,
        what: What,
        retry_after_ns: Option<u64>,
        expect: RetryAnswer,
    },
}

/// What ended an attempt, for `retry_next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Failure,
    Timeout,
    Rejected(RejectReason),
}

impl Step {
    /// The step's `op`, for messages.
    pub fn op(&self) -> &'static str {
        match self {
            Step::Advance { .. } => "advance",
            Step::SetClock { .. } => "set_clock",
            Step::Acquire { .. } => "acquire",
            Step::Complete { .. } => "complete",
            Step::LimiterAcquire { .. } => "limiter_acquire",
            Step::Reserve { .. } => "reserve",
            Step::Cancel { .. } => "cancel",
            Step::ExpectLimiter { .. } => "expect_limiter",
            Step::Reload { .. } => "reload",
            Step::Lookup { .. } => "lookup",
            Step::Chaos { .. } => "chaos",
            Step::Switch {
                switch: Switch::ForceOpen,
                ..
            } => "force_open",
            Step::Switch {
                switch: Switch::Disable,
                ..
            } => "disable",
            Step::Switch {
                switch: Switch::Reset,
                ..
            } => "reset",
            Step::ExpectState { .. } => "expect_state",
            Step::ExpectCounters { .. } => "expect_counters",
            Step::ExpectEvents { .. } => "expect_events",
            Step::RetryBegin { .. } => "retry_begin",
            Step::RetryNext { .. } => "retry_next",
        }
    }
}

/// Reads the keys of one object, each at most once; `finish` refuses any key not read.
struct Fields<'a> {
    what: String,
    members: &'a [(String, Json)],
    used: Vec<bool>,
}

impl<'a> Fields<'a> {
    fn new(what: impl Into<String>, value: &'a Json) -> Result<Self, String> {
        let what = what.into();
        match value {
            Json::Object(members) => Ok(Fields {
                what,
                members,
                used: vec![false; members.len()],
            }),
            other => Err(format!(
                "{what}: expected an object, found {}",
                other.kind()
            )),
        }
    }

    fn opt(&mut self, key: &str) -> Option<&'a Json> {
        let index = self.members.iter().position(|(k, _)| k == key)?;
        self.used[index] = true;
        Some(&self.members[index].1)
    }

    fn req(&mut self, key: &str) -> Result<&'a Json, String> {
        let what = self.what.clone();
        self.opt(key)
            .ok_or_else(|| format!("{what}: missing key `{key}`"))
    }

    fn err(&self, key: &str, message: impl std::fmt::Display) -> String {
        format!("{}: `{key}` {message}", self.what)
    }

    fn string(&mut self, key: &str) -> Result<String, String> {
        match self.req(key)? {
            Json::Str(s) => Ok(s.clone()),
            other => Err(self.err(key, format!("must be a string, found {}", other.kind()))),
        }
    }

    fn opt_string(&mut self, key: &str) -> Result<Option<String>, String> {
        match self.opt(key) {
            None => Ok(None),
            Some(Json::Str(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.err(key, format!("must be a string, found {}", other.kind()))),
        }
    }

    fn boolean(&mut self, key: &str) -> Result<bool, String> {
        match self.req(key)? {
            Json::Bool(b) => Ok(*b),
            other => Err(self.err(key, format!("must be a boolean, found {}", other.kind()))),
        }
    }

    fn opt_bool(&mut self, key: &str) -> Result<Option<bool>, String> {
        match self.opt(key) {
            None => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.err(key, format!("must be a boolean, found {}", other.kind()))),
        }
    }

    fn int_of(&self, key: &str, value: &Json) -> Result<i64, String> {
        match value {
            Json::Int(i) if (-MAX_INT..=MAX_INT).contains(i) => Ok(*i),
            Json::Int(i) => Err(self.err(key, format!("{i} is outside ±(2^53 - 1)"))),
            other => Err(self.err(key, format!("must be an integer, found {}", other.kind()))),
        }
    }

    fn uint_of(&self, key: &str, value: &Json) -> Result<u64, String> {
        let i = self.int_of(key, value)?;
        u64::try_from(i).map_err(|_| self.err(key, format!("must not be negative, found {i}")))
    }

    fn uint(&mut self, key: &str) -> Result<u64, String> {
        let value = self.req(key)?;
        self.uint_of(key, value)
    }

    fn opt_uint(&mut self, key: &str) -> Result<Option<u64>, String> {
        match self.opt(key) {
            None => Ok(None),
            Some(value) => self.uint_of(key, value).map(Some),
        }
    }

    fn finish(self) -> Result<(), String> {
        match self
            .members
            .iter()
            .zip(&self.used)
            .find(|(_, used)| !**used)
        {
            Some(((key, _), _)) => Err(format!("{}: unknown key `{key}`", self.what)),
            None => Ok(()),
        }
    }
}

fn reason(name: &str) -> Result<RejectReason, String> {
    RejectReason::from_name(name).ok_or_else(|| format!("unknown rejection reason `{name}`"))
}

fn state(name: &str) -> Result<BreakerState, String> {
    BreakerState::from_name(name).ok_or_else(|| format!("unknown breaker state `{name}`"))
}

fn give_up(name: &str) -> Result<GiveUpReason, String> {
    GiveUpReason::from_name(name).ok_or_else(|| format!("unknown give-up reason `{name}`"))
}

/// Reads a scenario from the text of its file. `file_stem` is the file's name without
/// `.json`, which the scenario's `name` must equal (`None`: not checked, for fuzzing).
pub fn parse(text: &str, file_stem: Option<&str>) -> Result<Scenario, String> {
    let root = json::parse(text).map_err(|e| e.to_string())?;
    let mut top = Fields::new("scenario", &root)?;
    let format = top.uint("format")?;
    if format != 1 {
        return Err(format!("scenario: unknown format {format}"));
    }
    let name = top.string("name")?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!("scenario: name `{name}` is not [a-z0-9_]+"));
    }
    if let Some(stem) = file_stem {
        if stem != name {
            return Err(format!(
                "scenario: name `{name}` differs from the file name `{stem}`"
            ));
        }
    }
    let description = top.string("description")?;
    if description.trim().is_empty() {
        return Err("scenario: empty description".into());
    }
    let clock_start_ns = top.uint("clock_start_ns")?;
    if clock_start_ns == 0 {
        return Err("scenario: clock_start_ns must be at least 1".into());
    }
    let policy_file = top.string("policy_file")?;
    let mut limiters = Vec::new();
    if let Some(value) = top.opt("limiters") {
        let Json::Object(members) = value else {
            return Err(format!(
                "scenario: `limiters` must be an object, found {}",
                value.kind()
            ));
        };
        for (limiter, spec) in members {
            let mut f = Fields::new(format!("limiter `{limiter}`"), spec)?;
            limiters.push(LimiterSpec {
                name: limiter.clone(),
                rate: f.uint("rate")?,
                period_ns: f.uint("period_ns")?,
                burst: f.uint("burst")?,
            });
            f.finish()?;
        }
    }
    let steps_json = match top.req("steps")? {
        Json::Array(items) => items,
        other => {
            return Err(format!(
                "scenario: `steps` must be an array, found {}",
                other.kind()
            ))
        }
    };
    top.finish()?;
    let mut steps = Vec::with_capacity(steps_json.len());
    let mut ids: Vec<String> = Vec::new();
    for (index, value) in steps_json.iter().enumerate() {
        let step = parse_step(index + 1, value)?;
        let new_id = match &step {
            Step::Acquire { id: Some(id), .. }
            | Step::Reserve { id: Some(id), .. }
            | Step::RetryBegin { id, .. } => Some(id.clone()),
            _ => None,
        };
        if let Some(id) = new_id {
            if ids.contains(&id) {
                return Err(format!("step {}: id `{id}` used twice", index + 1));
            }
            ids.push(id);
        }
        steps.push(step);
    }
    Ok(Scenario {
        name,
        description,
        clock_start_ns,
        policy_file,
        limiters,
        steps,
    })
}

fn parse_step(number: usize, value: &Json) -> Result<Step, String> {
    let mut f = Fields::new(format!("step {number}"), value)?;
    let op = f.string("op")?;
    let at = |m: String| format!("step {number} ({op}): {m}");
    let step = match op.as_str() {
        "advance" => Step::Advance { ns: f.uint("ns")? },
        "set_clock" => {
            let ns = f.uint("ns")?;
            if ns == 0 {
                return Err(at("`ns` must be at least 1".into()));
            }
            Step::SetClock { ns }
        }
        "acquire" => {
            let policy = f.string("policy")?;
            let id = f.opt_string("id")?;
            let priority = match f.opt_string("priority")? {
                None => Priority::Default,
                Some(p) => {
                    Priority::from_name(&p).ok_or_else(|| at(format!("unknown priority `{p}`")))?
                }
            };
            let expect = match f.string("expect")?.as_str() {
                "permitted" => Admission::Permitted,
                other => Admission::Rejected(reason(other).map_err(at)?),
            };
            let retry_after = f.opt_uint("retry_after_ns")?;
            let injected_failure = f.opt_bool("injected_failure")?;
            let injected_latency = f.opt_uint("injected_latency_ns")?;
            match expect {
                Admission::Permitted => {
                    if id.is_none() {
                        return Err(at("a permitted acquire needs an `id`".into()));
                    }
                    if retry_after.is_some() {
                        return Err(at("`retry_after_ns` belongs to rejections".into()));
                    }
                }
                Admission::Rejected(_) => {
                    if id.is_some() || injected_failure.is_some() || injected_latency.is_some() {
                        return Err(at("a rejection has no `id` or `injected_*`".into()));
                    }
                    if retry_after.is_none() {
                        return Err(at("a rejection needs `retry_after_ns`".into()));
                    }
                }
            }
            Step::Acquire {
                policy,
                id,
                priority,
                expect,
                retry_after_ns: retry_after.unwrap_or(0),
                injected_failure: injected_failure.unwrap_or(false),
                injected_latency_ns: injected_latency.unwrap_or(0),
            }
        }
        "complete" => {
            let id = f.string("id")?;
            let name = f.string("outcome")?;
            let outcome =
                Outcome::from_name(&name).ok_or_else(|| at(format!("unknown outcome `{name}`")))?;
            Step::Complete { id, outcome }
        }
        "limiter_acquire" | "reserve" => {
            let limiter = f.string("limiter")?;
            let reserve = op == "reserve";
            let id = if reserve { f.opt_string("id")? } else { None };
            let permits = f.uint("permits")?;
            let max_wait_ns = if reserve { f.uint("max_wait_ns")? } else { 0 };
            let granted = if reserve { "reserved" } else { "permitted" };
            let expect = match f.string("expect")?.as_str() {
                s if s == granted => LimiterAnswer::Granted,
                "rate_limited" => LimiterAnswer::RateLimited,
                "never_passes" => LimiterAnswer::NeverPasses,
                other => return Err(at(format!("unknown answer `{other}`"))),
            };
            let wait = if reserve {
                f.opt_uint("wait_ns")?
            } else {
                None
            };
            let retry_after = f.opt_uint("retry_after_ns")?;
            let ok = match expect {
                LimiterAnswer::Granted => {
                    retry_after.is_none() && (!reserve || (id.is_some() && wait.is_some()))
                }
                LimiterAnswer::RateLimited => {
                    retry_after.is_some() && id.is_none() && wait.is_none()
                }
                LimiterAnswer::NeverPasses => {
                    retry_after.is_none() && id.is_none() && wait.is_none()
                }
            };
            if !ok {
                return Err(at("keys do not fit `expect` (see the README)".into()));
            }
            if reserve {
                Step::Reserve {
                    limiter,
                    id,
                    permits,
                    max_wait_ns,
                    expect,
                    wait_ns: wait.unwrap_or(0),
                    retry_after_ns: retry_after.unwrap_or(0),
                }
            } else {
                Step::LimiterAcquire {
                    limiter,
                    permits,
                    expect,
                    retry_after_ns: retry_after.unwrap_or(0),
                }
            }
        }
        "cancel" => Step::Cancel {
            id: f.string("id")?,
            cancelled: f.boolean("cancelled")?,
        },
        "expect_limiter" => {
            let limiter = f.string("limiter")?;
            let available = f.opt_uint("available")?;
            let permitted = f.opt_uint("permitted")?;
            let rejected = f.opt_uint("rejected")?;
            if available.is_none() && permitted.is_none() && rejected.is_none() {
                return Err(at("names nothing to check".into()));
            }
            Step::ExpectLimiter {
                limiter,
                available,
                permitted,
                rejected,
            }
        }
        "reload" => {
            let policy_file = f.string("policy_file")?;
            let ok = match f.string("expect")?.as_str() {
                "ok" => true,
                "invalid_config" => false,
                other => return Err(at(format!("unknown answer `{other}`"))),
            };
            Step::Reload { policy_file, ok }
        }
        "lookup" => {
            let policy = f.string("policy")?;
            let found = match f.string("expect")?.as_str() {
                "found" => true,
                "not_found" => false,
                other => return Err(at(format!("unknown answer `{other}`"))),
            };
            Step::Lookup { policy, found }
        }
        "chaos" => Step::Chaos {
            policy: f.string("policy")?,
            enabled: f.boolean("enabled")?,
        },
        "force_open" | "disable" | "reset" => {
            let policy = f.string("policy")?;
            let has_stage = match f.opt_string("expect")?.as_deref() {
                None | Some("ok") => true,
                Some("no_stage") => false,
                Some(other) => return Err(at(format!("unknown answer `{other}`"))),
            };
            let switch = match op.as_str() {
                "force_open" => Switch::ForceOpen,
                "disable" => Switch::Disable,
                _ => Switch::Reset,
            };
            Step::Switch {
                policy,
                switch,
                has_stage,
            }
        }
        "expect_state" => Step::ExpectState {
            policy: f.string("policy")?,
            state: state(&f.string("state")?).map_err(at)?,
            generation: f.opt_uint("generation")?,
        },
        "expect_counters" => {
            let policy = f.string("policy")?;
            let Json::Object(members) = f.req("counters")? else {
                return Err(at("`counters` must be an object".into()));
            };
            let mut counters = Vec::new();
            for (key, value) in members {
                if !COUNTERS.contains(&key.as_str()) {
                    return Err(at(format!("unknown counter `{key}`")));
                }
                let v = f.int_of(key, value)?;
                if v < 0 && key != "limiter_available" {
                    return Err(at(format!("counter `{key}` cannot be negative")));
                }
                counters.push((key.clone(), v));
            }
            if counters.is_empty() {
                return Err(at("names no counter".into()));
            }
            Step::ExpectCounters { policy, counters }
        }
        "expect_events" => {
            let Json::Array(items) = f.req("events")? else {
                return Err(at("`events` must be an array".into()));
            };
            let mut events = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let mut e = Fields::new(format!("step {number} event {}", i + 1), item)?;
                let event = match e.string("kind")?.as_str() {
                    "transition" => ExpectedEvent::Transition {
                        policy: e.string("policy")?,
                        from: state(&e.string("from")?).map_err(at)?,
                        to: state(&e.string("to")?).map_err(at)?,
                        generation: e.uint("generation")?,
                        at_ns: e.uint("at_ns")?,
                    },
                    "budget_exhausted" => ExpectedEvent::BudgetExhausted {
                        policy: e.string("policy")?,
                        at_ns: e.uint("at_ns")?,
                    },
                    "reload" => ExpectedEvent::Reload {
                        added: e.uint("added")?,
                        removed: e.uint("removed")?,
                        changed: e.uint("changed")?,
                    },
                    other => return Err(at(format!("unknown event kind `{other}`"))),
                };
                e.finish()?;
                events.push(event);
            }
            Step::ExpectEvents { events }
        }
        "retry_begin" => {
            let step = Step::RetryBegin {
                policy: f.string("policy")?,
                id: f.string("id")?,
                seed: f.uint("seed")?,
                deadline_ns: f.opt_uint("deadline_ns")?,
            };
            // C reads a deadline of 0 as none.
            if let Step::RetryBegin {
                deadline_ns: Some(0),
                ..
            } = step
            {
                return Err(at("`deadline_ns` must be at least 1".into()));
            }
            step
        }
        "retry_next" => {
            let id = f.string("id")?;
            let what = match f.string("what")?.as_str() {
                "failure" => What::Failure,
                "timeout" => What::Timeout,
                other => What::Rejected(reason(other).map_err(at)?),
            };
            let retry_after_ns = f.opt_uint("retry_after_ns")?;
            let delay = f.opt_uint("delay_ns")?;
            let give_up_reason = f.opt_string("reason")?;
            let expect = match (f.string("expect")?.as_str(), delay, give_up_reason) {
                ("retry", Some(delay_ns), None) => RetryAnswer::Retry { delay_ns },
                ("give_up", None, Some(r)) => RetryAnswer::GiveUp(give_up(&r).map_err(at)?),
                _ => {
                    return Err(at(
                        "`expect` is `retry` with `delay_ns` or `give_up` with `reason`".into(),
                    ))
                }
            };
            Step::RetryNext {
                id,
                what,
                retry_after_ns,
                expect,
            }
        }
        other => return Err(format!("step {number}: unknown op `{other}`")),
    };
    f.finish()?;
    Ok(step)
}
