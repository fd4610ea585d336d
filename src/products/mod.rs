//! Stage 7: what is made from finished jobs — `report.csv`, each figure, `figures/index.html` —
//! each remade only when what it reads changed.
//!
//! Each product is a node with a key, as jobs are; the last keys live in `.jobman/nodes.json`.
//! - report: the report spec and, for each row, the job's id, name, key, status, duration, usage,
//!   attempts and results hash (from its record, so a fresh report costs no results file read). New bytes
//!   equal to the old file's are not written: its mtime stays (early cutoff).
//! - figure: its spec, jobman's version, and the hashes of the data columns it reads (curves:
//!   and each job's series hash). A report change in a column a figure does not read does not
//!   redraw it.
//! - index: the figures listed and the report's bytes.

mod freshness;
pub mod html;
pub mod plot;
pub mod report;
mod script;
pub mod table;

pub use freshness::{Freshness, ProductDirty, ProductState};
use freshness::{Part, Parts};

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::graph::{Node, Selection};
use crate::jobfile::figure::{FigureKind, FigureSpec};
use crate::jobfile::{Jobfile, StageView};
use crate::key::{content_hash, write_canonical};
use crate::plan::Job;
use crate::plan::needs::Needed;
use crate::plan::render::PlannedJob;
use crate::products::report::ReportRow;
use crate::products::table::Table;
use crate::store::{self, SlotState, write_atomic};
use crate::util::console;
use crate::util::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::util::parallel::parallel_map;
use crate::util::text::plural;

/// Bump when node keys change meaning: products are then remade once.
const NODES_FORMAT: u32 = 2;

#[derive(Debug, Default, Serialize, Deserialize)]
struct NodeState {
    format: u32,
    report: Option<ReportState>,
    figures: BTreeMap<String, Parts>,
    index: Option<Parts>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReportState {
    parts: Parts,
    /// blake3 of the file as written, to notice a file edited or removed by hand.
    bytes: String,
    /// Column name → hash of its values over the done jobs: what figure keys are made of.
    columns: BTreeMap<String, String>,
}

impl NodeState {
    fn load(path: &Path) -> NodeState {
        Self::load_with_bytes(path).0
    }

    /// The state and the file's bytes as read.
    fn load_with_bytes(path: &Path) -> (NodeState, Option<Vec<u8>>) {
        let bytes = fs::read(path).ok();
        let state = bytes
            .as_deref()
            .and_then(|bytes| serde_json::from_slice::<NodeState>(bytes).ok())
            .filter(|state| state.format == NODES_FORMAT)
            .unwrap_or_default();
        (state, bytes)
    }
}

/// What the decision pass does with a product that is not up to date.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Make it (a build, after its jobs ran); `explain`: say why.
    Make { explain: bool },
    /// Only say what a build would do and why (`explain`, `graph`, a dry run); `jobs_first`:
    /// jobs of the report's stage that would run before the products.
    Predict { jobs_first: usize },
}

