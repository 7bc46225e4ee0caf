//! 6.824 Lab 2B: log replication. Same scenarios and bounds as test_test.go, in virtual time.
use crate::Tester;
use crate::checker::describe;
use crate::tester::TesterConfig;
use crate::tester::{ELECTION_TIMEOUT_MS, u64_command};

pub fn basic_agree_2b(config: &TesterConfig) {
    let servers = 3;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2B): basic agreement");
    for index in 1..=3u64 {
        let (n, _) = t.n_committed(index);
        if n > 0 {
            t.fail("some have committed before Start()");
        }
        let got = t.one_u64(index * 100, servers, false);
        if got != index {
            t.fail(&format!("got index {got} but expected {index}"));
        }
    }
    t.end();
}

pub fn rpc_bytes_2b(config: &TesterConfig) {
    let servers = 3;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2B): RPC byte count");
    t.one_u64(99, servers, false);
    let bytes0 = t.bytes_total();
    let mut sent = 0u64;
    for index in 2..12u64 {
        let command: Vec<u8> = (0..5000).map(|_| b'a' + (t.rand_u64() % 26) as u8).collect();
        sent += command.len() as u64;
        let got = t.one(command, servers, false);
        if got != index {
            t.fail(&format!("got index {got} but expected {index}"));
        }
    }
    let got = t.bytes_total() - bytes0;
    let expected = servers as u64 * sent;
    if got > expected + 50_000 {
        t.fail(&format!("too many RPC bytes; got {got}, expected {expected}"));
    }
    t.end();
}

pub fn follower_failure_2b(config: &TesterConfig) {
    let servers = 3;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2B): test progressive failure of followers");
    t.one_u64(101, servers, false);
    // Disconnect one follower from the network.
    let leader1 = t.check_one_leader();
    t.disconnect((leader1 + 1) % servers);
    // The leader and remaining follower should be able to agree despite the disconnected follower.
    t.one_u64(102, servers - 1, false);
    t.sleep_ms(ELECTION_TIMEOUT_MS);
    t.one_u64(103, servers - 1, false);
    // Disconnect the remaining follower.
    let leader2 = t.check_one_leader();
    t.disconnect((leader2 + 1) % servers);
    t.disconnect((leader2 + 2) % servers);
    // Submit a command.
    let Some((index, _)) = t.start(leader2, u64_command(104)) else { t.fail("leader rejected Start()") };
    if index != 4 {
        t.fail(&format!("expected index 4, got {index}"));
    }
    t.sleep_ms(2 * ELECTION_TIMEOUT_MS);
    // Check that the command did not commit.
    let (n, _) = t.n_committed(index);
    if n > 0 {
        t.fail(&format!("{n} committed but no majority"));
    }
    t.end();
}

pub fn leader_failure_2b(config: &TesterConfig) {
    let servers = 3;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2B): test failure of leaders");
    t.one_u64(101, servers, false);
    // Disconnect the first leader.
    let leader1 = t.check_one_leader();
    t.disconnect(leader1);
    // The remaining followers should elect a new leader.
    t.one_u64(102, servers - 1, false);
    t.sleep_ms(ELECTION_TIMEOUT_MS);
    t.one_u64(103, servers - 1, false);
    // Disconnect the new leader.
    let leader2 = t.check_one_leader();
    t.disconnect(leader2);
    // Submit a command to each server.
    for i in 0..servers {
        t.start(i, u64_command(104));
    }
    t.sleep_ms(2 * ELECTION_TIMEOUT_MS);
    // Check that command 104 did not commit.
    let (n, _) = t.n_committed(4);
    if n > 0 {
        t.fail(&format!("{n} committed but no majority"));
    }
    t.end();
}

