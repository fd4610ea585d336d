//! Workspace upkeep: `jobman gc` (folders of jobs the Jobfile no longer names), `jobman clean`
//! (products, and with `--jobs` the current job folders) and `jobman graph`.
//!
//! What was removed is observed on the disk: the entries of the jobs folder before and after,
//! the products' files and their inodes, and which jobs a later build runs.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::{Project, RECORD_RUN, assert_exit, stdout, sweep_x};

/// The names in the jobs folder, whatever they are (folders, files, symlinks), but `by-name/`,
/// the links jobman keeps to the current jobs' folders.
fn entries(project: &Project) -> BTreeSet<String> {
    fs::read_dir(project.path().join("scratch_space"))
        .expect("the jobs folder exists")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name != "by-name")
        .collect()
}

fn id_of(project: &Project, name: &str) -> String {
    project.record_of(name)["id"].as_str().expect("an id").to_string()
}

/// Sets a file's modification time `age` into the past.
fn age_file(path: &std::path::Path, age: Duration) {
    let file = fs::File::options().write(true).open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.set_modified(SystemTime::now() - age).expect("set mtime");
}

const DAY: Duration = Duration::from_secs(86_400);

/// `x` swept with the usual command; the job of `x = FAIL_X` fails.
fn sweep_failing(x: &str, fail_x: u32) -> String {
    sweep_x(x, "").replace(RECORD_RUN, &format!("{RECORD_RUN}; test {{{{x}}}} != {fail_x}"))
}

// ---------------------------------------------------------------------------------------------
// gc

#[test]
fn gc_lists_without_removing_and_yes_removes_exactly_the_stale_folders() {
    let project = Project::new();
    project.jobfile(&sweep_failing("[1, 2, 3]", 3));
    assert_exit(&project.build(&[]), 1);
    let (x1, x2, x3) = (id_of(&project, "x1"), id_of(&project, "x2"), id_of(&project, "x3"));
    assert_exit(&project.build(&["--force", "--where", "x == 2"]), 0);
    assert!(entries(&project).contains(&format!("{x2}.previous")), "the forced rerun kept the done folder");
    project.jobfile(&sweep_failing("[2, 3, 4]", 3));
    assert_exit(&project.build(&[]), 1);
    let x4 = id_of(&project, "x4");
    project.ran();

    // What is not a job folder is never touched, even when named like one.
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("precious.txt"), "keep me").unwrap();
    std::os::unix::fs::symlink(outside.path(), project.path().join("scratch_space/0123456789ab")).unwrap();
    project.file("scratch_space/notes/todo.txt", "mine").file("scratch_space/abcdef012345.txt", "mine");
    project.file("scratch_space/fedcba987654", "a file named like an id");
    let before = entries(&project);

    let output = project.runs(&["gc"]).ok();
    assert_eq!(entries(&project), before, "without --yes gc removes nothing");
    let listing = output.stdout();
    assert!(listing.contains(&format!("scratch_space/{x1}/")), "{listing}");
    assert!(listing.contains(&format!("scratch_space/{x2}.previous/")), "{listing}");
    assert!(listing.contains("run `jobman gc --yes` to remove them"), "{listing}");

    project.runs(&["gc", "--yes"]).ok();
    let mut expected = before.clone();
    expected.remove(&x1);
    expected.remove(&format!("{x2}.previous"));
    assert_eq!(entries(&project), expected, "only the folder of x1 and the superseded previous run go");
    for id in [&x2, &x3, &x4] {
        assert!(project.path().join("scratch_space").join(id).join("jobman-record.json").exists(), "{id} is current");
    }
    assert_eq!(fs::read_to_string(outside.path().join("precious.txt")).unwrap(), "keep me");
    assert_eq!(project.read("scratch_space/notes/todo.txt").as_deref(), Some("mine"));
    assert_eq!(project.record_of("x3")["status"], "failed", "a failed current job keeps its folder");
}

#[test]
fn gc_keeps_the_previous_run_of_a_current_job_whose_forced_rerun_failed() {
    let project = Project::new();
    project.jobfile(&sweep_x("[1]", "").replace(RECORD_RUN, &format!("{RECORD_RUN}; test -z \\\"$FAIL\\\"")));
    assert_exit(&project.build(&[]), 0);
    let id = id_of(&project, "x1");
    assert_exit(&project.build_with(&["--force"], &[("FAIL", "1")]), 1);
    let before = entries(&project);
    assert!(before.contains(&format!("{id}.previous")));

    project.runs(&["gc", "--yes"]).ok();
    assert_eq!(entries(&project), before, "the previous run is the job's only finished result");
}

