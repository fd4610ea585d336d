//! jobman: experiment sweeps built the way make builds files.
//!
//! The folders are the pipeline's stages, lowest layer first (docs/ARCHITECTURE.md; each module
//! uses only the ones above it in this list):
//! - [`util`]: diagnostics for the user's mistakes, status lines, text, exit codes.
//! - [`key`]: what a job's key is made of, hashed.
//! - [`store`]: job folders, records, the index, the build log, the lock; never sees a Jobfile.
//! - [`jobfile`]: `Jobfile.toml` → a validated [`jobfile::Jobfile`], every mistake collected.
//! - [`graph`]: the dependency graph and the one target grammar.
//! - [`plan`]: the Jobfile → keyed jobs located in the store (sweep, needs, render); runs nothing.
//! - [`exec`]: running jobs, on the local pool or on Slurm, each ending in its record.
//! - [`products`]: the report, the figures and the index page, each made only when stale.
//! - [`explain`]: why a job runs, as a value.
//! - [`commands`]: one thin file per user command; [`cli`]: clap types → commands.

mod cli;
mod commands;
mod exec;
mod explain;
mod graph;
mod jobfile;
mod key;
mod plan;
mod products;
mod store;
mod util;

/// Runs jobman with these arguments and returns the exit code; errors are printed here.
pub fn run(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    use clap::Parser;
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { util::exit::ERROR } else { 0 };
        }
    };
    match cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            util::exit::print_error(&error);
            util::exit::ERROR
        }
    }
}
