//! `jobman status`: where the jobs of the current Jobfile stand, without running anything.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::commands::ls::{JSON_FORMAT, JobEntry};
use crate::exec::slurm::{self, InFlight};
use crate::jobfile::Jobfile;
use crate::plan::select::{self, CurrentJobs};
use crate::plan::{self, Job, Workspace};
use crate::store::{self, FileStamp, JobStatus};
use crate::util::console;
use crate::util::text::plural;

pub struct StatusOptions {
    pub jobfile: PathBuf,
    pub jobs: bool,
    /// Only the jobs of these stages (all of them when empty).
    pub stages: Vec<String>,
    pub json: bool,
}

/// `status --json` (with `--jobs`, followed by `jobs`); the shape is documented in docs/cli.md
/// ("JSON output").
#[derive(Serialize)]
struct Summary {
    format: u32,
    #[serde(flatten)]
    counts: Counts,
    /// With stages: the same counts per stage, in the Jobfile's order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stages: Vec<StageCounts>,
}

#[derive(Serialize)]
struct StageCounts {
    name: String,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Serialize, Deserialize, Default, Clone, Copy)]
struct Counts {
    total: usize,
    done: usize,
    failed: usize,
    timed_out: usize,
    interrupted: usize,
    pending: usize,
    /// Of the pending jobs, those an earlier build submitted to Slurm that are still queued or
    /// running.
    on_slurm: usize,
    /// Of those, the ones running and the ones queued.
    running_on_slurm: usize,
    queued_on_slurm: usize,
    /// How long the job queued longest has been queued, in seconds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    oldest_queued_secs: Option<u64>,
    /// Of the pending jobs, those waiting for upstream jobs (they have no id yet).
    waiting: usize,
}

impl Counts {
    fn add(&mut self, status: Option<JobStatus>, flight: Option<&InFlight>, now: u64) {
        self.total += 1;
        *match status {
            Some(JobStatus::Done) => &mut self.done,
            Some(JobStatus::Failed) => &mut self.failed,
            Some(JobStatus::TimedOut) => &mut self.timed_out,
            Some(JobStatus::Interrupted) => &mut self.interrupted,
            None => &mut self.pending,
        } += 1;
        match flight.filter(|_| status.is_none()) {
            Some(InFlight::Running) => self.running_on_slurm += 1,
            Some(InFlight::Queued { since }) => {
                self.queued_on_slurm += 1;
                if *since > 0 {
                    let queued = now.saturating_sub(*since);
                    self.oldest_queued_secs = Some(self.oldest_queued_secs.map_or(queued, |q| q.max(queued)));
                }
            }
            None => {}
        }
        self.on_slurm = self.running_on_slurm + self.queued_on_slurm;
    }

    fn merge(&mut self, other: &Counts) {
        self.total += other.total;
        self.done += other.done;
        self.failed += other.failed;
        self.timed_out += other.timed_out;
        self.interrupted += other.interrupted;
        self.pending += other.pending;
        self.on_slurm += other.on_slurm;
        self.running_on_slurm += other.running_on_slurm;
        self.queued_on_slurm += other.queued_on_slurm;
        self.oldest_queued_secs = self.oldest_queued_secs.max(other.oldest_queued_secs);
        self.waiting += other.waiting;
    }

    fn add_waiting(&mut self, waiting: usize) {
        self.total += waiting;
        self.pending += waiting;
        self.waiting += waiting;
    }

    /// `6 jobs: 2 done, 1 failed, 3 pending (1 running on Slurm, 2 queued on Slurm for 3m)`.
    fn line(&self) -> String {
        let mut parts = vec![format!("{} done", self.done)];
        for (n, what) in [(self.failed, "failed"), (self.timed_out, "timed out"), (self.interrupted, "interrupted")] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        let mut notes = Vec::new();
        if self.running_on_slurm > 0 {
            notes.push(format!("{} running on Slurm", self.running_on_slurm));
        }
        if self.queued_on_slurm > 0 {
            let oldest = self
                .oldest_queued_secs
                .map(|s| format!(", the oldest for {}", console::duration(s as f64)))
                .unwrap_or_default();
            notes.push(format!("{} queued on Slurm{oldest}", self.queued_on_slurm));
        }
        if self.waiting > 0 {
            notes.push(format!("{} waiting for upstream jobs", self.waiting));
        }
        parts.push(if notes.is_empty() {
            format!("{} pending", self.pending)
        } else {
            format!("{} pending ({})", self.pending, notes.join(", "))
        });
        format!("{}: {}", plural(self.total, "job"), parts.join(", "))
    }
}