/// The one decision pass over the selected products, report → figures → index: each is up to
/// date or stale, and why, from its key part by part. A build makes the stale ones (`Mode::Make`);
/// everything else only reports them (`Mode::Predict`), through the same decisions.
///
/// `waiting`: jobs of the report's stage that wait for upstream jobs (no row, no id yet).
/// Mistakes in figure specs (a column that does not exist) are collected and returned after the
/// other products are made.
pub fn decide(
    jobfile: StageView<'_>,
    jobs: &[Job],
    waiting: usize,
    selection: &Selection,
    mode: Mode,
) -> anyhow::Result<Vec<ProductState>> {
    let state_path = jobfile.workspace.state.join("nodes.json");
    let (mut state, stored) = NodeState::load_with_bytes(&state_path);
    let mut data = LazyData { jobfile, jobs, report: None, done: None };
    let root = &jobfile.root;
    let mut decided = Vec::new();
    let mut diagnostics = Diagnostics::default();
    let (making, explain, jobs_first) = match mode {
        Mode::Make { explain } => (true, explain, 0),
        Mode::Predict { jobs_first } => (false, false, jobs_first),
    };
    let judged = |reason: Option<ProductDirty>, unsure: bool| match (&reason, unsure) {
        (None, _) => Freshness::UpToDate,
        (Some(_), true) => Freshness::Unsure,
        (Some(_), false) => Freshness::Stale,
    };

    let coverage = Coverage::of(jobs, waiting);
    let report_path = &jobfile.workspace.report;
    let report_parts = report_parts(jobfile, jobs);
    let report_reason = if jobs_first > 0 {
        Some(ProductDirty::JobsFirst { jobs: jobs_first })
    } else {
        ProductDirty::of(
            state.report.as_ref().map(|r| &r.parts),
            &report_parts,
            state.report.as_ref().is_some_and(|r| file_hash(report_path).as_ref() != Some(&r.bytes)),
        )
    };
    // The report as it stands after this pass; unknown while jobs would run first.
    let report_state = match (&report_reason, &state.report) {
        (None, Some(report)) => Some(report.clone()),
        _ if jobs_first > 0 => None,
        _ if !making => {
            Some(ReportState { parts: report_parts, bytes: String::new(), columns: column_hashes(data.done_table()) })
        }
        _ => {
            let view = report::select_columns(data.report_table(), &jobfile.report, &jobfile.source)
                .map_err(Diagnostics::from)?;
            let bytes = report::to_csv(&view);
            let verb = write_if_changed(report_path, &bytes)?;
            let rows = plural(view.rows.len(), "row");
            let note = coverage.missing_note().map(|m| format!(", {m}")).unwrap_or_default();
            console::status(verb, &format!("{} ({rows}{note})", console::relative(report_path, root)));
            because(explain, report_reason.as_ref());
            Some(ReportState {
                parts: report_parts,
                bytes: content_hash(&bytes),
                columns: column_hashes(data.done_table()),
            })
        }
    };
    if making && report_reason.is_none() {
        // A report of a partial sweep says so, fresh or not.
        let note = coverage.missing_note().map(|m| format!(" ({m})")).unwrap_or_default();
        console::status("Fresh", &format!("{}{note}", console::relative(report_path, root)));
    }
    if selection.report {
        let freshness = judged(report_reason.clone(), false);
        decided.push(ProductState {
            node: Node::Report,
            path: report_path.clone(),
            freshness,
            reason: report_reason.clone(),
        });
    }
    let mut any_stale = report_reason.is_some();

    let figures_dir = &jobfile.workspace.figures;
    for &i in &selection.figures {
        let spec = &jobfile.figures[i];
        let figure = spec.get_ref();
        let paths = figure_files(&jobfile, &figure.name);
        // The file named in messages: the PNG, or the first a script wrote.
        let shown = match figure.script {
            Some(_) => [1, 2, 0].into_iter().map(|k| &paths[k]).find(|p| p.exists()).unwrap_or(&paths[1]).clone(),
            None => paths[1].clone(),
        };
        let parts = report_state.as_ref().map(|report| figure_parts(jobfile, figure, &report.columns, jobs, &coverage));
        let reason = match &parts {
            None => Some(ProductDirty::MaybeAfterJobs { jobs: jobs_first }),
            Some(parts) => ProductDirty::of(state.figures.get(&figure.name), parts, !drawn_files(figure, &paths)),
        };
        any_stale |= reason.is_some();
        let freshness = judged(reason.clone(), parts.is_none());
        decided.push(ProductState { node: Node::Figure(i), path: shown.clone(), freshness, reason: reason.clone() });
        if !making {
            continue;
        }
        let (Some(reason), Some(parts)) = (reason, parts) else {
            console::status("Fresh", &console::relative(&shown, root));
            continue;
        };
        let table = match figure_table(figure, &mut data) {
            Ok(table) => table,
            Err(message) => {
                diagnostics.push(figure_error(&jobfile, i, message));
                continue;
            }
        };
        if table.rows.is_empty() {
            // Nothing to draw is no mistake of the Jobfile: the jobs failed, or have not run.
            // Its key is not kept, so the next build draws it once there are rows.
            let why = if coverage.total == 0 {
                "the sweep has no job".to_string()
            } else if coverage.done == 0 {
                format!("no done job to plot ({})", coverage.missing_note().unwrap_or_default())
            } else if figure.filter.is_some() {
                "its `where` keeps no row".to_string()
            } else {
                "no row to plot".to_string()
            };
            console::failure("Skipped", &format!("{}: {why}", console::relative(&shown, root)));
            continue;
        }
        if let Some(script) = &figure.script {
            match script::draw(jobfile, figure, script, &table, &paths) {
                Ok(written) => {
                    console::status("Drew", &console::relative(&written[0], root));
                    because(explain, Some(&reason));
                    state.figures.insert(figure.name.clone(), parts);
                }
                Err(message) => diagnostics.push(figure_error(&jobfile, i, message)),
            }
            continue;
        }
        match crate::products::plot::draw(figure, &table, coverage.jobs_in()) {
            Ok(drawn) => {
                fs::create_dir_all(figures_dir)?;
                for (path, bytes) in paths.iter().zip([drawn.svg.as_bytes(), &drawn.png, &drawn.pdf]) {
                    write_if_changed(path, bytes)?;
                }
                console::status("Drew", &console::relative(&paths[1], root));
                because(explain, Some(&reason));
                state.figures.insert(figure.name.clone(), parts);
            }
            Err(message) => diagnostics.push(figure_error(&jobfile, i, message)),
        }
    }

    if selection.index {
        let path = index_file(&jobfile);
        let (reason, unsure) = match &report_state {
            // Before a build, what the index shows is not known once anything before it is stale.
            _ if !making && any_stale => (Some(ProductDirty::InputsRemade), true),
            None => (Some(ProductDirty::InputsRemade), true),
            Some(report) => {
                let parts = index_parts(&jobfile, report, &coverage);
                (ProductDirty::of(state.index.as_ref(), &parts, !path.exists()), false)
            }
        };
        if making {
            match &reason {
                None => console::status("Fresh", &console::relative(&path, root)),
                Some(reason) => {
                    let page = index_page(jobfile, data.report_table(), figures_dir, &coverage)?;
                    fs::create_dir_all(figures_dir)?;
                    let verb = write_if_changed(&path, page.as_bytes())?;
                    console::status(verb, &console::relative(&path, root));
                    because(explain, Some(reason));
                    state.index = report_state.as_ref().map(|report| index_parts(&jobfile, report, &coverage));
                }
            }
        }
        decided.push(ProductState { node: Node::Index, path, freshness: judged(reason.clone(), unsure), reason });
    }

    if making {
        state.format = NODES_FORMAT;
        state.report = report_state;
        let bytes = serde_json::to_vec_pretty(&state)?;
        // A no-op build writes nothing.
        if stored.as_ref() != Some(&bytes) {
            write_atomic(&state_path, &bytes)?;
        }
    }
    if diagnostics.is_empty() { Ok(decided) } else { Err(diagnostics.into()) }
}

