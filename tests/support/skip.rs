//! Skipping a test whose tools this machine lacks: said at once, refused when `CI` is set, and
//! counted at the end of `cargo test` by `tests/skipped.rs`, the last test binary cargo runs.

use std::io::Write as _;
use std::path::PathBuf;
use std::{env, fs};

/// Says why the running test is skipped and notes it for the count at the end of `cargo test`;
/// a failure instead when `CI` is set: CI must run every test.
pub fn skip(message: &str) {
    if env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{message} (CI is set, so this test may not be skipped)");
    }
    // libtest names each test's thread after the test.
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    // Straight to stderr, past the test harness's capture, so that the skip is seen at once.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {message}");
    if let Some(path) = skips_of_this_run() {
        let noted = fs::OpenOptions::new().create(true).append(true).open(path);
        let _ = noted.and_then(|mut file| writeln!(file, "{test}\t{message}"));
    }
}

/// The file listing this `cargo test` run's skips, one `TEST<tab>WHY` line each: named after
/// cargo's process (the parent of every test binary) and its start time, so that a later run
/// given the same process id never reads it.
pub fn skips_of_this_run() -> Option<PathBuf> {
    let cargo = std::os::unix::process::parent_id();
    let stat = fs::read_to_string(format!("/proc/{cargo}/stat")).ok()?;
    // Field 22 is the start time; the fields after the command name (in parentheses) start at 3.
    let started = stat.rsplit_once(')')?.1.split_whitespace().nth(22 - 3)?.to_string();
    Some(env::temp_dir().join(format!("jobman-test-skips-{cargo}-{started}")))
}
