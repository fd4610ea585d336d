//! Figures drawn by the user's own command (`[[figure]] script = "plots/curves.py"`): jobman
//! writes the rows the figure reads to a CSV file, runs the command in the project folder, and
//! takes the PNG, PDF or SVG it wrote. It is a node of the graph like the built-in kinds, keyed
//! by the script's bytes, its command and the report columns it declares in `reads`.
//!
//! What the command gets, in its environment: `JOBMAN_REPORT` (the CSV: `id`, `name`, then the
//! columns read, one row per done job), `JOBMAN_OUTPUT` (the figure's path without extension:
//! write `$JOBMAN_OUTPUT.png` and, if you like, `.pdf` and `.svg`), `JOBMAN_JOBS` (the jobs
//! folder: `$JOBMAN_JOBS/<id>/` is a job's folder), and the printed size,
//! `JOBMAN_WIDTH_IN`, `JOBMAN_HEIGHT_IN` and `JOBMAN_FONT_SIZE` (points).

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::jobfile::StageView;
use crate::jobfile::figure::{FigureSpec, ScriptFigure};
use crate::products::report;
use crate::products::table::Table;
use crate::util::diagnostic::did_you_mean;

/// The report columns a script figure reads from `data`: the ones it declares (after `id` and
/// `name`), or all of them.
fn columns(script: &ScriptFigure, data: &Table) -> Result<Vec<String>, String> {
    let Some(reads) = &script.reads else { return Ok(data.columns.clone()) };
    let mut columns = vec!["id".to_string(), "name".to_string()];
    for name in reads {
        if data.column(name).is_none() {
            let hint = did_you_mean(name, data.columns.iter().map(String::as_str))
                .map(|hint| format!(" ({hint})"))
                .unwrap_or_default();
            return Err(format!("`reads` names `{name}`, which the report has not{hint}"));
        }
        if !columns.contains(name) {
            columns.push(name.clone());
        }
    }
    Ok(columns)
}

/// Runs the figure's command on `rows` and returns the files it wrote (of `files`: SVG, PNG,
/// PDF); what it said on stderr when it failed or wrote none.
pub fn draw(
    jobfile: StageView<'_>,
    figure: &FigureSpec,
    script: &ScriptFigure,
    rows: &Table,
    files: &[PathBuf; 3],
) -> Result<Vec<PathBuf>, String> {
    let columns = columns(script, rows)?;
    let at: Vec<usize> = columns.iter().filter_map(|c| rows.column(c)).collect();
    let table =
        Table { columns, rows: rows.rows.iter().map(|row| at.iter().map(|&i| row[i].clone()).collect()).collect() };
    let inputs = jobfile.workspace.state.join("figures");
    let input = inputs.join(format!("{}.csv", figure.name));
    fs::create_dir_all(&inputs)
        .and_then(|()| crate::store::write_atomic(&input, &report::to_csv(&table)))
        .map_err(|e| format!("cannot write {}: {e}", input.display()))?;
    // What an earlier run wrote is not taken for what this one did.
    for file in files {
        let _ = fs::remove_file(file);
    }
    fs::create_dir_all(&jobfile.workspace.figures).map_err(|e| e.to_string())?;
    let output = files[0].with_extension("");
    let size = &figure.size;
    let ran = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script.command)
        .current_dir(&jobfile.root)
        .env("JOBMAN_REPORT", &input)
        .env("JOBMAN_OUTPUT", &output)
        .env("JOBMAN_JOBS", &jobfile.workspace.jobs)
        .env("JOBMAN_WIDTH_IN", format!("{}", size.width_pt / 72.0))
        .env("JOBMAN_HEIGHT_IN", format!("{}", size.height_pt / 72.0))
        .env("JOBMAN_FONT_SIZE", format!("{}", size.font_pt))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", script.command))?;
    if !ran.status.success() {
        let said = String::from_utf8_lossy(&ran.stderr);
        let tail: Vec<&str> = said.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
        let how = ran.status.code().map_or_else(|| "was killed".to_string(), |code| format!("exited {code}"));
        return Err(format!("`{}` {how}: {}", script.command, tail.join(" | ")));
    }
    let written: Vec<PathBuf> = files.iter().filter(|f| f.is_file()).cloned().collect();
    if written.is_empty() {
        return Err(format!(
            "`{}` wrote none of {name}.png, {name}.pdf, {name}.svg: it writes them at $JOBMAN_OUTPUT ({}) with the extension added",
            script.command,
            output.display(),
            name = figure.name
        ));
    }
    Ok(written)
}
