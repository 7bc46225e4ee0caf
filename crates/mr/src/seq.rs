//! `keel mr seq`: the sequential reference, like 6.824's mrsequential. One process, no RPC, no combiner, no
//! spills: map every input whole, group all pairs by key, reduce each key in key order. Deliberately the
//! simplest correct implementation, because the distributed engine's tests compare against it.
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::app::App;
use crate::counters::Counters;
use crate::input::read_whole;
use crate::streaming::{Program, StreamingSpec, run_mapper, run_reducer};

/// What a sequential run read and wrote.
#[derive(Clone, Debug, Default)]
pub struct SeqStats {
    pub input_bytes: u64,
    pub pairs: u64,
    pub keys: u64,
    pub output_bytes: u64,
    /// The app's user counters: what a distributed run's totals must equal.
    pub counters: Counters,
}

/// Runs `app` over `inputs` and writes `key value` lines, sorted by key, to `output`. The file appears
/// whole or not at all (written beside it, then renamed); an existing `output` is an error.
pub fn run_sequential(app: &dyn App, inputs: &[PathBuf], output: &Path) -> anyhow::Result<SeqStats> {
    if output.exists() {
        bail!("output {} already exists; remove it or choose another file", output.display());
    }
    let mut stats = SeqStats::default();
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    for input in inputs {
        let contents = read_whole(input)?;
        stats.input_bytes += contents.len() as u64;
        let name = input.to_str().unwrap_or_default();
        let pairs = &mut stats.pairs;
        let emit = &mut |key: &str, value: &str| {
            *pairs += 1;
            match groups.get_mut(key) {
                Some(values) => values.push(value.to_string()),
                None => {
                    groups.insert(key.to_string(), vec![value.to_string()]);
                }
            }
        };
        app.map_with_counters(name, &contents, emit, &mut stats.counters);
        if let Some(e) = stats.counters.error() {
            bail!("{e}");
        }
    }
    let mut keys: Vec<String> = groups.keys().cloned().collect();
    keys.sort_unstable();
    stats.keys = keys.len() as u64;

    let temp = temp_path_beside(output)?;
    let result = (|| -> anyhow::Result<u64> {
        let file = File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
        let mut out = BufWriter::new(file);
        let mut written = 0u64;
        for key in keys {
            let values = groups.remove(&key).unwrap_or_default();
            let value = app.reduce_with_counters(&key, &mut values.into_iter(), &mut stats.counters);
            if let Some(e) = stats.counters.error() {
                bail!("{e}");
            }
            let line = format!("{key} {value}\n");
            written += line.len() as u64;
            out.write_all(line.as_bytes()).with_context(|| format!("writing {}", temp.display()))?;
        }
        let file =
            out.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {}", temp.display()))?;
        file.sync_all().with_context(|| format!("syncing {}", temp.display()))?;
        Ok(written)
    })();
    match result {
        Ok(written) => {
            stats.output_bytes = written;
            fs::rename(&temp, output)
                .with_context(|| format!("renaming {} to {}", temp.display(), output.display()))?;
            Ok(stats)
        }
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// [`run_sequential`] for a streaming job: the mapper runs once per whole input file, every pair is sorted
/// by key (stably, so a key's values keep input order, as in a distributed run with one split per file), and
/// one reducer run writes the output. No time limit.
pub fn run_sequential_streaming(spec: &StreamingSpec, inputs: &[PathBuf], output: &Path) -> anyhow::Result<SeqStats> {
    if output.exists() {
        bail!("output {} already exists; remove it or choose another file", output.display());
    }
    let mut stats = SeqStats::default();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for input in inputs {
        let contents = read_whole(input)?;
        stats.input_bytes += contents.len() as u64;
        let name = input.to_str().unwrap_or_default().to_string();
        let program =
            Program { role: "mapper", command: &spec.mapper, env: vec![("KEEL_MR_INPUT", name)], timeout: None };
        let counters = run_mapper(&program, contents.as_bytes(), &mut |k, v| pairs.push((k.into(), v.into())))
            .map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))?;
        stats.counters.add_all(&counters)?;
    }
    stats.pairs = pairs.len() as u64;
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    stats.keys = pairs.chunk_by(|a, b| a.0 == b.0).count() as u64;

    let temp = temp_path_beside(output)?;
    let result = (|| -> anyhow::Result<u64> {
        let file = File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
        let mut out = BufWriter::new(file);
        let mut written = 0u64;
        let mut write_error = None;
        let program = Program {
            role: "reducer",
            command: &spec.reducer,
            env: vec![("KEEL_MR_PARTITION", "0".into())],
            timeout: None,
        };
        let mut records = pairs.into_iter();
        let counters = run_reducer::<std::convert::Infallible>(&program, || Ok(records.next()), &mut |line| {
            out.write_all(line).map_err(|e| {
                let message = format!("writing {}: {e}", temp.display());
                write_error = Some(message.clone());
                message
            })?;
            written += line.len() as u64;
            Ok(())
        });
        if let Some(e) = write_error {
            bail!("{e}");
        }
        stats.counters.add_all(&counters.map_err(anyhow::Error::msg)?)?;
        let file =
            out.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {}", temp.display()))?;
        file.sync_all().with_context(|| format!("syncing {}", temp.display()))?;
        Ok(written)
    })();
    match result {
        Ok(written) => {
            stats.output_bytes = written;
            fs::rename(&temp, output)
                .with_context(|| format!("renaming {} to {}", temp.display(), output.display()))?;
            Ok(stats)
        }
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}

fn temp_path_beside(output: &Path) -> anyhow::Result<PathBuf> {
    let Some(name) = output.file_name().and_then(|n| n.to_str()) else {
        bail!("output {} is not a file name", output.display());
    };
    Ok(output.with_file_name(format!(".{name}.keel-tmp-{}", std::process::id())))
}
