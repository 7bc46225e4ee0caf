//! How runs are shown: a table (one row per run), a JSON file per set of runs (the histogram's nonempty buckets
//! included, so runs saved separately can be compared and plotted later), and a self-contained HTML page with an
//! inline SVG latency-by-percentile plot (log scales, one curve per run).
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use super::histogram::Histogram;
use super::load::Outcome;

/// The percentiles every report shows.
pub const QUANTILES: [(f64, &str); 4] = [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9")];

fn ms(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e6)
}

/// The table: label, clients, read %, requests, errors, ops/s, then latencies in milliseconds.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut rows = vec![
        ["RUN", "CLIENTS", "READ%", "REQUESTS", "ERRORS", "OPS/S", "P50 ms", "P90 ms", "P99 ms", "P99.9 ms", "MAX ms"]
            .map(String::from)
            .to_vec(),
    ];
    for outcome in outcomes {
        let mut row = vec![
            outcome.label.clone(),
            outcome.clients.to_string(),
            outcome.read_percent.to_string(),
            outcome.requests.to_string(),
            outcome.errors.to_string(),
            format!("{:.0}", outcome.ops_per_second()),
        ];
        row.extend(QUANTILES.iter().map(|(q, _)| ms(outcome.latency.quantile_ns(*q))));
        row.push(ms(outcome.latency.max_ns()));
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns).map(|c| rows.iter().map(|row| row[c].len()).max().unwrap_or(0)).collect();
    let mut text = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            // The label left-aligned, numbers right-aligned.
            .map(|(c, (cell, width))| if c == 0 { format!("{cell:<width$}") } else { format!("{cell:>width$}") })
            .collect();
        let _ = writeln!(text, "{}", cells.join("  "));
    }
    text
}

pub fn to_json(outcome: &Outcome) -> Value {
    let latency = &outcome.latency;
    let mut percentiles = serde_json::Map::new();
    for (q, name) in QUANTILES {
        percentiles.insert(format!("{name}_us"), json!(latency.quantile_ns(q) as f64 / 1e3));
    }
    percentiles.insert("min_us".into(), json!(latency.min_ns() as f64 / 1e3));
    percentiles.insert("mean_us".into(), json!(latency.mean_ns() as f64 / 1e3));
    percentiles.insert("max_us".into(), json!(latency.max_ns() as f64 / 1e3));
    json!({
        "label": outcome.label,
        "system": outcome.system,
        "clients": outcome.clients,
        "value_bytes": outcome.value_bytes,
        "read_percent": outcome.read_percent,
        "keys": outcome.keys,
        "nodes_used": outcome.nodes_used,
        "seconds": outcome.elapsed.as_secs_f64(),
        "requests": outcome.requests,
        "errors": outcome.errors,
        "error_samples": outcome.error_samples,
        "ops_per_second": outcome.ops_per_second(),
        "latency": percentiles,
        "latency_min_ns": latency.min_ns(),
        "latency_max_ns": latency.max_ns(),
        "latency_mean_ns": latency.mean_ns(),
        "histogram_ns": latency.buckets(),
    })
}

/// Writes `{"runs": [...]}`.
pub fn write_json(path: &Path, outcomes: &[Outcome]) -> anyhow::Result<()> {
    let document = json!({ "runs": outcomes.iter().map(to_json).collect::<Vec<_>>() });
    let text = serde_json::to_string_pretty(&document).context("encoding the results")?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write the results to {}", path.display()))
}

/// Reads the runs of a file `write_json` wrote.
pub fn read_json(path: &Path) -> anyhow::Result<Vec<Outcome>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let document: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON (expected a `keel kv bench --json` file)", path.display()))?;
    let runs = document["runs"]
        .as_array()
        .with_context(|| format!("{} has no \"runs\" list: it is not a `keel kv bench --json` file", path.display()))?;
    runs.iter()
        .enumerate()
        .map(|(n, run)| outcome_from_json(run).with_context(|| format!("{}: run {n}", path.display())))
        .collect()
}

