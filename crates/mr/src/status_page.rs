//! The status page: a pure function from a [`StatusSnapshot`] to one self-contained HTML page (inline CSS,
//! an inline SVG chart, a few lines of inline script; nothing loaded from anywhere, so it works offline).
//!
//! The page is rendered on the server, so it shows the job's numbers with scripts off (and then reloads
//! itself every 2 s through a `<noscript>` meta refresh); the script fetches `/` again every second and
//! swaps the `#status` element in, so it stays current without a reload (and says so when the coordinator
//! is gone). Every figure a test or a script may want carries an `id` (and
//! byte counts their exact value in `data-value`); `/status.json` has the same data.
use std::fmt::Write as _;

use crate::status::{HistoryPoint, StatusSnapshot};
use crate::task_table::StateCounts;
use crate::units::format_bytes;

pub fn render_page(s: &StatusSnapshot) -> String {
    let mut page = String::with_capacity(16 * 1024);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <noscript><meta http-equiv=\"refresh\" content=\"2\"></noscript>\
         <title>keel mr: job {job} {phase}</title><style>{STYLE}</style></head><body>\n",
        job = escape(&s.job),
        phase = s.phase
    );
    page.push_str("<div id=\"status\">\n");
    render_header(&mut page, s);
    page.push_str("<div class=\"grid\">\n");
    render_tasks(&mut page, s);
    render_bytes(&mut page, s);
    render_counters(&mut page, s);
    page.push_str("</div>\n");
    render_chart(&mut page, s);
    render_workers(&mut page, s);
    render_reexecutions(&mut page, s);
    page.push_str("</div>\n");
    let _ = write!(
        page,
        "<footer><span id=\"live\">live: refreshed every second</span> &middot; \
         <a href=\"/status.json\">status.json</a></footer>\n<script>{SCRIPT}</script>\n</body></html>\n"
    );
    page
}

fn render_header(page: &mut String, s: &StatusSnapshot) {
    let percent = if s.tasks_total == 0 { 0.0 } else { 100.0 * f64::from(s.tasks_done) / f64::from(s.tasks_total) };
    let eta = match s.eta_ms {
        Some(ms) => format_duration_ms(ms),
        None => "&mdash;".to_string(),
    };
    let _ = write!(
        page,
        "<header><div class=\"title\"><h1>keel mr</h1><span class=\"job\">job <b id=\"job\">{job}</b> \
         &middot; app <b id=\"app\">{app}</b></span>\
         <span id=\"phase\" class=\"phase {phase}\">{phase}</span></div>\
         <div class=\"progress\"><div class=\"bar\" style=\"width:{percent:.1}%\"></div></div>\
         <div class=\"facts\"><span><b id=\"tasks-done\">{done}</b> of <b id=\"tasks-total\">{total}</b> tasks \
         done ({percent:.0}%)</span><span>elapsed <b id=\"elapsed\" data-value=\"{elapsed_ms}\">{elapsed}</b></span>\
         <span>ETA <b id=\"eta\">{eta}</b></span><span>input <b id=\"rate\" data-value=\"{rate}\">{rate_text}/s</b></span>\
         </div>",
        job = escape(&s.job),
        app = escape(&s.app),
        phase = s.phase,
        done = s.tasks_done,
        total = s.tasks_total,
        elapsed_ms = s.elapsed_ms,
        elapsed = format_duration_ms(s.elapsed_ms),
        rate = s.input_bytes_per_second,
        rate_text = format_bytes(s.input_bytes_per_second),
    );
    if let Some(failure) = &s.failure {
        let _ = write!(page, "<div id=\"failure\" class=\"failure\">job failed: {}</div>", escape(failure));
    }
    page.push_str("</header>\n");
}

fn render_tasks(page: &mut String, s: &StatusSnapshot) {
    page.push_str(
        "<section class=\"card\"><h2>Tasks</h2><table class=\"num\"><tr><th></th><th>idle</th>\
         <th>in progress</th><th>committing</th><th>done</th><th>failed</th></tr>",
    );
    for (kind, c) in [("map", &s.map_tasks), ("reduce", &s.reduce_tasks)] {
        state_row(page, kind, c);
    }
    page.push_str("</table><p class=\"note\">failed: waiting for a retry after a failed attempt</p></section>\n");
}

fn state_row(page: &mut String, kind: &str, c: &StateCounts) {
    let _ = write!(page, "<tr><th>{kind}</th>");
    for (state, n) in [
        ("idle", c.idle),
        ("in-progress", c.in_progress),
        ("committing", c.committing),
        ("done", c.done),
        ("failed", c.failed),
    ] {
        let class = if n > 0 && state == "failed" { " class=\"bad\"" } else { "" };
        let _ = write!(page, "<td id=\"{kind}-{state}\"{class}>{n}</td>");
    }
    page.push_str("</tr>");
}

