//! The README's first command: the quickstart runs in an empty directory, twice, and the token it
//! stores is in neither the database nor its write-ahead log.

use std::path::PathBuf;
use std::process::Command;

/// `cargo test` builds the examples next to the test binaries' directory.
fn quickstart() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    dir.join("examples").join("quickstart")
}

#[test]
fn quickstart_runs_twice_and_keeps_the_token_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    for run in 1..=2 {
        let output = Command::new(quickstart())
            .current_dir(dir.path())
            .env_remove("DATABASE_BACKEND")
            .env_remove("ARAGORA_DATABASE_BACKEND")
            .env_remove("SQLITE_PATH")
            .env_remove("ARAGORA_SQLITE_PATH")
            .env("ARAGORA_ENV", "development")
            .output()
            .expect("run the quickstart example");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "run {run}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout.contains("token readable: true"), "{stdout}");
        assert!(stdout.contains("webhook delivery 2: duplicate"), "the second delivery is a duplicate: {stdout}");
        assert!(stdout.contains("gmail token: user-123"), "{stdout}");
    }
    let mut scanned = 0;
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if name.starts_with("aragora.db") && !name.ends_with(".key") {
            let bytes = std::fs::read(&path).expect("read");
            assert!(!bytes.windows(26).any(|w| w == b"xoxb-quickstart-demo-token"), "{name} holds the token in clear");
            scanned += 1;
        }
    }
    assert!(scanned >= 1, "aragora.db was created");
}