pub fn fail_agree_2b(config: &TesterConfig) {
    let servers = 3;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2B): agreement after follower reconnects");
    t.one_u64(101, servers, false);
    // Disconnect one follower from the network.
    let leader = t.check_one_leader();
    t.disconnect((leader + 1) % servers);
    // The leader and remaining follower should be able to agree despite the disconnected follower.
    t.one_u64(102, servers - 1, false);
    t.one_u64(103, servers - 1, false);
    t.sleep_ms(ELECTION_TIMEOUT_MS);
    t.one_u64(104, servers - 1, false);
    t.one_u64(105, servers - 1, false);
    // Re-connect: the full set of servers should preserve previous agreements and agree on new commands.
    t.connect((leader + 1) % servers);
    t.one_u64(106, servers, true);
    t.sleep_ms(ELECTION_TIMEOUT_MS);
    t.one_u64(107, servers, true);
    t.end();
}

pub fn fail_no_agree_2b(config: &TesterConfig) {
    let servers = 5;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2B): no agreement if too many followers disconnect");
    t.one_u64(10, servers, false);
    // 3 of 5 followers disconnect.
    let leader = t.check_one_leader();
    for k in 1..=3 {
        t.disconnect((leader + k) % servers);
    }
    let Some((index, _)) = t.start(leader, u64_command(20)) else { t.fail("leader rejected Start()") };
    if index != 2 {
        t.fail(&format!("expected index 2, got {index}"));
    }
    t.sleep_ms(2 * ELECTION_TIMEOUT_MS);
    let (n, _) = t.n_committed(index);
    if n > 0 {
        t.fail(&format!("{n} committed but no majority"));
    }
    // Repair.
    for k in 1..=3 {
        t.connect((leader + k) % servers);
    }
    // The disconnected majority may have chosen a leader from among their own ranks, forgetting index 2.
    let leader2 = t.check_one_leader();
    let Some((index2, _)) = t.start(leader2, u64_command(30)) else { t.fail("leader2 rejected Start()") };
    if !(2..=3).contains(&index2) {
        t.fail(&format!("unexpected index {index2}"));
    }
    t.one_u64(1000, servers, true);
    t.end();
}

pub fn concurrent_starts_2b(config: &TesterConfig) {
    let servers = 3;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2B): concurrent Start()s");
    let mut success = false;
    'tries: for attempt in 0..5 {
        if attempt > 0 {
            t.sleep_ms(3000); // give the cluster a chance to settle
        }
        let leader = t.check_one_leader();
        let Some((_, term)) = t.start(leader, u64_command(1)) else { continue };
        let iters = 5u64;
        let mut indexes = Vec::new();
        for i in 0..iters {
            if let Some((index, term1)) = t.start(leader, u64_command(100 + i))
                && term1 == term
            {
                indexes.push(index);
            }
        }
        for j in 0..servers {
            if t.get_state(j).map(|(term_j, _)| term_j) != Some(term) {
                continue 'tries; // term changed: can't expect low RPC counts
            }
        }
        let mut commands = Vec::new();
        for index in indexes {
            match t.wait(index, servers, Some(term)) {
                None => continue 'tries,
                Some(c) => commands.push(c),
            }
        }
        for i in 0..iters {
            let x = u64_command(100 + i);
            if !commands.contains(&x) {
                let all: Vec<String> = commands.iter().map(|c| describe(c)).collect();
                t.fail(&format!("cmd {} missing in {all:?}", 100 + i));
            }
        }
        success = true;
        break;
    }
    if !success {
        t.fail("term changed too often");
    }
    t.end();
}

pub fn rejoin_2b(config: &TesterConfig) {
    let servers = 3;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2B): rejoin of partitioned leader");
    t.one_u64(101, servers, true);
    // Leader network failure.
    let leader1 = t.check_one_leader();
    t.disconnect(leader1);
    // Make the old leader try to agree on some entries.
    for x in [102, 103, 104] {
        t.start(leader1, u64_command(x));
    }
    // New leader commits, also for index=2.
    t.one_u64(103, 2, true);
    // New leader network failure.
    let leader2 = t.check_one_leader();
    t.disconnect(leader2);
    // Old leader connected again.
    t.connect(leader1);
    t.one_u64(104, 2, true);
    // All together now.
    t.connect(leader2);
    t.one_u64(105, servers, true);
    t.end();
}