pub fn status(options: &StatusOptions) -> anyhow::Result<i32> {
    let jobfile = Workspace::load_jobfile(&options.jobfile)?;
    let stages = select::stages_named(&jobfile, &options.stages)?;
    let selected = |stage: usize| stages.is_empty() || stages.contains(&stage);
    let flying = slurm::in_flight(&jobfile, false);
    // Counts alone, with nothing on Slurm: the counts of an earlier look may still hold.
    let snapshot = (!options.jobs && flying.is_empty()).then(|| SnapshotKey::of(&jobfile)).flatten();
    let (jobfile, mut jobs, by_stage) = match snapshot.as_ref().and_then(|key| key.read(jobfile.stages.len())) {
        Some(by_stage) => (jobfile, Vec::new(), by_stage),
        None => {
            let CurrentJobs { jobfile, jobs, waiting } = CurrentJobs::of(jobfile)?;
            let by_stage = count(&jobfile, &jobs, &waiting, &flying);
            if let Some(key) = snapshot {
                key.save(&jobfile, &by_stage);
            }
            (jobfile, jobs, by_stage)
        }
    };
    jobs.retain(|job| selected(job.stage));
    let mut counts = Counts::default();
    for (_, stage) in by_stage.iter().enumerate().filter(|&(index, _)| selected(index)) {
        counts.merge(stage);
    }
    let stages: Vec<StageCounts> = if jobfile.has_stages() {
        jobfile
            .stage_views()
            .filter(|view| selected(view.index))
            .map(|view| StageCounts { name: view.name().unwrap_or("").to_string(), counts: by_stage[view.index] })
            .collect()
    } else {
        Vec::new()
    };
    let summary = Summary { format: JSON_FORMAT, counts, stages };
    if options.json {
        return console::to_stdout(|out| {
            if options.jobs {
                console::write_json_with_list(out, &summary, "jobs", jobs.iter().collect(), |job| {
                    JobEntry::of(job, &jobfile)
                })
            } else {
                console::write_json(out, &summary)
            }
        })
        .map(|()| 0);
    }
    let pipeline = slurm::pipeline::live(&jobfile);
    console::to_stdout(|out| {
        if options.jobs {
            let width = jobs.iter().map(|j| j.planned.name.chars().count()).max().unwrap_or(4).max(4);
            writeln!(out, "{:<14}{:<width$}  {:<16}  DURATION", "ID", "NAME", "STATUS")?;
            for job in &jobs {
                let status = match (job.slot.state.status(), flight(&flying, job)) {
                    (None, Some(InFlight::Running)) => "running on Slurm".to_string(),
                    (None, Some(InFlight::Queued { .. })) => "queued on Slurm".to_string(),
                    _ => job.slot.state.status_key().replace('_', " "),
                };
                let duration =
                    job.slot.state.summary().map_or_else(String::new, |s| console::duration(s.duration_secs));
                let line = format!("{:<14}{:<width$}  {status:<16}  {duration}", job.slot.id, job.planned.name);
                writeln!(out, "{}", line.trim_end())?;
            }
        }
        let width = summary.stages.iter().map(|s| s.name.chars().count()).max().unwrap_or(0);
        for stage in &summary.stages {
            writeln!(out, "{:<width$}  {}", stage.name, stage.counts.line())?;
        }
        // One stage's line is the whole answer; several are summed up.
        match summary.stages.len() {
            0 => writeln!(out, "{}", summary.counts.line())?,
            1 => {}
            _ => writeln!(out, "{:<width$}  {}", "all", summary.counts.line())?,
        }
        if let Some(job) = &pipeline {
            let log = console::relative(&slurm::pipeline::log_path(&jobfile, job.job_id), &jobfile.root);
            writeln!(out, "A pipeline job on Slurm ({}) is building the rest; its log: {log}", job.job_id)?;
        }
        Ok(())
    })?;
    Ok(0)
}

