//! 6.824 Lab 2A: leader election. Same scenarios and bounds as test_test.go, in virtual time.
use crate::Tester;
use crate::tester::ELECTION_TIMEOUT_MS;
use crate::tester::TesterConfig;

pub fn initial_election_2a(config: &TesterConfig) {
    let servers = 3;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2A): initial election");
    t.check_one_leader();
    // Sleep a bit to avoid racing with followers learning of the election, then check all peers agree.
    t.sleep_ms(50);
    let term1 = t.check_terms();
    if term1 < 1 {
        t.fail(&format!("term is {term1}, but should be at least 1"));
    }
    // With no failures the leader must keep its position. (6.824 only warns; a term change in a fault-free
    // simulated network is a real defect, so keel fails.)
    t.sleep_ms(2 * ELECTION_TIMEOUT_MS);
    let term2 = t.check_terms();
    if term1 != term2 {
        t.fail(&format!("term changed from {term1} to {term2} even though there were no failures"));
    }
    t.check_one_leader();
    t.end();
}

pub fn re_election_2a(config: &TesterConfig) {
    let servers = 3;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2A): election after network failure");
    let leader1 = t.check_one_leader();
    // If the leader disconnects, a new one should be elected.
    t.disconnect(leader1);
    t.check_one_leader();
    // If the old leader rejoins, that shouldn't disturb the new leader.
    t.connect(leader1);
    let leader2 = t.check_one_leader();
    // If there's no quorum, no new leader should be elected.
    t.disconnect(leader2);
    t.disconnect((leader2 + 1) % servers);
    t.sleep_ms(2 * ELECTION_TIMEOUT_MS);
    // The lone connected server must not believe it is leader.
    t.check_no_leader();
    // If a quorum arises, it should elect a leader.
    t.connect((leader2 + 1) % servers);
    t.check_one_leader();
    // Re-join of the last node shouldn't prevent leader from existing.
    t.connect(leader2);
    t.check_one_leader();
    t.end();
}

pub fn many_elections_2a(config: &TesterConfig) {
    let servers = 7;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2A): multiple elections");
    t.check_one_leader();
    for _ in 1..10 {
        // Disconnect three nodes (possibly the same one twice).
        let picks: Vec<usize> = (0..3).map(|_| t.rand_range(0, servers as u64) as usize).collect();
        for &i in &picks {
            t.disconnect(i);
        }
        // Either the current leader should still be alive, or the remaining four should elect a new one.
        t.check_one_leader();
        for &i in &picks {
            t.connect(i);
        }
    }
    t.check_one_leader();
    t.end();
}