fn render_bytes(page: &mut String, s: &StatusSnapshot) {
    page.push_str("<section class=\"card\"><h2>Data</h2><table class=\"kv\">");
    for (id, label, bytes) in [
        ("bytes-in", "input read", s.input_bytes),
        ("bytes-total", "input in all", s.input_bytes_total),
        ("bytes-intermediate", "intermediate", s.intermediate_bytes),
        ("bytes-out", "output", s.output_bytes),
    ] {
        let _ = write!(
            page,
            "<tr><th>{label}</th><td id=\"{id}\" data-value=\"{bytes}\">{}</td></tr>",
            format_bytes(bytes)
        );
    }
    page.push_str("</table><p class=\"note\">committed attempts only</p></section>\n");
}

fn render_counters(page: &mut String, s: &StatusSnapshot) {
    page.push_str("<section class=\"card\"><h2>Counters</h2>");
    if s.counters.is_empty() {
        page.push_str("<p class=\"note\" id=\"no-counters\">this app counts nothing</p>");
    } else {
        page.push_str("<table class=\"kv\">");
        for (name, value) in s.counters.iter() {
            // Counter names are [A-Za-z0-9_.:-], so they are safe in an id; escaped anyway.
            let name = escape(name);
            let _ = write!(page, "<tr><th>{name}</th><td id=\"counter-{name}\">{value}</td></tr>");
        }
        page.push_str("</table>");
    }
    page.push_str("<p class=\"note\">summed over committed attempts only</p></section>\n");
}

fn render_chart(page: &mut String, s: &StatusSnapshot) {
    const WIDTH: f64 = 1100.0;
    const HEIGHT: f64 = 150.0;
    const PAD: f64 = 30.0;
    page.push_str("<section class=\"card wide\"><h2>Progress</h2>");
    let points: &[HistoryPoint] = &s.history;
    let end_ms = points.last().map_or(0, |p| p.at_ms).max(s.elapsed_ms).max(1) as f64;
    let total = f64::from(s.tasks_total.max(1));
    let x = |ms: u64| PAD + (WIDTH - 2.0 * PAD) * ms as f64 / end_ms;
    let y = |done: u32| HEIGHT - PAD - (HEIGHT - 2.0 * PAD) * f64::from(done) / total;
    let mut line = String::new();
    for p in points {
        let _ = write!(line, "{:.1},{:.1} ", x(p.at_ms), y(p.tasks_done));
    }
    let _ = writeln!(
        page,
        "<svg id=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"tasks done over time\">\
         <line x1=\"{PAD}\" y1=\"{base}\" x2=\"{right}\" y2=\"{base}\" class=\"axis\"/>\
         <line x1=\"{PAD}\" y1=\"{top}\" x2=\"{right}\" y2=\"{top}\" class=\"grid-line\"/>\
         <text x=\"{PAD}\" y=\"{label_y}\" class=\"label\">0 s</text>\
         <text x=\"{right}\" y=\"{label_y}\" class=\"label\" text-anchor=\"end\">{end}</text>\
         <text x=\"4\" y=\"{top_label}\" class=\"label\">{total_tasks}</text>\
         <text x=\"4\" y=\"{base}\" class=\"label\">0</text>\
         <polyline points=\"{line}\" class=\"done-line\"/></svg>\
         <p class=\"note\">tasks done over time ({n} samples)</p></section>",
        base = HEIGHT - PAD,
        top = PAD,
        right = WIDTH - PAD,
        label_y = HEIGHT - 8.0,
        top_label = PAD + 4.0,
        end = format_duration_ms(end_ms as u64),
        total_tasks = s.tasks_total,
        n = points.len(),
    );
}

fn render_workers(page: &mut String, s: &StatusSnapshot) {
    let connected = s.workers.iter().filter(|w| w.connected).count();
    let _ = write!(
        page,
        "<section class=\"card wide\"><h2>Workers <span class=\"count\" id=\"workers-connected\">{connected}</span> \
         connected</h2><table class=\"list\" id=\"workers\"><tr><th>worker</th><th>pid</th><th>state</th>\
         <th>running</th><th class=\"r\">tasks done</th><th class=\"r\">input rate</th></tr>"
    );
    for w in &s.workers {
        let (state, class) = if w.connected { ("connected", "ok") } else { ("gone", "muted") };
        let current = w.current.as_deref().map(escape).unwrap_or_else(|| "&mdash;".into());
        let _ = write!(
            page,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{state}</td><td>{current}</td>\
             <td class=\"r worker-done\">{}</td><td class=\"r\">{}/s</td></tr>",
            escape(&w.address),
            w.pid,
            w.tasks_done,
            format_bytes(w.bytes_per_second)
        );
    }
    if s.workers.is_empty() {
        page.push_str("<tr><td colspan=\"6\" class=\"muted\">no worker has joined yet</td></tr>");
    }
    page.push_str("</table></section>\n");
}

