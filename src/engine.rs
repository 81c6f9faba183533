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
//! is built before anything is swapped; an error leaves the engine as it was. Policies
//! whose configuration did not change keep their object, hence their state (an open
//! breaker stays open, spent limiter tokens stay spent). A changed policy gets a new
//! object; handles to the old one keep working with the old configuration and see
//! [`Policy::is_superseded`] become true, and the old object is dropped with its last
//! handle. Removed policies are dropped the same way.

use crate::sync::Arc;
use std::collections::HashMap;
use std::path::Path;

use once_cell::sync::Lazy;

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

#[derive(Default)]
struct Registry {
    /// Policies in file order.
    order: Vec<Arc<Policy>>,
    by_name: HashMap<String, Arc<Policy>>,
}

/// A registry of named policies. Thread-safe; lookups take a short read lock, so look a
/// policy up once and keep its `Arc<Policy>` for the hot path.
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

    /// The policy named `name`.
    pub fn policy(&self, name: &str) -> Option<Arc<Policy>> {
        self.registry.read().by_name.get(name).cloned()
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
        // One reload at a time: two interleaved reloads could each keep a policy object
        // the other replaced (and marked superseded). Lookups never wait for this lock;
        // the policies are built before the registry's short write lock.
        let _reloading = self.reloading.lock();
        let current = self.policies();
        let mut report = ReloadReport::default();
        let mut next: Vec<Arc<Policy>> = Vec::with_capacity(file.policies.len());
        let mut errors = Vec::new();
        for config in file.policies {
            match current.iter().find(|p| p.name() == config.name) {
                Some(existing) if existing.config() == &config => {
                    report.unchanged.push(config.name.clone());
                    next.push(existing.clone());
                }
                existing => {
                    let name = config.name.clone();
                    match self.build(config) {
                        Ok(policy) => {
                            if existing.is_some() {
                                report.changed.push(name);
                            } else {
                                report.added.push(name);
                            }
                            next.push(policy);
                        }
                        Err(e) => errors.push(FieldError {
                            policy: Some(name),
                            field: e.field.to_string(),
                            line: None,
                            reason: e.reason,
                        }),
                    }
                }
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
        let by_name = next
            .iter()
            .map(|p| (p.name().to_string(), p.clone()))
            .collect();
        let replaced = {
            let mut registry = self.registry.write();
            let old = std::mem::replace(
                &mut *registry,
                Registry {
                    order: next,
                    by_name,
                },
            );
            old.order
        };
        for old in replaced {
            if !self
                .policy(old.name())
                .is_some_and(|p| Arc::ptr_eq(&p, &old))
            {
                old.mark_superseded();
            }
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

    /// Adds (or replaces) one policy built from `config`.
    pub fn insert(&self, config: PolicyConfig) -> Result<Arc<Policy>, crate::ConfigError> {
        let _reloading = self.reloading.lock();
        let policy = self.build(config)?;
        let mut registry = self.registry.write();
        if let Some(old) = registry
            .by_name
            .insert(policy.name().to_string(), policy.clone())
        {
            old.mark_superseded();
            registry.order.retain(|p| !Arc::ptr_eq(p, &old));
        }
        registry.order.push(policy.clone());
        Ok(policy)
    }

    fn build(&self, config: PolicyConfig) -> Result<Arc<Policy>, crate::ConfigError> {
        let policy = Arc::new(Policy::with_clock(config, self.clock.clone())?);
        policy.attach_events(self.events.clone());
        Ok(policy)
    }
}

static GLOBAL: Lazy<Arc<Engine>> = Lazy::new(|| Arc::new(Engine::new()));

/// The process-wide default engine, empty until configured with
/// [`Engine::reload`] (for example from a policy file at start-up).
pub fn global() -> &'static Arc<Engine> {
    &GLOBAL
}