#[test]
fn a_build_after_gc_reruns_nothing_and_a_job_whose_folder_was_removed_runs_again() {
    let project = Project::new();
    project.jobfile(&sweep_x("[1, 2]", ""));
    assert_exit(&project.build(&[]), 0);
    project.jobfile(&sweep_x("[2, 3]", ""));
    project.builds(&[]).ok().ran(["x1", "x2", "x3"]);

    assert_exit(&project.cmd(&["gc", "--yes"]).output().unwrap(), 0);
    assert_eq!(project.job_dirs().len(), 2);
    project.builds(&[]).ok().ran_nothing(); // the current jobs are still done

    project.jobfile(&sweep_x("[1, 2]", ""));
    project.builds(&[]).ok().ran(["x1"]); // x1's folder is gone: nothing vouches for it
}

#[test]
fn keep_failed_keeps_the_folders_of_jobs_that_are_not_done() {
    let project = Project::new();
    project.jobfile(&sweep_failing("[1, 2]", 2));
    assert_exit(&project.build(&[]), 1);
    let (x1, x2) = (id_of(&project, "x1"), id_of(&project, "x2"));
    project.jobfile(&sweep_x("[5]", ""));

    let output = project.cmd(&["gc", "--keep-failed"]).output().unwrap();
    assert_exit(&output, 0);
    assert!(stdout(&output).contains("run `jobman gc --keep-failed --yes` to remove them"), "{}", stdout(&output));
    assert_exit(&project.cmd(&["gc", "--keep-failed", "--yes"]).output().unwrap(), 0);
    assert_eq!(entries(&project), BTreeSet::from([x2.clone()]), "x1 ({x1}) is removed, the failed x2 kept");

    assert_exit(&project.cmd(&["gc", "--yes"]).output().unwrap(), 0);
    assert_eq!(entries(&project), BTreeSet::new());
}

#[test]
fn older_than_removes_only_folders_whose_record_is_older() {
    let project = Project::new();
    project.jobfile(&sweep_x("[1, 2]", ""));
    assert_exit(&project.build(&[]), 0);
    let (x1, x2) = (id_of(&project, "x1"), id_of(&project, "x2"));
    age_file(&project.path().join("scratch_space").join(&x1).join("jobman-record.json"), 10 * DAY);
    project.jobfile(&sweep_x("[3]", ""));

    let output = project.runs(&["gc", "--older-than", "7d", "--yes"]).ok();
    assert_eq!(entries(&project), BTreeSet::from([x2]), "x1 is 10 days old, x2 new");
    assert!(output.stdout().contains("1 folder newer than 7days"), "{}", output.stdout());

    let output = project.runs(&["gc", "--older-than", "7 parsecs"]).refused();
    assert!(output.stderr().contains("--older-than"), "{}", output.stderr());
}

#[test]
fn gc_notes_when_no_current_job_has_a_folder_and_not_otherwise() {
    let project = Project::new();
    project.jobfile(&sweep_x("[1, 2]", ""));
    assert_exit(&project.build(&[]), 0);
    project.jobfile(&sweep_x("[3]", ""));
    let output = project.runs(&["gc"]).ok();
    assert!(output.stderr().contains("no job of this Jobfile has a folder yet"), "{}", output.stderr());

    project.jobfile(&sweep_x("[2, 3]", ""));
    let output = project.runs(&["gc"]).ok();
    assert!(!output.stderr().contains("no job of this Jobfile"), "x2 is current: {}", output.stderr());
    assert_eq!(project.job_dirs().len(), 2);
}

#[test]
fn gc_removes_an_old_temp_file_of_a_cut_off_record_write_and_nothing_else_of_a_current_job() {
    let project = Project::new();
    project.jobfile(&sweep_failing("[1]", 1));
    assert_exit(&project.build(&[]), 1);
    let (dir, id) = (project.path().join("scratch_space"), id_of(&project, "x1"));
    let (old, fresh) = (
        dir.join(format!(".{id}.jobman-record.json.4242.tmp")),
        dir.join(format!(".{id}.jobman-record.json.4343.tmp")),
    );
    fs::write(&old, "{").unwrap();
    fs::write(&fresh, "{").unwrap();
    age_file(&old, DAY);
    let before: BTreeSet<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();

    assert_exit(&project.cmd(&["gc", "--yes"]).output().unwrap(), 0);
    let after: BTreeSet<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    let mut expected = before;
    expected.remove(old.file_name().unwrap());
    assert_eq!(after, expected, "only the day-old temp file goes; one being written may be renamed any moment");
}

// ---------------------------------------------------------------------------------------------
// clean

