//! The local executor: a pool of worker threads, each running one job at a time in its own
//! process group, with the GPUs and resources it asks for held while it runs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;

use super::finish::{Finished, Outcome, Tally, failure_detail};
use super::prepare::prepare;
use super::request::{LocalRequest, Requests};
use super::shared::{self, Publisher};
use super::slots::{self, Held, Slots};
use super::supervisor::{self, Supervisor, Watchdog};
use super::task::{self, Ran};
use super::{RunOptions, apply_records};
use crate::jobfile::StageView;
use crate::plan::Job;
use crate::plan::render::Renderer;
use crate::store::build_log;
use crate::store::lock::WorkspaceLock;
use crate::store::verify::Unsynced;
use crate::store::{self, FileStamp, JobRecord, JobStatus, RecordSummary};
use crate::util::console::{self, Progress, Tone};
use crate::util::diagnostic::{Diagnostic, Diagnostics};

/// Runs the `pending` jobs (indices into `jobs`) on a pool of `workers` threads, updating their
/// state as records come in.
pub fn run(
    options: &RunOptions,
    jobfile: StageView<'_>,
    lock: &WorkspaceLock,
    jobs: &mut [Job],
    pending: &[usize],
    interrupted: Arc<AtomicBool>,
    clock: Instant,
) -> anyhow::Result<Outcome> {
    let jobs_dir = &jobfile.workspace.jobs;
    let (slots, requests) = local_slots(jobfile, jobs, pending)?;
    let watchdog =
        Watchdog::start(&lock.file, &jobfile.workspace.state, jobs_dir).context("cannot start the watchdog process")?;
    let supervisor = Supervisor::new(Arc::clone(&interrupted), Some(watchdog));
    let renderer = Renderer::new(jobfile).map_err(Diagnostics::from)?;
    let root = &jobfile.root;

    let mut tally = Tally { cached: jobs.len() - pending.len(), ..Tally::default() };
    // Summaries, not whole records: a record carries its key's ingredients, a few kilobytes that
    // 10⁶ jobs would hold until the end.
    let mut records: Vec<(usize, RecordSummary, FileStamp)> = Vec::with_capacity(pending.len());
    let log_path = build_log::path(&jobfile.workspace.state);
    let mut log = build_log::LogWriter::open(&log_path)
        .inspect_err(|e| {
            console::failure(
                "Warning",
                &format!("cannot write {} (explanations will lack it): {e}", log_path.display()),
            )
        })
        .ok();
    // Records are not synced one by one (that would halve the speed of short jobs): a marker
    // tells a later build which ones to check if this one never reaches its final sync.
    let unsynced = Unsynced::begin(&jobfile.workspace.state)
        .inspect_err(|e| console::failure("Warning", &format!("cannot mark the build as unsynced: {e}")))
        .ok();
    let publisher = Publisher::start(shared::publish_to(jobfile), Arc::clone(&interrupted));
    let progress = Progress::new(pending.len());
    let items: Vec<(usize, &Job)> = pending.iter().map(|&i| (i, &jobs[i])).collect();
    supervisor::run_pool(
        &supervisor,
        options.workers,
        items,
        |(index, job)| {
            let held = slots.as_ref().map(|slots| (slots, &requests[&index]));
            let retrying = |record: &JobRecord| {
                progress.note(retry_line(record, jobfile.job.retries, &job.slot.dir(), root));
            };
            let finished = run_job(&renderer, jobfile, &supervisor, held, index, job, &retrying);
            if finished.status == Some(JobStatus::Done) {
                publisher.publish(job.planned.key.hex(), finished.dir.clone());
            }
            // Decided on the worker, before it takes the next job.
            if options.fail_fast
                && matches!(finished.status, Some(s) if s != JobStatus::Done && s != JobStatus::Interrupted)
            {
                supervisor.stop_accepting();
            }
            finished
        },
        |finished| {
            let line = finished.line(root);
            match finished.status {
                Some(JobStatus::Done) => tally.ran += 1,
                Some(JobStatus::Interrupted) => tally.interrupted += 1,
                // Stopped before it began; counted with those never handed to a worker below.
                None => {}
                Some(_) => tally.failed.push(finished.summary(root)),
            }
            let shown = !matches!(finished.status, Some(JobStatus::Interrupted) | None);
            progress.finished(line, shown);
            progress.message(&finished.name);
            if let (Some(writer), Some(entry)) = (&mut log, &finished.logged)
                && let Err(e) = writer.append(entry)
            {
                console::failure("Warning", &format!("cannot write {}: {e}", log_path.display()));
                log = None;
            }
            if let Some((record, stamp)) = finished.record {
                records.push((finished.index, RecordSummary::from(&record), stamp));
            }
        },
    );
    progress.clear();
    // The copies still queued, before the one sync of the build.
    drop(publisher);
    match unsynced {
        Some(unsynced) => unsynced.end(jobs_dir),
        None => store::sync_filesystem(jobs_dir),
    }
    let was_interrupted = supervisor.interrupted();
    drop(supervisor);
    apply_records(jobs, records);
    tally.not_started = pending.len().saturating_sub(tally.ran + tally.failed.len() + tally.interrupted);
    Ok(tally.finish(jobs.len(), clock.elapsed().as_secs_f64(), was_interrupted))
}

