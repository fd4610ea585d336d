//! The command line: clap types stay here; each subcommand becomes a call into one operation.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands::build::{BuildOptions, build};
use crate::commands::cache::{CacheAction, CacheOptions, cache, parse_size};
use crate::commands::clean::{CleanOptions, clean};
use crate::commands::completions::{Shell, completions};
use crate::commands::explain::{ExplainOptions, explain};
use crate::commands::gc::{GcOptions, gc};
use crate::commands::graph::{GraphFormat, GraphOptions, show_graph};
use crate::commands::init::{InitOptions, init};
use crate::commands::logs::{LogsOptions, logs};
use crate::commands::ls::{Format, LsOptions, StatusFilter, ls};
use crate::commands::man::man;
use crate::commands::show::{ShowOptions, show};
use crate::commands::status::{StatusOptions, status};
use crate::commands::verify::{VerifyOptions, verify};
use crate::jobfile::ExecutorKind;
use crate::plan::select::JobRef;

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
enum CacheCommand {
    /// Each cache with how many jobs it holds and their size; builds publish to the first.
    Status,
    /// Remove jobs not restored or published for a while, then the least recently used beyond a
    /// size (and what cut-off publishes left).
    Gc {
        /// Keep at most this much in each cache, e.g. `50G`, `512M`.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<u64>,
        /// Remove jobs last used longer ago than this, e.g. `90d`.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        older_than: Option<std::time::Duration>,
    },
    /// Read every job of each cache and check each file against its manifest (exit 1 when one
    /// does not match); --remove removes those.
    Verify {
        /// Remove the jobs whose files do not match.
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Build what is not up to date: jobs, report.csv, figures and figures/index.html.
    Build(BuildArgs),
    /// Say why each job would run (the exact parameter, template diff, input…) or is up to date.
    Explain {
        /// What to explain: `jobs`, `report`, `figures`, `figures/NAME` [default: everything], or
        /// jobs by name or id prefix (each explained, up to date or not).
        targets: Vec<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show how many jobs are done, failed or pending.
    Status {
        /// One line per job.
        #[arg(long)]
        jobs: bool,
        /// Only the jobs of this stage; repeat or separate with commas for several.
        #[arg(long = "stage", value_name = "STAGE", value_delimiter = ',')]
        stages: Vec<String>,
        /// Machine-readable output (documented in docs/cli.md, "JSON output").
        #[arg(long)]
        json: bool,
    },
    /// Check every done job's outputs against the hashes its record took; a job that fails is
    /// done no more (its record says why: the next build reruns it, `explain` tells).
    Verify,
    /// List the jobs: id, name, status, duration and params, one line each.
    Ls {
        /// Only the jobs whose params match this expression, e.g. 'lr < 0.1 and seed == 0'.
        #[arg(long = "where", value_name = "EXPR")]
        filter: Option<String>,
        /// Only the jobs with this status; repeat or separate with commas for several.
        #[arg(long = "status", value_name = "STATUS", value_enum, value_delimiter = ',')]
        statuses: Vec<StatusFilter>,
        /// Only the jobs of this stage; repeat or separate with commas for several.
        #[arg(long = "stage", value_name = "STAGE", value_delimiter = ',')]
        stages: Vec<String>,
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
        #[arg(required_unless_present = "filter")]
        job: Option<String>,
        /// Instead of JOB: the one job whose params match, e.g. 'lr == 0.01 and seed == 0'.
        #[arg(long = "where", value_name = "EXPR", conflicts_with = "job")]
        filter: Option<String>,
        /// Where its result comes from instead: its params, templates, inputs and commit, and
        /// each upstream job it read, with that job's own lineage.
        #[arg(long)]
        lineage: bool,
        /// Machine-readable output (documented in docs/cli.md, "JSON output").
        #[arg(long)]
        json: bool,
    },
    /// Print what a job wrote to stdout (or stderr).
    Logs {
        /// A job name, id, or the first characters (4 or more) of its id.
        #[arg(required_unless_present = "filter")]
        job: Option<String>,
        /// Instead of JOB: the one job whose params match, e.g. 'lr == 0.01 and seed == 0'.
        #[arg(long = "where", value_name = "EXPR", conflicts_with = "job")]
        filter: Option<String>,
        /// Print stderr.log instead of stdout.log.
        #[arg(long)]
        stderr: bool,
        /// Keep printing as the job writes, until it ends (or Ctrl-C).
        #[arg(long)]
        follow: bool,
    },
    /// Start a project: a Jobfile, a job template, a .gitignore and a README section.
    ///
    /// The scaffold is a sweep that builds as it is (6 small jobs, Python 3's standard library
    /// only), with every line of its Jobfile commented. Existing files are never overwritten:
    /// init refuses when Jobfile.toml or templates/train.py.j2 exist (see --force), and appends
    /// to an existing .gitignore and README.md instead of replacing them. It always writes
    /// Jobfile.toml, whatever --file says.
    Init {
        /// The project folder, created when missing.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Replace an existing Jobfile.toml and templates/train.py.j2.
        #[arg(long)]
        force: bool,
    },
    /// Print the completion script for a shell.
    #[command(after_long_help = "Install it where the shell looks, for example:\n  \
        jobman completions bash > ~/.local/share/bash-completion/completions/jobman\n  \
        jobman completions zsh > ~/.zfunc/_jobman     (with fpath+=~/.zfunc before compinit)\n  \
        jobman completions fish > ~/.config/fish/completions/jobman.fish")]
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Print jobman's man page (roff); with --dir, write one page per command.
    ///
    /// `jobman man | man -l -` reads it now; `jobman man --dir ~/.local/share/man/man1` installs
    /// jobman.1 and jobman-build.1, jobman-status.1, … for `man jobman-build`.
    Man {
        /// Write jobman.1 and one jobman-COMMAND.1 per command into this folder instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Remove the job folders the Jobfile no longer names (lists them; removes with --yes).
    ///
    /// Also removes the `ID.previous` folders kept by `build --force` once the rerun is done, and
    /// temp files of record writes that were cut off. Never touches the folder of a current job,
    /// a symlink, or an entry whose name is not a job id.
    Gc {
        /// Remove without asking.
        #[arg(short = 'y', long)]
        yes: bool,
        /// Keep the folders of jobs that are not done (failed, timed out, cut off), to look into.
        #[arg(long)]
        keep_failed: bool,
        /// Only folders whose record was written longer ago than this, e.g. `7d`, `12h`.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        older_than: Option<std::time::Duration>,
    },
    /// Shared caches of finished jobs (`[cache] dirs`, then `JOBMAN_CACHE`): what they hold,
    /// trimming and checking them.
    Cache {
        #[command(subcommand)]
        action: CacheCommand,
    },
    /// Remove the report and figures (so the next build makes them again); --jobs: job folders too.
    Clean {
        /// What to remove: `report`, `figures` (the figures and index.html) or `figures/NAME`
        /// [default: report and figures].
        targets: Vec<String>,
        /// Also remove the folders of the current Jobfile's jobs (lists them; asks first).
        #[arg(long)]
        jobs: bool,
        /// Remove job folders without asking.
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// Print the dependency graph: jobs, report, figures, index page, each with its state.
    Graph {
        /// How to print it.
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
        /// One node per job instead of one for all of them.
        #[arg(long)]
        jobs: bool,
    },
    /// Internal: a cluster task runs the job of line TASK of MANIFEST.
    #[command(name = "__run-task", hide = true)]
    RunTask {
        manifest: PathBuf,
        task: String,
        #[arg(long, default_value_t = 1)]
        jobs_per_task: usize,
    },
    /// Internal: the per-build process that stops jobs when jobman dies.
    #[command(name = "__watchdog", hide = true)]
    Watchdog { state_dir: PathBuf, jobs_dir: PathBuf },
}

#[derive(clap::Args)]
struct BuildArgs {
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
    /// Print why each job runs, with a diff of each changed template, before running it.
    #[arg(long)]
    explain: bool,
    /// Rerun the selected jobs even when they are done.
    #[arg(long)]
    force: bool,
    /// Only the jobs whose params match this expression, e.g. 'lr < 0.1 and seed == 0'.
    #[arg(long = "where", value_name = "EXPR")]
    filter: Option<String>,
    /// Where jobs run [default: the Jobfile's `[executor] kind`, else local].
    #[arg(long, value_enum, value_name = "KIND")]
    executor: Option<Executor>,
    /// Slurm: submit the jobs and return; a pipeline job on the cluster finishes the build.
    #[arg(long)]
    detach: bool,
    /// Slurm: on Ctrl-C, leave the submitted jobs running instead of cancelling them.
    #[arg(long)]
    no_cancel: bool,
    /// Try a failed or timed-out job up to N more times [default: the Jobfile's `[job] retries`, else 0].
    #[arg(long, value_name = "N")]
    retries: Option<u32>,
    /// Internal: this build is the pipeline job of a detached build.
    #[arg(long, hide = true)]
    pipeline_job: bool,
}

impl BuildArgs {
    fn options(self, jobfile: PathBuf) -> BuildOptions {
        BuildOptions {
            jobfile,
            workers: self.workers.unwrap_or_else(crate::util::parallel::cores).max(1),
            executor: self.executor.map(|e| match e {
                Executor::Local => ExecutorKind::Local,
                Executor::Slurm => ExecutorKind::Slurm,
            }),
            targets: self.targets,
            fail_fast: self.fail_fast,
            dry_run: self.dry_run,
            explain: self.explain,
            force: self.force,
            filter: self.filter,
            detach: self.detach,
            no_cancel: self.no_cancel,
            retries: self.retries,
            pipeline_job: self.pipeline_job,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Executor {
    /// A pool of workers on this machine.
    Local,
    /// Job arrays on a Slurm cluster.
    Slurm,
}

/// A JOB argument or, without one, a `--where` filter (clap requires one of them).
fn job_ref(job: Option<String>, filter: Option<String>) -> JobRef {
    match (job, filter) {
        (Some(job), _) => JobRef::Reference(job),
        (None, filter) => JobRef::Filter(filter.unwrap_or_default()),
    }
}

/// Runs the command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    crate::util::console::set_quiet(cli.quiet);
    // Commands that only print end quietly when their reader goes away (`jobman explain | head`,
    // `jobman build -n | head`), as Unix tools do. A build keeps the default: a closed pipe must
    // not cut its jobs off.
    let runs_jobs = match &cli.command {
        Command::Build(args) => !args.dry_run,
        Command::Watchdog { .. } | Command::RunTask { .. } => true,
        _ => false,
    };
    if !runs_jobs {
        // SAFETY: setting a signal disposition to its default before any thread is started.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match cli.command {
        Command::Build(args) => build(&args.options(cli.jobfile)),
        Command::Explain { targets, json } => explain(&ExplainOptions { jobfile: cli.jobfile, targets, json }),
        Command::Status { jobs, stages, json } => status(&StatusOptions { jobfile: cli.jobfile, jobs, stages, json }),
        Command::Verify => verify(&VerifyOptions { jobfile: cli.jobfile }),
        Command::Ls { filter, statuses, stages, format, json } => {
            let format = if json { Format::Json } else { format };
            ls(&LsOptions { jobfile: cli.jobfile, filter, statuses, stages, format })
        }
        Command::Show { job, filter, lineage, json } => {
            show(&ShowOptions { jobfile: cli.jobfile, job: job_ref(job, filter), lineage, json })
        }
        Command::Logs { job, filter, stderr, follow } => {
            logs(&LogsOptions { jobfile: cli.jobfile, job: job_ref(job, filter), stderr, follow })
        }
        Command::Init { dir, force } => init(&InitOptions { dir, force }),
        Command::Completions { shell } => completions(&Cli::command(), shell),
        Command::Man { dir } => man(Cli::command(), dir.as_deref()),
        Command::Gc { yes, keep_failed, older_than } => {
            gc(&GcOptions { jobfile: cli.jobfile, yes, keep_failed, older_than })
        }
        Command::Cache { action } => {
            let action = match action {
                CacheCommand::Status => CacheAction::Status,
                CacheCommand::Gc { max_size, older_than } => CacheAction::Gc { max_size, older_than },
                CacheCommand::Verify { remove } => CacheAction::Verify { remove },
            };
            cache(&CacheOptions { jobfile: cli.jobfile, action })
        }
        Command::Clean { targets, jobs, yes } => clean(&CleanOptions { jobfile: cli.jobfile, targets, jobs, yes }),
        Command::Graph { format, jobs } => show_graph(&GraphOptions { jobfile: cli.jobfile, format, jobs }),
        Command::RunTask { manifest, task, jobs_per_task } => {
            crate::exec::task::run_task_main(&manifest, &task, jobs_per_task)
        }
        Command::Watchdog { state_dir, jobs_dir } => Ok(crate::exec::supervisor::watchdog_main(&state_dir, &jobs_dir)),
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
