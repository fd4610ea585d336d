//! How many jobs one array task runs (`jobs_per_task = "auto"`, the default): Slurm pays its
//! cost of starting a task (about a scheduling pass, a second or more on a busy controller) once
//! per task, so short jobs share tasks of a few minutes, as many as keep every free slot busy
//! and well inside the time limit. The durations come from the stage's done jobs and from
//! what earlier builds recorded of the same stage ([`History`]); a stage never measured runs its
//! first jobs one per task and packs the rest by what they took (see `Session::submit`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store;

/// How long a packed task should run: long enough that Slurm's start cost is noise, short
/// enough that a failure or a preemption loses little.
pub const TARGET_TASK_SECS: f64 = 180.0;

/// A packed task stays under this share of its time limit, for jobs slower than those measured.
const LIMIT_SHARE: f64 = 0.5;

/// How many durations each stage keeps: the most recent ones.
const KEPT: usize = 1000;

/// How many jobs a task runs, given the `durations` (seconds) of the stage's jobs measured so
/// far, the number of jobs to pack, how many tasks can start at once (`width`) and the task's
/// time limit. One per task when nothing was measured.
pub fn jobs_per_task(durations: &[f64], jobs: usize, width: usize, time_limit_secs: Option<f64>) -> usize {
    if durations.is_empty() || jobs == 0 {
        return 1;
    }
    let mean = durations.iter().sum::<f64>() / durations.len() as f64;
    let longest = durations.iter().copied().fold(0.0, f64::max);
    // Jobs that take no measurable time still cost a little: at most one per millisecond.
    let by_target = (TARGET_TASK_SECS / mean.max(0.001)).floor() as usize;
    let by_width = jobs.div_ceil(width.max(1));
    let by_limit =
        time_limit_secs.map_or(usize::MAX, |limit| (LIMIT_SHARE * limit / longest.max(0.001)).floor() as usize);
    by_target.min(by_width).min(by_limit).max(1)
}

/// The durations of each stage's done jobs: those jobman saw end on Slurm, kept in
/// `.jobman/slurm/durations.json` for the next builds (a new sweep of the same stage packs from
/// what the last one took), and those of the stage's done jobs found when planning.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct History {
    /// Stage name (empty without stages) → durations in seconds, oldest first.
    stages: BTreeMap<String, Vec<f64>>,
    /// Stage name → durations of its done jobs in the plan (at most [`KEPT`]); not kept, as the
    /// records hold them.
    #[serde(skip)]
    planned: BTreeMap<String, Vec<f64>>,
    #[serde(skip)]
    path: PathBuf,
    #[serde(skip)]
    changed: bool,
}

impl History {
    /// What earlier builds recorded; nothing when the file is absent or unreadable.
    pub fn load(slurm_dir: &Path) -> History {
        let path = slurm_dir.join("durations.json");
        let mut history: History =
            std::fs::read(&path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
        history.path = path;
        history
    }

    /// Every duration known of the stage's jobs.
    pub fn of(&self, stage: &str) -> Vec<f64> {
        let kept = self.stages.get(stage).into_iter().flatten();
        kept.chain(self.planned.get(stage).into_iter().flatten()).copied().collect()
    }

    /// Whether any duration of the stage's jobs is known.
    pub fn knows(&self, stage: &str) -> bool {
        [&self.stages, &self.planned].iter().any(|durations| durations.get(stage).is_some_and(|d| !d.is_empty()))
    }

    /// Notes the durations of the stage's done jobs as planned, the first time it is asked.
    pub fn plan(&mut self, stage: &str, durations: impl Iterator<Item = f64>) {
        if !self.planned.contains_key(stage) {
            self.planned.insert(stage.to_string(), durations.take(KEPT).collect());
        }
    }

    pub fn add(&mut self, stage: &str, secs: f64) {
        let durations = self.stages.entry(stage.to_string()).or_default();
        durations.push(secs);
        if durations.len() > KEPT {
            durations.drain(..durations.len() - KEPT);
        }
        self.changed = true;
    }

    /// Writes what was added, atomically.
    pub fn save(&self) -> std::io::Result<()> {
        if !self.changed {
            return Ok(());
        }
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        store::write_atomic(&self.path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmeasured_jobs_run_one_per_task() {
        assert_eq!(jobs_per_task(&[], 1000, 16, None), 1);
    }

    #[test]
    fn short_jobs_fill_every_slot_with_one_task_each() {
        // 1,000 jobs of 0.125 s on 16 slots: 16 tasks of 63 jobs (8 s each), not one task of 2 minutes.
        assert_eq!(jobs_per_task(&[0.125; 20], 1000, 16, Some(300.0)), 63);
        // With more jobs than slots can take at a few minutes each, tasks stop at about 3 minutes.
        assert_eq!(jobs_per_task(&[0.125; 20], 1_000_000, 16, None), 1440);
    }

    #[test]
    fn long_jobs_are_never_packed_and_packed_tasks_stay_inside_half_the_limit() {
        assert_eq!(jobs_per_task(&[600.0], 1000, 1, None), 1);
        assert_eq!(jobs_per_task(&[200.0], 1000, 1, None), 1, "a task is not made longer than the target");
        // Mean 1 s but one job took 60 s: a 5-minute limit holds at most 2 of those.
        let mut durations = vec![1.0; 59];
        durations.push(60.0);
        assert_eq!(jobs_per_task(&durations, 1000, 1, Some(300.0)), 2);
        assert_eq!(jobs_per_task(&[0.0; 3], 10, 1, None), 10, "instant jobs are packed as the width allows");
    }

    #[test]
    fn the_history_keeps_the_latest_durations_of_each_stage_across_builds() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = History::load(dir.path());
        assert!(history.of("train").is_empty() && !history.knows("train"));
        history.plan("train", [7.5, 8.5].into_iter());
        history.plan("train", [9.5].into_iter());
        assert_eq!(history.of("train"), [7.5, 8.5], "the plan is read once");
        assert!(history.knows("train"));
        for k in 0..KEPT + 5 {
            history.add("train", k as f64);
        }
        history.add("eval", 2.0);
        history.save().unwrap();
        let again = History::load(dir.path());
        assert_eq!(again.of("train").len(), KEPT);
        assert_eq!(again.of("train")[0], 5.0, "the oldest are dropped");
        assert_eq!(again.of("eval"), [2.0]);
        assert!(!again.of("train").contains(&7.5), "the planned durations are not kept");
    }
}
