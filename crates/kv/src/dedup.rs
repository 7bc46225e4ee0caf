//! Exactly-once: the sessions table. Per client, the highest sequence number applied, the log index where that
//! happened, and (for a write) its reply.
//!
//! **The contract (6.824's):** a client has at most one request outstanding, and numbers its requests 1, 2, 3...
//! (gaps are tolerated; going backwards is not). It retries a request, after a timeout or a "wrong leader", with
//! the same (client, seq) until it gets a reply, and only then sends seq + 1.
//!
//! The rules, for a request (client, seq) applied at index i:
//! - `seq == 0`: rejected (`InvalidSequence`): sequence numbers start at 1.
//! - a new client, `seq == 1`: executed; the session is created.
//! - a new client, `seq > 1`: the client must have had its earlier requests applied, so its session was evicted.
//!   Request `seq` may already have been applied: it is rejected (`SessionExpired`) rather than risk applying it
//!   twice. This is the Raft thesis's answer (§6.3): an expired session is an error the client sees, never a
//!   silent duplicate.
//! - `seq < last`: an old duplicate (a contract violation, or a copy the network held for long). Rejected
//!   (`StaleSequence`), not executed: its client moved on and reads no reply for it.
//! - `seq == last`: a retry. A write gets the reply it got the first time, without executing again. A read is
//!   executed again: the client has not yet seen a reply (or it would not retry), so its operation is still
//!   in progress and may take effect now as legitimately as then; answering with the current state is
//!   linearizable. Keeping no reply for reads keeps a session small (no values), which is what lets
//!   `SESSIONS_MAX` bound the table's memory.
//! - `seq > last`: executed; the session now remembers `seq` and its reply.
//!
//! **Memory**: at most `SESSIONS_MAX` sessions. A new client at the limit evicts the least recently active
//! session (smallest index of its last applied request). The risk, which the Raft thesis (§6.3) describes for any
//! session expiry: an evicted client's requests can no longer be deduplicated. Here, any later request of an
//! evicted client gets `SessionExpired`, except one case: a client still retrying its *first* request when its
//! session is evicted (after `SESSIONS_MAX` other clients were active since) may have that request applied twice,
//! because a first request also creates the session. The thesis closes that hole with an explicit RegisterClient
//! command; adding one would cost every client a round trip. Eviction depends only on the applied log, so every
//! replica evicts the same sessions.
use std::collections::BTreeMap;

use keel_raft::Index;
use serde::{Deserialize, Serialize};

use crate::command::{ClientId, Rejection, Reply, Seq};
use crate::limits::SESSIONS_MAX;

/// What the service remembers of one client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The highest sequence number applied for this client.
    pub last_seq: Seq,
    /// The log index at which the client's last request (`last_seq`, or a retried read of it) was applied:
    /// the session's age, for eviction.
    pub last_index: Index,
    /// The reply to `last_seq` if it was a write; `None` for a read (executed again on a retry).
    pub last_reply: Option<Reply>,
}

/// What to do with a request, given the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Execute it, then [`Sessions::record`] the outcome.
    Execute,
    /// A retry of an applied write: answer with its original reply; execute nothing.
    Duplicate(Reply),
    /// Do not execute it; answer this.
    Refuse(Rejection),
}

/// The sessions, by client, and their order of activity (for eviction). Both maps always hold the same sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sessions {
    by_client: BTreeMap<ClientId, Session>,
    /// `last_index -> client`: each index applies one command, so no two sessions share one.
    by_activity: BTreeMap<Index, ClientId>,
}

impl Sessions {
    /// Decides what request (client, seq) gets. Pure: changes nothing.
    pub fn admit(&self, client_id: ClientId, seq: Seq) -> Admission {
        if seq == 0 {
            return Admission::Refuse(Rejection::InvalidSequence);
        }
        match self.by_client.get(&client_id) {
            None if seq == 1 => Admission::Execute,
            None => Admission::Refuse(Rejection::SessionExpired { seq }),
            Some(session) if seq < session.last_seq => {
                Admission::Refuse(Rejection::StaleSequence { seq, last_applied_seq: session.last_seq })
            }
            Some(session) if seq == session.last_seq => match &session.last_reply {
                Some(reply) => Admission::Duplicate(reply.clone()),
                None => Admission::Execute,
            },
            Some(_) => Admission::Execute,
        }
    }

