//! Stage 7: what is made from finished jobs — `report.csv`, each figure, `figures/index.html` —
//! each remade only when what it reads changed.
//!
//! Each product is a node with a key, as jobs are; the last keys live in `.jobman/nodes.json`.
//! - report: the report spec and, for each row, the job's id, name, key, status, duration and
//!   results hash (from its record, so a fresh report costs no results file read). New bytes
//!   equal to the old file's are not written: its mtime stays (early cutoff).
//! - figure: its spec, jobman's version, and the hashes of the data columns it reads (curves:
//!   and each job's series hash). A report change in a column a figure does not read does not
//!   redraw it.
//! - index: the figures listed and the report's bytes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::build::plural;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::figure::{FigureKind, FigureSpec};
use crate::graph::Selection;
use crate::job_key::{content_hash, write_canonical};
use crate::jobfile::Jobfile;
use crate::output;
use crate::plan::Job;
use crate::report::{self, ReportRow};
use crate::store::{SlotState, write_atomic};
use crate::table::Table;

/// Bump when node keys change meaning: products are then remade once.
const NODES_FORMAT: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
struct NodeState {
    format: u32,
    report: Option<ReportState>,
    figures: BTreeMap<String, String>,
    index: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReportState {
    key: String,
    /// blake3 of the file as written, to notice a file edited or removed by hand.
    bytes: String,
    /// Column name → hash of its values over the done jobs: what figure keys are made of.
    columns: BTreeMap<String, String>,
}

impl NodeState {
    fn load(path: &Path) -> NodeState {
        fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<NodeState>(&bytes).ok())
            .filter(|state| state.format == NODES_FORMAT)
            .unwrap_or_default()
    }
}

/// Builds the selected products from the jobs' current state. Mistakes in figure specs (a
/// column that does not exist) are collected and returned after the other products are made.
pub fn build_products(jobfile: &Jobfile, jobs: &[Job], selection: &Selection) -> anyhow::Result<()> {
    let state_path = jobfile.workspace.state.join("nodes.json");
    let mut state = NodeState::load(&state_path);
    state.format = NODES_FORMAT;
    let mut data = LazyData { jobfile, jobs, report: None, done: None };
    let root = &jobfile.root;
    let missing_jobs = jobs.iter().filter(|j| !matches!(j.slot.state, SlotState::Done(_))).count();
    let mut diagnostics = Diagnostics::default();

    let report_path = &jobfile.workspace.report;
    let report_key = report_key(jobfile, jobs);
    let fresh_report =
        state.report.as_ref().filter(|r| r.key == report_key && file_hash(report_path).as_ref() == Some(&r.bytes));
    // A report of a partial sweep says so, fresh or not.
    let missing =
        if missing_jobs > 0 { format!("{} not done yet", plural(missing_jobs, "job")) } else { String::new() };
    let report_state = match fresh_report {
        Some(report) => {
            let note = if missing.is_empty() { String::new() } else { format!(" ({missing})") };
            output::status("Fresh", &format!("{}{note}", output::relative(report_path, root)));
            report.clone()
        }
        None => {
            let view = report::select_columns(data.report_table(), &jobfile.report, &jobfile.source)
                .map_err(Diagnostics::from)?;
            let bytes = report::to_csv(&view);
            let verb = write_if_changed(report_path, &bytes)?;
            let note = if missing.is_empty() { String::new() } else { format!(", {missing}") };
            output::status(verb, &format!("{} ({} rows{note})", output::relative(report_path, root), view.rows.len()));
            ReportState { key: report_key, bytes: content_hash(&bytes), columns: column_hashes(data.done_table()) }
        }
    };
    state.report = Some(report_state.clone());

    let figures_dir = &jobfile.workspace.figures;
    for &i in &selection.figures {
        let spec = &jobfile.figures[i];
        let figure = spec.get_ref();
        let key = figure_key(jobfile, figure, &report_state.columns, jobs);
        let paths = figure_files(jobfile, &figure.name);
        if state.figures.get(&figure.name) == Some(&key) && paths.iter().all(|p| p.exists()) {
            output::status("Fresh", &output::relative(&paths[1], root));
            continue;
        }
        let table = match figure_table(figure, &mut data) {
            Ok(table) => table,
            Err(message) => {
                diagnostics.push(figure_error(jobfile, i, message));
                continue;
            }
        };
        match crate::plot::draw(figure, &table) {
            Ok(drawn) => {
                fs::create_dir_all(figures_dir)?;
                for (path, bytes) in paths.iter().zip([drawn.svg.as_bytes(), &drawn.png, &drawn.pdf]) {
                    write_if_changed(path, bytes)?;
                }
                output::status("Drew", &output::relative(&paths[1], root));
                state.figures.insert(figure.name.clone(), key);
            }
            Err(message) => diagnostics.push(figure_error(jobfile, i, message)),
        }
    }

    if selection.index {
        let index_path = index_file(jobfile);
        let key = index_key(jobfile, &report_state);
        if state.index.as_ref() == Some(&key) && index_path.exists() {
            output::status("Fresh", &output::relative(&index_path, root));
        } else {
            let page = index_page(jobfile, data.report_table(), figures_dir)?;
            fs::create_dir_all(figures_dir)?;
            let verb = write_if_changed(&index_path, page.as_bytes())?;
            output::status(verb, &output::relative(&index_path, root));
            state.index = Some(key);
        }
    }

    write_atomic(&state_path, &serde_json::to_vec_pretty(&state)?)?;
    if diagnostics.is_empty() { Ok(()) } else { Err(diagnostics.into()) }
}

