//! The engine: a registry of named policies built from one policy file, with atomic
//! reload and a process-wide default instance.
//!
//! ```
//! use breakwater::engine::Engine;
//!
//! let engine = Engine::from_toml_str(r#"
//!     [policies.payments.bulkhead]
//!     max_concurrent = 1
//! "#).unwrap();
//! let payments = engine.policy("payments").unwrap();
//! let permit = payments.acquire().unwrap();
//! assert!(payments.acquire().is_err());
//! permit.success();
//! ```
//!
//! Reload is all or nothing: the new file is parsed, validated and every changed policy
//! is built before anything is swapped; an error leaves the engine as it was.
//!
//! Handles follow reloads: the `Arc<Policy>` that [`Engine::policy`] returns (and a C
//! `bw_policy*`) is the policy of that name for as long as the name exists, so callers
//! look it up once and keep it. What a reload does to each policy:
//!
//! - **unchanged** configuration: nothing; the stages keep their state (an open breaker
//!   stays open, spent limiter tokens stay spent);
//! - **changed**: new stages, fresh state, installed under the same handle; every
//!   handle's next acquire uses them, and permits taken before complete against the
//!   stages that issued them. The policy's counters continue (they belong to the
//!   handle);
//! - **removed**: the engine forgets the handle; handles held elsewhere keep working
//!   with the last configuration, no longer follow reloads, and read
//!   [`Policy::is_superseded`] as true. A policy added again later under the same name
//!   is a new handle.
//!
//! Replaced stages are freed once nothing outside the engine holds the handle: the
//! engine checks at every reload and insert (see `policy/pipeline.rs`, "Reclaiming
//! replaced stages"); [`Policy::retained_configurations`] tells how many a handle keeps.

mod report;
pub use report::render_prometheus;

use crate::sync::Arc;
use std::collections::HashMap;
use std::path::Path;

use crate::clock::AnyClock;
use crate::config::{FieldError, PolicyFile, PolicyFileError};
use crate::metrics::{Event, EventSink};
use crate::policy::{Policy, PolicyConfig};
use crate::sync::{Mutex, RwLock};

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Policies that did not exist before.
    pub added: Vec<String>,
    /// Policies that no longer exist.
    pub removed: Vec<String>,
    /// Policies rebuilt because their configuration changed (state reset).
    pub changed: Vec<String>,
    /// Policies kept as they were, with their state.
    pub unchanged: Vec<String>,
}

/// The engine's policies. Each handle is held once (in `order`), so a handle the engine
/// alone holds has a strong count of one: what [`Registry::reclaim`] relies on.
#[derive(Default)]
struct Registry {
    /// Policies in file order.
    order: Vec<Arc<Policy>>,
    /// Index into `order` by name.
    by_name: HashMap<String, usize>,
}

impl Registry {
    fn new(order: Vec<Arc<Policy>>) -> Registry {
        let by_name = order
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name().to_string(), i))
            .collect();
        Registry { order, by_name }
    }

    fn get(&self, name: &str) -> Option<&Arc<Policy>> {
        self.by_name.get(name).and_then(|&i| self.order.get(i))
    }

    fn push(&mut self, policy: Arc<Policy>) {
        self.by_name
            .insert(policy.name().to_string(), self.order.len());
        self.order.push(policy);
    }

    /// Frees the replaced stages of every handle that nobody outside the engine holds.
    /// `Arc::get_mut` succeeds only when this is the handle's one strong reference and
    /// no weak one exists; it synchronizes with the drops of the others (their Release
    /// decrement, its Acquire check), so every use of the stages through them happened
    /// before. Called under the registry's write lock, so no lookup borrows the handle
    /// meanwhile.
    fn reclaim(&mut self) {
        for policy in &mut self.order {
            if let Some(policy) = Arc::get_mut(policy) {
                policy.reclaim_replaced();
            }
        }
    }
}

/// A registry of named policies. Thread-safe; lookups take a short read lock, so look a
/// policy up once and keep its `Arc<Policy>`: it follows reloads.
pub struct Engine {
    registry: RwLock<Registry>,
    /// Serialises reloads and inserts (never taken by lookups or calls).
    reloading: Mutex<()>,
    clock: AnyClock,
    events: Arc<EventSink>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("policies", &self.names())
            .finish()
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    /// An empty engine on the system clocks.
    pub fn new() -> Engine {
        Self::with_clock(AnyClock::Coarse)
    }

    /// An empty engine whose policies all read `clock`.
    pub fn with_clock(clock: AnyClock) -> Engine {
        Engine {
            registry: RwLock::new(Registry::default()),
            reloading: Mutex::new(()),
            clock,
            events: Arc::new(EventSink::new()),
        }
    }

    /// An engine with the policies of a policy file's text.
    pub fn from_toml_str(text: &str) -> Result<Engine, PolicyFileError> {
        let engine = Engine::new();
        engine.reload(PolicyFile::parse(text)?)?;
        Ok(engine)
    }