pub fn backup_2b(config: &TesterConfig) {
    let servers = 5;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2B): leader backs up quickly over incorrect follower logs");
    let x = t.random_command();
    t.one_u64(x, servers, true);
    // Put leader and one follower in a partition.
    let leader1 = t.check_one_leader();
    for k in 2..=4 {
        t.disconnect((leader1 + k) % servers);
    }
    // Submit lots of commands that won't commit.
    for _ in 0..50 {
        let x = t.random_command();
        t.start(leader1, u64_command(x));
    }
    t.sleep_ms(ELECTION_TIMEOUT_MS / 2);
    t.disconnect(leader1 % servers);
    t.disconnect((leader1 + 1) % servers);
    // Allow the other partition to recover.
    for k in 2..=4 {
        t.connect((leader1 + k) % servers);
    }
    // Lots of successful commands to the new group.
    for _ in 0..50 {
        let x = t.random_command();
        t.one_u64(x, 3, true);
    }
    // Now another partitioned leader and one follower.
    let leader2 = t.check_one_leader();
    let mut other = (leader1 + 2) % servers;
    if leader2 == other {
        other = (leader2 + 1) % servers;
    }
    t.disconnect(other);
    // Lots more commands that won't commit.
    for _ in 0..50 {
        let x = t.random_command();
        t.start(leader2, u64_command(x));
    }
    t.sleep_ms(ELECTION_TIMEOUT_MS / 2);
    // Bring the original leader back to life.
    for i in 0..servers {
        t.disconnect(i);
    }
    t.connect(leader1 % servers);
    t.connect((leader1 + 1) % servers);
    t.connect(other);
    // Lots of successful commands to the new group.
    for _ in 0..50 {
        let x = t.random_command();
        t.one_u64(x, 3, true);
    }
    // Now everyone.
    for i in 0..servers {
        t.connect(i);
    }
    let x = t.random_command();
    t.one_u64(x, servers, true);
    t.end();
}

pub fn count_2b(config: &TesterConfig) {
    let servers = 3;
    let mut t = Tester::new(config, servers, false, false);
    t.begin("Test (2B): RPC counts aren't too high");
    let rpcs = |t: &Tester| (0..servers).map(|j| t.rpc_count(j)).sum::<u64>();
    t.check_one_leader();
    let total1 = rpcs(&t);
    if !(1..=30).contains(&total1) {
        t.fail(&format!("too many or few RPCs ({total1}) to elect initial leader"));
    }
    let mut total2 = 0;
    let mut success = false;
    'tries: for attempt in 0..5 {
        if attempt > 0 {
            t.sleep_ms(3000); // give the cluster a chance to settle
        }
        let leader = t.check_one_leader();
        let total1 = rpcs(&t);
        let iters = 10u64;
        let Some((start_index, term)) = t.start(leader, u64_command(1)) else { continue };
        let mut commands = Vec::new();
        for i in 1..iters + 2 {
            let x = t.random_command();
            commands.push(x);
            match t.start(leader, u64_command(x)) {
                Some((index, term1)) if term1 == term => {
                    if index != start_index + i {
                        t.fail("Start() failed");
                    }
                }
                _ => continue 'tries,
            }
        }
        for i in 1..iters + 1 {
            match t.wait(start_index + i, servers, Some(term)) {
                None => continue 'tries,
                Some(c) if c == u64_command(commands[i as usize - 1]) => {}
                Some(c) => t.fail(&format!(
                    "wrong value {} committed for index {}; expected {}",
                    describe(&c),
                    start_index + i,
                    commands[i as usize - 1]
                )),
            }
        }
        if (0..servers).any(|j| t.get_state(j).map(|(tj, _)| tj) != Some(term)) {
            continue 'tries;
        }
        total2 = rpcs(&t);
        if total2 - total1 > (iters + 1 + 3) * 3 {
            t.fail(&format!("too many RPCs ({}) for {iters} entries", total2 - total1));
        }
        success = true;
        break;
    }
    if !success {
        t.fail("term changed too often");
    }
    t.sleep_ms(ELECTION_TIMEOUT_MS);
    let total3 = rpcs(&t);
    if total3 - total2 > 3 * 20 {
        t.fail(&format!("too many RPCs ({}) for 1 second of idleness", total3 - total2));
    }
    t.end();
}