/// The files of a figure: SVG, PNG and PDF.
pub fn figure_files(jobfile: &Jobfile, name: &str) -> [PathBuf; 3] {
    ["svg", "png", "pdf"].map(|ext| jobfile.workspace.figures.join(format!("{name}.{ext}")))
}

pub fn index_file(jobfile: &Jobfile) -> PathBuf {
    jobfile.workspace.figures.join("index.html")
}

/// Whether a product is up to date, as far as its stored key and its files tell without reading
/// any job's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    UpToDate,
    /// Its key changed or a file of it is missing: a build makes it again.
    Stale,
    /// It reads a product a build makes again, and is remade only if what it reads changes.
    Unsure,
}

pub struct ProductFreshness {
    pub report: Freshness,
    /// In the Jobfile's order.
    pub figures: Vec<Freshness>,
    pub index: Freshness,
}

/// What a build would do with each product now, from the keys in `.jobman/nodes.json`. A job
/// that is not done reruns first, so the report is then stale.
pub fn freshness(jobfile: &Jobfile, jobs: &[Job]) -> ProductFreshness {
    let state = NodeState::load(&jobfile.workspace.state.join("nodes.json"));
    let jobs_rerun = jobs.iter().any(|j| !matches!(j.slot.state, SlotState::Done(_)));
    let report = state.report.as_ref().filter(|r| {
        !jobs_rerun
            && r.key == report_key(jobfile, jobs)
            && file_hash(&jobfile.workspace.report).as_ref() == Some(&r.bytes)
    });
    let Some(report) = report else {
        return ProductFreshness {
            report: Freshness::Stale,
            figures: vec![Freshness::Unsure; jobfile.figures.len()],
            index: Freshness::Unsure,
        };
    };
    let figures: Vec<Freshness> = jobfile
        .figures
        .iter()
        .map(|spec| {
            let figure = spec.get_ref();
            let key = figure_key(jobfile, figure, &report.columns, jobs);
            let drawn = figure_files(jobfile, &figure.name).iter().all(|p| p.exists());
            if state.figures.get(&figure.name) == Some(&key) && drawn { Freshness::UpToDate } else { Freshness::Stale }
        })
        .collect();
    let index = if figures.iter().any(|&f| f != Freshness::UpToDate) {
        Freshness::Unsure
    } else if state.index == Some(index_key(jobfile, report)) && index_file(jobfile).exists() {
        Freshness::UpToDate
    } else {
        Freshness::Stale
    };
    ProductFreshness { report: Freshness::UpToDate, figures, index }
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
    jobfile: &'a Jobfile,
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

/// The report's rows: the done jobs, or every job with `unfinished = true`, in sweep order.
fn report_rows<'a>(jobfile: &Jobfile, jobs: &'a [Job]) -> Vec<ReportRow<'a>> {
    jobs.iter()
        .filter_map(|job| {
            let (status, record) = match &job.slot.state {
                SlotState::Done(record) => ("done", Some(record)),
                SlotState::NotDone(record) => (record.status.key(), Some(record)),
                SlotState::Incomplete | SlotState::Absent => ("pending", None),
            };
            if status != "done" && !jobfile.report.unfinished {
                return None;
            }
            let results = match (status, &jobfile.job.results) {
                ("done", Some(name)) => read_results(&job.slot.dir.join(name.get_ref())),
                ("done", None) => Some(Value::Object(Default::default())),
                _ => None,
            };
            Some(ReportRow {
                id: &job.slot.id,
                name: &job.planned.name,
                params: &job.planned.params.0,
                results,
                status,
                duration: record.map(|r| r.duration_secs),
            })
        })
        .collect()
}