    /// An engine with the policies of the policy file at `path`.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Engine, PolicyFileError> {
        let engine = Engine::new();
        engine.reload(PolicyFile::load(path)?)?;
        Ok(engine)
    }

    /// The clock the engine's policies read.
    pub fn clock(&self) -> &AnyClock {
        &self.clock
    }

    /// The engine's event sink: set a listener for transitions, budget exhaustion and
    /// reloads of every policy.
    pub fn events(&self) -> &EventSink {
        &self.events
    }

    /// The policy named `name`; the error lists the names that are defined.
    ///
    /// ```
    /// use breakwater::engine::Engine;
    ///
    /// let engine = Engine::from_toml_str("[policies.payments]\n[policies.search]").unwrap();
    /// assert!(engine.policy("payments").is_ok());
    /// let error = engine.policy("paymnets").unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "no policy named \"paymnets\" (defined: payments, search)"
    /// );
    /// ```
    pub fn policy(&self, name: &str) -> Result<Arc<Policy>, UnknownPolicy> {
        let registry = self.registry.read();
        match registry.get(name) {
            Some(policy) => Ok(policy.clone()),
            None => Err(UnknownPolicy {
                name: name.to_owned(),
                defined: registry.order.iter().map(|p| p.name().to_owned()).collect(),
            }),
        }
    }

    /// Every policy, in file order.
    pub fn policies(&self) -> Vec<Arc<Policy>> {
        self.registry.read().order.clone()
    }

    /// The policies' names, in file order.
    pub fn names(&self) -> Vec<String> {
        self.registry
            .read()
            .order
            .iter()
            .map(|p| p.name().to_string())
            .collect()
    }

    /// Replaces the engine's policies with those of `file`, atomically (see the module
    /// docs for what is kept).
    pub fn reload(&self, file: PolicyFile) -> Result<ReloadReport, PolicyFileError> {
        // One reload at a time: two interleaved reloads could each install stages the
        // other replaced. Lookups never wait for this lock; the stages are built before
        // the registry's short write lock.
        let _reloading = self.reloading.lock();
        let current = self.policies();
        let mut report = ReloadReport::default();
        let mut next: Vec<Arc<Policy>> = Vec::with_capacity(file.policies.len());
        let mut installs = Vec::new();
        let mut errors = Vec::new();
        for config in file.policies {
            let name = config.name.clone();
            let existing = current.iter().find(|p| p.name() == config.name);
            let built = match existing {
                Some(policy) if policy.config() == &config => {
                    report.unchanged.push(name);
                    next.push(policy.clone());
                    continue;
                }
                Some(policy) => policy.build_stages(config).map(|stages| {
                    report.changed.push(name.clone());
                    installs.push((policy.clone(), stages));
                    policy.clone()
                }),
                None => self
                    .build(config)
                    .inspect(|_| report.added.push(name.clone())),
            };
            match built {
                Ok(policy) => next.push(policy),
                Err(e) => errors.push(FieldError {
                    policy: Some(name),
                    field: e.field.to_string(),
                    line: None,
                    reason: e.reason,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(PolicyFileError { errors });
        }
        for old in &current {
            if !next.iter().any(|p| p.name() == old.name()) {
                report.removed.push(old.name().to_string());
            }
        }
        drop(current);
        {
            let mut registry = self.registry.write();
            for (policy, stages) in installs {
                policy.install(stages);
            }
            let replaced = std::mem::replace(&mut *registry, Registry::new(next));
            for old in replaced.order {
                if registry.get(old.name()).is_none() {
                    old.mark_superseded();
                }
            }
            registry.reclaim();
        }
        self.events.emit(&Event::Reload {
            added: report.added.len(),
            removed: report.removed.len(),
            changed: report.changed.len(),
        });
        Ok(report)
    }

    /// [`Engine::reload`] from a policy file's text.
    pub fn reload_str(&self, text: &str) -> Result<ReloadReport, PolicyFileError> {
        self.reload(PolicyFile::parse(text)?)
    }

    /// [`Engine::reload`] from the policy file at `path`.
    pub fn reload_path(&self, path: impl AsRef<Path>) -> Result<ReloadReport, PolicyFileError> {
        self.reload(PolicyFile::load(path)?)
    }

    /// Adds one policy built from `config`, or, when a policy of that name exists,
    /// installs `config` under its handle (fresh state, as a changed policy in a reload).
    pub fn insert(&self, config: PolicyConfig) -> Result<Arc<Policy>, crate::ConfigError> {
        let _reloading = self.reloading.lock();
        if let Ok(existing) = self.policy(&config.name) {
            let stages = existing.build_stages(config)?;
            let mut registry = self.registry.write();
            existing.install(stages);
            registry.reclaim();
            return Ok(existing);
        }
        let policy = self.build(config)?;
        let mut registry = self.registry.write();
        registry.push(policy.clone());
        registry.reclaim();
        Ok(policy)
    }

    fn build(&self, config: PolicyConfig) -> Result<Arc<Policy>, crate::ConfigError> {
        let policy = Arc::new(Policy::with_clock(config, self.clock.clone())?);
        policy.attach_events(self.events.clone());
        Ok(policy)
    }
}

crate::sync::lazy_static! {
    static ref GLOBAL: Arc<Engine> = Arc::new(Engine::new());
}

/// The process-wide default engine, empty until configured with
/// [`Engine::reload`] (for example from a policy file at start-up).
pub fn global() -> &'static Arc<Engine> {
    &GLOBAL
}

/// [`Engine::policy`] was asked for a name the engine does not define.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPolicy {
    /// The name asked for.
    pub name: String,
    /// The names the engine defines, in file order.
    pub defined: Vec<String>,
}

impl UnknownPolicy {
    /// How many defined names the message lists before "and N more".
    const LISTED: usize = 20;
}

impl std::fmt::Display for UnknownPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no policy named \"{}\" ", self.name)?;
        if self.defined.is_empty() {
            return f.write_str("(the engine defines none)");
        }
        let listed = &self.defined[..self.defined.len().min(Self::LISTED)];
        write!(f, "(defined: {}", listed.join(", "))?;
        if self.defined.len() > listed.len() {
            write!(f, ", and {} more", self.defined.len() - listed.len())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownPolicy {}
