//! The service a simulated replica runs: the tester's applier (the Raft catalogue and the sweep) or keel's real
//! key/value service (the kvraft catalogue). An enum rather than a generic cluster, so the cluster, its checks
//! and every existing run stay exactly as they were; the KV variant only adds what the KV front end needs (the
//! outputs of applied proposals).
use keel_kv::{KvService, Reply};
use keel_raft::Index;
use keel_replica::Service;

use crate::tester_service::TesterService;

/// Which service the cluster's replicas run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServiceKind {
    /// 6.824's applier: every command applied, kept for the cross-server checks.
    #[default]
    Tester,
    /// keel-kv's `KvService`: proposals' outcomes are handed to the KV front end.
    Kv,
}

pub enum SimService {
    Tester(TesterService),
    Kv(KvService),
}

/// What applying a command returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimOutput {
    /// The tester's applier returns nothing.
    Tester,
    Kv(Reply),
}

impl SimService {
    pub fn new(kind: ServiceKind) -> SimService {
        match kind {
            ServiceKind::Tester => SimService::Tester(TesterService::default()),
            ServiceKind::Kv => SimService::Kv(KvService::new()),
        }
    }
}

impl Service for SimService {
    type Output = SimOutput;

    fn apply(&mut self, index: Index, command: &[u8]) -> SimOutput {
        match self {
            SimService::Tester(service) => {
                service.apply(index, command);
                SimOutput::Tester
            }
            SimService::Kv(service) => SimOutput::Kv(service.apply(index, command)),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        match self {
            SimService::Tester(service) => service.snapshot(),
            SimService::Kv(service) => service.snapshot(),
        }
    }

    fn restore(&mut self, index: Index, snapshot: &[u8]) -> Result<(), String> {
        match self {
            SimService::Tester(service) => service.restore(index, snapshot),
            SimService::Kv(service) => service.restore(index, snapshot),
        }
    }
}
