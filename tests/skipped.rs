//! The last test binary `cargo test` runs (cargo runs them by name): how many tests the others
//! skipped for want of a tool (tests/support/skip.rs), and what each needs.

#[path = "support/skip.rs"]
#[allow(dead_code, reason = "this binary only reads the skips the others noted")]
mod skip;

fn main() {
    let noted = skip::skips_of_this_run().and_then(|path| {
        let text = std::fs::read_to_string(&path).ok();
        let _ = std::fs::remove_file(&path);
        text
    });
    let skipped: Vec<(String, String)> = noted
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(test, why)| (test.to_string(), why.to_string()))
        .collect();
    if skipped.is_empty() {
        println!("\nEvery test ran: none was skipped.\n");
        return;
    }
    let tests = if skipped.len() == 1 { "1 test" } else { &format!("{} tests", skipped.len()) };
    println!("\nSKIPPED: {tests} did not run (the counts above call them passed):");
    for (test, why) in &skipped {
        println!("  {test}: {why}");
    }
    println!(
        "Install what they need (`bash scripts/install-test-deps.sh`, `bash scripts/slurm-up.sh`) and run them again.\n"
    );
}