/// Three jobs, their report, and two scatter figures: `acc` and `other` against `x`.
fn figures_project() -> Project {
    let project = Project::new();
    project
        .jobfile(
            r#"[params]
x = [1, 2, 3]

[job]
name = "x{{x}}"
command = "printf '{\"acc\": %s, \"other\": 1}' {{x}} > results.json"
results = "results.json"

[report]
columns = ["x", "acc", "other"]

[[figure]]
name = "acc"
kind = "scatter"
x = "x"
y = "acc"

[[figure]]
name = "other"
kind = "scatter"
x = "x"
y = "other"
"#,
        )
        .file("figures/notes.txt", "my notes");
    project
}

const REPORT: &str = "report.csv";
const INDEX: &str = "figures/index.html";

fn files_of(figure: &str) -> Vec<String> {
    ["png", "pdf", "svg"].iter().map(|ext| format!("figures/{figure}.{ext}")).collect()
}

fn all_products() -> Vec<String> {
    [vec![REPORT.to_string(), INDEX.to_string()], files_of("acc"), files_of("other")].concat()
}

/// A file's identity: inode and mtime; `None` when it does not exist.
type Stamp = Option<(u64, i64, i64)>;

/// Each product file and its identity.
fn product_stamps(project: &Project) -> Vec<(String, Stamp)> {
    all_products()
        .into_iter()
        .map(|path| {
            let stamp = fs::metadata(project.path().join(&path)).ok().map(|m| (m.ino(), m.mtime(), m.mtime_nsec()));
            (path, stamp)
        })
        .collect()
}

/// Asserts that `remade` were made again (exist, new identity) and the other products are the
/// files they were.
#[track_caller]
fn assert_remade_exactly(project: &Project, before: &[(String, Stamp)], remade: &[String]) {
    for ((path, old), (_, new)) in before.iter().zip(product_stamps(project)) {
        assert!(new.is_some(), "{path} exists after the build");
        if remade.contains(path) {
            assert_ne!(&new, old, "{path} was made again");
        } else {
            assert_eq!(&new, old, "{path} was left alone");
        }
    }
}

#[track_caller]
fn assert_gone(project: &Project, paths: &[String]) {
    for path in paths {
        assert!(!project.path().join(path).exists(), "{path} was removed");
    }
}

/// Each job folder's record identity.
fn record_stamps(project: &Project) -> Vec<(u64, i64)> {
    let stamp = |m: fs::Metadata| (m.ino(), m.mtime_nsec());
    project.job_dirs().iter().map(|dir| stamp(fs::metadata(dir.join("jobman-record.json")).unwrap())).collect()
}

fn nodes(project: &Project) -> Value {
    serde_json::from_str(&project.read(".jobman/nodes.json").expect("nodes.json")).expect("nodes.json is JSON")
}

#[test]
fn clean_removes_the_named_products_and_a_build_makes_exactly_those_again() {
    let project = figures_project();
    assert_exit(&project.build(&[]), 0);

    // The report alone.
    let before = product_stamps(&project);
    assert_exit(&project.cmd(&["clean", "report"]).output().unwrap(), 0);
    assert_gone(&project, &[REPORT.into()]);
    assert_eq!(nodes(&project)["report"], Value::Null, "the report's key is forgotten");
    assert_ne!(nodes(&project)["figures"]["acc"], Value::Null, "the figures' keys are kept");
    assert_exit(&project.build(&[]), 0);
    assert_remade_exactly(&project, &before, &[REPORT.into()]);

    // One figure.
    let before = product_stamps(&project);
    assert_exit(&project.cmd(&["clean", "figures/acc"]).output().unwrap(), 0);
    assert_gone(&project, &files_of("acc"));
    assert!(project.path().join(INDEX).exists());
    assert_exit(&project.build(&[]), 0);
    assert_remade_exactly(&project, &before, &files_of("acc"));

    // Every figure and the index; the user's file stays, and so the folder.
    let before = product_stamps(&project);
    assert_exit(&project.cmd(&["clean", "figures"]).output().unwrap(), 0);
    assert_gone(&project, &[files_of("acc"), files_of("other"), vec![INDEX.into()]].concat());
    assert_eq!(project.read("figures/notes.txt").as_deref(), Some("my notes"));
    assert_exit(&project.build(&[]), 0);
    assert_remade_exactly(&project, &before, &[files_of("acc"), files_of("other"), vec![INDEX.into()]].concat());

    // Everything: with nothing else in it, the figures folder goes too.
    fs::remove_file(project.path().join("figures/notes.txt")).unwrap();
    assert_exit(&project.cmd(&["clean"]).output().unwrap(), 0);
    assert_gone(&project, &all_products());
    assert!(!project.path().join("figures").exists(), "the emptied figures folder is removed");
    assert_eq!(project.job_dirs().len(), 3, "job folders stay without --jobs");
    let records = record_stamps(&project);
    assert_exit(&project.build(&[]), 0);
    assert!(product_stamps(&project).iter().all(|(_, stamp)| stamp.is_some()));
    assert_eq!(record_stamps(&project), records, "no job reran");
}

