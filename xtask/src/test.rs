//! `cargo xtask test`: the whole suite. It checks that the servers the suite starts can be
//! started, and stops with a one-line fix instead of skipping anything.
//!
//! Tests run under `cargo test` so that each test binary is one process: the harness then starts
//! one PostgreSQL and one Redis per binary and shares them between its tests. Benchmarks are not
//! run here (`cargo xtask bench`); clippy still compiles them.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The full fault suite: 10,000 operations per store family and network fault, 1,000 power
    /// losses per SQLite setting, 1,000 histories per backend (`ARAGORA_FAULTS=full`). Without
    /// it, each fault test runs a short version.
    #[arg(long)]
    faults: bool,
    /// Extra arguments for `cargo test` (e.g. `-p storage-redis` or a test name filter).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
}

fn postgres_binaries() -> bool {
    succeeds("initdb", &["--version"])
        || std::fs::read_dir("/usr/lib/postgresql").is_ok_and(|d| d.filter_map(|e| e.ok()).any(|e| e.path().join("bin/initdb").is_file()))
}

/// Everything the suite needs that cargo does not build, with the fix for each.
fn preflight() -> anyhow::Result<()> {
    let external = |var: &str| std::env::var(var).is_ok_and(|v| !v.is_empty());
    if !external("ARAGORA_TEST_POSTGRES_URL") {
        if !postgres_binaries() {
            bail!("PostgreSQL server binaries not found: run `apt-get install -y postgresql` (or set ARAGORA_TEST_POSTGRES_URL)");
        }
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if root && !succeeds("id", &["postgres"]) {
            bail!("running as root needs a `postgres` system user to start PostgreSQL: run `useradd --system postgres`");
        }
    }
    let redis_installed = succeeds("redis-server", &["--version"]) && succeeds("redis-cli", &["--version"]);
    if !(external("ARAGORA_TEST_REDIS_URL") || redis_installed) {
        bail!("redis-server not found: run `apt-get install -y redis-server` (or set ARAGORA_TEST_REDIS_URL)");
    }
    Ok(())
}

/// The SQLite power-loss tests mount a FUSE filesystem of their own: needed when they run.
fn fuse_preflight(rest: &[String]) -> anyhow::Result<()> {
    let runs_sqlite = rest.is_empty() || rest.iter().any(|a| a == "--workspace" || a.contains("storage-sqlite"));
    if runs_sqlite && !Path::new("/dev/fuse").exists() {
        bail!(
            "/dev/fuse not found: the SQLite power-loss tests need FUSE (`modprobe fuse`, or a container started with --device /dev/fuse)"
        );
    }
    Ok(())
}

/// Passed and failed test counts, summed over every `test result:` line.
#[derive(Debug, Default)]
struct Tally {
    passed: u64,
    failed: u64,
}

impl Tally {
    fn add(&mut self, line: &str) {
        let Some(summary) = line.trim().strip_prefix("test result: ") else { return };
        let count = |what: &str| {
            summary
                .split([';', '.'])
                .find_map(|part| part.trim().strip_suffix(what).and_then(|n| n.trim().parse::<u64>().ok()))
                .unwrap_or(0)
        };
        self.passed += count("passed");
        self.failed += count("failed");
    }
}

/// Runs cargo, echoing its output and counting the tests it reports.
fn cargo(args: &[&str], rest: &[String], faults: &str, tally: &mut Tally) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("+ cargo {} {}", args.join(" "), rest.join(" "));
    let mut child = Command::new(&cargo)
        .args(args)
        .args(rest)
        .env("ARAGORA_FAULTS", faults)
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {cargo}"))?;
    let stdout = child.stdout.take().context("cargo stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        tally.add(&line);
    }
    if !child.wait()?.success() {
        println!("{} passed, {} failed", tally.passed, tally.failed.max(1));
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace root")?;
    std::env::set_current_dir(root)?;
    preflight()?;
    fuse_preflight(&args.rest)?;
    // Read by the fault tests (storage_testkit::network, the power-loss and history tests).
    let faults = if args.faults { "full" } else { "short" };
    let mut tally = Tally::default();
    if args.rest.is_empty() {
        cargo(&["test", "--workspace", "--all-features", "--doc"], &[], faults, &mut tally)?;
        cargo(&["test", "--workspace", "--all-features", "--no-fail-fast"], &[], faults, &mut tally)?;
    } else {
        cargo(&["test", "--all-features"], &args.rest, faults, &mut tally)?;
    }
    if tally.passed == 0 {
        bail!("no test ran");
    }
    println!("{} passed, {} failed", tally.passed, tally.failed);
    Ok(())
}