    /// Records that (client, seq) was executed at `index` with `reply` (`None` for a read). Evicts the least
    /// recently active session if a new client would exceed `SESSIONS_MAX`.
    pub fn record(&mut self, client_id: ClientId, seq: Seq, index: Index, reply: Option<Reply>) {
        let session = Session { last_seq: seq, last_index: index, last_reply: reply };
        match self.by_client.insert(client_id, session) {
            Some(old) => {
                assert!(old.last_seq <= seq && old.last_index < index, "sessions only move forward");
                self.by_activity.remove(&old.last_index);
            }
            None if self.by_client.len() > SESSIONS_MAX => self.evict_oldest(),
            None => {}
        }
        let previous = self.by_activity.insert(index, client_id);
        assert!(previous.is_none(), "two sessions active at index {index}");
        self.assert_consistent();
    }

    fn evict_oldest(&mut self) {
        if let Some((_, client_id)) = self.by_activity.pop_first() {
            self.by_client.remove(&client_id);
        }
    }

    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    pub fn get(&self, client_id: ClientId) -> Option<&Session> {
        self.by_client.get(&client_id)
    }

    /// Sessions in client order (for snapshots).
    pub fn iter(&self) -> impl Iterator<Item = (ClientId, &Session)> {
        self.by_client.iter().map(|(&client_id, session)| (client_id, session))
    }

    /// Rebuilds a table from a snapshot's sessions. The caller validated them; a collision of activity indexes
    /// or a duplicate client is still refused here, so the two maps can never disagree.
    pub fn from_sessions(sessions: Vec<(ClientId, Session)>) -> Result<Sessions, (ClientId, String)> {
        let mut table = Sessions::default();
        for (client_id, session) in sessions {
            if table.by_activity.insert(session.last_index, client_id).is_some() {
                return Err((client_id, format!("another session was last active at index {}", session.last_index)));
            }
            if table.by_client.insert(client_id, session).is_some() {
                return Err((client_id, "two sessions".to_string()));
            }
        }
        Ok(table)
    }

    fn assert_consistent(&self) {
        assert_eq!(self.by_client.len(), self.by_activity.len(), "sessions and their activity order disagree");
        assert!(self.by_client.len() <= SESSIONS_MAX, "more than SESSIONS_MAX sessions");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(index: Index) -> Option<Reply> {
        Some(Reply::Written { index })
    }

    #[test]
    fn rules() {
        let mut sessions = Sessions::default();
        assert_eq!(sessions.admit(1, 0), Admission::Refuse(Rejection::InvalidSequence));
        assert_eq!(sessions.admit(1, 2), Admission::Refuse(Rejection::SessionExpired { seq: 2 }));
        assert_eq!(sessions.admit(1, 1), Admission::Execute);
        sessions.record(1, 1, 10, written(10));
        assert_eq!(sessions.admit(1, 1), Admission::Duplicate(Reply::Written { index: 10 }));
        assert_eq!(sessions.admit(1, 5), Admission::Execute);
        sessions.record(1, 5, 11, None);
        assert_eq!(sessions.admit(1, 5), Admission::Execute, "a retried read is executed again");
        assert_eq!(sessions.admit(1, 4), Admission::Refuse(Rejection::StaleSequence { seq: 4, last_applied_seq: 5 }));
    }

    #[test]
    fn evicts_the_least_recently_active() {
        let mut sessions = Sessions::default();
        let clients = SESSIONS_MAX as u64;
        for client in 0..clients {
            sessions.record(client, 1, client + 1, written(client + 1));
        }
        // Client 0 is active again: client 1 is now the oldest.
        sessions.record(0, 2, clients + 1, written(clients + 1));
        sessions.record(clients, 1, clients + 2, written(clients + 2));
        assert_eq!(sessions.len(), SESSIONS_MAX);
        assert!(sessions.get(1).is_none());
        assert!(sessions.get(0).is_some() && sessions.get(clients).is_some());
        assert_eq!(sessions.admit(1, 2), Admission::Refuse(Rejection::SessionExpired { seq: 2 }));
    }
}
