//! A project opened for a command: its Jobfile, read and checked before anything runs, and the
//! store of its job folders. Every command opens its workspace here.

use std::path::Path;

use crate::jobfile::Jobfile;
use crate::store::by_name::{self, Named};
use crate::store::{SlotState, Store};
use crate::util::{console, parallel};

use super::{Job, StagePlan, needs, plan, plan_all};

pub struct Workspace {
    pub jobfile: Jobfile,
    pub store: Store,
}

impl Workspace {
    /// Reads the Jobfile at `path`, checks every mistake that can be known before a job runs
    /// (each downstream job matching its upstream jobs included), and opens the store.
    pub fn open(path: &Path) -> anyhow::Result<Workspace> {
        let jobfile = Workspace::load_jobfile(path)?;
        let store = open_store(&jobfile);
        Ok(Workspace { jobfile, store })
    }

    /// The workspace with every stage planned, upstream first, nothing run.
    pub fn open_planned(path: &Path) -> anyhow::Result<(Workspace, Vec<StagePlan>)> {
        Workspace::planned(Workspace::load_jobfile(path)?)
    }

    /// Reads the Jobfile at `path` and checks it as [`Workspace::open`] does, without opening
    /// the store.
    pub fn load_jobfile(path: &Path) -> anyhow::Result<Jobfile> {
        let jobfile = Jobfile::load(path)?;
        needs::check_matches(&jobfile)?;
        Ok(jobfile)
    }

    /// The workspace of a Jobfile read by [`Workspace::load_jobfile`], every stage planned.
    pub fn planned(jobfile: Jobfile) -> anyhow::Result<(Workspace, Vec<StagePlan>)> {
        if jobfile.has_stages() {
            let workspace = Workspace { store: open_store(&jobfile), jobfile };
            let plans = workspace.plan()?;
            return Ok((workspace, plans));
        }
        // The index is read while the jobs are planned: both take a tenth of `jobman status` at
        // 100,000 jobs, and neither needs the other.
        let (store, planned) =
            parallel::join(super::many_jobs(jobfile.stage(0)), || open_store(&jobfile), || plan(jobfile.stage(0)));
        let jobs = super::locate(&store, planned?, 0);
        let workspace = Workspace { jobfile, store };
        Ok((workspace, vec![StagePlan { stage: 0, jobs, waiting: Vec::new() }]))
    }

    /// Every stage planned, upstream first, nothing run.
    pub fn plan(&self) -> anyhow::Result<Vec<StagePlan>> {
        plan_all(&self.jobfile, &self.store)
    }

    /// Keeps `by-name/` in the jobs folder in step with these jobs: a link per job that has a
    /// folder. A failure is a warning: the links are a convenience, the folders are the truth.
    pub fn link_names<'a>(&self, jobs: impl Iterator<Item = &'a Job>) {
        let named = jobs.filter(|job| !matches!(job.slot.state, SlotState::Absent)).map(|job| Named {
            stage: self.jobfile.stage(job.stage).name(),
            name: &job.planned.name,
            id: &job.slot.id,
        });
        let marker = self.jobfile.workspace.state.join("by-name");
        if let Err(e) = by_name::update(&self.store.jobs_dir, &marker, named) {
            console::failure("Warning", &format!("cannot update the job links in by-name/: {e}"));
        }
    }
}

fn open_store(jobfile: &Jobfile) -> Store {
    Store::open(jobfile.workspace.jobs.clone(), jobfile.workspace.state.join("index"))
}