/// Figure columns that neither a param nor the last report had, told before any job runs: a
/// misspelt column is seen at once, not after the whole sweep. Only warnings, since the jobs
/// about to run may write results with new columns. Curves read their `x` and `y` from the series
/// files, which no report holds.
pub fn unknown_figure_columns(jobfile: StageView<'_>, selection: &Selection) -> Vec<String> {
    if selection.figures.is_empty() {
        return Vec::new(); // and a build without figures reads no `nodes.json` at its start
    }
    let state = NodeState::load(&jobfile.workspace.state.join("nodes.json"));
    let Some(report) = state.report.filter(|r| !r.columns.is_empty()) else { return Vec::new() };
    let known: Vec<&str> =
        report.columns.keys().map(String::as_str).chain(jobfile.params.iter().map(|p| p.name.as_str())).collect();
    let mut warnings = Vec::new();
    for &i in &selection.figures {
        let figure = jobfile.figures[i].get_ref();
        let series = figure.kind == FigureKind::Curve;
        let read: Vec<&String> = match &figure.script {
            Some(script) => script.reads.iter().flatten().collect(),
            None => [
                (!series).then_some(&figure.x),
                (!series).then_some(&figure.y),
                figure.group.as_ref(),
                figure.value.as_ref(),
            ]
            .into_iter()
            .flatten()
            .collect(),
        };
        for column in read.into_iter().filter(|c| !known.contains(&c.as_str())) {
            let hint = did_you_mean(column, known.iter().copied()).map(|h| format!(" ({h})")).unwrap_or_default();
            warnings.push(format!(
                "figure `{}` reads `{column}`, which no param and no column of the last report has{hint}; it is drawn once a job's results have it",
                figure.name
            ));
        }
    }
    warnings
}

