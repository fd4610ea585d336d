//! jobman: experiment sweeps built the way make builds files.
//!
//! Modules in the order data flows (see docs/ARCHITECTURE.md):
//! - [`jobfile`]: `Jobfile.toml` → validated [`jobfile::Jobfile`], every mistake a [`diagnostic`].
//! - [`sweep`]: parameters → one [`sweep::ParamSet`] per job; [`expr`] evaluates `where` filters.
//! - [`render`]: templates, command and name of each job, and its key ([`job_key`]).
//! - [`plan`]: all jobs rendered, keyed and located in the [`store`] (one folder per job).
//! - [`exec`]: the local worker pool, process groups, timeouts, Ctrl-C and the watchdog;
//!   [`slots`]: GPUs and resources held by running jobs; [`task`]: one run of one job, its
//!   retries and its record, wherever it runs.
//! - [`request`]: what each job asks of its executor; [`slurm`]: batch scripts, arrays and the
//!   queue of a Slurm cluster; [`cluster`]: the Slurm executor that submits and follows them.
//! - [`build`], [`status`], [`explain`]: the user operations; [`dirty`] says why a job reruns,
//!   against what earlier runs rendered ([`build_log`]).
//! - [`gc`], [`clean`], [`show_graph`]: workspace upkeep — stale job folders, products, the graph.
//! - [`ls`], [`show`], [`logs`]: inspecting jobs, named on the command line through [`select`].
//! - [`cli`]: argument parsing; [`output`]: status lines and progress; [`lock`]: one build at a time.
//! - [`init`]: a new project to start from; [`completions`], [`man`]: shell completions and man
//!   pages, generated from the command line.

pub mod cli;
pub mod commands;
pub mod exec;
pub mod explain;
pub mod graph;
pub mod jobfile;
pub mod key;
pub mod plan;
pub mod products;
pub mod store;
pub mod util;

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
            match error.downcast_ref::<util::diagnostic::Diagnostics>() {
                Some(diagnostics) => eprintln!("{diagnostics}"),
                None => eprintln!(
                    "{}",
                    util::console::line(util::console::Tone::Bad, "error", &format!("{error:#}")).trim_start()
                ),
            }
            util::exit::ERROR
        }
    }
}
