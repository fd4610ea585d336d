//! The command line: clap types stay here; each subcommand becomes a call into one operation.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::build::{BuildOptions, build};
use crate::logs::{LogsOptions, logs};
use crate::ls::{Format, LsOptions, StatusFilter, ls};
use crate::show::{ShowOptions, show};
use crate::status::{StatusOptions, status};

#[derive(Parser)]
#[command(name = "jobman", version, about = "Run experiment sweeps the way make builds files.", long_about = None)]
pub struct Cli {
    /// The Jobfile to use.
    #[arg(short = 'f', long = "file", global = true, default_value = "Jobfile.toml", value_name = "PATH")]
    jobfile: PathBuf,

    /// Print only failures and the summary.
    #[arg(short, long, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build what is not up to date: jobs, report.csv, figures and figures/index.html.
    Build {
        /// What to build: `jobs`, `report`, `figures` or `figures/NAME`, with what they depend
        /// on [default: everything].
        targets: Vec<String>,
        /// How many jobs run at once [default: number of cores].
        #[arg(short = 'j', long = "jobs", value_name = "N")]
        workers: Option<usize>,
        /// Stop starting new jobs after the first failure.
        #[arg(long)]
        fail_fast: bool,
        /// Print what would run and why; run nothing.
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// Rerun the selected jobs even when they are done.
        #[arg(long)]
        force: bool,
        /// Only the jobs whose params match this expression, e.g. 'lr < 0.1 and seed == 0'.
        #[arg(long = "where", value_name = "EXPR")]
        filter: Option<String>,
    },
    /// Show how many jobs are done, failed or pending.
    Status {
        /// One line per job.
        #[arg(long)]
        jobs: bool,
        /// Machine-readable output (documented in docs/cli.md, "JSON output").
        #[arg(long)]
        json: bool,
    },
    /// List the jobs: id, name, status, duration and params, one line each.
    Ls {
        /// Only the jobs whose params match this expression, e.g. 'lr < 0.1 and seed == 0'.
        #[arg(long = "where", value_name = "EXPR")]
        filter: Option<String>,
        /// Only the jobs with this status; repeat or separate with commas for several.
        #[arg(long = "status", value_name = "STATUS", value_enum, value_delimiter = ',')]
        statuses: Vec<StatusFilter>,
        /// How to print the list.
        #[arg(long, value_enum, default_value_t = Format::Table, conflicts_with = "json")]
        format: Format,
        /// The same as --format json.
        #[arg(long)]
        json: bool,
    },
    /// Show one job: params, status, how it ended, its folder and files, its key.
    Show {
        /// A job name, id, or the first characters (4 or more) of its id.
        job: String,
        /// Machine-readable output (documented in docs/cli.md, "JSON output").
        #[arg(long)]
        json: bool,
    },
    /// Print what a job wrote to stdout (or stderr).
    Logs {
        /// A job name, id, or the first characters (4 or more) of its id.
        job: String,
        /// Print stderr.log instead of stdout.log.
        #[arg(long)]
        stderr: bool,
        /// Keep printing as the job writes, until it ends (or Ctrl-C).
        #[arg(long)]
        follow: bool,
    },
    /// Internal: the per-build process that stops jobs when jobman dies.
    #[command(name = "__watchdog", hide = true)]
    Watchdog { jobs_dir: PathBuf },
}

/// Runs the command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    crate::output::set_quiet(cli.quiet);
    match cli.command {
        Command::Build { targets, workers, fail_fast, dry_run, force, filter } => {
            let workers = workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
            build(&BuildOptions { jobfile: cli.jobfile, targets, workers, fail_fast, dry_run, force, filter })
        }
        Command::Status { jobs, json } => status(&StatusOptions { jobfile: cli.jobfile, jobs, json }),
        Command::Ls { filter, statuses, format, json } => {
            let format = if json { Format::Json } else { format };
            ls(&LsOptions { jobfile: cli.jobfile, filter, statuses, format })
        }
        Command::Show { job, json } => show(&ShowOptions { jobfile: cli.jobfile, job, json }),
        Command::Logs { job, stderr, follow } => logs(&LogsOptions { jobfile: cli.jobfile, job, stderr, follow }),
        Command::Watchdog { jobs_dir } => Ok(crate::exec::watchdog_main(&jobs_dir)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