/// The counts of each stage's jobs, looking at every one.
fn count(
    jobfile: &Jobfile,
    jobs: &[Job],
    waiting: &[(usize, usize)],
    flying: &HashMap<PathBuf, InFlight>,
) -> Vec<Counts> {
    let now = crate::util::unix_secs();
    let mut by_stage = vec![Counts::default(); jobfile.stages.len()];
    for job in jobs {
        by_stage[job.stage].add(job.slot.state.status(), flight(flying, job), now);
    }
    for &(stage, count) in waiting {
        by_stage[stage].add_waiting(count);
    }
    by_stage
}

/// What Slurm says of `job`; its folder's path is made only when something is in flight, not
/// for each of 10⁶ jobs for nothing.
fn flight<'a>(flying: &'a HashMap<PathBuf, InFlight>, job: &Job) -> Option<&'a InFlight> {
    if flying.is_empty() { None } else { flying.get(&job.slot.dir()) }
}

/// `.jobman/status`: the counts of a `status` that looked at every job, and what they came
/// from: the plan's fingerprint and the jobs folder's stamp. A later `status` with the same
/// fingerprint and stamp prints them without planning or looking at a job: every record jobman
/// writes, locally, on a Slurm node or from a cache, changes the stamp (`store::write_record`),
/// as does a job folder made or removed. A file edited or removed by hand inside a job folder
/// that stays does not: a build still looks at every record (docs/ARCHITECTURE.md).
#[derive(Serialize, Deserialize)]
struct Snapshot {
    format: String,
    plan: String,
    jobs_folder: Option<FileStamp>,
    stages: Vec<Counts>,
}

const SNAPSHOT_FILE: &str = "status";
const SNAPSHOT_FORMAT: &str = "jobman status v1";

/// A folder changed this shortly before a look may change again within the same tick of the
/// file system's clock, which would leave its stamp as it was: counts made then are not kept.
const SETTLE: Duration = Duration::from_secs(2);

/// What counts must have been made from to hold now, taken before they are made.
struct SnapshotKey {
    path: PathBuf,
    plan: String,
    jobs_folder: Option<FileStamp>,
    taken: SystemTime,
}

impl SnapshotKey {
    fn of(jobfile: &Jobfile) -> Option<SnapshotKey> {
        let taken = SystemTime::now();
        let jobs_folder = FileStamp::of(&jobfile.workspace.jobs);
        let plan = plan::fingerprint_all(jobfile)?;
        Some(SnapshotKey { path: jobfile.workspace.state.join(SNAPSHOT_FILE), plan, jobs_folder, taken })
    }

    /// The counts of each of the `stages`, when a snapshot was made from what is there now.
    fn read(&self, stages: usize) -> Option<Vec<Counts>> {
        let snapshot: Snapshot = serde_json::from_slice(&fs::read(&self.path).ok()?).ok()?;
        let holds = snapshot.format == SNAPSHOT_FORMAT
            && snapshot.plan == self.plan
            && snapshot.jobs_folder == self.jobs_folder
            && snapshot.stages.len() == stages;
        holds.then_some(snapshot.stages)
    }

    /// Keeps counts made after this key was taken, unless the jobs folder changed since, or so
    /// shortly before that a change now might not show in its stamp. Best effort: a workspace
    /// this user cannot write only makes every `status` look at every job.
    fn save(self, jobfile: &Jobfile, stages: &[Counts]) {
        let settled = self.jobs_folder.is_none_or(|stamp| stamp.modified_before(self.taken - SETTLE));
        if !settled || FileStamp::of(&jobfile.workspace.jobs) != self.jobs_folder {
            return;
        }
        let snapshot = Snapshot {
            format: SNAPSHOT_FORMAT.to_string(),
            plan: self.plan,
            jobs_folder: self.jobs_folder,
            stages: stages.to_vec(),
        };
        if let Ok(bytes) = serde_json::to_vec(&snapshot) {
            let _ = store::write_atomic(&self.path, &bytes);
        }
    }
}
