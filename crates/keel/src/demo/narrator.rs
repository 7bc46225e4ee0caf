//! The demo's voice: one short line per step on stdout, each stamped with the seconds since the demo began, so
//! a reader sees what happened and when without a clock of their own.
use std::fmt::Display;
use std::io::Write;
use std::time::{Duration, Instant};

pub struct Narrator {
    started: Instant,
}

impl Narrator {
    pub fn new() -> Narrator {
        Narrator { started: Instant::now() }
    }

    /// Prints `[  12.34 s] text`. A closed stdout (`keel demo | head`) is not an error worth stopping for: the
    /// demo goes on so that its clean-up still runs.
    pub fn say(&self, text: impl Display) {
        let seconds = self.started.elapsed().as_secs_f64();
        let _ = writeln!(std::io::stdout(), "[{seconds:>7.2} s] {text}");
    }

    /// A line without a time stamp (headings, the summary).
    pub fn plain(&self, text: impl Display) {
        let _ = writeln!(std::io::stdout(), "{text}");
    }
}

/// Milliseconds, for narration: `412 ms`, or `1.23 s` from one second on.
pub fn human(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 1000.0 { format!("{ms:.0} ms") } else { format!("{:.2} s", ms / 1000.0) }
}
