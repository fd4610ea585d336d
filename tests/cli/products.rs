//! The products of a build: `report.csv`, each `[[figure]]` as `figures/NAME.{png,pdf,svg}`, and
//! `figures/index.html`, each remade only when what it reads changed.
//!
//! What was remade is observed on the files: their content, and for "not rewritten" their inode
//! and modification time (jobman writes through a temporary file and a rename, so a rewrite gives
//! a new inode; nanosecond mtimes catch an in-place write). jobman's `Drew`/`Fresh` lines are
//! checked as well, because a figure redrawn to the same bytes is not rewritten: only the line
//! tells a wasted redraw from none.
//!
//! Drawing a figure takes about a second in a debug build, so each test draws as few as it can.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Output;

use super::{Project, assert_exit, stderr};

/// The job of most tests: `acc` is `x` plus `$MY_VAR`, `other` is `$OTHER_VAR`. Both variables
/// are outside the key, so `--force` with one of them set reruns a job under the same id with
/// a different result.
const RUN_SH: &str = r#"echo {{ job.name }} >> ../../ran.log
sleep ${JOB_SLEEP:-0}
printf '{"acc": %s, "other": %s}' $(( {{ x }} + ${MY_VAR:-0} )) "${OTHER_VAR:-0}" > results.json
"#;

/// `x = [1, 2, 3]`, the job of [`RUN_SH`], a report without `duration` (a rerun that writes the
/// same results gives the same bytes), and two scatter figures: `acc` and `other` against `x`.
/// `acc_extra` is added to the `acc` figure's table.
fn two_figures(acc_extra: &str, report_extra: &str) -> String {
    format!(
        r#"[params]
x = [1, 2, 3]

[[template]]
src = "run.sh.j2"

[job]
name = "x{{{{x}}}}"
command = "sh run.sh"
results = "results.json"

[report]
columns = ["x", "acc", "other"]
{report_extra}
[[figure]]
name = "acc"
kind = "scatter"
x = "x"
y = "acc"
{acc_extra}
[[figure]]
name = "other"
kind = "scatter"
x = "x"
y = "other"
"#
    )
}

fn two_figures_project() -> Project {
    let project = Project::new();
    project.jobfile(&two_figures("", "")).template("run.sh.j2", RUN_SH);
    project
}

/// A file's identity: a rewrite changes it, leaving the file alone does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    mtime: i64,
    mtime_nsec: i64,
}

#[track_caller]
fn stamp(project: &Project, path: &str) -> Stamp {
    let meta = fs::metadata(project.path().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    Stamp { inode: meta.ino(), mtime: meta.mtime(), mtime_nsec: meta.mtime_nsec() }
}

/// The three files of a figure.
fn figure_files(name: &str) -> [String; 3] {
    ["png", "pdf", "svg"].map(|ext| format!("figures/{name}.{ext}"))
}

/// Stamps of several files, by path.
#[track_caller]
fn stamps(project: &Project, paths: &[String]) -> Vec<(String, Stamp)> {
    paths.iter().map(|p| (p.clone(), stamp(project, p))).collect()
}

#[track_caller]
fn assert_untouched(project: &Project, before: &[(String, Stamp)], why: &str) {
    for (path, old) in before {
        assert_eq!(&stamp(project, path), old, "{path} was rewritten, but {why}");
    }
}

#[track_caller]
fn assert_rewritten(project: &Project, before: &[(String, Stamp)], why: &str) {
    for (path, old) in before {
        assert_ne!(&stamp(project, path), old, "{path} was not rewritten, but {why}");
    }
}

/// Whether jobman printed the status line `VERB WHAT` (verb right-aligned in 12 columns).
fn says(output: &Output, verb: &str, what: &str) -> bool {
    stderr(output).lines().any(|line| line == format!("{verb:>12} {what}"))
}

#[track_caller]
fn assert_says(output: &Output, verb: &str, what: &str) {
    assert!(says(output, verb, what), "expected `{verb} {what}` in:\n{}", stderr(output));
}

/// The report as rows of cells, header first.
#[track_caller]
fn report_cells(project: &Project) -> Vec<Vec<String>> {
    let text = project.read("report.csv").expect("report.csv exists");
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("report.csv is CSV").iter().map(String::from).collect())
        .collect()
}

