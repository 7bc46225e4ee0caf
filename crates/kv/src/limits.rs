//! Every limit of the service, each with the reason for its value. A command over a limit is applied as a
//! `Rejected` reply (deterministically, on every replica), never as a panic or a partial write.

/// Longest key. Keys are held in memory, in every snapshot and in every `list` reply; 1 KiB is generous for
/// hierarchical names (etcd's keys are typically paths) and keeps a worst-case list page meaningful.
pub const KEY_BYTES_MAX: usize = 1024;

/// Longest value, after an append too. One value travels in one Raft entry, is held by every replica and is
/// copied into every snapshot; 64 KiB keeps an entry well under the core's per-append byte budget
/// (`DEFAULT_MAX_BYTES_PER_APPEND`, 1 MiB), so a single write can never stall replication. 6.824's kvraft tests
/// use values of a few KiB at most (the appends of one client to one key).
pub const VALUE_BYTES_MAX: usize = 64 * 1024;

/// Longest encoded command accepted for decoding: a key, a value (or a list cursor) and a little framing. Checked
/// before decoding so a garbage entry cannot make the decoder allocate more than this.
pub const COMMAND_BYTES_MAX: usize = 1 + 2 * KEY_BYTES_MAX + VALUE_BYTES_MAX + 64;

/// Most keys one `list` returns; a larger `limit` is clamped. Bounds the work one read does while the replica
/// applies nothing else, and the size of the reply a server must hold until the client takes it.
pub const LIST_KEYS_MAX: u32 = 1000;

/// Most bytes of keys one `list` returns (each key counts its length plus 8 bytes for its index). With
/// `KEY_BYTES_MAX` keys, `LIST_KEYS_MAX` of them would be 1 MiB: this keeps a reply at most a quarter of that.
pub const LIST_REPLY_BYTES_MAX: usize = 256 * 1024;

/// Most client sessions the dedup table keeps. Each costs at most about 100 bytes (ids, seq, index and a write's
/// small reply: reads keep no reply), so the table stays near 1 MiB in memory and in every snapshot. When a new
/// client arrives at the limit, the least recently active session is forgotten (see `dedup.rs` for the risk).
/// 6.824's heaviest kvraft test runs 3 rounds of 20 clerks: far below it.
pub const SESSIONS_MAX: usize = 10_000;

/// Most bytes the whole map may hold, counting each key, its value and `STORED_ENTRY_OVERHEAD_BYTES`. Every
/// replica holds the map in memory, and a snapshot is one postcard image that the core keeps in memory and sends
/// whole in one InstallSnapshot (keel does not chunk snapshots yet): 64 MiB keeps that message and each
/// replica's copy bounded. A write that would exceed it is rejected (`StoreFull`); deletes always apply.
pub const STORE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// What one key costs beyond its key and value bytes in `STORE_BYTES_MAX` (its index and two lengths), so that
/// the number of keys is bounded too, even with empty values.
pub const STORED_ENTRY_OVERHEAD_BYTES: usize = 16;

/// What one entry counts against `STORE_BYTES_MAX`.
pub fn stored_bytes(key: &str, value: &str) -> usize {
    key.len() + value.len() + STORED_ENTRY_OVERHEAD_BYTES
}
