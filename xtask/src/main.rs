//! Developer and operator commands: `cargo xtask migrate | doctor | rotate-key | test | bench | ddl`.
#![forbid(unsafe_code)]

mod bench;
mod doctor;
mod keys;
mod migrate;
mod test;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Developer commands for aragora-storage")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply schema migrations (or `migrate status` to show where the database stands).
    Migrate(migrate::Args),
    /// Show the configuration (secrets redacted), warnings, connectivity, health, schema version,
    /// and how many values each encryption key seals per store.
    Doctor,
    /// Re-encrypt every sealed value under the primary key (resumable), or `--generate` a key,
    /// `--dry-run` to count values per key, `--retire KEY_ID` to check a key can go.
    RotateKey(keys::Args),
    /// Run the whole test suite, starting what it needs.
    Test(test::Args),
    /// Measure every store operation beside its raw-driver baseline, and print one table.
    Bench(bench::Args),
    /// Print the DDL a store's tables need, in both SQL dialects: the start of its migrations.
    Ddl {
        /// Table names (`users`, `organizations`, ...); every table when none is given.
        tables: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Migrate(args) => runtime().and_then(|rt| rt.block_on(migrate::run(args))),
        Command::Doctor => runtime().and_then(|rt| rt.block_on(doctor::run())),
        Command::RotateKey(args) => runtime().and_then(|rt| rt.block_on(keys::run(args))),
        Command::Test(args) => test::run(args),
        Command::Bench(args) => bench::run_all(args),
        Command::Ddl { tables } => ddl(&tables),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn ddl(names: &[String]) -> anyhow::Result<()> {
    use storage_schema::{Dialect, ddl::create_table};
    for name in names {
        if !storage_core::stores::TABLES.iter().any(|t| t.name == name) {
            anyhow::bail!("no store declares a table `{name}`");
        }
    }
    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        println!("-- {dialect:?}");
        for table in storage_core::stores::TABLES.iter().filter(|t| names.is_empty() || names.iter().any(|n| n == t.name)) {
            println!("{}", create_table(dialect, table));
        }
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
