//! `cargo xtask bench`: every store operation beside its raw-driver baseline, measured in the same
//! process, on servers the bench harness starts itself; then memory figures. One table.

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ROW: &str = "ARAGORA_BENCH_ROW ";
const REFERENCE: &str = "ARAGORA_BENCH_REF ";
const MEMORY: &str = "ARAGORA_BENCH_MEM ";
/// Scenarios times concurrency levels per backend, for the progress bar.
const ROWS_PER_BACKEND: u64 = 15;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only these backends (memory, sqlite, postgresql, redis); all by default.
    #[arg(long, value_delimiter = ',')]
    backend: Vec<String>,
    /// Shorter rounds and a 100,000-claim stream instead of 1,000,000.
    #[arg(long)]
    quick: bool,
    /// Also write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn crate_of(backend: &str) -> anyhow::Result<&'static str> {
    Ok(match backend {
        "memory" => "storage-memory",
        "sqlite" => "storage-sqlite",
        "postgresql" | "postgres" => "storage-postgres",
        "redis" => "storage-redis",
        other => bail!("unknown backend `{other}`; expected memory, sqlite, postgresql or redis"),
    })
}

/// Runs one bench target, collecting its JSON lines.
fn run(package: &str, bench: &str, env: &[(&str, String)], progress: &ProgressBar, lines: &mut Vec<(String, Value)>) -> anyhow::Result<()> {
    progress.set_message(format!("{package} {bench}"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(cargo)
        .args(["bench", "-q", "-p", package, "--bench", bench])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cargo bench")?;
    let stdout = child.stdout.take().context("stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        for prefix in [ROW, REFERENCE, MEMORY] {
            if let Some(json) = line.strip_prefix(prefix) {
                if prefix == ROW {
                    progress.inc(1);
                }
                lines.push((prefix.trim().to_owned(), serde_json::from_str(json)?));
            }
        }
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("{package} --bench {bench} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

fn number(value: &Value, path: &[&str]) -> f64 {
    path.iter().fold(value, |v, key| &v[*key]).as_f64().unwrap_or(f64::NAN)
}

pub(crate) fn run_all(args: Args) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace root")?;
    std::env::set_current_dir(root)?;
    let backends: Vec<String> =
        if args.backend.is_empty() { ["memory", "sqlite", "postgresql", "redis"].map(String::from).to_vec() } else { args.backend.clone() };
    let packages = backends.iter().map(|b| crate_of(b)).collect::<anyhow::Result<Vec<_>>>()?;
    println!("building the benchmarks (release) ...");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.args(["bench", "--no-run", "-q"]);
    for package in &packages {
        build.args(["-p", package]);
    }
    if !build.status()?.success() {
        bail!("building the benchmarks failed");
    }
    let plan = if args.quick { "quick" } else { "full" };
    let progress = ProgressBar::new(ROWS_PER_BACKEND * packages.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {elapsed}  {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut lines = Vec::new();
    for package in &packages {
        run(package, "stores", &[("ARAGORA_BENCH_TABLE", plan.to_owned())], &progress, &mut lines)?;
    }
    if packages.contains(&"storage-memory") {
        run("storage-memory", "memory", &[], &progress, &mut lines)?;
    }
    if packages.contains(&"storage-sqlite") {
        let claims = if args.quick { "50000" } else { "1000000" };
        run("storage-sqlite", "stream", &[("ARAGORA_BENCH_STREAM", claims.to_owned())], &progress, &mut lines)?;
    }
    progress.finish_and_clear();
    print_table(&lines);
    if let Some(path) = args.json {
        let all: Vec<Value> = lines.iter().map(|(kind, value)| serde_json::json!({ "kind": kind, "value": value })).collect();
        std::fs::write(&path, serde_json::to_string_pretty(&all)?)?;
        println!("\nwrote {}", path.display());
    }
    Ok(())
}

fn print_table(lines: &[(String, Value)]) {
    println!(
        "{:<24} {:<11} {:>4} {:>11} {:>11} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "operation", "backend", "conc", "store op/s", "raw op/s", "ratio", "p50 µs", "p99 µs", "raw p50", "raw p99"
    );
    for (kind, row) in lines {
        if kind != ROW.trim() {
            continue;
        }
        println!(
            "{:<24} {:<11} {:>4} {:>11.0} {:>11.0} {:>6.2} {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
            row["operation"].as_str().unwrap_or_default(),
            row["backend"].as_str().unwrap_or_default(),
            row["concurrency"].as_u64().unwrap_or_default(),
            number(row, &["store", "ops_per_sec"]),
            number(row, &["raw", "ops_per_sec"]),
            number(row, &["ratio"]),
            number(row, &["store", "p50_us"]),
            number(row, &["store", "p99_us"]),
            number(row, &["raw", "p50_us"]),
            number(row, &["raw", "p99_us"]),
        );
    }
    let find = |backend: &str, operation: &str| {
        lines.iter().find(|(kind, row)| {
            kind == ROW.trim() && row["backend"] == backend && row["operation"] == operation && row["concurrency"].as_u64() == Some(16)
        })
    };
    println!();
    for (kind, reference) in lines {
        if kind != REFERENCE.trim() {
            continue;
        }
        let backend = reference["backend"].as_str().unwrap_or_default();
        let compare = reference["compare_to"].as_str().unwrap_or_default();
        let ours = find(backend, compare).map_or(f64::NAN, |(_, row)| number(row, &["store", "ops_per_sec"]));
        let theirs = number(reference, &["ops_per_sec"]);
        println!(
            "{:<26} {:>10.0} op/s at 16; {compare} through the store: {:>10.0} op/s = {:.2} of it",
            reference["name"].as_str().unwrap_or_default(),
            theirs,
            ours,
            ours / theirs
        );
    }
    for (kind, memory) in lines {
        if kind == MEMORY.trim() {
            println!("{}", memory);
        }
    }
}
