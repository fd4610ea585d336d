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

/// This jobman: its version and a hash of its code (`build.rs`). What jobman makes by its own
/// code, figures, the index page and the plan cache, is keyed on it: a jobman built from other
/// code makes them afresh, even under the same version number.
pub const JOBMAN_BUILD: &str = concat!(env!("CARGO_PKG_VERSION"), "+", env!("JOBMAN_CODE"));

/// Now, in whole seconds since 1970: how jobman's own files date what they record.
pub fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