fn render_reexecutions(page: &mut String, s: &StatusSnapshot) {
    let r = &s.reexecutions;
    let _ = write!(
        page,
        "<section class=\"card wide\"><h2>Re-executions <span class=\"count\" id=\"reexecutions\">{}</span></h2>\
         <p>because of <b id=\"timeouts\">{}</b> timeouts, <b id=\"lost-workers\">{}</b> lost workers and \
         <b id=\"failed-attempts\">{}</b> failed attempts; <b id=\"backups\">{}</b> backups of stragglers \
         (<b id=\"backup-wins\">{}</b> finished first); <b id=\"lost-map-outputs\">{}</b> map outputs lost \
         (their maps ran again)</p>",
        r.total, r.timeouts, r.lost_workers, r.failed_attempts, r.backups, r.backup_wins, r.lost_map_outputs
    );
    if !s.recent_reexecutions.is_empty() {
        page.push_str(
            "<table class=\"list\" id=\"events\"><tr><th>at</th><th>task</th><th>attempt</th><th>why</th>\
             <th>detail</th></tr>",
        );
        for e in s.recent_reexecutions.iter().rev() {
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"detail\">{}</td></tr>",
                format_duration_ms(e.at_ms),
                escape(&e.task),
                escape(&e.attempt),
                e.reason,
                escape(&e.detail)
            );
        }
        page.push_str("</table><p class=\"note\">most recent first</p>");
    }
    page.push_str("</section>\n");
}

/// `1.2 s`, `3 min 04 s`, `2 h 05 min`.
pub fn format_duration_ms(ms: u64) -> String {
    let seconds = ms / 1000;
    if seconds < 60 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if seconds < 3600 {
        format!("{} min {:02} s", seconds / 60, seconds % 60)
    } else {
        format!("{} h {:02} min", seconds / 3600, seconds % 3600 / 60)
    }
}

/// Escapes text for HTML element content and quoted attributes.
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

