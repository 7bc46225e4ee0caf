//! 6.824's `nparallel`: how many worker processes are inside the same phase right now.
use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

/// How long each call stays "inside" the phase, so that overlapping calls on two workers see each other.
/// Same as 6.824 (1 s).
const OVERLAP_WINDOW: Duration = Duration::from_secs(1);

/// Announces this process in `phase` with a file `mr-worker-<phase>-<pid>` in the current directory,
/// counts the live processes that have announced themselves, waits [`OVERLAP_WINDOW`] and withdraws.
pub fn nparallel(phase: &str) -> usize {
    let prefix = format!("mr-worker-{phase}-");
    let me = format!("{prefix}{}", std::process::id());
    if let Err(e) = fs::write(&me, b"x") {
        panic!("nparallel: cannot create {me}: {e}");
    }
    let mut count = 0;
    if let Ok(entries) = fs::read_dir(".") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(&prefix)
                && process_is_alive(pid)
            {
                count += 1;
            }
        }
    }
    thread::sleep(OVERLAP_WINDOW);
    let _ = fs::remove_file(&me);
    count
}

/// Files of crashed workers stay behind; like 6.824's `kill(pid, 0)`, count only live processes.
fn process_is_alive(pid: &str) -> bool {
    if cfg!(target_os = "linux") { Path::new("/proc").join(pid).exists() } else { true }
}