/// How many jobs of the report's stage are not done: `jobs` not done, and `waiting` for upstream
/// jobs.
pub fn unfinished(jobs: &[Job], waiting: usize) -> usize {
    waiting + jobs.iter().filter(|j| !matches!(j.slot.state, SlotState::Done(_))).count()
}

/// How many of the report stage's jobs the products show, and why the others are missing: what
/// the build says of a partial report, and what a partial sweep's figures (a note) and index
/// page (a banner) say.
#[derive(Debug, Default, Serialize)]
pub struct Coverage {
    pub total: usize,
    pub done: usize,
    /// Each job that ran and did not finish well: its name, and why.
    pub failed: Vec<(String, String)>,
    /// Jobs not run yet (or cut off).
    pub not_run: usize,
    /// Jobs waiting for upstream jobs.
    pub waiting: usize,
}

impl Coverage {
    fn of(jobs: &[Job], waiting: usize) -> Coverage {
        let mut coverage = Coverage { total: jobs.len() + waiting, waiting, ..Coverage::default() };
        for job in jobs {
            match &job.slot.state {
                SlotState::Done(_) => coverage.done += 1,
                SlotState::NotDone(summary) => {
                    let why = match (&summary.message, summary.exit_code) {
                        (Some(message), _) => message.clone(),
                        (None, Some(code)) => format!("exit code {code}"),
                        (None, None) => summary.status.as_str().replace('_', " "),
                    };
                    coverage.failed.push((job.planned.name.clone(), why));
                }
                SlotState::Incomplete | SlotState::Absent => coverage.not_run += 1,
            }
        }
        coverage
    }

    /// (done, total) when some jobs are missing.
    fn jobs_in(&self) -> Option<(usize, usize)> {
        (self.done < self.total).then_some((self.done, self.total))
    }

    /// Why some jobs are not in: `2 jobs failed`, `6 jobs not done: 2 failed, 4 not run yet`;
    /// none when all are done.
    fn missing_note(&self) -> Option<String> {
        let missing = plural(self.total - self.done, "job");
        let parts: Vec<(usize, &str)> =
            [(self.failed.len(), "failed"), (self.not_run, "not run yet"), (self.waiting, "waiting for upstream jobs")]
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .collect();
        match parts[..] {
            [] => None,
            [(_, what)] => Some(format!("{missing} {what}")),
            _ => {
                let parts: Vec<String> = parts.iter().map(|(n, what)| format!("{n} {what}")).collect();
                Some(format!("{missing} not done: {}", parts.join(", ")))
            }
        }
    }
}

/// The files of a figure: SVG, PNG and PDF.
pub fn figure_files(jobfile: &Jobfile, name: &str) -> [PathBuf; 3] {
    ["svg", "png", "pdf"].map(|ext| jobfile.workspace.figures.join(format!("{name}.{ext}")))
}

/// Whether a figure's files are there: all three of a built-in kind, one at least of a script's.
fn drawn_files(figure: &FigureSpec, paths: &[PathBuf; 3]) -> bool {
    match figure.script {
        Some(_) => paths.iter().any(|p| p.exists()),
        None => paths.iter().all(|p| p.exists()),
    }
}

pub fn index_file(jobfile: &Jobfile) -> PathBuf {
    jobfile.workspace.figures.join("index.html")
}

/// Forgets the stored keys of the selected products, so that the next build makes them again.
pub fn forget(jobfile: &Jobfile, selection: &Selection) -> anyhow::Result<()> {
    let path = jobfile.workspace.state.join("nodes.json");
    let mut state = NodeState::load(&path);
    if state.format != NODES_FORMAT {
        return Ok(());
    }
    if selection.report {
        state.report = None;
    }
    for &i in &selection.figures {
        state.figures.remove(&jobfile.figures[i].get_ref().name);
    }
    if selection.index {
        state.index = None;
    }
    write_atomic(&path, &serde_json::to_vec_pretty(&state)?)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// The jobs' data, read from their results files once, when first needed: the report's rows
/// (with `unfinished`, every job), and the done jobs' rows that figures read.
struct LazyData<'a> {
    jobfile: StageView<'a>,
    jobs: &'a [Job],
    report: Option<Table>,
    done: Option<Table>,
}

