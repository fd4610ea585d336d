//! What every stage uses: diagnostics for the user's mistakes, and what the terminal shows.

pub mod console;
pub mod diagnostic;
pub mod exit;
pub mod parallel;
/// Tests that need a tool this machine may lack (Slurm, Chromium) skip through here.
#[cfg(test)]
#[path = "../../tests/support/skip.rs"]
pub mod skip;
pub mod text;

/// Now, in whole seconds since 1970: how jobman's own files date what they record.
pub fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
