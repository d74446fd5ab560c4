//! Embeds `migrations/<dialect>/NNNN_<name>.sql` into the crate.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(&env::var("CARGO_MANIFEST_DIR")?).join("../../migrations").canonicalize()?;
    let mut out = String::new();
    for (dialect, constant) in [("sqlite", "SQLITE"), ("postgres", "POSTGRES")] {
        let dir = root.join(dialect);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = fs::read_dir(&dir)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
            .collect();
        files.sort();
        writeln!(out, "/// The {dialect} migrations, in order.\npub const {constant}: &[Migration] = &[")?;
        for path in files {
            let stem = path.file_stem().and_then(|s| s.to_str()).ok_or("migration file name is not UTF-8")?;
            let (version, _name) = stem.split_once('_').ok_or_else(|| format!("{stem}: expected NNNN_name.sql"))?;
            let version: i64 = version.parse().map_err(|_| format!("{stem}: the version must be a number"))?;
            writeln!(out, "    Migration {{ version: {version}, name: {stem:?}, sql: include_str!({:?}) }},", path.display())?;
        }
        writeln!(out, "];")?;
    }
    fs::write(Path::new(&env::var("OUT_DIR")?).join("migrations.rs"), out)?;
    Ok(())
}
