//! 6.824 Lab 2C: persistence. Same scenarios and bounds as test_test.go, in virtual time.
use crate::Tester;
use crate::tasks::{ChurnClient, One, TaskResult};
use crate::tester::TesterConfig;
use crate::tester::{ELECTION_TIMEOUT_MS, u64_command};

pub fn persist1_2c(config: &TesterConfig) {
    let servers = 3;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2C): basic persistence");
    t.one_u64(11, servers, true);
    // Crash and re-start all.
    for i in 0..servers {
        t.start1(i);
    }
    for i in 0..servers {
        t.disconnect(i);
        t.connect(i);
    }
    t.one_u64(12, servers, true);
    let leader1 = t.check_one_leader();
    t.disconnect(leader1);
    t.start1(leader1);
    t.connect(leader1);
    t.one_u64(13, servers, true);
    let leader2 = t.check_one_leader();
    t.disconnect(leader2);
    t.one_u64(14, servers - 1, true);
    t.start1(leader2);
    t.connect(leader2);
    t.wait(4, servers, None); // wait for leader2 to join before killing i3
    let i3 = (t.check_one_leader() + 1) % servers;
    t.disconnect(i3);
    t.one_u64(15, servers - 1, true);
    t.start1(i3);
    t.connect(i3);
    t.one_u64(16, servers, true);
    t.end();
}

pub fn persist2_2c(config: &TesterConfig) {
    let servers = 5;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2C): more persistence");
    let mut index = 1;
    for _ in 0..5 {
        t.one_u64(10 + index, servers, true);
        index += 1;
        let leader1 = t.check_one_leader();
        t.disconnect((leader1 + 1) % servers);
        t.disconnect((leader1 + 2) % servers);
        t.one_u64(10 + index, servers - 2, true);
        index += 1;
        t.disconnect(leader1 % servers);
        t.disconnect((leader1 + 3) % servers);
        t.disconnect((leader1 + 4) % servers);
        t.start1((leader1 + 1) % servers);
        t.start1((leader1 + 2) % servers);
        t.connect((leader1 + 1) % servers);
        t.connect((leader1 + 2) % servers);
        t.sleep_ms(ELECTION_TIMEOUT_MS);
        t.start1((leader1 + 3) % servers);
        t.connect((leader1 + 3) % servers);
        t.one_u64(10 + index, servers - 2, true);
        index += 1;
        t.connect((leader1 + 4) % servers);
        t.connect(leader1 % servers);
    }
    t.one_u64(1000, servers, true);
    t.end();
}

pub fn persist3_2c(config: &TesterConfig) {
    let servers = 3;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2C): partitioned leader and one follower crash, leader restarts");
    t.one_u64(101, 3, true);
    let leader = t.check_one_leader();
    t.disconnect((leader + 2) % servers);
    t.one_u64(102, 2, true);
    t.crash1(leader % servers);
    t.crash1((leader + 1) % servers);
    t.connect((leader + 2) % servers);
    t.start1(leader % servers);
    t.connect(leader % servers);
    t.one_u64(103, 2, true);
    t.start1((leader + 1) % servers);
    t.connect((leader + 1) % servers);
    t.one_u64(104, servers, true);
    t.end();
}

/// The 6.824 Figure 8 scenario: leaders crash right after appending, so entries of old terms are left on some
/// servers; a correct implementation never commits them by counting replicas.
pub fn figure8_2c(config: &TesterConfig) {
    let servers = 5;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2C): Figure 8");
    let x = t.random_command();
    t.one_u64(x, 1, true);
    let mut nup = servers;
    for _ in 0..1000 {
        let mut leader = None;
        for i in 0..servers {
            let x = t.random_command();
            if t.is_alive(i) && t.start(i, u64_command(x)).is_some() {
                leader = Some(i);
            }
        }
        let ms =
            if t.rand_range(0, 1000) < 100 { t.rand_range(0, ELECTION_TIMEOUT_MS / 2) } else { t.rand_range(0, 13) };
        t.sleep_ms(ms);
        if let Some(leader) = leader {
            t.crash1(leader);
            nup -= 1;
        }
        if nup < 3 {
            let s = t.rand_range(0, servers as u64) as usize;
            if !t.is_alive(s) {
                t.start1(s);
                t.connect(s);
                nup += 1;
            }
        }
    }
    for i in 0..servers {
        if !t.is_alive(i) {
            t.start1(i);
            t.connect(i);
        }
    }
    let x = t.random_command();
    t.one_u64(x, servers, true);
    t.end();
}

