//! `jobman show JOB`: everything known about one job: params, status, how it ended, where its
//! folder is and what is in it, its key and what the key is made of.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::commands::lineage;
use crate::commands::ls::JSON_FORMAT;
use crate::jobfile::{ParamSet, display_value};
use crate::key::KeyIngredients;
use crate::plan::render::Renderer;
use crate::plan::select::{self, CurrentJobs, JobRef, Selected};
use crate::store::{self, GitState, JobRecord, Provenance, SlotState, Usage};
use crate::util::console;
use crate::util::diagnostic::Diagnostics;
use crate::util::text::prefix;

pub struct ShowOptions {
    pub jobfile: PathBuf,
    /// A job name, id, or the start of an id or key; or a `--where` filter.
    pub job: JobRef,
    /// Where its result comes from, instead of the job itself.
    pub lineage: bool,
    pub json: bool,
}

/// What `show` prints; `show --json` is this object.
#[derive(Serialize)]
struct JobView {
    format: u32,
    id: String,
    name: Option<String>,
    /// Whether the job is one of the current Jobfile's.
    current: bool,
    status: String,
    exit_code: Option<i32>,
    signal: Option<i32>,
    message: Option<String>,
    started: Option<String>,
    ended: Option<String>,
    duration_secs: Option<f64>,
    /// How many times it ran in the build that recorded it (more than 1 when retried).
    attempts: Option<u32>,
    host: Option<String>,
    /// What its command used, as jobman measured it.
    usage: Option<Usage>,
    /// The Slurm array task that ran it (`1234_7`).
    slurm_task: Option<String>,
    /// The commit, user and build command that made it; null without a record.
    provenance: Option<MadeView>,
    /// jobman's version that ran it.
    jobman_version: Option<String>,
    /// The shared cache its folder was restored from, when it did not run here.
    restored_from: Option<String>,
    /// The job folder, relative to the Jobfile's folder.
    dir: String,
    key: Option<String>,
    params: serde_json::Value,
    /// Its results file, parsed, when the job is done and the file is as its record says.
    results: Option<serde_json::Value>,
    /// The command as run (with the job's real id and folder), or as it would run.
    command: Option<String>,
    ingredients: Option<KeyIngredients>,
    files: Vec<FileEntry>,
    /// Why a current job is pending, for the text output.
    #[serde(skip)]
    pending_because: Option<&'static str>,
    #[serde(skip)]
    dir_exists: bool,
    /// The params flat, in the Jobfile's order when the job is current.
    #[serde(skip)]
    flat_params: ParamSet,
}

/// A record's provenance with every field present (null when the record has none), so that the
/// JSON has one shape.
#[derive(Serialize)]
struct MadeView {
    git: Option<GitState>,
    user: Option<String>,
    build: Option<Vec<String>>,
}

impl MadeView {
    fn of(made: &Provenance) -> MadeView {
        MadeView {
            git: made.git.clone(),
            user: Some(made.user.clone()).filter(|user| !user.is_empty()),
            build: Some(made.build.clone()).filter(|build| !build.is_empty()),
        }
    }
}

#[derive(Serialize)]
struct FileEntry {
    /// Relative to the job folder.
    path: String,
    size: u64,
}

/// At most this many files are listed as text (all of them in JSON).
const SHOWN_FILES: usize = 100;

