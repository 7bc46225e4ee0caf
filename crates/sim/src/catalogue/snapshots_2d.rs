//! 6.824 Lab 2D: log compaction. Same scenarios and bounds as test_test.go, in virtual time, with the tester's
//! snapshot applier (a snapshot every 10 entries, taken from inside the apply loop).
use crate::Tester;
use crate::tester::TesterConfig;
use crate::tester::{MAX_LOG_SIZE_BYTES, SNAPSHOT_INTERVAL, u64_command};

fn one_random(t: &mut Tester, expected: usize) -> u64 {
    let x = t.random_command();
    t.one_u64(x, expected, true)
}

/// 6.824's snapcommon: 30 rounds in which a victim misses entries (by disconnect or crash) while the others
/// snapshot past them, so the victim usually needs InstallSnapshot to catch up.
fn snapcommon(config: &TesterConfig, name: &str, disconnect: bool, reliable: bool, crash: bool) {
    let iters = 30;
    let servers = 3;
    let mut t = Tester::new(config, servers, !reliable, true);
    t.begin(name);
    one_random(&mut t, servers);
    let mut leader1 = t.check_one_leader();
    for i in 0..iters {
        let (mut victim, mut sender) = ((leader1 + 1) % servers, leader1);
        if i % 3 == 1 {
            sender = (leader1 + 1) % servers;
            victim = leader1;
        }
        if disconnect {
            t.disconnect(victim);
            one_random(&mut t, servers - 1);
        }
        if crash {
            t.crash1(victim);
            one_random(&mut t, servers - 1);
        }
        // Perhaps send enough to get a snapshot.
        let nn = SNAPSHOT_INTERVAL / 2 + t.rand_range(0, SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            let x = t.random_command();
            t.start(sender, u64_command(x));
        }
        // Let the appliers catch up with the Start()s.
        if !disconnect && !crash {
            // Make sure all followers have caught up, so that InstallSnapshot isn't required for snapshot_basic.
            one_random(&mut t, servers);
        } else {
            one_random(&mut t, servers - 1);
        }
        let size = t.log_size();
        if size >= MAX_LOG_SIZE_BYTES {
            t.fail(&format!("log size too large: {size} bytes of persisted Raft state"));
        }
        if disconnect {
            // Reconnect a follower, who may be behind and need a snapshot to catch up.
            t.connect(victim);
            one_random(&mut t, servers);
            leader1 = t.check_one_leader();
        }
        if crash {
            t.start1(victim);
            t.connect(victim);
            one_random(&mut t, servers);
            leader1 = t.check_one_leader();
        }
    }
    // keel's own check: the install scenarios exist to exercise InstallSnapshot, so make sure they did.
    let installed = t.cluster.stats.snapshots_installed;
    if (disconnect || crash) && installed == 0 {
        t.fail("no follower was ever caught up by InstallSnapshot");
    }
    t.end();
}

pub fn snapshot_basic_2d(config: &TesterConfig) {
    snapcommon(config, "Test (2D): snapshots basic", false, true, false);
}

pub fn snapshot_install_2d(config: &TesterConfig) {
    snapcommon(config, "Test (2D): install snapshots (disconnect)", true, true, false);
}

pub fn snapshot_install_unreliable_2d(config: &TesterConfig) {
    snapcommon(config, "Test (2D): install snapshots (disconnect+unreliable)", true, false, false);
}

pub fn snapshot_install_crash_2d(config: &TesterConfig) {
    snapcommon(config, "Test (2D): install snapshots (crash)", false, true, true);
}

pub fn snapshot_install_uncrash_2d(config: &TesterConfig) {
    snapcommon(config, "Test (2D): install snapshots (unreliable+crash)", false, false, true);
}

fn crash_and_restart_all(t: &mut Tester) {
    for i in 0..t.servers() {
        t.crash1(i);
    }
    for i in 0..t.servers() {
        t.start1(i);
        t.connect(i);
    }
}

/// Crash and restart all servers repeatedly: the log index must keep growing (nothing committed is lost, and a
/// restarted server starts from its snapshot).
pub fn snapshot_all_crash_2d(config: &TesterConfig) {
    let servers = 3;
    let mut t = Tester::new(config, servers, false, true);
    t.begin("Test (2D): crash and restart all servers");
    one_random(&mut t, servers);
    for _ in 0..5 {
        // Perhaps enough to get a snapshot.
        let nn = SNAPSHOT_INTERVAL / 2 + t.rand_range(0, SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            one_random(&mut t, servers);
        }
        let index1 = one_random(&mut t, servers);
        crash_and_restart_all(&mut t);
        let index2 = one_random(&mut t, servers);
        if index2 < index1 + 1 {
            t.fail(&format!("index decreased from {index1} to {index2}"));
        }
    }
    t.end();
}

/// A restarted server must keep its snapshot in memory, so that the next persist (which rewrites Raft state)
/// does not lose it.
pub fn snapshot_init_2d(config: &TesterConfig) {
    let servers = 3;
    let mut t = Tester::new(config, servers, false, true);
    t.begin("Test (2D): snapshot initialization after crash");
    one_random(&mut t, servers);
    // Enough ops to make a snapshot.
    for _ in 0..SNAPSHOT_INTERVAL + 1 {
        one_random(&mut t, servers);
    }
    crash_and_restart_all(&mut t);
    // A single op, to get something written back to persistent storage.
    one_random(&mut t, servers);
    crash_and_restart_all(&mut t);
    // Another op to trigger the potential bug.
    one_random(&mut t, servers);
    t.end();
}