/// The line of a failed attempt that is tried again:
/// `Retrying name (attempt 1 of 3 failed, exit code 1): jobs/ID`.
fn retry_line(record: &JobRecord, retries: u32, dir: &Path, root: &Path) -> String {
    let detail = failure_detail(&JobRecord { attempts: 1, ..record.clone() });
    console::line(
        Tone::Note,
        "Retrying",
        &format!(
            "{} (attempt {} of {} {}{detail}): {}",
            record.name,
            record.attempts,
            retries + 1,
            record.status.as_str(),
            console::relative(dir, root)
        ),
    )
}

/// The GPU and resource pool of the local executor, and what each pending job asks of it; none
/// when the Jobfile asks for neither (jobs then see the environment as it is).
fn local_slots(
    jobfile: StageView<'_>,
    jobs: &[Job],
    pending: &[usize],
) -> anyhow::Result<(Option<Slots>, HashMap<usize, LocalRequest>)> {
    if jobfile.job.gpus.is_none() && jobfile.job.resources.is_empty() {
        return Ok((None, HashMap::new()));
    }
    let local = &jobfile.executor.local;
    let gpus = slots::gpu_ids(&local.gpus);
    let total_gpus = gpus.len();
    let slots = Slots::new(gpus, local.resources.iter().map(|(name, capacity)| (name.get_ref().clone(), *capacity)));
    let requests = Requests::new(jobfile).map_err(Diagnostics::from)?;
    let mut asked = HashMap::with_capacity(pending.len());
    for &i in pending {
        let request = requests.local(&jobs[i].planned.params).map_err(Diagnostics::from)?;
        if let Some(why) = slots.impossible(&request, total_gpus) {
            let diagnostic = Diagnostic::new(format!("job {} can never start", jobs[i].planned.name));
            // Shown at `gpus` when GPUs are what is short, with where they are looked for.
            let diagnostic = match jobfile.job.gpus.as_ref().filter(|_| request.gpus as usize > total_gpus) {
                Some(gpus) => diagnostic.at(&jobfile.source, gpus.span(), why),
                None => diagnostic.help(why),
            };
            return Err(Diagnostics::from(diagnostic).into());
        }
        asked.insert(i, request);
    }
    Ok((Some(slots), asked))
}

/// Runs one job in a fresh folder and writes its record last. `retrying` hears of each failed
/// attempt that is tried again.
fn run_job(
    renderer: &Renderer<'_>,
    jobfile: StageView<'_>,
    supervisor: &Supervisor,
    slots: Option<(&Slots, &LocalRequest)>,
    index: usize,
    job: &Job,
    retrying: &dyn Fn(&JobRecord),
) -> Finished {
    let Job { planned, slot, .. } = job;
    let mut finished = Finished {
        index,
        record: None,
        logged: None,
        name: planned.name.clone(),
        dir: slot.dir(),
        status: None,
        detail: String::new(),
        seconds: 0.0,
        attempts: 0,
    };
    if !supervisor.accepting() {
        return finished;
    }
    // The GPUs and resources it asks for, held until it ends.
    let held = match slots {
        Some((slots, request)) => match slots.acquire(request, || supervisor.accepting()) {
            Some(held) => Some(held),
            None => return finished,
        },
        None => None,
    };
    let env: Vec<(&'static str, String)> =
        held.as_ref().and_then(Held::cuda_visible_devices).map(|d| ("CUDA_VISIBLE_DEVICES", d)).into_iter().collect();
    let prepared = prepare(renderer, jobfile, planned, slot);
    let ran = prepared.and_then(|(spec, logged)| {
        finished.logged = Some(logged);
        // The folder was made afresh: its first attempt.
        task::run(&spec, &slot.dir(), supervisor, env, 1, true, retrying)
    });
    drop(held);
    match ran {
        Ok(Some(Ran { record, stamp, seconds })) => {
            finished.status = Some(record.status);
            finished.seconds = seconds;
            finished.detail = failure_detail(&record);
            finished.attempts = record.attempts;
            finished.record = Some((record, stamp));
        }
        Ok(None) => finished.status = Some(JobStatus::Interrupted),
        Err(message) => {
            finished.status = Some(JobStatus::Failed);
            finished.detail = format!(": {message}");
        }
    }
    finished
}