#[test]
fn clean_refuses_an_unknown_target_with_a_suggestion_and_removes_nothing() {
    let project = figures_project();
    project.file("report.csv", "x\n");
    let output = project.runs(&["clean", "report", "figures/acx"]).refused();
    assert!(output.stderr().contains("no figure named `acx`"), "{}", output.stderr());
    assert!(output.stderr().contains("did you mean `acc`?"), "{}", output.stderr());
    assert!(project.path().join("report.csv").exists(), "a refused command removes nothing");

    let output = project.runs(&["clean", "jobs"]).refused();
    assert!(output.stderr().contains("jobman clean --jobs"), "{}", output.stderr());
}

#[test]
fn clean_jobs_without_yes_off_a_terminal_removes_nothing_and_with_yes_removes_the_current_folders() {
    let project = Project::new();
    project.jobfile(&sweep_x("[1, 2]", ""));
    assert_exit(&project.build(&[]), 0);
    project.ran();
    let before = entries(&project);
    project.file("scratch_space/notes.txt", "mine");

    let output = project.cmd(&["clean", "--jobs"]).output().unwrap();
    assert_exit(&output, 0);
    for id in &before {
        assert!(stdout(&output).contains(id.as_str()), "{id} is listed: {}", stdout(&output));
    }
    assert!(stdout(&output).contains("run `jobman clean --jobs --yes`"), "{}", stdout(&output));
    assert!(project.path().join("report.csv").exists(), "not even the report is removed");
    assert_eq!(entries(&project).len(), 3);

    assert_exit(&project.cmd(&["clean", "--jobs", "--yes"]).output().unwrap(), 0);
    assert!(!project.path().join("report.csv").exists());
    assert_eq!(entries(&project), BTreeSet::from(["notes.txt".to_string()]));
    project.builds(&[]).ok().ran(["x1", "x2"]);
}

// ---------------------------------------------------------------------------------------------
// graph

const GRAPH_JOBFILE: &str = r#"[params]
x = [1, 2]

[job]
name = "x{{x}}"
command = "printf '{\"acc\": %s}' {{x}} > results.json; printf 'step,loss\n1,0.5\n' > series.csv"
results = "results.json"
series = "series.csv"

[[figure]]
name = "acc"
kind = "scatter"
x = "x"
y = "acc"

[[figure]]
name = "loss_curve"
kind = "curve"
x = "step"
y = "loss"
"#;

#[test]
fn graph_text_is_a_tree_from_the_index_down_naming_every_figure_with_its_state() {
    let project = Project::new();
    project.jobfile(GRAPH_JOBFILE);
    let output = project.runs(&["graph"]).ok();
    assert_eq!(
        output.stdout(),
        "figures/index.html (may rebuild)
├── report.csv (would rebuild)
│   └── 2 jobs (0 done, 2 pending)
├── figures/acc.{png,pdf,svg} (may rebuild)
│   └── report.csv (would rebuild) (*)
└── figures/loss_curve.{png,pdf,svg} (may rebuild)
    ├── 2 jobs (0 done, 2 pending)
    └── report.csv (would rebuild) (*)
"
    );
    assert!(project.job_dirs().is_empty(), "graph runs nothing");

    assert_exit(&project.build(&["report"]), 0);
    let output = project.runs(&["graph", "--jobs"]).ok();
    assert_eq!(
        output.stdout(),
        "figures/index.html (may rebuild)
├── report.csv (up to date)
│   ├── x1 (done)
│   └── x2 (done)
├── figures/acc.{png,pdf,svg} (would rebuild)
│   └── report.csv (up to date) (*)
└── figures/loss_curve.{png,pdf,svg} (would rebuild)
    ├── x1 (done)
    ├── x2 (done)
    └── report.csv (up to date) (*)
"
    );
}

#[test]
fn graph_says_up_to_date_after_a_build() {
    let project = Project::new();
    project.jobfile(&sweep_x("[1]", ""));
    assert_exit(&project.build(&[]), 0);
    let output = project.runs(&["graph"]).ok();
    assert_eq!(
        output.stdout(),
        "figures/index.html (up to date)\n└── report.csv (up to date)\n    └── 1 job (1 done, 0 pending)\n"
    );
}

