//! Peak memory of a process, for the job summary and the benchmark.

/// Peak resident set size (`VmHWM`) of process `pid` in bytes, on Linux; `None` elsewhere or if the process
/// is gone.
pub fn peak_rss_bytes_of(pid: u32) -> Option<u64> {
    read_vm_hwm(&format!("/proc/{pid}/status"))
}

/// How long [`own_peak_rss_bytes`] answers from its last reading. Every task reports the worker's peak, and
/// reading `/proc/self/status` makes the kernel format the whole page: at thousands of tasks of a few
/// milliseconds that was about 5% of the job. The peak only grows, so a reading this old is a slight
/// underestimate at worst. (`getrusage`'s `ru_maxrss` is cheap but wrong here: Linux carries it over
/// `exec`, so a worker would report the peak of the process that started it.)
const OWN_PEAK_READ_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Peak resident set size of this process in bytes, 0 where unknown; at most [`OWN_PEAK_READ_EVERY`] old.
pub fn own_peak_rss_bytes() -> u64 {
    static LAST: std::sync::Mutex<Option<(std::time::Instant, u64)>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((at, peak)) = *last
        && at.elapsed() < OWN_PEAK_READ_EVERY
    {
        return peak;
    }
    let peak = read_vm_hwm("/proc/self/status").unwrap_or(0);
    *last = Some((std::time::Instant::now(), peak));
    peak
}

fn read_vm_hwm(status_path: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_peak_is_known_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(super::own_peak_rss_bytes() > 0);
            assert!(super::own_peak_rss_bytes() <= super::peak_rss_bytes_of(std::process::id()).unwrap());
        }
    }
}