fn exists(project: &Project, path: &str) -> bool {
    project.path().join(path).exists()
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

// ---------------------------------------------------------------------------------------------
// The report's content

#[test]
fn the_report_has_a_row_per_done_job_in_sweep_order_with_results_flattened() {
    let project = Project::new();
    project
        .jobfile(
            r#"[params]
x = [2, 1]
y = ["a", "b"]

[[template]]
src = "run.sh.j2"

[job]
name = "x{{x}}-y{{y}}"
command = "sh run.sh"
results = "results.json"
"#,
        )
        // Keys in sorted order: the report's column order among results does not hinge on
        // whether jobman keeps the file's order or sorts.
        .template(
            "run.sh.j2",
            r#"printf '%s' '{"acc": {{ x / 4 }}, "hist": [{{ x }}, 2], "loss": {"train": 0.5, "val": {{ x }}}, "note": "a,{{ y }}", "ok": true, "x": 7}' > results.json
"#,
        );
    let output = project.build(&["-j", "1"]);
    assert_exit(&output, 0);
    assert_says(&output, "Wrote", "report.csv (4 rows)");

    let cells = report_cells(&project);
    assert_eq!(
        cells[0].join(","),
        "id,name,x,y,acc,hist,loss.train,loss.val,note,ok,results.x,status,duration,attempts",
        "header: id, name, params, results (nested as a.b, one named like a param as results.NAME), status, duration, attempts"
    );
    let expected = [
        ["x2-ya", "2", "a", "0.5", "[2,2]", "0.5", "2", "a,a", "true", "7", "done"],
        ["x2-yb", "2", "b", "0.5", "[2,2]", "0.5", "2", "a,b", "true", "7", "done"],
        ["x1-ya", "1", "a", "0.25", "[1,2]", "0.5", "1", "a,a", "true", "7", "done"],
        ["x1-yb", "1", "b", "0.25", "[1,2]", "0.5", "1", "a,b", "true", "7", "done"],
    ];
    assert_eq!(cells.len(), 1 + expected.len(), "{cells:?}");
    for (row, want) in cells[1..].iter().zip(expected) {
        assert_eq!(row.len(), 14, "{row:?}");
        assert_eq!(row[0], project.record_of(want[0])["id"], "the id is the job folder's: {row:?}");
        assert_eq!(row[1..12], want, "rows in sweep order, first axis slowest");
        let duration: f64 = row[12].parse().unwrap_or_else(|_| panic!("duration is a number: {row:?}"));
        assert!((0.0..60.0).contains(&duration), "{row:?}");
        assert_eq!(row[13], "1", "each job ran once: {row:?}");
    }
}

#[test]
fn report_columns_select_order_and_rename_and_unfinished_adds_failed_and_pending_jobs() {
    let project = Project::new();
    let jobfile = |unfinished: &str| {
        format!(
            r#"[params]
x = [1, 2, 3]

[job]
name = "x{{{{x}}}}"
command = "if [ {{{{x}}}} = 2 ]; then exit 3; fi; printf '{{\"acc\": %s, \"other\": 9}}' {{{{x}}}}0 > results.json"
results = "results.json"

[report]
columns = ["acc", "x", "name", "status"]
rename = {{ acc = "accuracy", status = "state" }}
{unfinished}
"#
        )
    };
    project.jobfile(&jobfile(""));
    project.builds(&[]).job_failed();
    assert_eq!(project.read("report.csv").unwrap(), "accuracy,x,name,state\n10,1,x1,done\n30,3,x3,done\n");

    // x3 is left pending: `--where` keeps it from running in a fresh project.
    let project = Project::new();
    project.jobfile(&jobfile("unfinished = true"));
    project.builds(&["--where", "x != 3"]).job_failed();
    assert_eq!(
        project.read("report.csv").unwrap(),
        "accuracy,x,name,state\n10,1,x1,done\n,2,x2,failed\n,3,x3,pending\n",
        "failed and pending jobs are listed with empty result cells"
    );
}

#[test]
fn an_unknown_report_column_is_refused_with_a_suggestion() {
    let project = Project::new();
    project.jobfile(
        r#"[params]
x = [1, 2]

[job]
name = "x{{x}}"
command = "printf '{\"acc\": %s}' {{x}} > results.json"
results = "results.json"

[report]
columns = ["x", "acx"]
"#,
    );
    let output = project.builds(&[]).refused();
    let text = output.stderr();
    assert!(text.contains("no column `acx`"), "{text}");
    assert!(text.contains("did you mean `acc`?"), "{text}");
    assert!(!exists(&project, "report.csv"), "no report is written");
}

#[test]
fn an_unknown_report_column_is_shown_at_its_place_in_the_jobfile() {
    let project = Project::new();
    project.jobfile(
        r#"[params]
x = [1, 2]

[job]
name = "x{{x}}"
command = "printf '{\"acc\": %s}' {{x}} > results.json"
results = "results.json"

[report]
columns = ["x", "acx"]
"#,
    );
    let output = project.builds(&[]).refused();
    let text = output.stderr();
    // docs/jobfile.md: "Every mistake is reported with its file, line and column".
    assert!(text.contains("--> Jobfile.toml:10:"), "{text}");
}

#[test]
fn a_partial_sweep_writes_a_report_of_the_done_jobs_and_says_how_many_are_not_done() {
    let project = Project::new();
    project.jobfile(
        r#"[params]
x = [1, 2, 3]

[job]
name = "x{{x}}"
command = "if [ {{x}} = 2 ]; then exit 3; fi; printf '{\"acc\": %s}' {{x}} > results.json"
results = "results.json"
"#,
    );
    let output = project.build(&[]);
    assert_exit(&output, 1);
    assert_says(&output, "Wrote", "report.csv (2 rows, 1 job failed)");
    let names: Vec<String> = report_cells(&project)[1..].iter().map(|row| row[1].clone()).collect();
    assert_eq!(names, ["x1", "x3"]);
    assert!(stderr(&output).contains("3 jobs: 2 ran, 0 cached, 1 failed"), "{}", stderr(&output));

    // Asked again, the report is fresh and still says what is missing.
    let output = project.build(&["report", "--where", "x != 2"]);
    assert_exit(&output, 0);
    assert_says(&output, "Fresh", "report.csv (1 job failed)");
}

#[test]
fn a_sweep_with_no_done_job_still_writes_a_report_with_its_param_columns() {
    let project = Project::new();
    let jobfile = |report: &str| {
        format!(
            "[params]\nx = [1, 2]\n\n[job]\nname = \"x{{{{x}}}}\"\ncommand = \"false\"\nresults = \"results.json\"\n{report}"
        )
    };
    project.jobfile(&jobfile(""));
    let output = project.builds(&[]).job_failed();
    assert_eq!(project.read("report.csv").unwrap(), "id,name,x,status,duration,attempts\n", "{}", output.stderr());

    project.jobfile(&jobfile("\n[report]\ncolumns = [\"name\", \"x\"]\n"));
    project.builds(&[]).job_failed();
    assert_eq!(project.read("report.csv").unwrap(), "name,x\n");
}

// ---------------------------------------------------------------------------------------------
// Early cutoff: what is remade when

#[test]
fn a_rerun_with_identical_results_rewrites_nothing_and_a_changed_result_redraws_its_readers() {
    let project = two_figures_project();
    let output = project.build(&[]);
    assert_exit(&output, 0);
    assert_eq!(project.ran(), ["x1", "x2", "x3"]);
    assert_says(&output, "Drew", "figures/acc.png");
    assert_says(&output, "Drew", "figures/other.png");
    let report = stamps(&project, &["report.csv".into()]);
    let acc = stamps(&project, &figure_files("acc"));
    let other = stamps(&project, &figure_files("other"));
    let index = stamps(&project, &["figures/index.html".into()]);

    // Same results, a new duration (not in the report's columns): the same report bytes. The
    // sleep makes sure the duration differs, so that the report is remade rather than fresh.
    let output = project.build_with(&["--force", "--where", "x == 1"], &[("JOB_SLEEP", "0.2")]);
    assert_exit(&output, 0);
    assert_eq!(project.ran(), ["x1"]);
    assert_untouched(&project, &report, "the rerun wrote the same results");
    assert_untouched(&project, &acc, "its data did not change");
    assert_untouched(&project, &other, "its data did not change");
    assert_untouched(&project, &index, "neither the report nor the figures changed");
    assert_says(&output, "Unchanged", "report.csv (3 rows)");
    assert_says(&output, "Fresh", "figures/acc.png");
    assert_says(&output, "Fresh", "figures/other.png");

    // x1 now writes acc = 6: the report and the `acc` figure change, `other` does not.
    let output = project.build_with(&["--force", "--where", "x == 1"], &[("MY_VAR", "5")]);
    assert_exit(&output, 0);
    assert_eq!(project.ran(), ["x1"]);
    assert_eq!(project.read("report.csv").unwrap(), "x,acc,other\n1,6,0\n2,2,0\n3,3,0\n");
    assert_rewritten(&project, &report, "x1's acc changed");
    assert_rewritten(&project, &acc, "the acc figure reads acc");
    assert_untouched(&project, &other, "the other figure does not read acc");
    assert_says(&output, "Drew", "figures/acc.png");
    assert_says(&output, "Fresh", "figures/other.png");
}

#[test]
fn editing_a_figure_redraws_it_alone_and_a_report_change_redraws_only_the_figures_reading_it() {
    let project = two_figures_project();
    project.builds(&[]).ok().ran(["x1", "x2", "x3"]);
    let acc = stamps(&project, &figure_files("acc"));
    let other = stamps(&project, &figure_files("other"));
    let old_png = fs::read(project.path().join("figures/acc.png")).unwrap();

    project.jobfile(&two_figures("title = \"Accuracy per x\"\n", ""));
    let output = project.build(&[]);
    assert_exit(&output, 0);
    assert_eq!(project.ran(), Vec::<String>::new(), "a figure edit reruns no job");
    assert_rewritten(&project, &acc, "its title changed");
    assert_ne!(fs::read(project.path().join("figures/acc.png")).unwrap(), old_png, "the new title is drawn");
    assert_untouched(&project, &other, "only the acc figure was edited");
    assert_says(&output, "Drew", "figures/acc.png");
    assert_says(&output, "Fresh", "figures/other.png");
    let acc = stamps(&project, &figure_files("acc"));

    // Every job reruns under its id and writes other = 7, acc unchanged.
    let report = stamps(&project, &["report.csv".into()]);
    let output = project.build_with(&["--force"], &[("OTHER_VAR", "7")]);
    assert_exit(&output, 0);
    assert_eq!(project.ran(), ["x1", "x2", "x3"]);
    assert_eq!(project.read("report.csv").unwrap(), "x,acc,other\n1,1,7\n2,2,7\n3,3,7\n");
    assert_rewritten(&project, &report, "other changed");
    assert_untouched(&project, &acc, "the acc figure does not read other");
    assert_rewritten(&project, &other, "the other figure reads other");
    assert_says(&output, "Fresh", "figures/acc.png");
    assert_says(&output, "Drew", "figures/other.png");
    let other = stamps(&project, &figure_files("other"));

    // Renaming a report column changes the file, not the data any figure reads.
    let report = stamps(&project, &["report.csv".into()]);
    project.jobfile(&two_figures("title = \"Accuracy per x\"\n", "rename = { other = \"other_metric\" }\n"));
    project.builds(&[]).ok();
    assert_eq!(project.read("report.csv").unwrap(), "x,acc,other_metric\n1,1,7\n2,2,7\n3,3,7\n");
    assert_rewritten(&project, &report, "a column was renamed");
    assert_untouched(&project, &acc, "its data did not change");
    assert_untouched(&project, &other, "its data did not change");
}

#[test]
fn figures_and_the_page_drawn_by_a_jobman_of_other_code_are_redrawn_even_under_its_version() {
    let project = two_figures_project();
    project.builds(&[]).ok().ran(["x1", "x2", "x3"]);
    // What nodes.json holds after a build by a jobman of the same version number built from
    // other code (as every jobman before the code hash wrote it).
    let nodes = project.read(".jobman/nodes.json").unwrap();
    let ours = format!("\"jobman\": \"{}+", env!("CARGO_PKG_VERSION"));
    assert_eq!(nodes.matches(&ours).count(), 3, "two figures and the page name this jobman: {nodes}");
    fs::write(project.path().join(".jobman/nodes.json"), with_other_code(&nodes, &ours)).unwrap();

    let output = project.build(&["--explain"]);
    assert_exit(&output, 0);
    assert!(project.ran().is_empty(), "no job reruns for a new jobman");
    // Drawn again by this jobman's code (the same bytes here, so the files are left as they are).
    assert_says(&output, "Drew", "figures/acc.png");
    assert_says(&output, "Drew", "figures/other.png");
    assert_eq!(
        stderr(&output).matches("jobman changed (another version, or a build of other code)").count(),
        3,
        "{}",
        stderr(&output)
    );
    let output = project.build(&[]);
    assert_says(&output, "Fresh", "figures/acc.png");
    assert_says(&output, "Fresh", "figures/other.png");
}

/// `"jobman": "V+HASH"` → `"jobman": "V+0"`: the same version, other code.
fn with_other_code(nodes: &str, ours: &str) -> String {
    let mut out = String::new();
    let mut rest = nodes;
    while let Some(at) = rest.find(ours) {
        out.push_str(&rest[..at + ours.len()]);
        out.push('0');
        rest = &rest[at + ours.len()..];
        rest = &rest[rest.find('"').unwrap()..];
    }
    out.push_str(rest);
    out
}

#[test]
fn a_figure_is_not_redrawn_when_jobs_rerun_under_new_ids_with_the_same_data() {
    let project = Project::new();
    let jobfile = |command: &str| {
        format!(
            "[params]\nx = [1, 2]\n\n[job]\nname = \"x{{{{x}}}}\"\ncommand = \"{command}\"\nresults = \"results.json\"\n\n\
             [[figure]]\nname = \"acc\"\nkind = \"scatter\"\nx = \"x\"\ny = \"acc\"\n"
        )
    };
    let write = "printf '{\\\"acc\\\": %s, \\\"other\\\": %s}' {{x}}";
    project.jobfile(&jobfile(&format!("{write} 0 > results.json")));
    assert_exit(&project.build(&[]), 0);
    let acc = stamps(&project, &figure_files("acc"));

    // A new command: new keys and ids, the same x and acc, a different `other`.
    project.jobfile(&jobfile(&format!("{write} 1 > results.json")));
    let output = project.build(&[]);
    assert_exit(&output, 0);
    assert!(project.read("report.csv").unwrap().contains(",1,1,done,"), "the jobs reran");
    // The files are the same either way (a redraw to the same bytes is not written): the
    // wasted redraw shows only in jobman's line.
    assert_untouched(&project, &acc, "its data did not change");
    assert_says(&output, "Fresh", "figures/acc.png");
}

#[test]
fn a_curve_is_redrawn_when_only_a_series_file_changed() {
    let project = Project::new();
    project
        .jobfile(
            r#"[params]
x = [1, 2]

[[template]]
src = "run.sh.j2"

[job]
name = "x{{x}}"
command = "sh run.sh"
results = "results.json"
series = "metrics.csv"

[report]
columns = ["x", "acc"]

[[figure]]
name = "loss"
kind = "curve"
x = "epoch"
y = "loss"
"#,
        )
        .template(
            "run.sh.j2",
            "printf '{\"acc\": %s}' {{ x }} > results.json\nprintf 'epoch,loss\\n1,%s\\n2,1\\n' $(( {{ x }} + ${MY_VAR:-0} )) > metrics.csv\n",
        );
    assert_exit(&project.build(&[]), 0);
    let report = stamps(&project, &["report.csv".into()]);
    let loss = stamps(&project, &figure_files("loss"));

    let output = project.build_with(&["--force", "--where", "x == 2"], &[("MY_VAR", "3")]);
    assert_exit(&output, 0);
    assert_untouched(&project, &report, "the results did not change");
    assert_rewritten(&project, &loss, "x2's series changed");
    assert_says(&output, "Drew", "figures/loss.png");
}

// ---------------------------------------------------------------------------------------------
// Targets

#[test]
fn targets_build_the_report_one_figure_or_all_figures_and_the_index() {
    let project = two_figures_project();
    project.builds(&["jobs"]).ok();
    assert_eq!(project.ran(), ["x1", "x2", "x3"]);
    assert!(!exists(&project, "report.csv"), "`build jobs` writes no report");
    assert!(!exists(&project, "figures"), "`build jobs` draws no figure");

    let output = project.builds(&["report"]).ok();
    assert_eq!(project.read("report.csv").unwrap(), "x,acc,other\n1,1,0\n2,2,0\n3,3,0\n");
    assert!(!exists(&project, "figures"), "`build report` draws no figure:\n{}", output.stderr());

    // One figure and what it depends on; the index depends on every figure, so it is not made.
    let output = project.build(&["figures/acc"]);
    assert_exit(&output, 0);
    for path in figure_files("acc") {
        assert!(exists(&project, &path), "{path} is drawn");
    }
    for path in figure_files("other") {
        assert!(!exists(&project, &path), "{path} was not asked for");
    }
    assert!(!exists(&project, "figures/index.html"), "the index was not asked for");
    assert_says(&output, "Fresh", "report.csv");
    let acc = stamps(&project, &figure_files("acc"));

    let output = project.build(&["figures"]);
    assert_exit(&output, 0);
    assert_untouched(&project, &acc, "the acc figure is up to date");
    for path in figure_files("other") {
        assert!(exists(&project, &path), "{path} is drawn");
    }
    assert!(exists(&project, "figures/index.html"));
    assert_says(&output, "Drew", "figures/other.png");
    assert_says(&output, "Fresh", "figures/acc.png");

    let output = project.builds(&["figures/acx"]).refused();
    let text = output.stderr();
    assert!(text.contains("no figure named `acx`"), "{text}");
    assert!(text.contains("did you mean `acc`?"), "{text}");
    assert_eq!(project.ran(), Vec::<String>::new(), "a bad target runs nothing");
}

// ---------------------------------------------------------------------------------------------
// Figures

#[test]
fn figures_are_the_same_bytes_when_drawn_again_from_scratch() {
    let project = Project::new();
    project
        .jobfile(
            r#"[params]
lr = [0.01, 0.1, 1.0]
width = [4, 8]
seed = [0, 1]

[[template]]
src = "run.sh.j2"

[job]
name = "lr{{lr}}-w{{width}}-s{{seed}}"
command = "sh run.sh"
results = "results.json"

[[figure]]
name = "acc"
kind = "line"
x = "lr"
y = "acc"
group = "width"
log_x = true
title = "Accuracy"
"#,
        )
        .template("run.sh.j2", "printf '{\"acc\": %s}' {{ width * lr + seed / 10 }} > results.json\n");
    assert_exit(&project.build(&[]), 0);
    let files = figure_files("acc");
    let first: Vec<Vec<u8>> = files.iter().map(|p| fs::read(project.path().join(p)).unwrap()).collect();
    assert!(first[0].starts_with(PNG_SIGNATURE), "not a PNG");
    assert!(first[1].starts_with(b"%PDF"), "not a PDF");
    assert!(String::from_utf8_lossy(&first[2]).contains("<svg"), "not an SVG");

    fs::remove_dir_all(project.path().join("figures")).unwrap();
    fs::remove_file(project.path().join(".jobman/nodes.json")).unwrap();
    let output = project.build(&[]);
    assert_exit(&output, 0);
    assert_says(&output, "Drew", "figures/acc.png");
    for (path, bytes) in files.iter().zip(&first) {
        assert!(fs::read(project.path().join(path)).unwrap() == *bytes, "{path} differs when drawn again");
    }
}

#[test]
fn every_figure_kind_draws_and_a_bad_figure_is_reported_while_the_others_are_drawn() {
    let project = Project::new();
    let jobfile = r#"[params]
lr = [0.1, 0.2]
width = [4, 8]
seed = [0, 1]

[[template]]
src = "run.sh.j2"

[job]
name = "lr{{lr}}-w{{width}}-s{{seed}}"
command = "sh run.sh"
results = "results.json"
series = "metrics.csv"

[[figure]]
name = "line"
kind = "line"
x = "lr"
y = "acc"
group = "width"
aggregate = "median"
error = "min_max"

[[figure]]
name = "bad"
kind = "line"
x = "lr"
y = "accuracy"

[[figure]]
name = "scatter"
kind = "scatter"
x = "lr"
y = "acc"
group = "seed"

[[figure]]
name = "bar"
kind = "bar"
x = "width"
y = "acc"
group = "lr"

[[figure]]
name = "heat"
kind = "heatmap"
x = "width"
y = "lr"
value = "acc"

[[figure]]
name = "curve"
kind = "curve"
x = "epoch"
y = "loss"
group = "width"
"#;
    project.jobfile(jobfile).template(
        "run.sh.j2",
        "printf '{\"acc\": %s}' {{ lr * width + seed }} > results.json\n\
         printf 'epoch,loss\\n1,%s\\n2,%s\\n3,%s\\n' {{ width }} {{ width / 2 }} {{ width / 4 + seed }} > metrics.csv\n",
    );
    let output = project.build(&[]);
    assert_exit(&output, 2);
    let text = project.redact(&stderr(&output));

    let bad_line = jobfile.lines().position(|l| l == "name = \"bad\"").unwrap(); // 1-based line of `[[figure]]`
    assert!(text.contains("error: cannot draw figure `bad`"), "{text}");
    assert!(text.contains(&format!("--> Jobfile.toml:{bad_line}:1")), "{text}");
    assert!(text.contains("column `accuracy` not found"), "{text}");

    for name in ["line", "scatter", "bar", "heat", "curve"] {
        assert_says(&output, "Drew", &format!("figures/{name}.png"));
        let [png, pdf, svg] = figure_files(name).map(|p| fs::read(project.path().join(p)).unwrap());
        assert!(png.starts_with(PNG_SIGNATURE), "{name}.png is not a PNG");
        assert!(pdf.starts_with(b"%PDF"), "{name}.pdf is not a PDF");
        assert!(String::from_utf8_lossy(&svg).contains("<svg"), "{name}.svg is not an SVG");
    }
    for path in figure_files("bad") {
        assert!(!exists(&project, &path), "{path} cannot be drawn");
    }
    assert!(exists(&project, "figures/index.html"), "the index is still written");
}

#[test]
fn the_index_lists_every_figure_and_escapes_values() {
    let project = Project::new();
    project.jobfile(
        r#"[params]
x = [1, 2]
tag = ["<b>x</b>"]

[job]
name = "x{{x}}"
command = "printf '{\"acc\": %s}' {{x}} > results.json"
results = "results.json"

[[figure]]
name = "acc_by_x"
kind = "scatter"
x = "x"
y = "acc"

[[figure]]
name = "x_by_acc"
kind = "scatter"
x = "acc"
y = "x"
"#,
    );
    assert_exit(&project.build(&[]), 0);
    let page = project.read("figures/index.html").expect("figures/index.html is written");
    for name in ["acc_by_x", "x_by_acc"] {
        assert!(page.contains(&format!("{name}.png")), "{name} is not listed");
        assert!(page.contains(&format!("{name}.svg")) && page.contains(&format!("{name}.pdf")), "{name}");
    }
    assert!(!page.contains("<b>x</b>"), "a param value reached the page unescaped");
    assert!(page.contains("&lt;b&gt;x&lt;/b&gt;"), "the param value is shown escaped");
}

#[test]
fn a_results_file_changed_since_its_record_is_left_out_of_the_report() {
    let project = Project::new();
    project.jobfile(
        "[params]\nlr = [0.1, 0.2]\n\n[job]\ncommand = \"echo '{\\\"acc\\\": {{lr}}}' > r.json\"\nresults = \"r.json\"\n",
    );
    assert_exit(&project.build(&[]), 0);
    let out = project.cmd(&["ls", "--where", "lr == 0.2", "--format", "paths"]).output().unwrap();
    let dir = std::path::PathBuf::from(super::stdout(&out).trim());
    // Edited by hand (or cut short by a crash): no longer what the record hashed.
    fs::write(dir.join("r.json"), "{\"acc\": 0.99}").unwrap();
    fs::remove_file(project.path().join("report.csv")).unwrap();
    let output = project.build(&[]);
    assert_exit(&output, 0);
    assert_says(&output, "Wrote", "report.csv (1 row)");
    let err = stderr(&output);
    assert!(err.contains("r.json is missing, unreadable or changed since the job's record"), "{err}");
    assert!(err.contains("jobman build --force --where 'lr == 0.2'"), "{err}");
    let report = project.read("report.csv").unwrap();
    assert!(!report.contains("0.99") && !report.contains(",0.2,"), "{report}");
}

#[test]
fn a_misspelt_figure_column_is_told_before_the_jobs_run() {
    let project = two_figures_project();
    project.builds(&[]).ok().ran(["x1", "x2", "x3"]);

    // A misspelt column and a new job: the warning comes before the job runs, the mistake after.
    let text = two_figures("", "").replace("y = \"acc\"", "y = \"accc\"").replace("[1, 2, 3]", "[1, 2, 3, 4]");
    project.jobfile(&text);
    let out = project.build(&[]);
    assert_exit(&out, 2);
    assert_eq!(project.ran(), ["x4"]);
    let said = stderr(&out);
    let warned = said.find("figure `acc` reads `accc`").unwrap_or_else(|| panic!("no warning in:\n{said}"));
    assert!(
        said[warned..].starts_with(
            "figure `acc` reads `accc`, which no param and no column of the last report has (did you mean `acc`?)"
        ),
        "{said}"
    );
    let ran = said.find("Ran x4").unwrap_or_else(|| panic!("no Ran line in:\n{said}"));
    assert!(warned < ran, "the warning comes first:\n{said}");
    assert!(said.contains("cannot draw figure `acc`"), "{said}");
}

#[test]
fn when_every_job_fails_a_figure_is_skipped_and_the_build_says_a_job_failed() {
    let project = Project::new();
    project.jobfile(&two_figures("", "")).template("run.sh.j2", "echo {{ job.name }} >> ../../ran.log; exit 3\n");
    let out = project.build(&[]);
    assert_exit(&out, 1);
    let said = stderr(&out);
    assert!(said.contains("Skipped figures/acc.png: no done job to plot (3 jobs failed)"), "{said}");
    assert!(!said.contains("error"), "a failed job is no mistake of the Jobfile:\n{said}");
    let failures = said.rfind("Failures 3 jobs:").unwrap_or_else(|| panic!("no failures in:\n{said}"));
    assert!(failures > said.rfind("Skipped figures").unwrap(), "the failures are said last:\n{said}");

    // A sweep with no job at all: nothing failed, nothing to draw.
    project.jobfile(&two_figures("", "").replace("[params]", "[sweep]\nwhere = \"false\"\n\n[params]"));
    let out = project.build(&[]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("Skipped figures/acc.png: the sweep has no job"), "{}", stderr(&out));
}

#[test]
fn a_failed_job_says_what_to_fix_a_missing_command_or_a_misnamed_results_file() {
    let project = Project::new();
    let jobfile = |command: &str, results: &str| {
        format!("[params]\nx = [1]\n\n[job]\nname = \"x{{{{x}}}}\"\ncommand = \"{command}\"\n{results}")
    };
    // A command that is not on PATH: the nearest program is suggested, the PATH searched named.
    project.jobfile(&jobfile("pyth0n3 -c pass", ""));
    let said = project.builds(&[]).job_failed().stderr();
    assert!(said.contains("command not found: pyth0n3 (searched PATH="), "{said}");
    assert!(said.contains("did you mean `python3`?"), "{said}");
    // The same through the shell (a `;` makes jobman run it with sh): its own words are quoted.
    project.jobfile(&jobfile("true; pyth0n3 -c pass", ""));
    let said = project.builds(&[]).job_failed().stderr();
    assert!(said.contains("(failed: exit code 127, a command was not found: "), "{said}");
    assert!(said.contains("pyth0n3: not found"), "the shell's own words: {said}");
    // A results file under another name than the job wrote.
    project.jobfile(&jobfile("echo '{}' > results.json; echo 1 > notes.txt", "results = \"result.json\"\n"));
    let said = project.builds(&[]).job_failed().stderr();
    assert!(
        said.contains(
            "results file result.json is missing; the folder holds notes.txt, results.json; did you mean `results.json`?"
        ),
        "{said}"
    );
}

/// Width and height of a PNG, from its header.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

#[test]
fn figures_print_at_the_size_the_plot_section_or_the_figure_asks() {
    let project = Project::new();
    let jobfile = two_figures("width = \"8.4cm\"\nheight = \"60mm\"\n", "").replace(
        "[[figure]]\nname = \"acc\"",
        "[plot]\nstyle = \"paper\"\nheight = \"5in\"\n\n[[figure]]\nname = \"acc\"",
    );
    project.jobfile(&jobfile).template("run.sh.j2", RUN_SH);
    project.builds(&[]).ok();
    let png = |name: &str| png_size(&fs::read(project.path().join("figures").join(name)).unwrap());
    // 200 dpi: 8.4 cm × 60 mm for acc, 3.3 in (the paper style's width) × 5 in for other.
    assert_eq!(png("acc.png"), (661, 472));
    assert_eq!(png("other.png"), (660, 1000));
    let pdf = String::from_utf8_lossy(&fs::read(project.path().join("figures/other.pdf")).unwrap()).into_owned();
    assert!(pdf.contains("/MediaBox[0 0 237.6 360]"), "3.3 × 5 in in points");

    project.jobfile(&jobfile.replace("height = \"5in\"", "height = \"5\""));
    project
        .builds(&[])
        .refused()
        .says("invalid `height`")
        .says("expected a length such as \"3.3in\", \"8.4cm\", \"84mm\" or \"240pt\", found `5`");
    project.jobfile(&jobfile.replace("\"paper\"", "\"papr\""));
    project.builds(&[]).refused().says("unknown style `papr`").says("did you mean `paper`?");
}

#[test]
fn a_partial_sweep_says_so_on_the_index_page_and_in_its_figures() {
    let project = Project::new();
    // x3 fails until FIX is set.
    let run = RUN_SH.replace("sleep ${JOB_SLEEP:-0}", "[ {{ x }} != 3 ] || [ -n \"$FIX\" ] || exit 4");
    project.jobfile(&two_figures("", "")).template("run.sh.j2", &run);
    project.builds(&[]).job_failed();
    let page = project.read("figures/index.html").unwrap();
    assert!(page.contains("<strong>2 of 3 jobs are in this report and its figures.</strong> 1 failed:"), "{page}");
    assert!(page.contains("<li><code>x3</code>: exit code 4</li>"), "{page}");
    // Once every job is in, the banner goes and the figures (whose note said "2 of 3 jobs") are
    // drawn again.
    let fixed = project.cmd(&["build"]).env("FIX", "1").output().unwrap();
    assert_exit(&fixed, 0);
    let said = stderr(&fixed);
    assert!(said.contains("Drew figures/acc.png") && said.contains("Drew figures/other.png"), "{said}");
    assert!(!project.read("figures/index.html").unwrap().contains("class=\"banner\""));
}

/// A plot script of the user's own: writes one line per row it was given and what it got, as an
/// SVG (the rows are in the file, to be read back).
const PLOT_PY: &str = r#"import csv, os
rows = list(csv.DictReader(open(os.environ["JOBMAN_REPORT"])))
with open("plotted.log", "a") as log:
    log.write("plotted\n")
marks = "".join(f'<desc>{r["name"]} {r["acc"]}</desc>' for r in rows)
cols = ",".join(rows[0].keys())
size = os.environ["JOBMAN_WIDTH_IN"] + "x" + os.environ["JOBMAN_HEIGHT_IN"]
with open(os.environ["JOBMAN_OUTPUT"] + ".svg", "w") as f:
    f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><title>{cols} {size}</title>{marks}</svg>')
"#;

#[test]
fn a_script_figure_runs_the_users_command_and_reruns_exactly_when_what_it_reads_changes() {
    let project = Project::new();
    let script_figure =
        "[[figure]]\nname = \"mine\"\nscript = \"plots/mine.py\"\nreads = [\"x\", \"acc\"]\nwidth = \"3in\"\n";
    project.jobfile(&format!("{}\n{script_figure}", two_figures("", "")));
    project.template("run.sh.j2", RUN_SH).file("plots/mine.py", PLOT_PY);
    let said = project.builds(&[]).ok().stderr();
    assert!(said.contains("Drew figures/mine.svg"), "{said}");
    let svg = project.read("figures/mine.svg").unwrap();
    assert!(svg.contains("<title>id,name,x,acc 3x5</title>"), "the declared columns and the size: {svg}");
    assert!(svg.contains("<desc>x2 2</desc>"), "{svg}");
    assert!(project.read("figures/index.html").unwrap().contains("mine.svg"), "on the index page");
    assert_eq!(project.lines("plotted.log").len(), 1);

    // Nothing changed: not run again. A column it does not read changed: not run again.
    project.builds(&[]).ok().says("Fresh figures/mine.svg");
    let out = project.build_with(&["--force"], &[("OTHER_VAR", "7")]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("Drew figures/other.png"), "{}", stderr(&out));
    assert_eq!(project.lines("plotted.log").len(), 1, "the script reads no `other`");
    // What it reads changed, or the script itself: run again.
    let out = project.build_with(&["--force"], &[("MY_VAR", "1")]);
    assert!(stderr(&out).contains("Drew figures/mine.svg"), "{}", stderr(&out));
    project.file("plots/mine.py", &format!("{PLOT_PY}# edited\n"));
    project.builds(&["figures/mine"]).ok().says("Drew figures/mine.svg");
    assert_eq!(project.lines("plotted.log").len(), 3);

    // A script that fails is named, with what it said; a missing one is refused before anything runs.
    project.file("plots/mine.py", "import sys\nsys.exit('no matplotlib here')\n");
    let out = project.build(&["figures/mine"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("`python3 plots/mine.py` exited 1: no matplotlib here"), "{}", stderr(&out));
    project.jobfile(&format!("{}\n{}", two_figures("", ""), script_figure.replace("mine.py", "mien.py")));
    project.builds(&["-n"]).refused().says("the figure's script is not found");
}

#[test]
fn a_heatmaps_colour_bar_takes_its_own_label() {
    let project = Project::new();
    let heatmap = "[[figure]]\nname = \"heat\"\nkind = \"heatmap\"\nx = \"x\"\ny = \"x\"\nvalue = \"acc\"\nvalue_label = \"accuracy (%)\"\n";
    project.jobfile(&format!("{}\n{heatmap}", two_figures("", ""))).template("run.sh.j2", RUN_SH);
    project.builds(&[]).ok().says("Drew figures/heat.png");
    project.builds(&[]).ok().says("Fresh figures/heat.png");
    // The label is part of the figure: changing it draws the figure again, and nothing else.
    project.jobfile(&format!("{}\n{}", two_figures("", ""), heatmap.replace("accuracy (%)", "accuracy")));
    let said = project.builds(&[]).ok().stderr();
    assert!(said.contains("Drew figures/heat.png") && said.contains("Fresh figures/acc.png"), "{said}");
}

#[test]
fn a_format_prints_a_columns_numbers_alike_in_ls_the_index_page_and_figure_legends() {
    let project = Project::new();
    let jobfile = two_figures("group = \"lr\"\n", "")
        .replace("x = [1, 2, 3]", "x = [1, 2, 3]\nlr = [0.0316227766017, 0.1]")
        .replace("name = \"x{{x}}\"", "name = \"x{{x}}-lr{{lr | round(4)}}\"")
        .replace("columns = [\"x\", ", "columns = [\"x\", \"lr\", ")
        .replace("[[figure]]\nname = \"acc\"", "[format]\nlr = \".3g\"\n\n[[figure]]\nname = \"acc\"");
    project.jobfile(&jobfile).template("run.sh.j2", RUN_SH);
    project.builds(&[]).ok();
    let listed = project.runs(&["ls"]).ok().stdout();
    assert!(listed.contains(" 0.0316") && !listed.contains("0.03162"), "{listed}");
    let page = project.read("figures/index.html").unwrap();
    assert!(page.contains(">0.0316</td>"), "the page prints it so");
    assert!(page.contains("data-value=\"0.0316227766017\""), "and sorts by every digit");
    let report = project.read("report.csv").unwrap();
    assert!(report.contains("0.0316227766017"), "the report keeps every digit: {report}");
    // The legend of `acc` shows lr: a new format draws it again; `other` shows no lr.
    project.jobfile(&jobfile.replace("\".3g\"", "\".2f\""));
    let said = project.builds(&[]).ok().stderr();
    assert!(said.contains("Drew figures/acc.png") && said.contains("Fresh figures/other.png"), "{said}");
    project.jobfile(&jobfile.replace("\".3g\"", "\"3g\""));
    project.builds(&[]).refused().says("invalid format of `lr`");
}
