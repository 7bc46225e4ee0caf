//! A recorded run ([`crate::timeline`]) drawn as one self-contained HTML page: one lane per node coloured by its
//! role, with its term written on it; messages as arrows between lanes (lost ones dashed, ending in a cross);
//! commit marks; faults as vertical lines; the violated property in a box and as a red line at its time.
//!
//! The page has two views of the same run. The overview strip shows the whole run compressed (roles, crashes,
//! faults, the violation); the detail view draws everything, messages included, at a scale where one virtual
//! second is a few hundred pixels, scrolled at first to the moments that matter (the last seconds before the
//! violation, or the first election of a passing run). Clicking the overview moves the detail view; a few lines
//! of inline script zoom it. Nothing is loaded from the network: the page works offline, and without script
//! too (then the detail view simply starts at time zero and does not zoom). Hover details are SVG `<title>`s.
//!
//! Rendering is a pure function of the events, so a unit test can check the drawing and the CLI only writes it.
use std::fmt::Write;

use crate::timeline::TimelineEvent;

/// Detail-view pixels per virtual millisecond at zoom 1: a two-second window fills a laptop screen, and a
/// heartbeat round (100 ms) is 70 px wide, enough to tell its arrows apart.
const DETAIL_PX_PER_MS: f64 = 0.7;
/// The detail view opens on the last this many messages before the violation (about what the failure report's
/// trace lists), zoomed so that they fill the view...
const FOCUS_MESSAGES: usize = 60;
/// ...but reaching at most this far back: a few election timeouts, enough to see the election and the
/// replication that led to the failure...
const FOCUS_BEFORE_VIOLATION_MS: u64 = 2_000;
/// ...and at least this far, so that a burst of messages is seen with what came just before it.
const FOCUS_BEFORE_VIOLATION_MS_MIN: u64 = 250;
/// Room after the violation, so its marker does not sit on the window's edge.
const FOCUS_AFTER_VIOLATION_MS: u64 = 150;
/// A passing run opens on its start: the first election, then replication; at most two seconds of it, less if
/// its first this many messages come sooner (an election storm is only legible zoomed in).
const FOCUS_PASSING_MS: u64 = 2_000;
const FOCUS_PASSING_MESSAGES: usize = 120;
/// Most messages drawn as arrows. A sweep seed sends 10-50 thousand; each arrow costs about 200 bytes of page,
/// and past this many the page gets slow to open. Beyond it, only messages near the focus window are drawn (the
/// page says so).
const MESSAGES_DRAWN_MAX: usize = 120_000;
/// How far a lost message's arrow travels before its cross: a typical trip, so it reads as "sent, never arrived".
const LOST_ARROW_MS: f64 = 6.0;
/// Faults this close together share one label: the sweep's heal and the nemesis change several things at once.
const FAULT_GROUP_MS: u64 = 5;

/// Lane geometry of the detail view, in pixels.
const AXIS_H: f64 = 22.0;
/// Fault labels are stacked in this many rows so that faults close together stay readable.
const FAULT_ROWS: usize = 3;
const FAULT_ROW_H: f64 = 14.0;
const LANE_H: f64 = 58.0;
/// The role bar's offset within its lane and its height.
const BAR_Y: f64 = 19.0;
const BAR_H: f64 = 16.0;
const LABEL_COLUMN_W: f64 = 118.0;
/// Below the lanes: the violation's label.
const FOOTER_H: f64 = 20.0;

/// Overview strip geometry: the whole run squeezed into this many viewBox units (the SVG scales to the page).
const OVERVIEW_W: f64 = 1400.0;
const OVERVIEW_PLOT_X: f64 = 64.0;
const OVERVIEW_LANE_H: f64 = 11.0;
const OVERVIEW_LANE_GAP: f64 = 4.0;

/// What the page is about, beyond the events.
pub struct Page<'a> {
    /// A few words naming the run ("sweep seed 42").
    pub title: &'a str,
    /// The command that replays the run and draws this page again.
    pub replay: &'a str,
    /// `None` if the run passed, else the failure report (the panic message).
    pub failure: Option<&'a str>,
}

/// Draws the recorded run as a self-contained HTML page.
pub fn render(events: &[TimelineEvent], page: &Page) -> String {
    let run = Run::from_events(events, page.failure.is_some());
    let mut out = String::with_capacity(4096 + run.messages.len() * 220);
    head(&mut out, page);
    summary(&mut out, &run, page);
    legend(&mut out);
    overview(&mut out, &run);
    detail(&mut out, &run);
    script(&mut out, &run);
    out.push_str("</body>\n</html>\n");
    out
}

// ----- The run, in drawable form -------------------------------------------------------------------------------

/// What a node was doing over an interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not running: before its first start, or crashed.
    Down,
    Up {
        role: &'static str,
        term: Option<u64>,
    },
}

#[derive(Clone, Copy, Debug)]
struct Segment {
    from_ms: u64,
    to_ms: u64,
    state: State,
}

struct Msg<'a> {
    sent_ms: u64,
    delivered_ms: Option<u64>,
    from: usize,
    to: usize,
    kind: &'static str,
    term: u64,
    detail: &'a str,
}

/// A crash, a start, or both at once (a restart).
#[derive(Clone, Copy)]
struct Life {
    at_ms: u64,
    node: usize,
    crash: bool,
    start: bool,
}

