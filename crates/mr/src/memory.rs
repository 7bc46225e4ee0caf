//! Peak memory of a process, for the job summary and the benchmark.

/// Peak resident set size (`VmHWM`) of process `pid` in bytes, on Linux; `None` elsewhere or if the process
/// is gone.
pub fn peak_rss_bytes_of(pid: u32) -> Option<u64> {
    read_vm_hwm(&format!("/proc/{pid}/status"))
}

/// Peak resident set size of this process in bytes, 0 where unknown.
pub fn own_peak_rss_bytes() -> u64 {
    read_vm_hwm("/proc/self/status").unwrap_or(0)
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
        }
    }
}