impl LazyData<'_> {
    fn report_table(&mut self) -> &Table {
        let (jobfile, jobs) = (self.jobfile, self.jobs);
        let params: Vec<&str> = jobfile.params.iter().map(|p| p.name.as_str()).collect();
        self.report.get_or_insert_with(|| report::data_table(&params, report_rows(jobfile, jobs)))
    }

    fn done_table(&mut self) -> &Table {
        if self.done.is_none() {
            let mut table = self.report_table().clone();
            if let Some(status) = table.column("status") {
                table.rows.retain(|row| row[status] == "done");
            }
            self.done = Some(table);
        }
        self.done.as_ref().expect("set above")
    }
}

/// The report's rows: the done jobs, or every job with `unfinished = true`, in sweep order. Their
/// results files (and records, for provenance columns) are read on every core: at 100,000 jobs,
/// one by one, the reads were most of a report's time.
fn report_rows<'a>(jobfile: StageView<'_>, jobs: &'a [Job]) -> Vec<ReportRow<'a>> {
    let made = reports_provenance(jobfile);
    let rows = parallel_map(jobs.iter().collect(), |job| report_row(jobfile, job, made));
    let mut kept = Vec::with_capacity(rows.len());
    for row in rows {
        match row {
            Ok(Some(row)) => kept.push(row),
            Ok(None) => {}
            Err(warning) => console::failure("Warning", &warning),
        }
    }
    kept
}

/// The report row of `job`; `None` when the report leaves it out (not done, without
/// `unfinished`), a warning when its results are missing.
fn report_row<'a>(jobfile: StageView<'_>, job: &'a Job, made: bool) -> Result<Option<ReportRow<'a>>, String> {
    let done = matches!(job.slot.state, SlotState::Done(_));
    if !done && !jobfile.report.unfinished {
        return Ok(None);
    }
    let record = job.slot.state.summary();
    let results = match (done, &jobfile.job.results) {
        (true, Some(name)) => {
            let recorded = record.and_then(|r| r.outputs.get(name.get_ref()));
            let results = store::read_results(&job.slot.dir().join(name.get_ref()), recorded);
            if results.is_none() {
                // Shown as done without its results, the row would pass for a real one.
                let filter: Vec<String> = job
                    .planned
                    .params
                    .0
                    .iter()
                    .map(|(n, v)| format!("{n} == {}", serde_json::to_string(v).unwrap_or_default()))
                    .collect();
                return Err(format!(
                    "{}: {} is missing, unreadable or changed since the job's record; left out of the report\n  help: rerun it: jobman build --force --where '{}'",
                    job.planned.name,
                    name.get_ref(),
                    filter.join(" and ")
                ));
            }
            results
        }
        (true, None) => Some(Value::Object(Default::default())),
        (false, _) => None,
    };
    Ok(Some(ReportRow {
        id: &job.slot.id,
        name: &job.planned.name,
        params: &job.planned.params.0,
        results: results.map(|r| join_upstream(r, &job.planned)),
        status: job.slot.state.status_key(),
        duration: record.map(|r| r.duration_secs),
        attempts: record.map(|r| r.attempts),
        usage: record.and_then(|r| r.usage),
        made: (made && record.is_some())
            .then(|| store::read_record(&job.slot.dir()).map(|r| r.provenance_values()))
            .flatten(),
    }))
}

/// Whether `[report] columns` names a column of where jobs were made, which only their records
/// hold (the index does not).
fn reports_provenance(jobfile: StageView<'_>) -> bool {
    let columns = jobfile.report.columns.iter().flatten();
    columns.map(|c| c.get_ref().as_str()).any(|c| store::PROVENANCE_COLUMNS.contains(&c))
}

