//! Safety checks run on every applied entry and every leadership change, like 6.824's config.go appliers.
use std::collections::BTreeMap;

use keel_raft::{Index, NodeId, Term};

/// What each server has applied, and the cross-server checks on it.
pub struct ApplyChecker {
    /// `logs[server][index]`: the command the server applied at `index` (index 0 unused).
    logs: Vec<Vec<Option<Vec<u8>>>>,
    /// Highest index any server applied.
    pub max_index: Index,
    /// Index of the last command each server applied (reset on restart).
    last_applied: Vec<Index>,
    leaders: BTreeMap<Term, NodeId>,
}

impl ApplyChecker {
    pub fn new(servers: usize) -> ApplyChecker {
        ApplyChecker {
            logs: vec![Vec::new(); servers],
            max_index: 0,
            last_applied: vec![0; servers],
            leaders: BTreeMap::new(),
        }
    }

    pub fn command_at(&self, server: usize, index: Index) -> Option<&Vec<u8>> {
        self.logs[server].get(index as usize).and_then(|c| c.as_ref())
    }

    pub fn last_applied(&self, server: usize) -> Index {
        self.last_applied[server]
    }

    /// A restarted server applies again from scratch (or from its snapshot).
    pub fn restart(&mut self, server: usize) {
        self.last_applied[server] = 0;
    }

    /// Checks and records one applied command. Errors describe the violation in the paper's words.
    pub fn apply_command(&mut self, server: usize, index: Index, command: &[u8]) -> Result<(), String> {
        let expected = self.last_applied[server] + 1;
        if index != expected {
            return Err(format!("server {server} applied index {index} out of order: expected {expected}"));
        }
        for (other, log) in self.logs.iter().enumerate() {
            if let Some(Some(existing)) = log.get(index as usize)
                && existing.as_slice() != command
            {
                return Err(format!(
                    "state machine safety: commit index={index} server={server} applied {} but server={other} applied {}",
                    describe(command),
                    describe(existing)
                ));
            }
        }
        self.record(server, index, command.to_vec());
        self.last_applied[server] = index;
        Ok(())
    }

    /// The server replaced its state with a snapshot through `index` holding `commands` (1..=index).
    pub fn apply_snapshot(&mut self, server: usize, index: Index, commands: Vec<Vec<u8>>) -> Result<(), String> {
        if index < self.last_applied[server] {
            return Err(format!(
                "server {server} installed snapshot {index} behind what it already applied ({})",
                self.last_applied[server]
            ));
        }
        if commands.len() as u64 != index {
            return Err(format!("server {server}: snapshot {index} holds {} commands", commands.len()));
        }
        self.logs[server].clear();
        for (k, command) in commands.into_iter().enumerate() {
            let at = k as u64 + 1;
            for (other, log) in self.logs.iter().enumerate() {
                if let Some(Some(existing)) = log.get(at as usize)
                    && *existing != command
                {
                    return Err(format!(
                        "state machine safety: snapshot on server {server} has {} at {at} but server={other} applied {}",
                        describe(&command),
                        describe(existing)
                    ));
                }
            }
            self.record(server, at, command);
        }
        self.last_applied[server] = index;
        Ok(())
    }

    /// The server replaced its state with a snapshot through `index` whose image the checker cannot read (the KV
    /// service's): only its place is checked; the commands after it are checked as usual.
    pub fn apply_opaque_snapshot(&mut self, server: usize, index: Index) -> Result<(), String> {
        if index < self.last_applied[server] {
            return Err(format!(
                "server {server} installed snapshot {index} behind what it already applied ({})",
                self.last_applied[server]
            ));
        }
        self.last_applied[server] = index;
        Ok(())
    }

    /// The commands a server has applied, 1..=through, for building its snapshot.
    pub fn applied_prefix(&self, server: usize, through: Index) -> Option<Vec<Vec<u8>>> {
        (1..=through).map(|i| self.command_at(server, i).cloned()).collect()
    }

    fn record(&mut self, server: usize, index: Index, command: Vec<u8>) {
        let log = &mut self.logs[server];
        if log.len() <= index as usize {
            log.resize(index as usize + 1, None);
        }
        log[index as usize] = Some(command);
        self.max_index = self.max_index.max(index);
    }

    /// How many servers applied `index`, and the command (checking that they agree).
    pub fn n_committed(&self, index: Index) -> Result<(usize, Option<Vec<u8>>), String> {
        let mut count = 0;
        let mut command: Option<&Vec<u8>> = None;
        for (server, _) in self.logs.iter().enumerate() {
            if let Some(c) = self.command_at(server, index) {
                if let Some(previous) = command
                    && previous != c
                {
                    return Err(format!(
                        "committed values do not match: index {index}, {} vs {}",
                        describe(previous),
                        describe(c)
                    ));
                }
                count += 1;
                command = Some(c);
            }
        }
        Ok((count, command.cloned()))
    }

    /// The leader of `term`, if one was seen.
    pub fn leader_of(&self, term: Term) -> Option<NodeId> {
        self.leaders.get(&term).copied()
    }

    /// Election safety: at most one leader per term. Returns whether this leader is newly seen.
    pub fn leader_elected(&mut self, term: Term, leader: NodeId) -> Result<bool, String> {
        match self.leaders.insert(term, leader) {
            Some(previous) if previous != leader => {
                Err(format!("election safety: term {term} has two leaders, {previous} and {leader}"))
            }
            previous => Ok(previous.is_none()),
        }
    }
}

/// A command in words: 8-byte commands are the tester's integers.
pub fn describe(command: &[u8]) -> String {
    match <[u8; 8]>::try_from(command) {
        Ok(bytes) => u64::from_le_bytes(bytes).to_string(),
        Err(_) => format!("<{} bytes>", command.len()),
    }
}
