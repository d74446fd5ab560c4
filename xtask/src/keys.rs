//! `cargo xtask rotate-key`: make a new key, re-encrypt every sealed value under the primary key
//! (resumable, with a progress bar), count values per key, and retire a key nothing uses.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use storage_core::rotation::{KeyCensus, Rotation};
use storage_core::{StorageConfig, StorageError};
use storage_crypto::{EncryptionKey, load_key_ring, previous_keys};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print a new random key and how to deploy it; change nothing.
    #[arg(long, conflicts_with_all = ["dry_run", "retire"])]
    generate: bool,
    /// Count the values each key seals, per store; change nothing.
    #[arg(long, conflicts_with = "retire")]
    dry_run: bool,
    /// Check that no value uses KEY_ID any more, and say which entry of
    /// ARAGORA_ENCRYPTION_PREVIOUS_KEYS to remove.
    #[arg(long, value_name = "KEY_ID")]
    retire: Option<String>,
    /// Records per batch (1 to 1000).
    #[arg(long, default_value_t = 500)]
    batch: u32,
    /// Where the run records its progress; a rerun resumes there.
    #[arg(long, default_value = "aragora-rotation.json")]
    checkpoint: PathBuf,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    if args.generate {
        return generate();
    }
    let config = StorageConfig::from_env()?;
    let primary = load_key_ring(&config)?.primary().name();
    let storage = aragora_storage::Storage::connect(&config).await.context("connecting to the configured backend")?;
    if args.dry_run {
        println!("{} backend; primary key {primary}", storage.backend());
        print_census(&storage.key_census().await?, &primary);
        return Ok(());
    }
    if let Some(key) = &args.retire {
        return retire(&storage, &config, &key_id(key)?).await;
    }
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records  {per_sec}  ETA {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let options = Rotation { batch: args.batch, checkpoint: Some(args.checkpoint.clone()) };
    let report = storage
        .reencrypt(&options, |p| {
            bar.set_length(p.total);
            bar.set_position(p.scanned);
            bar.set_message(format!("{}: {} re-sealed", p.table, p.resealed));
        })
        .await;
    bar.finish();
    let report = report.context("re-encryption stopped; run the same command again to resume")?;
    println!(
        "every sealed value is now under key {}: {} records looked at, {} re-sealed{}",
        report.key,
        report.scanned,
        report.resealed,
        if report.resumed { " (resumed an interrupted run)" } else { "" }
    );
    let left: u64 = storage.key_census().await?.totals().iter().filter(|(key, _)| **key != report.key).map(|(_, n)| n).sum();
    if left > 0 {
        println!(
            "{left} values were sealed with an older key meanwhile: a process still seals with it. Deploy the key everywhere and run again."
        );
    } else {
        println!("next: `cargo xtask rotate-key --retire <old key id>`");
    }
    Ok(())
}

/// A key id as the census prints it: 8 hex digits, lowercase (`0x` and capitals accepted).
fn key_id(text: &str) -> anyhow::Result<String> {
    let id = text.trim().trim_start_matches("0x").to_ascii_lowercase();
    if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        anyhow::bail!("`{text}` is not a key id: 8 hex digits, as `cargo xtask rotate-key --dry-run` prints them");
    }
    Ok(id)
}

fn generate() -> anyhow::Result<()> {
    let key = EncryptionKey::generate()?;
    println!("new key {} (keep it secret):\n\n    {}\n", key.name(), key.export().expose());
    println!("1. add it to ARAGORA_ENCRYPTION_PREVIOUS_KEYS on every instance and deploy (every process can now read it);");
    println!("2. make it ENCRYPTION_KEY and move the old key to ARAGORA_ENCRYPTION_PREVIOUS_KEYS; deploy;");
    println!("3. run `cargo xtask rotate-key` with that configuration: it re-encrypts everything under the new key;");
    println!("4. run `cargo xtask rotate-key --retire <old key id>`, then remove the old key.");
    Ok(())
}

async fn retire(storage: &aragora_storage::Storage, config: &StorageConfig, key: &str) -> anyhow::Result<()> {
    match storage.retire_key(key).await {
        Ok(_) => {
            let position = previous_keys(config)?.iter().position(|k| k.name() == key);
            match position {
                Some(i) => println!("no value uses key {key}: remove entry {i} (counting from 0) of ARAGORA_ENCRYPTION_PREVIOUS_KEYS."),
                None => println!("no value uses key {key}, and it is not in ARAGORA_ENCRYPTION_PREVIOUS_KEYS."),
            }
            Ok(())
        }
        Err(e @ StorageError::Conflict { .. }) => Err(anyhow::anyhow!("refused: {e}")),
        Err(e) => Err(e.into()),
    }
}

/// Prints how many values each key seals, per store table.
pub(crate) fn print_census(census: &KeyCensus, primary: &str) {
    println!("{:<30} {:<10} {:>10}", "table", "key", "values");
    for (table, keys) in &census.tables {
        if keys.is_empty() {
            println!("{table:<30} {:<10} {:>10}", "-", 0);
        }
        for (key, count) in keys {
            println!("{table:<30} {key:<10} {count:>10}{}", if key == primary { "  (primary)" } else { "" });
        }
    }
    for (key, count) in census.totals() {
        println!("{:<30} {key:<10} {count:>10}{}", "all tables", if key == primary { "  (primary)" } else { "" });
    }
}