/// A job's results joined with what it needs of one upstream job per stage: that job's results
/// and the params this job lacks, under their own names, prefixed with the stage's name where a
/// name is taken (`train.accuracy`).
fn join_upstream(results: Value, job: &PlannedJob) -> Value {
    let Some(needs) = &job.needs else { return results };
    let mut joined = match results {
        Value::Object(own) => own,
        other => return other,
    };
    for (stage, needed) in &needs.0 {
        let Needed::One(upstream) = needed else { continue };
        let params = crate::jobfile::flatten_nested(&upstream.params, "params");
        let lacked = params.into_iter().filter(|(name, _)| job.params.get(name).is_none());
        let upstream_results = upstream.results.as_object().into_iter().flatten().map(|(n, v)| (n.clone(), v.clone()));
        for (name, value) in lacked.chain(upstream_results) {
            let taken = joined.contains_key(&name) || job.params.get(&name).is_some();
            joined.insert(if taken { format!("{stage}.{name}") } else { name }, value);
        }
    }
    Value::Object(joined)
}

fn report_parts(jobfile: StageView<'_>, jobs: &[Job]) -> Parts {
    // Hashed field by field: building a JSON value per row cost 0.2 s at 100,000 jobs.
    let [mut ids, mut statuses, mut results] = [(); 3].map(|_| blake3::Hasher::new());
    let field = |hasher: &mut blake3::Hasher, text: &str| {
        hasher.update(&(text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    };
    let results_file = jobfile.job.results.as_ref().map(|n| n.get_ref());
    // Where a job was made changes only with its record, and a rewritten record has a new stamp.
    let made = reports_provenance(jobfile);
    for job in jobs {
        if made {
            field(&mut statuses, &job.slot.stamp.map(|stamp| format!("{stamp:?}")).unwrap_or_default());
        }
        let (status, duration, attempts, usage, output) = match &job.slot.state {
            SlotState::Done(r) | SlotState::NotDone(r) => (
                r.status.key(),
                r.duration_secs.to_string(),
                r.attempts.to_string(),
                r.usage.map(|u| format!("{} {}", u.max_rss_mb, u.cpu_secs())).unwrap_or_default(),
                results_file.and_then(|n| r.outputs.get(n)),
            ),
            _ => ("pending", String::new(), String::new(), String::new(), None),
        };
        field(&mut ids, &job.slot.id);
        field(&mut ids, &job.planned.name);
        ids.update(&job.planned.key.0);
        field(&mut statuses, status);
        field(&mut statuses, &duration);
        field(&mut statuses, &attempts);
        field(&mut statuses, &usage);
        field(&mut results, output.map_or("", String::as_str));
    }
    let settings = serde_json::json!({
        "format": NODES_FORMAT,
        "spec": jobfile.report,
        "results": jobfile.job.results.as_ref().map(|r| r.get_ref()),
    });
    Parts::from([
        (Part::Settings, hash_value(&settings)),
        (Part::Jobs, ids.finalize().to_hex().to_string()),
        (Part::Statuses, statuses.finalize().to_hex().to_string()),
        (Part::Results, results.finalize().to_hex().to_string()),
    ])
}

/// Per column, a hash of its values over the done jobs in sweep order. Not of the ids: jobs that
/// rerun under new ids with the same values do not change what a figure shows.
fn column_hashes(table: &Table) -> BTreeMap<String, String> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let cells: Vec<Value> = table.rows.iter().map(|row| row[c].clone()).collect();
            (name.clone(), hash_value(&Value::Array(cells)))
        })
        .collect()
}

fn figure_parts(
    jobfile: StageView<'_>,
    figure: &FigureSpec,
    columns: &BTreeMap<String, String>,
    jobs: &[Job],
    coverage: &Coverage,
) -> Parts {
    // A filter may read any column; without one, only the named columns count. A script reads
    // what it declares, or everything.
    let read: BTreeMap<&String, &String> = if let Some(script) = &figure.script {
        let reads = script.reads.as_ref().filter(|_| figure.filter.is_none());
        let named = |name: &String| reads.is_none_or(|r| name == "id" || name == "name" || r.contains(name));
        columns.iter().filter(|(name, _)| named(name)).collect()
    } else if figure.filter.is_some() {
        columns.iter().collect()
    } else {
        [Some(&figure.x), Some(&figure.y), figure.group.as_ref(), figure.value.as_ref()]
            .into_iter()
            .flatten()
            .map(|name| (name, columns.get(name).unwrap_or(name)))
            .collect()
    };
    let series_file = jobfile.job.series.as_ref().map(|s| s.get_ref());
    let series: Vec<(&str, Option<&String>)> = if figure.kind == FigureKind::Curve {
        jobs.iter()
            .filter_map(|job| match &job.slot.state {
                SlotState::Done(record) => {
                    Some((job.slot.id.as_str(), series_file.and_then(|f| record.outputs.get(f))))
                }
                _ => None,
            })
            .collect()
    } else {
        Vec::new()
    };
    // A script's bytes are its settings too.
    let script = figure.script.as_ref().map(|s| {
        fs::read(jobfile.root.join(&s.path)).map_or_else(|_| "missing".to_string(), |b| crate::key::content_hash(&b))
    });
    let mut parts = Parts::from([
        (Part::Settings, hash_value(&serde_json::json!({ "format": NODES_FORMAT, "spec": figure, "script": script }))),
        (Part::Jobman, crate::util::JOBMAN_BUILD.into()),
        (Part::Series, hash_value(&serde_json::json!(series))),
        // Its note says how many jobs of how many are in.
        (Part::Statuses, hash_value(&serde_json::json!(coverage.jobs_in()))),
    ]);
    parts.extend(read.into_iter().map(|(name, hash)| (Part::Column(name.clone()), hash.clone())));
    parts
}