fn outcome_from_json(run: &Value) -> anyhow::Result<Outcome> {
    let number = |name: &str| run[name].as_u64().with_context(|| format!("field {name:?} is missing or not a number"));
    let buckets = run["histogram_ns"]
        .as_array()
        .context("field \"histogram_ns\" is missing")?
        .iter()
        .map(|pair| match (pair[0].as_u64(), pair[1].as_u64()) {
            (Some(upper), Some(count)) => Ok((upper, count)),
            _ => anyhow::bail!("a histogram bucket is not [upper_ns, count]"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let latency = Histogram::from_buckets(
        &buckets,
        number("latency_min_ns")?,
        number("latency_max_ns")?,
        number("latency_mean_ns")?,
    );
    anyhow::ensure!(latency.count() == number("requests")?, "the histogram does not hold \"requests\" values");
    Ok(Outcome {
        label: run["label"].as_str().unwrap_or("?").to_string(),
        system: run["system"].as_str().unwrap_or("?").to_string(),
        clients: usize::try_from(number("clients")?).context("clients")?,
        value_bytes: usize::try_from(number("value_bytes")?).context("value_bytes")?,
        read_percent: u8::try_from(number("read_percent")?).context("read_percent")?,
        keys: number("keys")?,
        nodes_used: usize::try_from(number("nodes_used")?).context("nodes_used")?,
        elapsed: Duration::from_secs_f64(run["seconds"].as_f64().context("field \"seconds\" is missing")?.max(0.0)),
        requests: latency.count(),
        errors: number("errors")?,
        error_samples: Vec::new(),
        latency,
    })
}

const COLOURS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/// A self-contained HTML page: latency (log scale, y) by percentile (x: 0, 90, 99, 99.9, ... on a log scale of
/// 1 / (1 - q), the way HdrHistogram plots, so the tail gets room), one curve per run.
pub fn html_plot(outcomes: &[Outcome], title: &str) -> String {
    let (width, height) = (1000.0_f64, 500.0_f64);
    let (left, right, top, bottom) = (80.0, 320.0, 40.0, 50.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let runs: Vec<&Outcome> = outcomes.iter().filter(|o| o.latency.count() > 0).collect();
    let nines_max = runs.iter().map(|o| (o.latency.count() as f64).log10().ceil()).fold(2.0_f64, f64::max).min(6.0);
    let lowest_ns = runs.iter().map(|o| o.latency.min_ns().max(1)).min().unwrap_or(1_000);
    let highest_ns = runs.iter().map(|o| o.latency.max_ns().max(1)).max().unwrap_or(1_000_000);
    let decade_low = (lowest_ns as f64).log10().floor();
    let decade_high = (highest_ns as f64).log10().ceil().max(decade_low + 1.0);
    let x_of = |nines: f64| left + plot_w * (nines / nines_max);
    let y_of = |ns: f64| top + plot_h * (1.0 - (ns.max(1.0).log10() - decade_low) / (decade_high - decade_low));

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        left + plot_w / 2.0,
        escape(title)
    );
    // Axes and grid: a line per decade of latency, one per "nine" of percentile.
    let mut decade = decade_low;
    while decade <= decade_high + 1e-9 {
        let y = y_of(10f64.powf(decade));
        let _ = write!(svg, r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/>"##, left + plot_w);
        let _ = write!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + 4.0,
            duration_label(10f64.powf(decade))
        );
        decade += 1.0;
    }
    for nines in 0..=(nines_max as u32) {
        let x = x_of(f64::from(nines));
        let percent = 100.0 * (1.0 - 10f64.powi(-(nines as i32)));
        let label = if nines == 0 { "0%".to_string() } else { format!("{}%", trim_number(percent)) };
        let _ = write!(svg, r##"<line x1="{x:.1}" x2="{x:.1}" y1="{top}" y2="{}" stroke="#ddd"/>"##, top + plot_h);
        let _ = write!(svg, r#"<text x="{x:.1}" y="{}" text-anchor="middle">{label}</text>"#, top + plot_h + 18.0);
    }
    let _ =
        write!(svg, r#"<text x="{}" y="{}" text-anchor="middle">percentile</text>"#, left + plot_w / 2.0, height - 8.0);
    let _ = write!(
        svg,
        r#"<text transform="translate(16 {}) rotate(-90)" text-anchor="middle">latency</text>"#,
        top + plot_h / 2.0
    );
    let _ =
        write!(svg, r##"<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>"##);

    for (n, outcome) in runs.iter().enumerate() {
        let colour = COLOURS[n % COLOURS.len()];
        let total = outcome.latency.count() as f64;
        let mut points = Vec::new();
        let mut seen = 0u64;
        // A step per bucket: the latency holds from the previous cumulative fraction to this one.
        let mut previous_nines = 0.0;
        for (upper_ns, count) in outcome.latency.buckets() {
            seen += count;
            let fraction = seen as f64 / total;
            let nines = if fraction >= 1.0 { nines_max } else { (-(1.0 - fraction).log10()).min(nines_max) };
            let y = y_of(upper_ns as f64);
            points.push(format!("{:.1},{y:.1}", x_of(previous_nines)));
            points.push(format!("{:.1},{y:.1}", x_of(nines)));
            previous_nines = nines;
        }
        let _ =
            write!(svg, r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#, points.join(" "));
        let legend_y = top + 10.0 + 40.0 * n as f64;
        let legend_x = left + plot_w + 15.0;
        let _ = write!(
            svg,
            r#"<line x1="{legend_x}" x2="{}" y1="{legend_y}" y2="{legend_y}" stroke="{colour}" stroke-width="3"/>"#,
            legend_x + 20.0
        );
        let _ =
            write!(svg, r#"<text x="{}" y="{}">{}</text>"#, legend_x + 26.0, legend_y + 4.0, escape(&outcome.label));
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" fill="#555">{:.0}/s, p50 {} ms, p99 {} ms</text>"##,
            legend_x + 26.0,
            legend_y + 20.0,
            outcome.ops_per_second(),
            ms(outcome.latency.quantile_ns(0.5)),
            ms(outcome.latency.quantile_ns(0.99))
        );
    }
    svg.push_str("</svg>");
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body style=\"font-family: \
         sans-serif\">\n{svg}\n<pre>{}</pre>\n</body></html>\n",
        escape(title),
        escape(&table(outcomes))
    )
}

pub fn write_plot(path: &Path, outcomes: &[Outcome], title: &str) -> anyhow::Result<()> {
    std::fs::write(path, html_plot(outcomes, title))
        .with_context(|| format!("cannot write the plot to {}", path.display()))
}

fn duration_label(ns: f64) -> String {
    match ns {
        ns if ns >= 1e9 => format!("{} s", trim_number(ns / 1e9)),
        ns if ns >= 1e6 => format!("{} ms", trim_number(ns / 1e6)),
        ns if ns >= 1e3 => format!("{} µs", trim_number(ns / 1e3)),
        ns => format!("{} ns", trim_number(ns)),
    }
}

fn trim_number(value: f64) -> String {
    let text = format!("{value:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Runs of the same load (clients, read share, value size) side by side, one line per system with the median of
/// its runs (repeat runs show how noisy the machine is: their spread is printed too), and the first system's
/// ratio to each other one. Empty if no load was run on two systems.
pub fn comparison(outcomes: &[Outcome]) -> String {
    let mut loads: Vec<(usize, u8, usize, usize)> = Vec::new();
    for outcome in outcomes {
        let load = (outcome.clients, outcome.read_percent, outcome.value_bytes, outcome.nodes_used);
        if !loads.contains(&load) {
            loads.push(load);
        }
    }
    let mut text = String::new();
    for load in loads {
        let (clients, read_percent, value_bytes, nodes_used) = load;
        let same_load: Vec<&Outcome> =
            outcomes.iter().filter(|o| (o.clients, o.read_percent, o.value_bytes, o.nodes_used) == load).collect();
        let mut systems: Vec<&str> = Vec::new();
        for outcome in &same_load {
            if !systems.contains(&outcome.system.as_str()) {
                systems.push(&outcome.system);
            }
        }
        if systems.len() < 2 {
            continue;
        }
        let spread = if nodes_used == 1 { "one node".to_string() } else { format!("spread over {nodes_used} nodes") };
        let _ = writeln!(text, "{clients} client(s) ({spread}), {read_percent}% reads, {value_bytes}-byte values:");
        let mut medians = Vec::new();
        for system in &systems {
            let runs: Vec<&&Outcome> = same_load.iter().filter(|o| o.system == *system).collect();
            let rates: Vec<f64> = runs.iter().map(|o| o.ops_per_second()).collect();
            let median_of = |q: f64| median(runs.iter().map(|o| o.latency.quantile_ns(q) as f64).collect());
            let (rate, p50, p99, p999) = (median(rates.clone()), median_of(0.5), median_of(0.99), median_of(0.999));
            let spread =
                rates.iter().cloned().fold(f64::INFINITY, f64::min)..=rates.iter().cloned().fold(0.0, f64::max);
            let _ = writeln!(
                text,
                "  {system:<9} {rate:>8.0} ops/s (runs: {:.0}..{:.0}, n={})  p50 {} ms  p99 {} ms  p99.9 {} ms",
                spread.start(),
                spread.end(),
                runs.len(),
                ms(p50 as u64),
                ms(p99 as u64),
                ms(p999 as u64)
            );
            medians.push((system, rate, p50, p99));
        }
        let (first, rate, p50, p99) = medians[0];
        for (other, other_rate, other_p50, other_p99) in &medians[1..] {
            let _ = writeln!(
                text,
                "  {first}/{other}: ops/s {:.2}x, p50 {:.2}x, p99 {:.2}x",
                rate / other_rate.max(1e-9),
                p50 / other_p50.max(1e-9),
                p99 / other_p99.max(1e-9)
            );
        }
    }
    text
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 }
}