const STYLE: &str = "\
:root{--fg:#1d2733;--muted:#6b7785;--line:#e3e8ee;--bg:#f4f6f9;--card:#fff;--accent:#2f6fde;--ok:#1f9d55;--bad:#d64545}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:var(--fg);background:var(--bg)}
header{background:#17212e;color:#fff;padding:18px 28px 16px}
.title{display:flex;align-items:baseline;gap:18px;flex-wrap:wrap}
h1{font-size:22px;margin:0;letter-spacing:.5px}
.job{color:#b9c4d0}.job b{color:#fff;font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-weight:600}
.phase{margin-left:auto;padding:3px 12px;border-radius:12px;font-weight:700;text-transform:uppercase;font-size:13px;letter-spacing:.8px;background:#2f6fde}
.phase.succeeded{background:var(--ok)}.phase.failed{background:var(--bad)}.phase.reduce{background:#8a4fd8}.phase.publishing{background:#c98a12}
.progress{height:10px;background:#2c3a4b;border-radius:5px;margin:14px 0 10px;overflow:hidden}
.bar{height:100%;background:linear-gradient(90deg,#3d8bfd,#5fd0a4)}
.facts{display:flex;gap:28px;flex-wrap:wrap;color:#b9c4d0}.facts b{color:#fff;font-size:17px}
.failure{margin-top:12px;background:#5c1f24;border-left:4px solid var(--bad);padding:8px 12px;white-space:pre-wrap;font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:13px}
#status{padding-bottom:8px}
.grid{display:grid;grid-template-columns:minmax(430px,1.45fr) minmax(260px,1fr) minmax(260px,1fr);gap:16px;padding:16px 28px 0}
@media (max-width:1000px){.grid{grid-template-columns:1fr}}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px rgba(0,0,0,.04)}
.card.wide{margin:16px 28px 0}
h2{font-size:14px;text-transform:uppercase;letter-spacing:.8px;color:var(--muted);margin:0 0 8px}
.count{display:inline-block;min-width:22px;padding:0 7px;border-radius:10px;background:var(--bg);color:var(--fg);text-align:center}
table{border-collapse:collapse;width:100%}
th,td{padding:4px 8px;text-align:left;border-bottom:1px solid var(--line)}
th{font-weight:600;color:var(--muted);font-size:13px;white-space:nowrap}
table.num td{font-variant-numeric:tabular-nums;text-align:right;font-size:17px;font-weight:600}
table.num th{text-align:right}table.num tr th:first-child{text-align:left}
table.kv td{text-align:right;font-variant-numeric:tabular-nums;font-weight:600}
table.list td{font-size:14px}.r{text-align:right}td.r{font-variant-numeric:tabular-nums}
td.bad{color:var(--bad)}tr.ok td:nth-child(3){color:var(--ok)}tr.muted td,.muted{color:var(--muted)}
td.detail{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:12px;white-space:pre-wrap;max-width:560px}
.note{color:var(--muted);font-size:12px;margin:6px 0 0}
svg{width:100%;height:150px;display:block}
.axis{stroke:#9aa6b2;stroke-width:1}.grid-line{stroke:var(--line);stroke-dasharray:4 4}
.label{fill:var(--muted);font-size:12px}.done-line{fill:none;stroke:var(--accent);stroke-width:2.5;stroke-linejoin:round}
footer{padding:14px 28px;color:var(--muted);font-size:13px}footer a{color:var(--accent)}
#live.stale{color:var(--bad);font-weight:600}
";

/// Refreshes `#status` from `/` every second; says so when the coordinator stops answering (the job is over).
const SCRIPT: &str = "\
(function(){var live=document.getElementById('live');
function refresh(){fetch('/',{cache:'no-store'}).then(function(r){if(!r.ok)throw new Error(r.status);return r.text();})
.then(function(html){var fresh=new DOMParser().parseFromString(html,'text/html').getElementById('status');
var old=document.getElementById('status');if(fresh&&old){old.replaceWith(fresh);}
live.className='';live.textContent='live: refreshed every second';})
.catch(function(){live.className='stale';live.textContent='coordinator unreachable (the job is over, or it stopped): showing the last state';});}
setInterval(refresh,1000);})();
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counters;
    use crate::status::{ReexecutionEvent, ReexecutionTotals, WorkerStatus};
    use std::time::Duration;

    fn snapshot() -> StatusSnapshot {
        let mut counters = Counters::new();
        counters.add("words", 42);
        StatusSnapshot {
            job: "00000000000000ab".into(),
            app: "wc".into(),
            phase: "map",
            failure: Some("map task 1 failed: <script>alert(1)</script>".into()),
            elapsed_ms: 65_000,
            eta_ms: Some(5_000),
            map_tasks: StateCounts { idle: 1, in_progress: 2, committing: 0, done: 3, failed: 1 },
            reduce_tasks: StateCounts { idle: 4, ..StateCounts::default() },
            tasks_total: 11,
            tasks_done: 3,
            reexecutions: ReexecutionTotals {
                total: 2,
                timeouts: 1,
                lost_workers: 0,
                failed_attempts: 1,
                backups: 0,
                backup_wins: 0,
                lost_map_outputs: 0,
            },
            recent_reexecutions: vec![ReexecutionEvent::new(
                Duration::from_secs(3),
                "map task 1".into(),
                "attempt 4".into(),
                "failed attempt",
                "mapper `x` failed & said \"<boom>\"".into(),
            )],
            input_bytes_total: 3 << 20,
            input_bytes: 1 << 20,
            intermediate_bytes: 1000,
            output_bytes: 0,
            input_bytes_per_second: 1 << 10,
            counters,
            workers: vec![WorkerStatus {
                address: "127.0.0.1:5000".into(),
                pid: 77,
                connected: true,
                current: Some("map task 4 attempt 9".into()),
                tasks_done: 3,
                bytes_per_second: 2048,
            }],
            history: vec![],
        }
    }

    #[test]
    fn the_page_shows_the_numbers_and_escapes_what_came_from_elsewhere() {
        let page = render_page(&snapshot());
        for expected in [
            "<td id=\"map-failed\" class=\"bad\">1</td>",
            "<td id=\"map-done\">3</td>",
            "<b id=\"tasks-done\">3</b> of <b id=\"tasks-total\">11</b>",
            "id=\"bytes-in\" data-value=\"1048576\">1.0 MiB<",
            "<td id=\"counter-words\">42</td>",
            "1 min 05 s",
            "map task 4 attempt 9",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "failed &amp; said &quot;&lt;boom&gt;&quot;",
        ] {
            assert!(page.contains(expected), "missing {expected:?} in\n{page}");
        }
        assert!(!page.contains("<script>alert"), "unescaped input");
        assert!(!page.contains("http://") && !page.contains("https://"), "the page must load nothing from anywhere");
    }
}