/// With `--explain`, why the product just made was stale.
fn because(explain: bool, reason: Option<&ProductDirty>) {
    if let Some(reason) = reason.filter(|_| explain) {
        console::status("Because", &reason.to_string());
    }
}

/// The rows a figure draws: the done jobs' data (curves: one row per job and step), filtered by
/// its `where`.
fn figure_table(figure: &FigureSpec, data: &mut LazyData<'_>) -> Result<Table, String> {
    let jobfile = data.jobfile;
    let jobs = data.jobs;
    let mut table = data.done_table().clone();
    if figure.kind == FigureKind::Curve {
        table = series_table(jobfile, jobs, &table)?;
    }
    if let Some(filter) = &figure.filter {
        let expression = crate::jobfile::expr::RowFilter::compile(filter)?;
        let mut kept = Vec::new();
        for row in table.rows {
            if expression.matches(&table.columns, &row)? {
                kept.push(row);
            }
        }
        table.rows = kept;
    }
    Ok(table)
}

/// One row per (done job, line of its series file): the job's data columns, then the series'
/// columns. A series column named like a data column (`test_loss` per epoch and at the end)
/// takes its place: a curve is about the steps.
fn series_table(jobfile: StageView<'_>, jobs: &[Job], data: &Table) -> Result<Table, String> {
    let Some(series) = &jobfile.job.series else { return Err("a curve needs `[job] series`".into()) };
    let id_column = data.column("id").ok_or("no id column")?;
    let mut series_columns: Vec<String> = Vec::new();
    let mut steps: Vec<(usize, Vec<(usize, Value)>)> = Vec::new();
    let by_id: std::collections::HashMap<&str, &Job> = jobs.iter().map(|j| (j.slot.id.as_str(), j)).collect();
    for (r, row) in data.rows.iter().enumerate() {
        let Some(job) = row[id_column].as_str().and_then(|id| by_id.get(id)) else { continue };
        let Ok(mut reader) = csv::Reader::from_path(job.slot.dir().join(series.get_ref())) else { continue };
        let header: Vec<String> = reader.headers().map_err(|e| e.to_string())?.iter().map(String::from).collect();
        let at: Vec<usize> = header
            .iter()
            .map(|name| {
                series_columns.iter().position(|c| c == name).unwrap_or_else(|| {
                    series_columns.push(name.clone());
                    series_columns.len() - 1
                })
            })
            .collect();
        for record in reader.records() {
            let record = record.map_err(|e| format!("{}: {e}", series.get_ref()))?;
            let cells = record.iter().zip(&at).map(|(field, &i)| (i, parse_cell(field))).collect();
            steps.push((r, cells));
        }
    }
    let kept: Vec<usize> = (0..data.columns.len()).filter(|&c| !series_columns.contains(&data.columns[c])).collect();
    let mut columns: Vec<String> = kept.iter().map(|&c| data.columns[c].clone()).collect();
    columns.extend(series_columns.iter().cloned());
    let rows = steps
        .into_iter()
        .map(|(r, cells)| {
            let mut row: Vec<Value> = kept.iter().map(|&c| data.rows[r][c].clone()).collect();
            let mut step = vec![Value::Null; series_columns.len()];
            for (i, value) in cells {
                step[i] = value;
            }
            row.extend(step);
            row
        })
        .collect();
    Ok(Table { columns, rows })
}