fn read_results(path: &Path) -> Option<Value> {
    let text = fs::read_to_string(path).ok()?;
    if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str::<Value>(&text).ok()
    } else {
        serde_json::from_str(&text).ok()
    }
}

fn report_key(jobfile: &Jobfile, jobs: &[Job]) -> String {
    // Hashed field by field: building a JSON value per row cost 0.2 s at 100,000 jobs.
    let mut hasher = blake3::Hasher::new();
    hasher.update(
        hash_value(&serde_json::json!({
            "format": NODES_FORMAT,
            "spec": jobfile.report,
            "results": jobfile.job.results.as_ref().map(|r| r.get_ref()),
        }))
        .as_bytes(),
    );
    let results_file = jobfile.job.results.as_ref().map(|n| n.get_ref());
    for job in jobs {
        let (status, duration, results) = match &job.slot.state {
            SlotState::Done(r) | SlotState::NotDone(r) => {
                (r.status.key(), r.duration_secs.to_string(), results_file.and_then(|n| r.outputs.get(n)))
            }
            _ => ("pending", String::new(), None),
        };
        for field in [job.slot.id.as_str(), &job.planned.name, status, &duration, results.map_or("", String::as_str)] {
            hasher.update(&(field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
        hasher.update(&job.planned.key.0);
    }
    hasher.finalize().to_hex().to_string()
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

fn figure_key(jobfile: &Jobfile, figure: &FigureSpec, columns: &BTreeMap<String, String>, jobs: &[Job]) -> String {
    // A filter may read any column; without one, only the named columns count.
    let read: BTreeMap<&String, &String> = if figure.filter.is_some() {
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
    hash_value(&serde_json::json!({
        "format": NODES_FORMAT,
        "jobman": env!("CARGO_PKG_VERSION"),
        "spec": figure,
        "columns": read,
        "series": series,
    }))
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
        let expression = crate::expr::RowFilter::compile(filter)?;
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
fn series_table(jobfile: &Jobfile, jobs: &[Job], data: &Table) -> Result<Table, String> {
    let Some(series) = &jobfile.job.series else { return Err("a curve needs `[job] series`".into()) };
    let id_column = data.column("id").ok_or("no id column")?;
    let mut series_columns: Vec<String> = Vec::new();
    let mut steps: Vec<(usize, Vec<(usize, Value)>)> = Vec::new();
    let by_id: std::collections::HashMap<&str, &Job> = jobs.iter().map(|j| (j.slot.id.as_str(), j)).collect();
    for (r, row) in data.rows.iter().enumerate() {
        let Some(job) = row[id_column].as_str().and_then(|id| by_id.get(id)) else { continue };
        let Ok(mut reader) = csv::Reader::from_path(job.slot.dir.join(series.get_ref())) else { continue };
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

fn index_key(jobfile: &Jobfile, report: &ReportState) -> String {
    let figures: Vec<(&FigureSpec, String)> = jobfile
        .figures
        .iter()
        .map(|f| (f.get_ref(), drawn(&jobfile.workspace.figures, &f.get_ref().name, "png")))
        .collect();
    hash_value(&serde_json::json!({
        "format": NODES_FORMAT,
        "jobman": env!("CARGO_PKG_VERSION"),
        "figures": figures,
        "report": report.bytes,
        "jobs": jobfile.workspace.jobs,
    }))
}

fn index_page(jobfile: &Jobfile, data: &Table, figures_dir: &Path) -> anyhow::Result<String> {
    let id = data.column("id").unwrap_or(0);
    let links: Vec<String> = data
        .rows
        .iter()
        .map(|row| {
            let folder = jobfile.workspace.jobs.join(row[id].as_str().unwrap_or_default());
            format!("{}/", relative_link(figures_dir, &folder))
        })
        .collect();
    let view = report::select_columns(data, &jobfile.report, &jobfile.source).map_err(Diagnostics::from)?;
    let entries: Vec<crate::html::FigureEntry> = jobfile
        .figures
        .iter()
        .map(|f| {
            let f = f.get_ref();
            crate::html::FigureEntry {
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
    Ok(crate::html::index_page(&title, &entries, &view, &links, &report_link))
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
