//! `jobman logs JOB`: what a job wrote to stdout (or stderr); with `--follow`, as it writes,
//! until its record appears.

use std::fs;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::plan::select::{self, CurrentJobs, JobRef, Selected};
use crate::store::{self, STDERR_FILE, STDOUT_FILE};
use crate::util::console;
use crate::util::diagnostic::{Diagnostic, Diagnostics};

pub struct LogsOptions {
    pub jobfile: PathBuf,
    /// A job name, id, or the start of an id or key; or a `--where` filter.
    pub job: JobRef,
    pub stderr: bool,
    pub follow: bool,
}

/// How often `--follow` looks for new output and for the record.
const POLL: Duration = Duration::from_millis(100);

pub fn logs(options: &LogsOptions) -> anyhow::Result<i32> {
    let CurrentJobs { jobfile, jobs, .. } = CurrentJobs::load(&options.jobfile)?;
    let selected = select::resolve_one(&jobfile, &jobs, &options.job)?;
    // The key whose record ends the job; a folder without one ends with any record.
    let (name, dir, key) = match selected {
        Selected::Current(index) => {
            let job = &jobs[index];
            (job.planned.name.clone(), job.slot.dir(), Some(job.planned.key.hex()))
        }
        Selected::Former { id, dir, record } => {
            (record.as_ref().map_or(id, |r| r.name.clone()), dir, record.map(|r| r.key))
        }
    };
    let log = dir.join(if options.stderr { STDERR_FILE } else { STDOUT_FILE });
    if options.follow {
        if !log.exists() {
            console::note("Waiting", &format!("for job {name} to start (Ctrl-C to stop)"));
        }
        // Nothing will end a job that no build runs and Slurm does not hold: a build killed
        // before its watchdog could record the job leaves the folder without a record.
        let runner = || {
            crate::store::lock::is_held(&jobfile.workspace.state)
                || crate::exec::slurm::in_flight(&jobfile, false).contains_key(&dir)
        };
        let mut ended = true;
        console::to_stdout(|out| {
            ended = follow(out, &log, &dir, key.as_deref(), &runner)?;
            Ok(())
        })?;
        if !ended {
            console::note(
                "Stopped",
                &format!("no build is running job {name} and it has no record: `jobman build` runs it again"),
            );
        }
        return Ok(0);
    }
    // A log is made when the job first writes to it: a job that ended without writing has none.
    let ended = store::read_record(&dir).is_some_and(|record| key.as_deref().is_none_or(|key| record.key == key));
    if ended && !log.exists() {
        return Ok(0);
    }
    let mut file = fs::File::open(&log).map_err(|e| {
        let relative = console::relative(&log, &jobfile.root);
        let diagnostic = if e.kind() == io::ErrorKind::NotFound {
            Diagnostic::new(format!("job {name} has no log yet: {relative} does not exist"))
                .help("`jobman build` runs it; `jobman logs --follow` waits for it and prints its output")
        } else {
            Diagnostic::new(format!("cannot read {relative}: {e}"))
        };
        Diagnostics::from(diagnostic)
    })?;
    console::to_stdout(|out| io::copy(&mut file, out).map(drop))?;
    Ok(0)
}

/// Prints `log` as it grows until `dir` holds a record (of `key`, when given): `true`. A run that
/// starts over (the folder emptied for a rerun) is followed from its start. Once the job has
/// started, `runner` is asked now and then whether anything still runs it: `false` when not.
fn follow(
    out: &mut dyn Write,
    log: &Path,
    dir: &Path,
    key: Option<&str>,
    runner: &dyn Fn() -> bool,
) -> io::Result<bool> {
    const RUNNER_EVERY: u32 = 20;
    let mut open: Option<(fs::File, u64)> = None;
    let mut polls = 0u32;
    loop {
        // Looked at before reading: everything the job wrote is in the log by the time its record
        // exists, so the read below then takes it all.
        let ended = store::read_record(dir).is_some_and(|record| key.is_none_or(|key| record.key == key));
        let restarted = match &open {
            Some((file, _)) => Some(identity(&file.metadata()?)) != fs::metadata(log).ok().map(|m| identity(&m)),
            None => true,
        };
        if restarted {
            open = fs::File::open(log).ok().map(|file| (file, 0));
        }
        if let Some((file, position)) = &mut open {
            if file.metadata()?.len() < *position {
                *position = 0; // truncated
            }
            file.seek(SeekFrom::Start(*position))?;
            *position += io::copy(file, out)?;
            out.flush()?;
        }
        if ended {
            return Ok(true);
        }
        polls += 1;
        // Started: its folder was made (a log only once the job writes to it).
        if (open.is_some() || dir.exists()) && polls.is_multiple_of(RUNNER_EVERY) && !runner() {
            // The record may have come just before the runner went: one more look.
            let ended = store::read_record(dir).is_some_and(|record| key.is_none_or(|key| record.key == key));
            if let Some((file, position)) = &mut open {
                file.seek(SeekFrom::Start(*position))?;
                *position += io::copy(file, out)?;
                out.flush()?;
            }
            return Ok(ended);
        }
        std::thread::sleep(POLL);
    }
}

/// Which file this is, whatever its name: a rerun replaces the log with a new file.
fn identity(meta: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}