/// A CSV field as a number when it is one.
fn parse_cell(field: &str) -> Value {
    field.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or_else(|| Value::from(field), Value::Number)
}

fn figure_error(jobfile: &Jobfile, i: usize, message: String) -> Diagnostic {
    let spec = &jobfile.figures[i];
    Diagnostic::new(format!("cannot draw figure `{}`", spec.get_ref().name)).at(&jobfile.source, spec.span(), message)
}

fn index_parts(jobfile: &Jobfile, report: &ReportState, coverage: &Coverage) -> Parts {
    let figures: Vec<(&FigureSpec, String)> = jobfile
        .figures
        .iter()
        .map(|f| (f.get_ref(), drawn(&jobfile.workspace.figures, &f.get_ref().name, "png")))
        .collect();
    Parts::from([
        (
            Part::Settings,
            hash_value(
                &serde_json::json!({ "format": NODES_FORMAT, "jobs": jobfile.workspace.jobs, "formats": jobfile.formats }),
            ),
        ),
        (Part::Jobman, crate::util::JOBMAN_BUILD.into()),
        (Part::Figures, hash_value(&serde_json::json!(figures))),
        (Part::Report, report.bytes.clone()),
        // Its banner names the jobs that are not in.
        (Part::Statuses, hash_value(&serde_json::json!(coverage))),
    ])
}

fn index_page(jobfile: StageView<'_>, data: &Table, figures_dir: &Path, coverage: &Coverage) -> anyhow::Result<String> {
    let id = data.column("id").unwrap_or(0);
    let links: Vec<String> = data
        .rows
        .iter()
        .take(html::TABLE_ROWS_MAX)
        .map(|row| {
            let folder = jobfile.workspace.jobs.join(row[id].as_str().unwrap_or_default());
            format!("{}/", relative_link(figures_dir, &folder))
        })
        .collect();
    let view = report::select_columns(data, &jobfile.report, &jobfile.source).map_err(Diagnostics::from)?;
    let entries: Vec<crate::products::html::FigureEntry> = jobfile
        .figures
        .iter()
        .map(|f| {
            let f = f.get_ref();
            crate::products::html::FigureEntry {
                name: f.name.clone(),
                title: f.title.clone().unwrap_or_else(|| f.name.replace('_', " ")),
                kind: serde_json::to_value(f.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
                // A figure that could not be drawn is listed without links to files that are not there.
                svg: drawn(figures_dir, &f.name, "svg"),
                png: drawn(figures_dir, &f.name, "png"),
                pdf: drawn(figures_dir, &f.name, "pdf"),
            }
        })
        .collect();
    let title = jobfile.root.file_name().map_or_else(|| "jobman".to_string(), |n| n.to_string_lossy().into_owned());
    let report_link = relative_link(figures_dir, &jobfile.workspace.report);
    Ok(crate::products::html::index_page(&title, &entries, &view, &links, &report_link, coverage, &jobfile.formats))
}

/// `NAME.EXT` when that file exists in `dir`, else nothing.
fn drawn(dir: &Path, name: &str, ext: &str) -> String {
    let file = format!("{name}.{ext}");
    if dir.join(&file).exists() { file } else { String::new() }
}

/// A relative link from folder `from` to `to` (both absolute).
fn relative_link(from: &Path, to: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to_parts: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to_parts).take_while(|(a, b)| a == b).count();
    let mut link = PathBuf::new();
    for _ in common..from.len() {
        link.push("..");
    }
    for part in &to_parts[common..] {
        link.push(part);
    }
    link.display().to_string()
}

/// Writes `bytes` unless the file already holds exactly them; says which it did.
fn write_if_changed(path: &Path, bytes: &[u8]) -> anyhow::Result<&'static str> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok("Unchanged");
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    write_atomic(path, bytes).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok("Wrote")
}

fn file_hash(path: &Path) -> Option<String> {
    fs::read(path).ok().map(|bytes| content_hash(&bytes))
}

fn hash_value(value: &Value) -> String {
    let mut text = String::new();
    write_canonical(value, &mut text);
    content_hash(text.as_bytes())
}
