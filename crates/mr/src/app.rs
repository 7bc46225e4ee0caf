//! The programming model: what a user implements to run their own job.
//!
//! An [`App`] has a map function, a reduce function and, optionally, a combiner (the paper's section 4.3: a
//! partial reduce on the map side). Register apps by name in an [`AppRegistry`] and run keel's worker loop
//! ([`crate::worker::run_worker`]) or keel's whole command line ([`crate::cli::run_with_apps`]) in your own
//! binary; see `examples/custom_app.rs`.
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::counters::Counters;

/// Map and reduce functions of one job. Implementations must be deterministic for the output to equal a
/// sequential run (`keel mr seq`) when tasks are re-executed.
///
/// Large input files are split at line boundaries into several map tasks that see the same `input_name`,
/// so `map` must not assume it sees a whole file (see `indexer` for an app that copes with that).
pub trait App: Send + Sync {
    /// Calls `emit(key, value)` for every intermediate pair produced from `contents`, which is one split
    /// (whole lines) of the input file named `input_name` (the name as given on the command line).
    fn map(&self, input_name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str));

    /// Reduces all values emitted for `key` (after combining, if the app has a combiner) to one output
    /// value. Values arrive in a deterministic order (by map task, then emission order); apps whose output
    /// must not depend on the order should sort them.
    fn reduce(&self, key: &str, values: &mut dyn Iterator<Item = String>) -> String;

    /// `map` with the attempt's user counters (the paper's section 4.9): what the engine calls. Override
    /// it (and make `map` call it with a throwaway [`Counters`]) to count things; they are summed over the
    /// committed attempts only, so re-executions never count twice. The default counts nothing.
    fn map_with_counters(
        &self,
        input_name: &str,
        contents: &str,
        emit: &mut dyn FnMut(&str, &str),
        _counters: &mut Counters,
    ) {
        self.map(input_name, contents, emit)
    }

    /// `reduce` with the attempt's user counters; see [`App::map_with_counters`].
    fn reduce_with_counters(
        &self,
        key: &str,
        values: &mut dyn Iterator<Item = String>,
        _counters: &mut Counters,
    ) -> String {
        self.reduce(key, values)
    }

    /// The combiner, if the app has one.
    fn combiner(&self) -> Option<&dyn Combiner> {
        None
    }
}

/// A partial reduce run on the map side to shrink intermediate data. It must be associative and
/// commutative, and `reduce` must accept its output as one of its values (the paper, section 4.3).
pub trait Combiner: Send + Sync {
    /// Folds `value` into `accumulated`, both values emitted for `key`.
    fn combine(&self, key: &str, accumulated: &mut String, value: &str);
}

/// Apps known by name. The coordinator only needs the name; workers look the app up here.
#[derive(Clone, Default)]
pub struct AppRegistry {
    apps: BTreeMap<String, Arc<dyn App>>,
}

impl AppRegistry {
    /// An empty registry.
    pub fn new() -> AppRegistry {
        AppRegistry::default()
    }

    /// The apps that ship with keel: the user apps (`wc`, `indexer`) and, under the `test-` prefix, the
    /// apps that mirror 6.824's test plugins.
    pub fn builtin() -> AppRegistry {
        let mut registry = AppRegistry::new();
        crate::apps::register(&mut registry);
        crate::test_apps::register(&mut registry);
        registry
    }

    /// Adds (or replaces) the app called `name`.
    pub fn register(&mut self, name: &str, app: Arc<dyn App>) -> &mut AppRegistry {
        self.apps.insert(name.to_string(), app);
        self
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn App>> {
        self.apps.get(name).cloned()
    }

    /// Like [`AppRegistry::get`], with an error that lists the apps there are.
    pub fn lookup(&self, name: &str) -> anyhow::Result<Arc<dyn App>> {
        self.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.names().filter(|n| !crate::test_apps::is_test_app(n)).collect();
            anyhow::anyhow!("unknown app {name:?}; apps: {}", known.join(", "))
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.apps.keys().map(String::as_str)
    }
}
