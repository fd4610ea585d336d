//! A job's folder made ready to run: the previous run kept aside, the rendered files written, and
//! the launch spec that runs it, the same locally and on a Slurm node.

use std::fs;
use std::time::SystemTime;

use crate::exec::task::{self, TaskSpec};
use crate::exec::{provenance, shared};
use crate::jobfile::StageView;
use crate::plan::render::{PlannedJob, Renderer};
use crate::store::build_log::LogEntry;
use crate::store::{self, SlotState};
use crate::util::diagnostic::Diagnostics;

/// A fresh folder with the rendered files: what runs there, and what the build log keeps of it.
pub fn prepare(
    renderer: &Renderer<'_>,
    jobfile: StageView<'_>,
    job: &PlannedJob,
    slot: &store::Slot,
) -> Result<(TaskSpec, LogEntry), String> {
    // The key's ingredients are kept in the record, for explaining later reruns.
    let rendering = renderer
        .rendering(job.index, &job.params, job.needs.as_deref())
        .map_err(|d| Diagnostics::from(d).to_string())?;
    if rendering.ingredients.key() != job.key {
        return Err("its templates changed while jobman was planning; run the build again".into());
    }
    let (id, dir) = (&slot.id, &slot.dir());
    // A forced rerun must not lose a finished result if it fails: the done folder is kept as
    // `ID.previous` (until the next forced rerun of the job).
    if matches!(slot.state, SlotState::Done(_)) {
        let previous = dir.with_extension("previous");
        let _ = fs::remove_dir_all(&previous);
        fs::rename(dir, &previous)
            .map_err(|e| format!("cannot keep the previous run in {}: {e}", previous.display()))?;
    }
    store::reset_dir(dir).map_err(|e| format!("cannot prepare {}: {e}", dir.display()))?;
    let materialized = renderer.materialize(job, id, dir).map_err(|d| Diagnostics::from(d).to_string())?;
    for (target, text) in &materialized.files {
        let path = dir.join(target);
        if let Some(parent) = path.parent().filter(|p| *p != dir) {
            fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let key = job.key.hex();
    let logged = LogEntry {
        key: key.clone(),
        id: id.clone(),
        name: job.name.clone(),
        index: job.index,
        at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        ingredients: rendering.ingredients.clone(),
        rendered: LogEntry::rendered_files(&rendering.files),
    };
    let spec = TaskSpec {
        format: task::LAUNCH_FORMAT,
        key,
        id: id.clone(),
        name: job.name.clone(),
        index: job.index,
        command: materialized.command,
        timeout_secs: jobfile.job.timeout.map(|t| t.as_secs_f64()),
        results: jobfile.job.results.as_ref().map(|r| r.get_ref().clone()),
        outputs: [&jobfile.job.results, &jobfile.job.series]
            .into_iter()
            .flatten()
            .chain(&jobfile.job.outputs)
            .map(|n| n.get_ref().clone())
            .collect(),
        required: jobfile.job.outputs.iter().map(|n| n.get_ref().clone()).collect(),
        ingredients: rendering.ingredients,
        retries: jobfile.job.retries,
        provenance: provenance::of_this_build(&jobfile.root).clone(),
        publish_to: shared::publish_to(jobfile),
    };
    Ok((spec, logged))
}