#[test]
fn graph_dot_is_accepted_by_graphviz() {
    let project = Project::new();
    // Quotes and backslashes in a label must not end the DOT string.
    project.jobfile(&GRAPH_JOBFILE.replace(r#"name = "x{{x}}""#, r#"name = 'x{{x}} "q" \'"#));
    let output = project.runs(&["graph", "--format", "dot", "--jobs"]).ok();
    let text = output.stdout();
    assert!(text.starts_with("digraph jobman {") && text.ends_with("}\n"), "{text}");
    assert!(text.contains(r#"label="x1 \"q\" \\\npending""#), "{text}");
    for name in ["report.csv", "figures/acc.{png,pdf,svg}", "figures/loss_curve.{png,pdf,svg}", "figures/index.html"] {
        assert!(text.contains(name), "{name} in {text}");
    }
    // 2 jobs → report, report → index, report → 2 figures, 2 figures → index, 2 jobs → curve.
    assert_eq!(text.matches(" -> ").count(), 2 + 1 + 2 + 2 + 2, "{text}");

    let dot = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut dot) = dot else {
        eprintln!("skipped: Graphviz `dot` is not installed, the DOT text was checked by shape only");
        return;
    };
    use std::io::Write;
    dot.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("dot reads");
    let rendered = dot.wait_with_output().expect("dot runs");
    assert!(rendered.status.success(), "dot refused:\n{}\n{text}", String::from_utf8_lossy(&rendered.stderr));
    assert!(String::from_utf8_lossy(&rendered.stdout).contains("<svg"));
}

/// Jobs that write `results.json` and `weights.txt` (declared outputs, hashed in the record).
const WITH_OUTPUTS: &str = r#"
[params]
x = [1, 2, 3]

[job]
name = "x{{x}}"
command = "echo {{job.name}} >> ../../ran.log; echo '{\"acc\": {{x}}}' > results.json; echo w{{x}} > weights.txt"
results = "results.json"
outputs = ["weights.txt"]
"#;

fn folder_of(project: &Project, name: &str) -> std::path::PathBuf {
    project.path().join("scratch_space").join(project.record_of(name)["id"].as_str().unwrap())
}

#[test]
fn verify_finds_outputs_that_no_longer_match_their_records_and_the_next_build_reruns_them() {
    let project = Project::with_jobfile(WITH_OUTPUTS);
    project.builds(&[]).ok().ran(["x1", "x2", "x3"]);
    project.runs(&["verify"]).ok().says("Verified 3 done jobs, 0 no longer matching their records");

    fs::write(folder_of(&project, "x2").join("weights.txt"), "torn\n").unwrap();
    fs::remove_file(folder_of(&project, "x3").join("results.json")).unwrap();
    project
        .runs(&["verify"])
        .job_failed()
        .says("Unverified x2: `weights.txt` does not match its record")
        .says("Unverified x3: `results.json` is missing");
    assert_eq!(project.runs(&["status"]).ok().stdout(), "3 jobs: 1 done, 2 failed, 0 pending\n");
    let why = project.runs(&["explain", "x2"]).ok().stdout();
    assert!(
        why.contains("`weights.txt` does not match its record (found by checking its outputs against its record)"),
        "{why}"
    );
    project.builds(&[]).ok().ran(["x2", "x3"]);
    project.runs(&["verify"]).ok();
}

#[test]
fn after_a_build_that_never_synced_the_next_build_checks_the_jobs_it_finished() {
    let project = Project::with_jobfile(WITH_OUTPUTS);
    project.builds(&[]).ok().ran(["x1", "x2", "x3"]);
    assert!(!project.path().join(".jobman/unsynced").exists(), "a build that ends well leaves no marker");

    // As a power cut would leave it: the marker of a build that never reached its final sync, and
    // an output that never reached the disk.
    project.file(".jobman/unsynced", "");
    let touched = std::process::Command::new("touch")
        .args(["-d", "1 hour ago"])
        .arg(project.path().join(".jobman/unsynced"))
        .status()
        .unwrap();
    assert!(touched.success());
    fs::write(folder_of(&project, "x1").join("results.json"), "").unwrap();
    project
        .builds(&[])
        .ok()
        .ran(["x1"])
        .says("Unverified x1: `results.json` does not match its record")
        .says("Verified 3 jobs finished by a build that ended before syncing them; 1 no longer matching");
    assert!(!project.path().join(".jobman/unsynced").exists());
    project.builds(&[]).ok().ran_nothing();
}