pub fn show(options: &ShowOptions) -> anyhow::Result<i32> {
    let CurrentJobs { jobfile, jobs, .. } = CurrentJobs::load(&options.jobfile)?;
    let selected = select::resolve_one(&jobfile, &jobs, &options.job)?;
    if options.lineage {
        let (dir, name) = match &selected {
            Selected::Current(index) => (&jobs[*index].slot.dir(), &jobs[*index].planned.name),
            Selected::Former { dir, id, .. } => (dir, id),
        };
        return lineage::show(dir, &jobfile.workspace.jobs, name, options.json);
    }
    let view = match selected {
        Selected::Current(index) => {
            let job = &jobs[index];
            let key = job.planned.key.hex();
            let record = store::read_record(&job.slot.dir()).filter(|r| r.key == key);
            // A job that has no record yet: its ingredients as the next build would hash them.
            let ingredients = match &record {
                Some(record) => record.ingredients.clone(),
                None => {
                    let renderer = Renderer::new(jobfile.stage(job.stage)).map_err(Diagnostics::from)?;
                    renderer
                        .rendering(job.planned.index, &job.planned.params, job.planned.needs.as_deref())
                        .map_err(Diagnostics::from)?
                        .ingredients
                }
            };
            let mut view = view_of(record.as_ref(), &job.slot.id, &job.slot.dir(), &jobfile.root);
            view.name = Some(job.planned.name.clone());
            view.current = true;
            view.status = job.slot.state.status_key().to_string();
            view.pending_because = match job.slot.state {
                SlotState::Incomplete => Some("its folder has no record: running now, or cut off"),
                SlotState::Absent => Some("not run yet"),
                SlotState::Done(_) | SlotState::NotDone(_) => None,
            };
            if let (SlotState::Done(_), Some(record), Some(name)) =
                (&job.slot.state, &record, &jobfile.stage(job.stage).job.results)
            {
                let name = name.get_ref();
                view.results = store::read_results(&job.slot.dir().join(name), record.outputs.get(name));
            }
            view.key = Some(key);
            view.params = job.planned.params.nested();
            view.flat_params = job.planned.params.clone();
            view.command = view.command.or_else(|| Some(ingredients.command.clone()));
            view.ingredients = Some(ingredients);
            view
        }
        Selected::Former { id, dir, record } => view_of(record.as_deref(), &id, &dir, &jobfile.root),
    };
    if options.json {
        console::to_stdout(|out| console::write_json(out, &view))?;
    } else {
        console::to_stdout(|out| write_text(out, &view))?;
    }
    Ok(0)
}

/// The view from a folder and its record; the caller fills in what the Jobfile knows.
fn view_of(record: Option<&JobRecord>, id: &str, dir: &Path, root: &Path) -> JobView {
    JobView {
        format: JSON_FORMAT,
        id: id.to_string(),
        name: record.map(|r| r.name.clone()),
        current: false,
        status: record.map_or("pending", |r| r.status.key()).to_string(),
        exit_code: record.and_then(|r| r.exit_code),
        signal: record.and_then(|r| r.signal),
        message: record.and_then(|r| r.message.clone()),
        started: record.map(|r| r.started.clone()),
        ended: record.map(|r| r.ended.clone()),
        duration_secs: record.map(|r| r.duration_secs),
        attempts: record.map(|r| r.attempts),
        host: record.map(|r| r.host.clone()),
        usage: record.and_then(|r| r.usage),
        slurm_task: record.and_then(|r| r.slurm_task.clone()),
        provenance: record.map(|r| MadeView::of(&r.provenance)),
        jobman_version: record.map(|r| r.jobman_version.clone()),
        restored_from: record.and_then(|r| r.restored_from.as_ref()).map(|dir| dir.display().to_string()),
        dir: console::relative(dir, root),
        key: record.map(|r| r.key.clone()),
        params: record.map_or(serde_json::Value::Null, |r| r.ingredients.params.clone()),
        results: None,
        command: record.map(|r| r.command.clone()),
        ingredients: record.map(|r| r.ingredients.clone()),
        files: list_files(dir),
        pending_because: None,
        dir_exists: dir.is_dir(),
        flat_params: record
            .map_or_else(|| ParamSet(Vec::new()), |r| ParamSet::from_nested(&r.ingredients.params, "params")),
    }
}

/// Every file under `dir`, sorted by path.
fn list_files(dir: &Path) -> Vec<FileEntry> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<FileEntry>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => walk(&entry.path(), &path, out),
                Ok(meta) => out.push(FileEntry { path, size: meta.len() }),
                Err(_) => {}
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, "", &mut files);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// `3f2a1c0d… (tracked files changed: diff 9be0c1d2…)`: the full commit, to check out.
fn commit_line(git: &GitState) -> String {
    match &git.diff {
        Some(diff) => format!("{} (tracked files changed: diff {})", git.commit, prefix(diff, 12)),
        None if git.dirty => format!("{} (tracked files changed)", git.commit),
        None => git.commit.clone(),
    }
}