struct Run<'a> {
    nodes: usize,
    seed: Option<u64>,
    context: &'a str,
    end_ms: u64,
    lanes: Vec<Vec<Segment>>,
    lives: Vec<Life>,
    /// Faults grouped by [`FAULT_GROUP_MS`]: the first one's time, and each one's time and words.
    faults: Vec<(u64, Vec<(u64, &'a str)>)>,
    /// Per node, the intervals it was disconnected from everyone.
    cut_off: Vec<Vec<(u64, u64)>>,
    commits: Vec<(u64, usize, u64)>,
    messages: Vec<Msg<'a>>,
    messages_lost: usize,
    /// Where the run stopped on a failure: the recorded violation, or (for a failure raised without one, such as
    /// a core assertion) the last moment recorded.
    violation: Option<(u64, Option<&'a str>)>,
    focus_ms: (u64, u64),
    /// Some messages were left out (see [`MESSAGES_DRAWN_MAX`]).
    messages_omitted: usize,
}

impl<'a> Run<'a> {
    fn from_events(events: &'a [TimelineEvent], failed: bool) -> Run<'a> {
        let last_run = events.iter().rev().find_map(|e| match e {
            TimelineEvent::Run { nodes, seed, context } => Some((*nodes, *seed, context.as_str())),
            _ => None,
        });
        // Without a Run event (never from the cluster), size the lanes by the nodes the events name.
        let nodes = last_run.map_or_else(|| events.iter().filter_map(node_of).max().map_or(0, |n| n + 1), |r| r.0);
        let mut run = Run {
            nodes,
            seed: last_run.map(|r| r.1),
            context: last_run.map_or("", |r| r.2),
            end_ms: 0,
            lanes: vec![Vec::new(); nodes],
            lives: Vec::new(),
            faults: Vec::new(),
            cut_off: vec![Vec::new(); nodes],
            commits: Vec::new(),
            messages: Vec::new(),
            messages_lost: 0,
            violation: None,
            focus_ms: (0, 0),
            messages_omitted: 0,
        };
        let mut current: Vec<(u64, State)> = vec![(0, State::Down); nodes];
        let mut recorded_violation = None;
        let mut disconnected_since: Vec<Option<u64>> = vec![None; nodes];
        for event in events {
            run.end_ms = run.end_ms.max(event_end_ms(event));
            // Events naming a node outside the run are ignored rather than trusted with an index.
            if node_of(event).is_some_and(|n| n >= nodes) {
                continue;
            }
            match event {
                TimelineEvent::Run { .. } => {}
                TimelineEvent::Role { at_ms, node, role, term } => {
                    run.switch(&mut current, *node, *at_ms, State::Up { role, term: Some(*term) })
                }
                TimelineEvent::Start { at_ms, node } => {
                    // A restart is a crash and a start at the same moment: one mark.
                    match run.lives.last_mut() {
                        Some(life) if life.at_ms == *at_ms && life.node == *node && life.crash => life.start = true,
                        _ => run.lives.push(Life { at_ms: *at_ms, node: *node, crash: false, start: true }),
                    }
                    // Until its first Role event a started node is a follower of a term it has not said yet.
                    run.switch(&mut current, *node, *at_ms, State::Up { role: "follower", term: None })
                }
                TimelineEvent::Crash { at_ms, node } => {
                    run.lives.push(Life { at_ms: *at_ms, node: *node, crash: true, start: false });
                    run.switch(&mut current, *node, *at_ms, State::Down)
                }
                TimelineEvent::Fault { at_ms, what } => {
                    match run.faults.last_mut() {
                        Some((first_ms, group)) if at_ms - (*first_ms).min(*at_ms) <= FAULT_GROUP_MS => {
                            group.push((*at_ms, what))
                        }
                        _ => run.faults.push((*at_ms, vec![(*at_ms, what)])),
                    }
                    match link_change(what) {
                        Some((node, false)) if node < nodes => {
                            disconnected_since[node].get_or_insert(*at_ms);
                        }
                        Some((node, true)) if node < nodes => {
                            if let Some(since_ms) = disconnected_since[node].take() {
                                run.cut_off[node].push((since_ms, *at_ms));
                            }
                        }
                        _ => {}
                    }
                }
                TimelineEvent::Commit { at_ms, node, index } => run.commits.push((*at_ms, *node, *index)),
                TimelineEvent::Violation { at_ms, what } => recorded_violation = Some((*at_ms, what.as_str())),
                TimelineEvent::Message { sent_ms, delivered_ms, from, to, kind, term, detail } => {
                    run.messages_lost += usize::from(delivered_ms.is_none());
                    run.messages.push(Msg {
                        sent_ms: *sent_ms,
                        delivered_ms: *delivered_ms,
                        from: *from,
                        to: *to,
                        kind,
                        term: *term,
                        detail,
                    });
                }
            }
        }
        run.violation = match recorded_violation {
            Some((at_ms, what)) => Some((at_ms, Some(what))),
            None if failed => Some((run.end_ms, None)),
            None => None,
        };
        for (node, (since_ms, state)) in current.into_iter().enumerate() {
            run.close(node, since_ms, run.end_ms, state);
        }
        for (node, since_ms) in disconnected_since.into_iter().enumerate() {
            if let Some(since_ms) = since_ms.filter(|&ms| ms < run.end_ms) {
                run.cut_off[node].push((since_ms, run.end_ms));
            }
        }
        // Messages are recorded when they arrive (or are lost); draw them in the order they were sent.
        run.messages.sort_by_key(|m| (m.sent_ms, m.delivered_ms.unwrap_or(u64::MAX)));
        run.focus_ms = match run.violation {
            Some((at_ms, _)) => {
                let recent_ms = run
                    .messages
                    .iter()
                    .rev()
                    .filter(|m| m.sent_ms <= at_ms)
                    .nth(FOCUS_MESSAGES - 1)
                    .map_or(0, |m| m.sent_ms);
                let start_ms = recent_ms
                    .max(at_ms.saturating_sub(FOCUS_BEFORE_VIOLATION_MS))
                    .min(at_ms.saturating_sub(FOCUS_BEFORE_VIOLATION_MS_MIN));
                (start_ms, at_ms + ((at_ms - start_ms) / 10).min(FOCUS_AFTER_VIOLATION_MS))
            }
            None => {
                let first_ms = run.messages.get(FOCUS_PASSING_MESSAGES).map_or(FOCUS_PASSING_MS, |m| m.sent_ms);
                (0, first_ms.clamp(FOCUS_BEFORE_VIOLATION_MS_MIN, FOCUS_PASSING_MS).min(run.end_ms))
            }
        };
        if run.messages.len() > MESSAGES_DRAWN_MAX {
            run.keep_messages_near_focus();
        }
        run
    }

    /// Node `node` enters `state` at `at_ms`.
    fn switch(&mut self, current: &mut [(u64, State)], node: usize, at_ms: u64, state: State) {
        let (since_ms, previous) = current[node];
        if previous == state {
            return;
        }
        self.close(node, since_ms, at_ms, previous);
        current[node] = (at_ms, state);
    }

    fn close(&mut self, node: usize, from_ms: u64, to_ms: u64, state: State) {
        if to_ms > from_ms {
            self.lanes[node].push(Segment { from_ms, to_ms, state });
        }
    }

    /// Keeps the [`MESSAGES_DRAWN_MAX`] messages sent closest to the focus window.
    fn keep_messages_near_focus(&mut self) {
        let (start, end) = self.focus_ms;
        let distance = |m: &Msg| {
            if m.sent_ms < start { start - m.sent_ms } else { m.sent_ms.saturating_sub(end) }
        };
        let total = self.messages.len();
        self.messages.sort_by_key(|m| distance(m));
        self.messages.truncate(MESSAGES_DRAWN_MAX);
        self.messages.sort_by_key(|m| (m.sent_ms, m.delivered_ms.unwrap_or(u64::MAX)));
        self.messages_omitted = total - self.messages.len();
    }
}

fn node_of(event: &TimelineEvent) -> Option<usize> {
    match event {
        TimelineEvent::Role { node, .. }
        | TimelineEvent::Crash { node, .. }
        | TimelineEvent::Start { node, .. }
        | TimelineEvent::Commit { node, .. } => Some(*node),
        TimelineEvent::Message { from, to, .. } => Some(*from.max(to)),
        TimelineEvent::Run { .. } | TimelineEvent::Fault { .. } | TimelineEvent::Violation { .. } => None,
    }
}

/// A node disconnected from (`false`) or reconnected to (`true`) the network, from the words the cluster records
/// for it (`Cluster::disconnect` and `Cluster::connect`: "disconnect 3", "connect 3"). Other faults (partitions,
/// cut links) are only drawn as words; their effect shows as lost messages.
fn link_change(what: &str) -> Option<(usize, bool)> {
    let (connected, node) = match what.strip_prefix("disconnect ") {
        Some(node) => (false, node),
        None => (true, what.strip_prefix("connect ")?),
    };
    Some((node.parse().ok()?, connected))
}

fn event_end_ms(event: &TimelineEvent) -> u64 {
    match event {
        TimelineEvent::Run { .. } => 0,
        TimelineEvent::Role { at_ms, .. }
        | TimelineEvent::Crash { at_ms, .. }
        | TimelineEvent::Start { at_ms, .. }
        | TimelineEvent::Fault { at_ms, .. }
        | TimelineEvent::Commit { at_ms, .. }
        | TimelineEvent::Violation { at_ms, .. } => *at_ms,
        TimelineEvent::Message { sent_ms, delivered_ms, .. } => delivered_ms.unwrap_or(*sent_ms),
    }
}

// ----- Small helpers -------------------------------------------------------------------------------------------

/// Text made safe for HTML and SVG, in element content and in quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Virtual time as people read it in the failure reports: seconds with milliseconds.
fn seconds(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

fn detail_x(ms: f64) -> f64 {
    ms * DETAIL_PX_PER_MS
}

fn lane_top(node: usize) -> f64 {
    AXIS_H + FAULT_ROWS as f64 * FAULT_ROW_H + node as f64 * LANE_H
}

/// The CSS class of a role (also the legend's).
fn role_class(role: &str) -> &'static str {
    match role {
        "leader" => "leader",
        "candidate" => "candidate",
        "pre-candidate" => "precandidate",
        _ => "follower",
    }
}

/// The message's family (its colour) and whether it is a reply (drawn lighter).
fn message_class(kind: &str) -> (&'static str, bool) {
    let family = if kind.starts_with("PreVote") {
        "pre"
    } else if kind.starts_with("RequestVote") {
        "vote"
    } else if kind.starts_with("InstallSnapshot") {
        "snap"
    } else {
        "app"
    };
    (family, kind.ends_with("Reply"))
}

/// A time step for axis labels that gives at most about `labels` labels over `span_ms`.
fn nice_step_ms(span_ms: u64, labels: u64) -> u64 {
    let wanted = (span_ms / labels.max(1)).max(1);
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if step * m >= wanted {
                return step * m;
            }
        }
        step *= 10;
    }
}

/// Writes formatted text into the page (writing to a `String` cannot fail).
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

// ----- The page ------------------------------------------------------------------------------------------------

const STYLE: &str = r#"
:root { --leader:#2e7d32; --candidate:#ef6c00; --precandidate:#f6c244; --follower:#9ec5e8; --down:#5f6368;
  --vote:#8e24aa; --pre:#c77c02; --app:#1565c0; --snap:#00897b; --lost:#d32f2f; --fault:#b0551f; --bad:#c62828; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 20px 28px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: #1f2328; background: #fafbfc; }
h1 { font-size: 20px; margin: 0 0 6px; font-weight: 600; }
.badge { display: inline-block; font-size: 12px; font-weight: 700; letter-spacing: .04em; padding: 2px 9px;
  border-radius: 10px; vertical-align: 3px; margin-left: 8px; color: #fff; }
.badge.failed { background: var(--bad); } .badge.passed { background: var(--leader); }
.meta { color: #57606a; margin: 2px 0; }
.context { color: #57606a; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-word; }
code, pre { font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
.replay code { background: #eef1f4; border: 1px solid #d8dee4; border-radius: 4px; padding: 1px 6px; user-select: all; }
.violation { margin: 12px 0; padding: 10px 14px; border: 2px solid var(--bad); border-left-width: 7px;
  border-radius: 6px; background: #fff5f5; }
.violation .what { font-weight: 600; color: #8b1a1a; white-space: pre-wrap; }
.violation details { margin-top: 6px; } .violation summary { cursor: pointer; color: #57606a; }
.violation pre { background: #fff; border: 1px solid #f0c8c8; padding: 8px; overflow-x: auto; max-height: 26em; }
.passed-box { margin: 12px 0; padding: 8px 14px; border-left: 7px solid var(--leader); border-radius: 6px;
  background: #f1f8f2; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; align-items: center; margin: 10px 0; font-size: 12.5px;
  color: #3d444d; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.legend svg { overflow: visible; }
h2 { font-size: 14px; margin: 14px 0 4px; color: #3d444d; font-weight: 600; }
.hint { font-weight: 400; color: #6e7781; font-size: 12.5px; }
.panel { background: #fff; border: 1px solid #d8dee4; border-radius: 6px; }
#overview { display: block; width: 100%; height: auto; cursor: crosshair; }
.controls { display: flex; gap: 6px; align-items: center; margin: 6px 0; }
.controls button { font: inherit; font-size: 12.5px; padding: 2px 10px; border: 1px solid #c9d1d9; border-radius: 5px;
  background: #f6f8fa; cursor: pointer; }
.controls button:hover { background: #eaeef2; }
.controls .zoom { color: #57606a; font-size: 12.5px; min-width: 6em; }
.detail-wrap { display: flex; }
.labels { flex: none; border-right: 1px solid #d8dee4; }
#scroller { flex: 1; overflow-x: auto; overflow-y: hidden; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
.leader { fill: var(--leader); } .candidate { fill: var(--candidate); } .precandidate { fill: var(--precandidate); }
.follower { fill: var(--follower); } .down { fill: url(#hatch); } .cut { fill: url(#cutp); }
.sep { stroke: #fff; stroke-width: 1.5; }
.term { font-size: 10.5px; font-weight: 600; fill: #fff; pointer-events: none; }
.term.on-light { fill: #1f2328; }
.lane-bg { fill: #fff; } .lane-bg.odd { fill: #f6f8fa; }
.lane-label { font-size: 13px; font-weight: 600; fill: #1f2328; }
.lane-sub { font-size: 11px; fill: #6e7781; }
.axis line { stroke: #d0d7de; } .axis text { font-size: 10.5px; fill: #6e7781; }
.grid { stroke: #eef1f4; }
.m { stroke-width: 1.2; fill: none; }
.m:hover { stroke-width: 3; }
.m.vote { stroke: var(--vote); marker-end: url(#a-vote); } .m.pre { stroke: var(--pre); marker-end: url(#a-pre); }
.m.app { stroke: var(--app); marker-end: url(#a-app); } .m.snap { stroke: var(--snap); marker-end: url(#a-snap); }
.m.reply { stroke-opacity: .5; }
.m.lost { stroke: var(--lost); stroke-dasharray: 3 2; stroke-opacity: .8; marker-end: url(#x-lost); }
.commit { stroke: #1f2328; stroke-width: 1.2; }
.commit-label { font-size: 9.5px; fill: #3d444d; }
.fault-line { stroke: var(--fault); stroke-width: 1; stroke-dasharray: 2 3; }
.fault-label { font-size: 10.5px; fill: var(--fault); }
.life { font-size: 10.5px; font-weight: 700; }
.life.crash { fill: var(--bad); } .life.start { fill: var(--leader); }
.violation-line { stroke: var(--bad); stroke-width: 2.5; }
.violation-label { font-size: 11px; font-weight: 700; fill: var(--bad); }
.window { fill: rgba(9,105,218,.08); stroke: #0969da; stroke-width: 1.5; }
.dense .term, .dense .commit-label { display: none; }
"#;

fn head(out: &mut String, page: &Page) {
    let status = if page.failure.is_some() { "FAILED" } else { "passed" };
    w!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>keel timeline: {} ({status})</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(page.title)
    );
}

fn summary(out: &mut String, run: &Run, page: &Page) {
    let (badge, label) = if page.failure.is_some() { ("failed", "FAILED") } else { ("passed", "PASSED") };
    w!(out, "<h1>keel timeline: {} <span class=\"badge {badge}\">{label}</span></h1>\n", escape(page.title));
    let seed = run.seed.map_or(String::new(), |s| format!("seed {s} · "));
    let crashes = run.lives.iter().filter(|l| l.crash).count();
    w!(
        out,
        "<div class=\"meta\">{seed}{} nodes · {} of virtual time · {} messages ({} lost) · {} faults · {} crashes · highest commit {}</div>\n",
        run.nodes,
        seconds(run.end_ms),
        run.messages.len() + run.messages_omitted,
        run.messages_lost,
        run.faults.iter().map(|(_, group)| group.len()).sum::<usize>(),
        crashes,
        run.commits.iter().map(|c| c.2).max().unwrap_or(0),
    );
    if !run.context.is_empty() {
        w!(out, "<div class=\"context\">run: {}</div>\n", escape(run.context));
    }
    w!(out, "<div class=\"meta replay\">replay: <code>{}</code></div>\n", escape(page.replay));
    match (page.failure, run.violation) {
        (Some(report), Some((at_ms, what))) => {
            // The recorded violation is the property in one line; the report adds the nodes and the last events.
            let what = what.unwrap_or_else(|| report.trim().lines().next().unwrap_or("the run failed"));
            w!(
                out,
                "<section class=\"violation\"><div class=\"what\">✖ at {}: {}</div><details><summary>full failure report</summary><pre>{}</pre></details></section>\n",
                seconds(at_ms),
                escape(what.trim()),
                escape(report.trim_matches('\n'))
            );
        }
        _ => w!(
            out,
            "<div class=\"passed-box\">Every checked property held for the whole run. The detail view opens on its first {}.</div>\n",
            seconds(run.focus_ms.1 - run.focus_ms.0)
        ),
    }
    if run.messages_omitted > 0 {
        w!(
            out,
            "<div class=\"meta\">{} messages far from the focus window are not drawn (a page of more than {MESSAGES_DRAWN_MAX} arrows gets slow to open).</div>\n",
            run.messages_omitted
        );
    }
}

fn legend(out: &mut String) {
    out.push_str("<div class=\"legend\">");
    let bar = |class: &str| format!("<rect class=\"{class}\" width=\"26\" height=\"12\" rx=\"2\"/>");
    let disconnected = format!("{}{}", bar("follower"), bar("cut"));
    for (swatch, name) in [
        (bar("leader"), "leader"),
        (bar("candidate"), "candidate"),
        (bar("precandidate"), "pre-candidate"),
        (bar("follower"), "follower"),
        (bar("down"), "crashed / not started"),
        (disconnected, "disconnected"),
    ] {
        w!(out, "<span><svg width=\"26\" height=\"12\">{swatch}</svg>{name}</span>");
    }
    for (class, name) in [
        ("app", "AppendEntries"),
        ("vote", "RequestVote"),
        ("pre", "PreVote"),
        ("snap", "InstallSnapshot"),
        ("app reply", "reply (lighter)"),
        ("app lost", "lost message"),
    ] {
        w!(
            out,
            "<span><svg width=\"30\" height=\"12\"><line class=\"m {class}\" x1=\"2\" y1=\"6\" x2=\"24\" y2=\"6\"/></svg>{name}</span>"
        );
    }
    out.push_str(
        "<span><svg width=\"14\" height=\"14\"><line class=\"commit\" x1=\"7\" y1=\"1\" x2=\"7\" y2=\"9\"/><text class=\"commit-label\" x=\"7\" y=\"14\" text-anchor=\"middle\">7</text></svg>commit index</span>\
         <span><svg width=\"10\" height=\"16\"><line class=\"fault-line\" x1=\"5\" y1=\"0\" x2=\"5\" y2=\"16\"/></svg>fault (hover for words)</span>\
         <span><svg width=\"10\" height=\"16\"><line class=\"violation-line\" x1=\"5\" y1=\"0\" x2=\"5\" y2=\"16\"/></svg>violation</span>\
         <span>T7 = term 7</span></div>\n",
    );
}

/// The whole run squeezed into the page's width: roles, crashes, faults, the violation, and the detail window.
fn overview(out: &mut String, run: &Run) {
    let span_ms = run.end_ms.max(1) as f64;
    let plot_w = OVERVIEW_W - OVERVIEW_PLOT_X - 10.0;
    let x = |ms: u64| OVERVIEW_PLOT_X + ms as f64 * plot_w / span_ms;
    let top = 12.0;
    let height = top + run.nodes as f64 * (OVERVIEW_LANE_H + OVERVIEW_LANE_GAP) + 18.0;
    w!(
        out,
        "<h2>Whole run <span class=\"hint\">click to move the detail view there</span></h2>\n<div class=\"panel\"><svg id=\"overview\" viewBox=\"0 0 {OVERVIEW_W} {height:.0}\" preserveAspectRatio=\"xMinYMin meet\">\n"
    );
    defs(out);
    for (node, lane) in run.lanes.iter().enumerate() {
        let y = top + node as f64 * (OVERVIEW_LANE_H + OVERVIEW_LANE_GAP);
        w!(
            out,
            "<text class=\"lane-sub\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">node {node}</text>",
            OVERVIEW_PLOT_X - 8.0,
            y + OVERVIEW_LANE_H - 1.5
        );
        for segment in lane {
            let class = match segment.state {
                State::Down => "down",
                State::Up { role, .. } => role_class(role),
            };
            // At least a sliver, so that a short candidacy still shows.
            let width = (x(segment.to_ms) - x(segment.from_ms)).max(0.6);
            w!(
                out,
                "<rect class=\"{class}\" x=\"{:.2}\" y=\"{y:.1}\" width=\"{width:.2}\" height=\"{OVERVIEW_LANE_H}\"><title>{}</title></rect>",
                x(segment.from_ms),
                escape(&segment_title(node, segment))
            );
        }
        out.push('\n');
    }
    let lanes_bottom = top + run.nodes as f64 * (OVERVIEW_LANE_H + OVERVIEW_LANE_GAP);
    for (at_ms, group) in &run.faults {
        w!(
            out,
            "<line class=\"fault-line\" x1=\"{0:.2}\" y1=\"2\" x2=\"{0:.2}\" y2=\"{1:.1}\"><title>{2}</title></line>",
            x(*at_ms),
            top - 2.0,
            fault_title(group)
        );
    }
    for (node, intervals) in run.cut_off.iter().enumerate() {
        let y = top + node as f64 * (OVERVIEW_LANE_H + OVERVIEW_LANE_GAP);
        for &(from_ms, to_ms) in intervals {
            w!(
                out,
                "<rect class=\"cut\" x=\"{:.2}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{OVERVIEW_LANE_H}\"><title>node {node} disconnected from {} to {}</title></rect>",
                x(from_ms),
                (x(to_ms) - x(from_ms)).max(0.6),
                seconds(from_ms),
                seconds(to_ms)
            );
        }
    }
    let step_ms = nice_step_ms(run.end_ms.max(1), 14);
    let mut t = 0;
    while t <= run.end_ms {
        w!(
            out,
            "<text class=\"lane-sub\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}s</text>",
            x(t),
            lanes_bottom + 12.0,
            trim_seconds(t)
        );
        t += step_ms;
    }
    if let Some((at_ms, _)) = run.violation {
        w!(
            out,
            "<line class=\"violation-line\" x1=\"{0:.2}\" y1=\"0\" x2=\"{0:.2}\" y2=\"{1:.1}\"><title>violation at {2}</title></line>",
            x(at_ms),
            lanes_bottom,
            seconds(at_ms)
        );
    }
    let (start, end) = run.focus_ms;
    w!(
        out,
        "<rect id=\"window\" class=\"window\" x=\"{:.2}\" y=\"1\" width=\"{:.2}\" height=\"{:.1}\" rx=\"2\"/>\n</svg></div>\n",
        x(start),
        (x(end) - x(start)).max(2.0),
        lanes_bottom
    );
}

/// "12.5" for 12 500 ms: axis labels without trailing zeros.
fn trim_seconds(ms: u64) -> String {
    let text = format!("{}.{:03}", ms / 1000, ms % 1000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn segment_title(node: usize, segment: &Segment) -> String {
    let what = match segment.state {
        State::Down => "down".to_string(),
        State::Up { role, term: Some(term) } => format!("{role}, term {term}"),
        State::Up { role, term: None } => role.to_string(),
    };
    format!("node {node}: {what} from {} to {}", seconds(segment.from_ms), seconds(segment.to_ms))
}

/// Arrowheads and the hatch of a crashed lane, shared by both SVGs.
fn defs(out: &mut String) {
    out.push_str("<defs>");
    for (id, color) in [("vote", "#8e24aa"), ("pre", "#c77c02"), ("app", "#1565c0"), ("snap", "#00897b")] {
        w!(
            out,
            "<marker id=\"a-{id}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,1L10,5L0,9z\" fill=\"{color}\"/></marker>"
        );
    }
    out.push_str(
        "<marker id=\"x-lost\" viewBox=\"0 0 10 10\" refX=\"5\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\"><path d=\"M1,1L9,9M9,1L1,9\" stroke=\"#d32f2f\" stroke-width=\"2.2\"/></marker>\
         <pattern id=\"cutp\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(-45)\"><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"5\" stroke=\"#1f2328\" stroke-opacity=\".55\" stroke-width=\"1.6\"/></pattern>\
         <pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#e4e6e9\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#9aa0a6\" stroke-width=\"2.5\"/></pattern></defs>\n",
    );
}

/// Everything, messages included, at a readable scale, in a horizontally scrolling panel.
fn detail(out: &mut String, run: &Run) {
    // At least the focus window's width, so that a short run still fills the view.
    let width = detail_x((run.end_ms + FOCUS_AFTER_VIOLATION_MS).max(FOCUS_BEFORE_VIOLATION_MS) as f64) + 40.0;
    let height = lane_top(run.nodes) + FOOTER_H;
    out.push_str(
        "<h2>Detail <span class=\"hint\">scroll sideways; hover an arrow, a lane or a mark for details; keys + and − zoom</span></h2>\n\
         <div class=\"controls\"><button id=\"zoom-out\" title=\"zoom out (−)\">−</button><button id=\"zoom-in\" title=\"zoom in (+)\">+</button>\
         <button id=\"fit\">whole run</button><button id=\"focus\">",
    );
    out.push_str(if run.violation.is_some() { "before the violation" } else { "the start" });
    out.push_str("</button><span class=\"zoom\" id=\"zoom-level\"></span></div>\n");
    w!(
        out,
        "<div class=\"panel detail-wrap\"><svg class=\"labels\" width=\"{LABEL_COLUMN_W}\" height=\"{height:.0}\">"
    );
    for node in 0..run.nodes {
        let top = lane_top(node);
        w!(
            out,
            "<rect class=\"lane-bg{}\" x=\"0\" y=\"{top:.1}\" width=\"{LABEL_COLUMN_W}\" height=\"{LANE_H}\"/><text class=\"lane-label\" x=\"12\" y=\"{:.1}\">node {node}</text>",
            if node % 2 == 1 { " odd" } else { "" },
            top + BAR_Y + BAR_H - 3.0
        );
    }
    w!(
        out,
        "<text class=\"lane-sub\" x=\"12\" y=\"15\">time</text><text class=\"lane-sub\" x=\"12\" y=\"{:.1}\">faults</text></svg>\n",
        AXIS_H + 12.0
    );
    w!(
        out,
        "<div id=\"scroller\"><svg id=\"detail\" width=\"{width:.0}\" height=\"{height:.0}\" data-width=\"{width:.1}\">\n"
    );
    defs(out);
    out.push_str("<g id=\"zoomable\">\n");
    for node in 0..run.nodes {
        w!(
            out,
            "<rect class=\"lane-bg{}\" x=\"0\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{LANE_H}\"/>",
            if node % 2 == 1 { " odd" } else { "" },
            lane_top(node)
        );
    }
    out.push('\n');
    axis(out, run, height);
    faults(out, run, width, height);
    // Terms are written after the arrows, so that an election's burst of votes does not hide the new term.
    let terms = lanes(out, run);
    messages(out, run);
    out.push_str(&terms);
    if let Some((at_ms, what)) = run.violation {
        let x = detail_x(at_ms as f64);
        w!(
            out,
            "<line class=\"violation-line\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{height:.1}\"><title>{}</title></line>\
             <text class=\"violation-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">violation at {} ✖</text>\n",
            AXIS_H,
            escape(what.unwrap_or("the run failed here")),
            x + 5.0,
            height - 5.0,
            seconds(at_ms)
        );
    }
    out.push_str("</g>\n</svg></div></div>\n");
}

fn axis(out: &mut String, run: &Run, height: f64) {
    out.push_str("<g class=\"axis\">");
    let mut t = 0;
    // A thin grid line every 100 ms, a label every 500 ms: a label per ~350 px at zoom 1.
    while t <= run.end_ms {
        let x = detail_x(t as f64);
        if t % 500 == 0 {
            w!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{AXIS_H}\"/><text x=\"{:.1}\" y=\"13\">{}s</text><line class=\"grid\" x1=\"{x:.1}\" y1=\"{AXIS_H}\" x2=\"{x:.1}\" y2=\"{height:.1}\"/>",
                AXIS_H - 8.0,
                x + 3.0,
                trim_seconds(t)
            );
        } else {
            w!(out, "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{AXIS_H}\"/>", AXIS_H - 4.0);
        }
        t += 100;
    }
    out.push_str("</g>\n");
}

/// Faults: a dotted line across every lane, and the words in the band above, stacked so neighbours stay legible.
fn faults(out: &mut String, run: &Run, width: f64, height: f64) {
    /// Fault text longer than this is cut on the page (the hover shows all of it).
    const FAULT_LABEL_CHARS_MAX: usize = 40;
    /// Approximate width of one character of the fault label font, to keep labels in a row from overlapping.
    const CHAR_W: f64 = 5.9;
    let mut row_free_x = [f64::MIN; FAULT_ROWS];
    for (at_ms, group) in &run.faults {
        let x = detail_x(*at_ms as f64);
        let words: Vec<&str> = group.iter().map(|(_, what)| *what).collect();
        let words = words.join(" · ");
        let label: String = if words.chars().count() > FAULT_LABEL_CHARS_MAX {
            words.chars().take(FAULT_LABEL_CHARS_MAX - 1).chain(['…']).collect()
        } else {
            words
        };
        let title = fault_title(group);
        // With every row taken here, the line alone marks the fault (its words are in the hover) rather than
        // words written over words.
        let Some(row) = (0..FAULT_ROWS).find(|&r| row_free_x[r] <= x) else {
            w!(
                out,
                "<line class=\"fault-line\" x1=\"{x:.1}\" y1=\"{AXIS_H}\" x2=\"{x:.1}\" y2=\"{:.1}\"><title>{title}</title></line>\n",
                height - FOOTER_H
            );
            continue;
        };
        let label_w = label.chars().count() as f64 * CHAR_W;
        row_free_x[row] = x + label_w + 8.0;
        // Near the end of the drawing, the words go to the left of their line rather than off the edge.
        let (label_x, anchor) = if x + label_w + 4.0 > width { (x - 2.0, "end") } else { (x + 2.0, "start") };
        w!(
            out,
            "<line class=\"fault-line\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"><title>{title}</title></line>\
             <text class=\"fault-label\" x=\"{label_x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}<title>{title}</title></text>\n",
            AXIS_H + row as f64 * FAULT_ROW_H + 2.0,
            height - FOOTER_H,
            AXIS_H + (row + 1) as f64 * FAULT_ROW_H - 3.0,
            escape(&label)
        );
    }
}

/// Every fault of a group on its own line, with its time, escaped.
fn fault_title(group: &[(u64, &str)]) -> String {
    let lines: Vec<String> =
        group.iter().map(|(at_ms, what)| format!("{}: {}", seconds(*at_ms), escape(what))).collect();
    lines.join("\n")
}

/// Role bars, crash and restart marks, commit marks; returns the terms to write on the bars.
fn lanes(out: &mut String, run: &Run) -> String {
    let mut terms = String::new();
    /// A term label is repeated along a long segment this often, so that it is in view wherever one scrolls.
    const TERM_LABEL_REPEAT_PX: f64 = 420.0;
    for (node, lane) in run.lanes.iter().enumerate() {
        let bar_y = lane_top(node) + BAR_Y;
        w!(out, "<g class=\"lane\" data-node=\"{node}\">");
        let mut previous_up = false;
        for segment in lane {
            let x0 = detail_x(segment.from_ms as f64);
            let width = (detail_x(segment.to_ms as f64) - x0).max(0.8);
            let class = match segment.state {
                State::Down => "down",
                State::Up { role, .. } => role_class(role),
            };
            w!(
                out,
                "<rect class=\"{class}\" x=\"{x0:.1}\" y=\"{bar_y:.1}\" width=\"{width:.1}\" height=\"{BAR_H}\"><title>{}</title></rect>",
                escape(&segment_title(node, segment))
            );
            let up = matches!(segment.state, State::Up { .. });
            // A new term in the same role would otherwise run on in the same colour.
            if up && previous_up {
                w!(
                    out,
                    "<line class=\"sep\" x1=\"{x0:.1}\" y1=\"{bar_y:.1}\" x2=\"{x0:.1}\" y2=\"{:.1}\"/>",
                    bar_y + BAR_H
                );
            }
            previous_up = up;
            let State::Up { role, term: Some(term) } = segment.state else { continue };
            let long = match role {
                "leader" => format!("leader T{term}"),
                "candidate" => format!("candidate T{term}"),
                "pre-candidate" => format!("pre-candidate T{term}"),
                _ => format!("T{term}"),
            };
            let short = format!("T{term}");
            let light = if matches!(role, "follower" | "pre-candidate") { " on-light" } else { "" };
            let mut at = x0 + 3.0;
            while at + 16.0 < x0 + width {
                let room = x0 + width - at;
                let text = if room > long.len() as f64 * 6.2 + 4.0 {
                    &long
                } else if room > short.len() as f64 * 6.5 + 2.0 {
                    &short
                } else {
                    break;
                };
                w!(terms, "<text class=\"term{light}\" x=\"{at:.1}\" y=\"{:.1}\">{text}</text>", bar_y + BAR_H - 4.5);
                at += TERM_LABEL_REPEAT_PX;
            }
        }
        for &(from_ms, to_ms) in &run.cut_off[node] {
            let x0 = detail_x(from_ms as f64);
            w!(
                out,
                "<rect class=\"cut\" x=\"{x0:.1}\" y=\"{bar_y:.1}\" width=\"{:.1}\" height=\"{BAR_H}\"><title>node {node} disconnected from {} to {}: it hears no one and no one hears it</title></rect>",
                (detail_x(to_ms as f64) - x0).max(0.8),
                seconds(from_ms),
                seconds(to_ms)
            );
        }
        out.push('\n');
        for life in run.lives.iter().filter(|l| l.node == node) {
            let x = detail_x(life.at_ms as f64);
            let (class, text, words) = match (life.crash, life.start) {
                (true, true) => ("crash", "↻ restart", "crashed and restarted from its durable state"),
                (true, false) => ("crash", "✕ crash", "crashed: volatile state and anything not durable lost"),
                // Every node starts at time zero; only later starts are worth a mark.
                (false, true) if life.at_ms == 0 => continue,
                (false, _) => ("start", "▶ start", "started from its durable state"),
            };
            w!(
                out,
                "<text class=\"life {class}\" x=\"{:.1}\" y=\"{:.1}\">{text}<title>node {node} {words} at {}</title></text>",
                x + 1.0,
                bar_y - 4.0,
                seconds(life.at_ms)
            );
        }
        let mut label_free_x = f64::MIN;
        for &(at_ms, _, index) in run.commits.iter().filter(|c| c.1 == node) {
            let x = detail_x(at_ms as f64);
            let tick_y = bar_y + BAR_H;
            w!(
                out,
                "<line class=\"commit\" x1=\"{x:.1}\" y1=\"{tick_y:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"><title>node {node} commits through index {index} at {}</title></line>",
                tick_y + 6.0,
                seconds(at_ms)
            );
            // Commits come every few ms under load; label only those with room, the hover names every one.
            if x >= label_free_x {
                let text = index.to_string();
                w!(
                    out,
                    "<text class=\"commit-label\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{text}</text>",
                    tick_y + 16.0
                );
                label_free_x = x + text.len() as f64 * 5.5 + 8.0;
            }
        }
        out.push_str("</g>\n");
    }
    terms
}

/// One arrow per message, from the sender's bar to the receiver's; a lost one stops short with a cross.
fn messages(out: &mut String, run: &Run) {
    out.push_str("<g class=\"messages\">\n");
    for m in &run.messages {
        let (family, reply) = message_class(m.kind);
        let down = m.to > m.from;
        let y_from = lane_top(m.from) + BAR_Y + if down { BAR_H } else { 0.0 };
        let y_to = lane_top(m.to) + BAR_Y + if down { 0.0 } else { BAR_H };
        let x1 = detail_x(m.sent_ms as f64);
        let (x2, y2, fate, lost) = match m.delivered_ms {
            Some(at_ms) => (
                detail_x(at_ms as f64),
                y_to,
                format!("arrived {} ({} ms)", seconds(at_ms), at_ms - m.sent_ms.min(at_ms)),
                "",
            ),
            None => (
                detail_x(m.sent_ms as f64 + LOST_ARROW_MS),
                (y_from + y_to) / 2.0,
                "lost: never arrived".to_string(),
                " lost",
            ),
        };
        w!(
            out,
            "<line class=\"m {family}{}{lost}\" x1=\"{x1:.1}\" y1=\"{y_from:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\"><title>{} → {}: {} (term {})\n{}\nsent {}, {fate}</title></line>\n",
            if reply { " reply" } else { "" },
            m.from,
            m.to,
            m.kind,
            m.term,
            escape(m.detail),
            seconds(m.sent_ms),
        );
    }
    out.push_str("</g>\n");
}

/// Zoom, scroll-to-focus and the overview's window: plain DOM, no library, nothing fetched.
fn script(out: &mut String, run: &Run) {
    let span_ms = run.end_ms.max(1);
    w!(
        out,
        r#"<script>
(() => {{
  const BASE = {DETAIL_PX_PER_MS}, END_MS = {span_ms}, FOCUS = [{focus_start}, {focus_end}];
  const OX = {OVERVIEW_PLOT_X}, OW = {plot_w}, VBW = {OVERVIEW_W};
  const scroller = document.getElementById('scroller'), detail = document.getElementById('detail');
  const zoomable = document.getElementById('zoomable'), win = document.getElementById('window');
  const overview = document.getElementById('overview'), level = document.getElementById('zoom-level');
  const baseWidth = parseFloat(detail.dataset.width);
  let zoom = 1;
  const px = ms => ms * BASE * zoom;
  const show = (ms, align) => {{ scroller.scrollLeft = px(ms) - align * scroller.clientWidth; }};
  const syncWindow = () => {{
    const a = scroller.scrollLeft / (BASE * zoom), b = (scroller.scrollLeft + scroller.clientWidth) / (BASE * zoom);
    win.setAttribute('x', OX + Math.max(0, a) * OW / END_MS);
    win.setAttribute('width', Math.max(2, (Math.min(b, END_MS) - Math.max(0, a)) * OW / END_MS));
  }};
  // Zooming rescales x coordinates and widths only, so text and arrowheads keep their size.
  const setZoom = z => {{
    z = Math.min(16, Math.max(scroller.clientWidth / (baseWidth * 1.02), z));
    const f = z / zoom;
    if (Math.abs(f - 1) < 1e-9) return;
    const centerMs = (scroller.scrollLeft + scroller.clientWidth / 2) / (BASE * zoom);
    for (const el of zoomable.querySelectorAll('line, rect, text')) {{
      for (const a of ['x', 'x1', 'x2', 'width']) {{
        const v = el.getAttribute(a);
        if (v !== null) el.setAttribute(a, (parseFloat(v) * f).toFixed(2));
      }}
    }}
    zoom = z;
    detail.setAttribute('width', (baseWidth * zoom).toFixed(0));
    detail.classList.toggle('dense', zoom < 0.75);
    level.textContent = 'zoom ' + (zoom >= 1 ? zoom.toFixed(1).replace(/\.0$/, '') + '×' : '1/' + (1 / zoom).toFixed(1));
    show(centerMs, 0.5);
    syncWindow();
  }};
  document.getElementById('zoom-in').onclick = () => setZoom(zoom * 2);
  document.getElementById('zoom-out').onclick = () => setZoom(zoom / 2);
  document.getElementById('fit').onclick = () => {{ setZoom(0); show(0, 0); syncWindow(); }};
  // The focus window fills the view: zoomed in on a burst before a violation, never zoomed out.
  const focus = () => {{
    setZoom(Math.max(1, scroller.clientWidth / (BASE * Math.max(1, FOCUS[1] - FOCUS[0]))));
    show(FOCUS[1], 1);
    syncWindow();
  }};
  document.getElementById('focus').onclick = focus;
  document.addEventListener('keydown', e => {{
    if (e.key === '+' || e.key === '=') setZoom(zoom * 2);
    if (e.key === '-' || e.key === '−') setZoom(zoom / 2);
  }});
  overview.addEventListener('click', e => {{
    const r = overview.getBoundingClientRect();
    show(((e.clientX - r.left) * VBW / r.width - OX) * END_MS / OW, 0.5);
  }});
  scroller.addEventListener('scroll', syncWindow);
  level.textContent = 'zoom 1×';
  focus();
}})();
</script>
"#,
        focus_start = run.focus_ms.0,
        focus_end = run.focus_ms.1,
        plot_w = OVERVIEW_W - OVERVIEW_PLOT_X - 10.0,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(sent_ms: u64, delivered_ms: Option<u64>, from: usize, to: usize, kind: &'static str) -> TimelineEvent {
        TimelineEvent::Message { sent_ms, delivered_ms, from, to, kind, term: 1, detail: "granted".into() }
    }

    /// The detail view (the legend draws samples of every mark, so counts are taken here).
    fn detail_view(html: &str) -> &str {
        html.find("<svg id=\"detail\"").map_or("", |at| &html[at..])
    }

    /// Three nodes: 0 wins an election, 1 crashes and restarts, one vote is lost, then two leaders in one term.
    fn small_run() -> Vec<TimelineEvent> {
        let mut events = vec![TimelineEvent::Run { nodes: 3, seed: 7, context: String::new() }];
        for node in 0..3 {
            events.push(TimelineEvent::Start { at_ms: 0, node });
            events.push(TimelineEvent::Role { at_ms: 0, node, role: "follower", term: 0 });
        }
        events.extend([
            TimelineEvent::Run { nodes: 3, seed: 7, context: "shape <Mixed> & \"friends\"".into() },
            TimelineEvent::Role { at_ms: 300, node: 0, role: "candidate", term: 1 },
            message(300, Some(303), 0, 1, "RequestVote"),
            message(300, None, 0, 2, "RequestVote"),
            message(303, Some(305), 1, 0, "RequestVoteReply"),
            TimelineEvent::Role { at_ms: 305, node: 0, role: "leader", term: 1 },
            TimelineEvent::Fault { at_ms: 400, what: "partition [0, 1, 1] <cut>".into() },
            TimelineEvent::Crash { at_ms: 500, node: 1 },
            TimelineEvent::Start { at_ms: 500, node: 1 },
            TimelineEvent::Role { at_ms: 500, node: 1, role: "follower", term: 1 },
            TimelineEvent::Commit { at_ms: 600, node: 0, index: 1 },
            TimelineEvent::Role { at_ms: 700, node: 2, role: "leader", term: 1 },
            TimelineEvent::Violation { at_ms: 700, what: "two leaders in term 1: 0 & 2 <bad>".into() },
        ]);
        events
    }

    #[test]
    fn draws_lanes_arrows_lost_messages_and_the_violation() {
        let report = "\ntwo leaders in term 1: 0 & 2 <bad>\n  at virtual time 0.700s, seed 7\n";
        let page =
            Page { title: "sweep seed 7", replay: "keel raft sweep --seed 7 --timeline <out>", failure: Some(report) };
        let html = render(&small_run(), &page);
        for node in 0..3 {
            assert!(html.contains(&format!("<g class=\"lane\" data-node=\"{node}\">")), "lane {node}");
            assert!(html.contains(&format!(">node {node}</text>")), "label of lane {node}");
        }
        assert!(!html.contains("data-node=\"3\""));
        let detail = detail_view(&html);
        assert_eq!(detail.matches("<line class=\"m ").count(), 3, "one arrow per message");
        assert_eq!(detail.matches("<line class=\"m vote lost\"").count(), 1, "the lost vote is drawn as lost");
        assert_eq!(detail.matches("<line class=\"m vote\"").count(), 1);
        assert_eq!(detail.matches("<line class=\"m vote reply\"").count(), 1);
        assert!(html.contains("class=\"violation\""), "the violation box");
        assert!(detail.contains("class=\"violation-line\""), "the violation marker");
        assert!(html.contains("✖ at 0.700 s: two leaders in term 1: 0 &amp; 2 &lt;bad&gt;"));
        assert!(html.contains("shape &lt;Mixed&gt; &amp; &quot;friends&quot;"), "the context, escaped");
        assert!(html.contains("partition [0, 1, 1] &lt;cut&gt;"), "fault words, escaped");
        assert!(html.contains("keel raft sweep --seed 7 --timeline &lt;out&gt;"), "the replay command, escaped");
        assert!(!html.contains("<bad>") && !html.contains("<cut>") && !html.contains("<out>"));
        assert!(html.contains("leader T1"), "the term is written on the leader's segment");
        assert!(html.contains("↻ restart"), "a crash and a start at the same moment read as one restart");
        assert!(html.contains("node 0 commits through index 1"));
        assert!(!html.contains("http://") && !html.contains("https://"), "nothing is loaded from the network");
    }

    #[test]
    fn a_passing_run_has_no_violation_box_and_opens_on_its_start() {
        let mut events = small_run();
        events.retain(|e| !matches!(e, TimelineEvent::Violation { .. }));
        let page = Page { title: "catalogue", replay: "keel raft catalogue", failure: None };
        let html = render(&events, &page);
        assert!(html.contains("PASSED") && !html.contains("class=\"violation\""));
        assert!(!detail_view(&html).contains("class=\"violation-line\""));
        assert!(html.contains("FOCUS = [0, 700]"), "{}", &html[html.find("FOCUS").unwrap_or(0)..][..40]);
    }

    #[test]
    fn a_failure_without_a_recorded_violation_is_marked_where_the_run_stopped() {
        let mut events = small_run();
        events.retain(|e| !matches!(e, TimelineEvent::Violation { .. }));
        let page = Page { title: "t", replay: "r", failure: Some("core assertion: commit > last") };
        let html = render(&events, &page);
        assert!(html.contains("✖ at 0.700 s: core assertion: commit &gt; last"));
    }

    #[test]
    fn events_naming_unknown_nodes_are_ignored_not_a_panic() {
        let events = vec![
            TimelineEvent::Run { nodes: 1, seed: 1, context: String::new() },
            TimelineEvent::Role { at_ms: 5, node: 4, role: "leader", term: 2 },
            message(1, Some(2), 0, 9, "AppendEntries"),
        ];
        let html = render(&events, &Page { title: "t", replay: "r", failure: None });
        assert!(html.contains("data-node=\"0\"") && !html.contains("data-node=\"4\""));
        assert_eq!(detail_view(&html).matches("<line class=\"m ").count(), 0);
        let empty = render(&[], &Page { title: "t", replay: "r", failure: None });
        assert!(empty.contains("</html>"));
    }
}