pub fn unreliable_agree_2c(config: &TesterConfig) {
    let servers = 5;
    let mut t = Tester::new(config, servers, true, false);
    t.begin("Test (2C): unreliable agreement");
    let mut background = Vec::new();
    for iters in 1..50u64 {
        for j in 0..4 {
            background.push(t.spawn(Box::new(One::new(u64_command(100 * iters + j), 1, true))));
        }
        t.one_u64(iters, 1, true);
    }
    t.set_reliable(true);
    for id in background {
        t.join(id);
    }
    t.one_u64(100, servers, true);
    t.end();
}

pub fn figure8_unreliable_2c(config: &TesterConfig) {
    let servers = 5;
    let mut t = Tester::new(config, servers, true, false);
    t.begin("Test (2C): Figure 8 (unreliable)");
    let x = t.rand_range(0, 10_000);
    t.one_u64(x, 1, true);
    let mut nup = servers;
    for iters in 0..1000 {
        if iters == 200 {
            t.set_long_reordering(true);
        }
        let mut leader = None;
        for i in 0..servers {
            let x = t.rand_range(0, 10_000);
            if t.start(i, u64_command(x)).is_some() && t.is_connected(i) {
                leader = Some(i);
            }
        }
        let ms =
            if t.rand_range(0, 1000) < 100 { t.rand_range(0, ELECTION_TIMEOUT_MS / 2) } else { t.rand_range(0, 13) };
        t.sleep_ms(ms);
        if let Some(leader) = leader
            && t.rand_range(0, 1000) < ELECTION_TIMEOUT_MS / 2
        {
            t.disconnect(leader);
            nup -= 1;
        }
        if nup < 3 {
            let s = t.rand_range(0, servers as u64) as usize;
            if !t.is_connected(s) {
                t.connect(s);
                nup += 1;
            }
        }
    }
    for i in 0..servers {
        if !t.is_connected(i) {
            t.connect(i);
        }
    }
    let x = t.rand_range(0, 10_000);
    t.one_u64(x, servers, true);
    t.end();
}

/// 6.824's internalChurn: three clients propose all the time while servers are disconnected, crashed and
/// restarted at random; every value a client saw committed must be in the final log.
fn churn(config: &TesterConfig, unreliable: bool) {
    let servers = 5;
    let mut t = Tester::new(config, servers, unreliable, false);
    t.begin(if unreliable { "Test (2C): unreliable churn" } else { "Test (2C): churn" });
    let clients: Vec<_> = (0..3).map(|me| t.spawn(Box::new(ChurnClient::new(me)))).collect();
    for _ in 0..20 {
        if t.rand_range(0, 1000) < 200 {
            let i = t.rand_range(0, servers as u64) as usize;
            t.disconnect(i);
        }
        if t.rand_range(0, 1000) < 500 {
            let i = t.rand_range(0, servers as u64) as usize;
            if !t.is_alive(i) {
                t.start1(i);
            }
            t.connect(i);
        }
        if t.rand_range(0, 1000) < 200 {
            let i = t.rand_range(0, servers as u64) as usize;
            if t.is_alive(i) {
                t.crash1(i);
            }
        }
        // Make crash/restart infrequent enough that the clients can get some commits done.
        t.sleep_ms(ELECTION_TIMEOUT_MS * 7 / 10);
    }
    t.sleep_ms(ELECTION_TIMEOUT_MS);
    t.set_reliable(true);
    for i in 0..servers {
        if !t.is_alive(i) {
            t.start1(i);
        }
        t.connect(i);
    }
    t.stop_clients();
    let mut values = Vec::new();
    for id in clients {
        if let TaskResult::Values(v) = t.join(id) {
            values.extend(v);
        }
    }
    t.sleep_ms(ELECTION_TIMEOUT_MS);
    let x = t.random_command();
    let last_index = t.one_u64(x, servers, true);
    let mut really = Vec::new();
    for index in 1..=last_index {
        match t.wait(index, servers, None) {
            Some(c) => really.push(c),
            None => t.fail(&format!("index {index} never committed")),
        }
    }
    for v in values {
        if !really.contains(&u64_command(v)) {
            t.fail(&format!("didn't find a value: {v} was seen committed but is not in the final log"));
        }
    }
    t.end();
}

pub fn reliable_churn_2c(config: &TesterConfig) {
    churn(config, false)
}

pub fn unreliable_churn_2c(config: &TesterConfig) {
    churn(config, true)
}