fn write_text(out: &mut dyn Write, view: &JobView) -> io::Result<()> {
    let provenance = view.provenance.as_ref();
    let mut fields: Vec<(&str, String)> = Vec::new();
    if let Some(name) = &view.name {
        fields.push(("name", name.clone()));
    }
    fields.push(("id", view.id.clone()));
    let mut status = view.status.replace('_', " ");
    if !view.current {
        status.push_str(" (not part of the current Jobfile)");
    } else if let Some(because) = view.pending_because {
        status.push_str(&format!(" ({because})"));
    }
    fields.push(("status", status));
    let optional = [
        ("exit code", view.exit_code.map(|c| c.to_string())),
        ("signal", view.signal.map(|s| s.to_string())),
        ("message", view.message.clone()),
        ("started", view.started.clone()),
        ("ended", view.ended.clone()),
        ("duration", view.duration_secs.map(console::duration)),
        ("attempts", view.attempts.filter(|&n| n > 1).map(|n| n.to_string())),
        ("host", view.host.clone()),
        ("slurm task", view.slurm_task.clone()),
        ("commit", provenance.and_then(|p| p.git.as_ref()).map(commit_line)),
        ("user", provenance.and_then(|p| p.user.clone())),
        ("built by", provenance.and_then(|p| p.build.as_ref()).map(|build| build.join(" "))),
        ("jobman", view.jobman_version.clone()),
        ("restored from", view.restored_from.clone()),
        (
            "used",
            view.usage.map(|u| {
                format!(
                    "{} MB peak memory, {} CPU ({} user, {} system)",
                    u.max_rss_mb,
                    console::duration(u.cpu_secs()),
                    console::duration(u.user_cpu_secs),
                    console::duration(u.system_cpu_secs)
                )
            }),
        ),
    ];
    fields.extend(optional.into_iter().filter_map(|(label, value)| Some((label, value?))));
    fields.push(("folder", view.dir.clone()));
    if let Some(key) = &view.key {
        fields.push(("key", key.clone()));
    }
    if let Some(command) = &view.command {
        fields.push(("command", command.clone()));
    }
    write_fields(out, "", &fields)?;

    if !view.flat_params.0.is_empty() {
        writeln!(out, "\nparams")?;
        let params: Vec<(&str, String)> = view.flat_params.0.iter().map(|(n, v)| (&**n, display_value(v))).collect();
        write_fields(out, "  ", &params)?;
    }

    if let Some(results) = &view.results {
        writeln!(out, "\nresults")?;
        let flat = ParamSet::from_nested(results, "result");
        let values: Vec<(&str, String)> = flat.0.iter().map(|(n, v)| (&**n, display_value(v))).collect();
        write_fields(out, "  ", &values)?;
    }

    if let Some(ingredients) = &view.ingredients {
        writeln!(out, "\nkey ingredients")?;
        let mut rows: Vec<(String, String)> = vec![("command".into(), ingredients.command.clone())];
        rows.extend(ingredients.templates.iter().map(|(target, hash)| (format!("template {target}"), hash.clone())));
        if let Some(file) = &ingredients.params_file {
            rows.push(("params file".into(), file.clone()));
        }
        rows.extend(ingredients.inputs.iter().map(|(path, hash)| (format!("input {path}"), hash.clone())));
        rows.extend(ingredients.env.iter().map(|(name, hash)| {
            (format!("env {name}"), hash.as_ref().map_or_else(|| "(unset)".to_string(), Clone::clone))
        }));
        if let Some(stage) = &ingredients.stage {
            rows.push(("stage".into(), stage.clone()));
        }
        // Each upstream job by its key's start (its id, but for a collision) and its outputs.
        for (stage, needed) in &ingredients.needs {
            for upstream in needed {
                let outputs: Vec<String> =
                    upstream.outputs.iter().map(|(name, hash)| format!("{name} {}", prefix(hash, 12))).collect();
                let key = prefix(&upstream.key, 12);
                rows.push((format!("needs {stage}"), format!("{key}  {}", outputs.join(", "))));
            }
        }
        let rows: Vec<(&str, String)> = rows.iter().map(|(label, value)| (label.as_str(), value.clone())).collect();
        write_fields(out, "  ", &rows)?;
    }

    if !view.dir_exists {
        writeln!(out, "\nfiles: none (the folder does not exist yet)")?;
    } else {
        writeln!(out, "\nfiles")?;
        let files: Vec<(&str, String)> =
            view.files.iter().take(SHOWN_FILES).map(|f| (f.path.as_str(), console::size(f.size))).collect();
        write_fields(out, "  ", &files)?;
        if view.files.len() > SHOWN_FILES {
            writeln!(out, "  … and {} more (jobman show --json lists them all)", view.files.len() - SHOWN_FILES)?;
        }
    }
    Ok(())
}

/// `label  value` lines with the values aligned.
fn write_fields(out: &mut dyn Write, indent: &str, fields: &[(&str, String)]) -> io::Result<()> {
    let width = fields.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0);
    for (label, value) in fields {
        writeln!(out, "{indent}{label:<width$}  {value}")?;
    }
    Ok(())
}
