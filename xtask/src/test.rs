//! `cargo xtask test`: the whole suite. It checks that the servers the suite starts can be
//! started, and stops with a one-line fix instead of skipping anything.
//!
//! Tests run under `cargo test` so that each test binary is one process: the harness then starts
//! one PostgreSQL and one Redis per binary and shares them between its tests.

use anyhow::{Context, bail};
use std::path::Path;
use std::process::Command;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
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
    if !external("ARAGORA_TEST_REDIS_URL") && !(succeeds("redis-server", &["--version"]) && succeeds("redis-cli", &["--version"])) {
        bail!("redis-server not found: run `apt-get install -y redis-server` (or set ARAGORA_TEST_REDIS_URL)");
    }
    Ok(())
}

fn cargo(args: &[&str], rest: &[String]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("+ cargo {} {}", args.join(" "), rest.join(" "));
    let status = Command::new(&cargo).args(args).args(rest).status().with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace root")?;
    std::env::set_current_dir(root)?;
    preflight()?;
    if args.rest.is_empty() {
        cargo(&["test", "--workspace", "--all-features", "--all-targets", "--no-fail-fast"], &[])?;
        cargo(&["test", "--workspace", "--all-features", "--doc"], &[])
    } else {
        cargo(&["test", "--all-features"], &args.rest)
    }
}
