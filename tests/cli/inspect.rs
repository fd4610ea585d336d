//! Inspecting jobs: `ls`, `show`, `logs`, and the JSON shapes of `ls` and `status`.
//!
//! What a job is, is checked against its folder (its record, its logs), not against another
//! jobman command. The JSON shapes are checked against the examples in docs/cli.md, so that the
//! documented shape and the real one cannot drift apart.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;

use super::{Project, assert_exit, stderr, stdout, wait_until};

/// Jobs `x1-ya` … `x2-yb` that write to stdout and stderr; `x2` jobs fail when `FAIL_X2` is in
/// the command (a constant `c` is there to be changed).
fn grid(command: &str) -> String {
    format!(
        r#"[params]
x = [1, 2]
y = ["a", "b"]
c = 5

[job]
name = "x{{{{x}}}}-y{{{{y}}}}"
command = "{command}"
"#
    )
}

const WRITES_BOTH: &str = "echo out-{{job.name}}; echo err-{{job.name}} >&2";

fn ls(project: &Project, args: &[&str]) -> std::process::Output {
    project.cmd(&[&["ls"], args].concat()).output().expect("jobman runs")
}

/// The record of each job folder, by job name.
fn records(project: &Project) -> Vec<(String, Value)> {
    let mut records: Vec<(String, Value)> = project
        .job_dirs()
        .iter()
        .filter_map(|dir| fs::read(dir.join("jobman-record.json")).ok())
        .map(|bytes| serde_json::from_slice::<Value>(&bytes).expect("a record is JSON"))
        .map(|record| (record["name"].as_str().unwrap().to_string(), record))
        .collect();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    records
}

fn id_of(project: &Project, name: &str) -> String {
    project.record_of(name)["id"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// ls

#[test]
fn ls_prints_an_aligned_table_of_the_jobs_and_the_params_that_vary() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH));
    assert_exit(&project.build(&[]), 0);
    let output = ls(&project, &[]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(lines[0], "ID            NAME   STATUS  DURATION  x  y", "the constant c is left out");
    for (line, name) in lines[1..].iter().zip(["x1-ya", "x1-yb", "x2-ya", "x2-yb"]) {
        // Each cell starts where its header does.
        let cell = |header: &str| line[lines[0].find(header).unwrap()..].split_whitespace().next().unwrap();
        assert_eq!(cell("ID"), id_of(&project, name));
        assert_eq!(cell("NAME"), name);
        assert_eq!(cell("STATUS"), "done");
        assert!(cell("DURATION").ends_with('s'), "{line}");
        assert_eq!(cell("x"), &name[1..2]);
        assert_eq!(cell("y"), &name[4..5]);
    }
}

#[test]
fn ls_csv_has_every_param_and_the_duration_in_seconds() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH));
    assert_exit(&project.build(&[]), 0);
    let output = ls(&project, &["--format", "csv"]);
    assert_exit(&output, 0);
    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    assert_eq!(reader.headers().unwrap(), vec!["id", "name", "status", "duration", "x", "y", "c"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let record = project.record_of(&row[1]);
        assert_eq!(&row[0], record["id"].as_str().unwrap());
        assert_eq!(&row[2], "done");
        assert_eq!(row[3].parse::<f64>().unwrap(), record["duration_secs"].as_f64().unwrap());
        assert_eq!(&row[4], record["ingredients"]["params"]["x"].to_string());
        assert_eq!(&row[5], record["ingredients"]["params"]["y"].as_str().unwrap(), "strings unquoted");
        assert_eq!(&row[6], "5");
    }
}

#[test]
fn ls_paths_are_job_folders_a_shell_can_cd_into() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH));
    assert_exit(&project.build(&[]), 0);
    let output = ls(&project, &["--format", "paths"]);
    assert_exit(&output, 0);
    let paths: Vec<PathBuf> = stdout(&output).lines().map(PathBuf::from).collect();
    let mut expected = project.job_dirs();
    let mut listed = paths.clone();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
    assert!(paths.iter().all(|p| p.is_absolute()));

    let script = format!(
        "cd \"$({} ls --where 'x == 2 and y == \"a\"' --format paths)\" && cat stdout.log",
        cargo_bin("jobman").display()
    );
    let output = Command::new("sh").arg("-c").arg(script).current_dir(project.path()).output().unwrap();
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "out-x2-ya\n");
}

#[test]
fn ls_paths_leave_out_jobs_that_have_no_folder_yet() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH));
    assert_exit(&project.build(&["--where", "x == 1"]), 0);
    let output = ls(&project, &["--format", "paths"]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output).lines().count(), 2);
    assert!(stderr(&output).contains("Skipped 2 pending jobs without a folder yet"), "{}", stderr(&output));
}

#[test]
fn ls_where_selects_the_matching_jobs() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH));
    let output = ls(&project, &["--where", "x == 2 or y == 'a'", "--format", "csv"]);
    assert_exit(&output, 0);
    let names: Vec<String> =
        stdout(&output).lines().skip(1).map(|l| l.split(',').nth(1).unwrap().to_string()).collect();
    assert_eq!(names, ["x1-ya", "x2-ya", "x2-yb"]);
    let output = ls(&project, &["--where", "x > 5"]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "     Warning --where 'x > 5' matches none of the 4 jobs; x takes 1, 2\n      Listed 0 of 4 jobs\n"
    );
}

#[test]
fn ls_where_with_an_unknown_param_is_refused_with_a_suggestion() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH));
    let output = ls(&project, &["--where", "x == 1 and yy == 'a'"]);
    assert_exit(&output, 2);
    assert_eq!(
        stderr(&output),
        "error: unknown parameter `yy` in `x == 1 and yy == 'a'`
 --> --where:1:1
  |
1 | x == 1 and yy == 'a'
  | ^^^^^^^^^^^^^^^^^^^^ not a parameter of this Jobfile
  |
help: did you mean `y`?
"
    );
    assert_eq!(stdout(&output), "");
}

#[test]
fn ls_status_selects_failed_done_and_pending_jobs() {
    let project = Project::new();
    project.jobfile(&grid("test {{x}} != 2"));
    assert_exit(&project.build(&["--where", "y == 'a'"]), 1);
    let names = |status: &str| -> Vec<String> {
        let output = ls(&project, &["--status", status, "--json"]);
        assert_exit(&output, 0);
        let listing: Value = serde_json::from_slice(&output.stdout).unwrap();
        listing["jobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap().to_string()).collect()
    };
    // Checked against the records: x2-ya failed, x1-ya is done, the `b` jobs never ran.
    let statuses: Vec<(String, String)> =
        records(&project).into_iter().map(|(name, r)| (name, r["status"].as_str().unwrap().to_string())).collect();
    assert_eq!(statuses, [("x1-ya".to_string(), "done".to_string()), ("x2-ya".into(), "failed".into())]);
    assert_eq!(names("failed"), ["x2-ya"]);
    assert_eq!(names("done"), ["x1-ya"]);
    assert_eq!(names("pending"), ["x1-yb", "x2-yb"]);
    assert_eq!(names("done,failed"), ["x1-ya", "x2-ya"]);
    assert_eq!(names("timed_out"), Vec::<String>::new());
    assert_eq!(names("stale"), Vec::<String>::new(), "jobs that never ran are not stale");
}

#[test]
fn stale_jobs_are_pending_ones_that_ran_before_with_other_ingredients() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH).replace("x = [1, 2]", "x = [1]"));
    assert_exit(&project.build(&[]), 0);
    // A new command for every job, and new x2 jobs that never ran.
    project.jobfile(&grid("echo changed"));
    let output = ls(&project, &["--status", "stale", "--format", "csv"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    let names: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').nth(1).unwrap()).collect();
    assert_eq!(names, ["x1-ya", "x1-yb"]);
}

#[test]
fn ls_where_that_matches_nothing_says_so_with_the_values_the_params_take() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH).replace("x = [1, 2]", "x = [0.1, 0.0316227766]"));
    let output = ls(&project, &["--where", "x == 0.0316 and y == 'a'"]);
    assert_exit(&output, 0);
    assert!(
        stderr(&output).contains(
            "--where 'x == 0.0316 and y == 'a'' matches none of the 4 jobs; x takes 0.1, 0.0316227766; y takes \"a\", \"b\""
        ),
        "{}",
        stderr(&output)
    );
    let output = ls(&project, &["--where", "x == 0.0316227766"]);
    assert!(!stderr(&output).contains("matches none"), "{}", stderr(&output));
}

#[test]
fn ls_refuses_an_unknown_status_listing_the_known_ones() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH));
    let output = ls(&project, &["--status", "sleeping"]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output)
            .contains("[possible values: done, failed, timed_out, interrupted, pending, stale, running, queued]"),
        "{}",
        stderr(&output)
    );
}

// ---------------------------------------------------------------------------------------------
// status

/// Sets a folder's modification time a day into the past, as if nothing had changed in it since.
fn settle(folder: &Path) {
    let handle = fs::File::open(folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display()));
    handle.set_modified(std::time::SystemTime::now() - Duration::from_secs(86_400)).expect("set mtime");
}

#[test]
fn status_reuses_its_counts_until_a_record_or_a_folder_changes_and_a_build_looks_at_every_record() {
    let project = Project::with_jobfile(
        r#"
[params]
x = [1, 2, 3]

[job]
name = "x{{x}}"
command = "echo {{job.name}} >> ../../ran.log; test {{x}} != 3 || test -e ../../go"
"#,
    );
    let status = |project: &Project| project.runs(&["status"]).ok().stdout();
    assert_exit(&project.build(&[]), 1);
    assert_eq!(project.ran(), ["x1", "x2", "x3"]);
    let jobs = project.path().join("scratch_space");
    settle(&jobs);
    assert_eq!(status(&project), "3 jobs: 2 done, 1 failed, 0 pending\n");
    assert!(project.read(".jobman/status").is_some(), "a settled jobs folder lets status keep its counts");

    // Edited in place (no rename), a record changes neither folder: status keeps its counts,
    // as documented, while a build reads the record and reruns the job.
    let record = jobs.join(id_of(&project, "x1")).join("jobman-record.json");
    let original = fs::read(&record).unwrap();
    fs::write(&record, b"{").unwrap();
    assert_eq!(status(&project), "3 jobs: 2 done, 1 failed, 0 pending\n");
    assert!(project.runs(&["build", "-n"]).ok().stdout().contains("x1"));
    fs::write(&record, &original).unwrap();

    // A record jobman writes changes the jobs folder: x3 is rerun and done.
    project.file("go", "");
    project.builds(&[]).ok();
    assert_eq!(project.ran(), ["x3"]);
    settle(&jobs);
    assert_eq!(status(&project), "3 jobs: 3 done, 0 pending\n");
    assert_eq!(status(&project), "3 jobs: 3 done, 0 pending\n");

    // So does a job folder removed by hand, and a change to the Jobfile.
    fs::remove_dir_all(jobs.join(id_of(&project, "x2"))).unwrap();
    assert_eq!(status(&project), "3 jobs: 2 done, 1 pending\n");
    settle(&jobs);
    assert_eq!(status(&project), "3 jobs: 2 done, 1 pending\n");
    project.jobfile(&project.read("Jobfile.toml").unwrap().replace("[1, 2, 3]", "[1, 2, 3, 4]"));
    assert_eq!(status(&project), "4 jobs: 2 done, 2 pending\n");
    assert!(project.ran().is_empty(), "status runs nothing");
}

// ---------------------------------------------------------------------------------------------
// show

#[test]
fn show_finds_a_job_by_name_id_prefix_and_full_key() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH));
    assert_exit(&project.build(&[]), 0);
    let record = project.record_of("x2-yb");
    let id = record["id"].as_str().unwrap();
    let key = record["key"].as_str().unwrap();
    let by_name = project.runs(&["show", "x2-yb"]).ok();
    let text = by_name.stdout();
    for reference in [&id[..4], id, key, &id[..6].to_uppercase()] {
        let output = project.runs(&["show", reference]).ok();
        assert_eq!(output.stdout(), text, "show {reference}");
    }
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "name       x2-yb");
    assert_eq!(lines[1], format!("id         {id}"));
    assert_eq!(lines[2], "status     done");
    assert_eq!(lines[3], "exit code  0");
    assert!(text.contains(&format!("\nfolder     scratch_space/{id}\n")), "{text}");
    assert!(text.contains(&format!("\nkey        {key}\n")), "{text}");
    assert!(text.contains("\nparams\n  x  2\n  y  b\n  c  5\n"), "{text}");
    let command = record["command"].as_str().unwrap();
    assert!(
        text.contains(&format!("\nkey ingredients\n  command      {command}\n  params file  params.json\n")),
        "{text}"
    );
    let size = fs::metadata(project.path().join(format!("scratch_space/{id}/stdout.log"))).unwrap().len();
    assert!(text.contains(&format!("\n  stdout.log          {size} B\n")), "{text}");
}

#[test]
fn show_prints_the_results_of_a_done_job() {
    let project = Project::new();
    project.jobfile(
        r#"[params]
x = [2]

[job]
name = "x{{x}}"
command = "echo '{\"acc\": 0.5, \"m\": {\"f1\": 0.25}}' > results.json"
results = "results.json"
"#,
    );
    project.builds(&[]).ok();
    let text = project.runs(&["show", "x2"]).ok().stdout();
    let results = text.split("\nresults\n").nth(1).unwrap_or_else(|| panic!("no results in:\n{text}"));
    let lines: Vec<Vec<&str>> = results.lines().take(2).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines, [["acc", "0.5"], ["m.f1", "0.25"]], "{text}");
    let json: Value = serde_json::from_str(&project.runs(&["show", "x2", "--json"]).ok().stdout()).unwrap();
    assert_eq!(json["results"]["m"]["f1"], 0.25);
    let listed = project.runs(&["status", "--jobs"]).ok().stdout();
    let header: Vec<&str> = listed.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["ID", "NAME", "STATUS", "DURATION"], "{listed}");
    let row: Vec<&str> = listed.lines().nth(1).unwrap().split_whitespace().collect();
    assert!(row[1] == "x2" && row[2] == "done" && row[3].ends_with('s'), "a done job's duration: {listed}");
}

/// Names of `n` jobs that are never run: ids come from keys, which do not need a run.
fn many_jobs(n: usize) -> String {
    format!("[params]\ni = {{ range = [0, {n}] }}\n\n[job]\nname = \"job{{{{i}}}}\"\ncommand = \"true\"\n")
}

#[test]
fn show_refuses_an_ambiguous_prefix_listing_the_jobs_it_fits() {
    let project = Project::new();
    project.jobfile(&many_jobs(2000));
    let listing: Value = serde_json::from_slice(&ls(&project, &["--json"]).stdout).unwrap();
    let mut jobs: Vec<(String, String)> = listing["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["id"].as_str().unwrap().to_string(), j["name"].as_str().unwrap().to_string()))
        .collect();
    jobs.sort();
    // With 2000 ids, two share their first 4 characters (all but surely: 1 - e^-30).
    let pair = jobs.windows(2).find(|w| w[0].0[..4] == w[1].0[..4]).expect("two ids sharing 4 characters");
    let prefix = &pair[0].0[..4];
    let output = project.runs(&["show", prefix]).refused();
    let text = output.stderr();
    let fitting: Vec<&(String, String)> = jobs.iter().filter(|(id, _)| id.starts_with(prefix)).collect();
    assert!(text.starts_with(&format!("error: `{prefix}` fits {} jobs:\n", fitting.len())), "{text}");
    for (id, name) in fitting {
        // Under the message's text, as the diagnostic renderer indents a title's later lines.
        assert!(text.contains(&format!("\n         {id}  {name}\n")), "{text}");
    }
    assert!(text.ends_with("help: give more characters of the id, or the job's name\n"), "{text}");
}

#[test]
fn show_of_an_unknown_job_suggests_the_closest_name() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH));
    let output = project.runs(&["show", "x2_ya"]).refused();
    assert_eq!(
        output.stderr(),
        "error: no job is named `x2_ya`\n |\nhelp: did you mean `x2-ya`? `jobman ls` lists the jobs with their ids and names\n"
    );
    let output = project.runs(&["show", "abc"]).refused();
    assert!(output.stderr().contains("an id prefix needs at least 4 characters"), "{}", output.stderr());
}

#[test]
fn show_and_logs_read_a_job_that_is_no_longer_in_the_jobfile() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH));
    assert_exit(&project.build(&[]), 0);
    let id = id_of(&project, "x2-yb");
    project.jobfile(&grid(WRITES_BOTH).replace("x = [1, 2]", "x = [1]"));
    let output = project.cmd(&["show", &id[..8]]).output().unwrap();
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(text.contains("status     done (not part of the current Jobfile)\n"), "{text}");
    assert!(text.contains("\nparams\n  c  5\n  x  2\n  y  b\n"), "{text}");
    let output = project.runs(&["logs", &id]).ok();
    assert_eq!(output.stdout(), "out-x2-yb\n");
    project.runs(&["show", "x2-yb"]).refused();
}

#[test]
fn show_of_a_pending_job_says_why_and_what_its_key_will_be_made_of() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH));
    let output = project.cmd(&["show", "x1-ya", "--json"]).output().unwrap();
    assert_exit(&output, 0);
    let view: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(view["status"], "pending");
    assert_eq!(view["started"], Value::Null);
    assert_eq!(view["ingredients"]["command"], "echo out-x1-ya; echo err-x1-ya >&2");
    assert_eq!(view["files"], serde_json::json!([]));
    let text = stdout(&project.cmd(&["show", "x1-ya"]).output().unwrap());
    assert!(text.contains("status   pending (not run yet)\n"), "{text}");
    assert!(text.ends_with("\nfiles: none (the folder does not exist yet)\n"), "{text}");

    assert_exit(&project.build(&[]), 0);
    let key = project.record_of("x1-ya")["key"].clone();
    assert_eq!(view["key"], key, "the key shown before the run is the one it ran under");
}

// ---------------------------------------------------------------------------------------------
// logs

#[test]
fn logs_prints_what_the_job_wrote_to_stdout_or_stderr() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH));
    assert_exit(&project.build(&[]), 0);
    let output = project.runs(&["logs", "x1-yb"]).ok();
    assert_eq!(output.stdout(), "out-x1-yb\n");
    let output = project.cmd(&["logs", &id_of(&project, "x2-ya")[..5], "--stderr"]).output().unwrap();
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "err-x2-ya\n");
}

#[test]
fn logs_of_a_job_that_never_ran_is_an_error_saying_so() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH));
    let output = project.runs(&["logs", "x1-ya"]).refused();
    let text = project.redact(&output.stderr());
    assert!(
        text.starts_with("error: job x1-ya has no log yet: scratch_space/[ID]/stdout.log does not exist\n"),
        "{text}"
    );
}

#[test]
fn logs_follow_prints_as_the_job_writes_and_ends_when_the_job_ends() {
    let project = Project::new();
    project.jobfile(
        "[params]\nx = [1]\n\n[job]\nname = \"slow\"\ncommand = \"echo one; sleep 1; echo two; sleep 1; echo three\"\n",
    );
    let mut build = project.spawn_build(&[], &[]);
    let dir = |project: &Project| project.job_dirs().into_iter().next();
    wait_until("the job wrote its first line", Duration::from_secs(30), || {
        dir(&project).and_then(|d| fs::read_to_string(d.join("stdout.log")).ok()).is_some_and(|t| t == "one\n")
    });
    let record = dir(&project).unwrap().join("jobman-record.json");
    assert!(!record.exists(), "the job is still running");
    let started = Instant::now();
    let output = project.runs(&["logs", "slow", "--follow"]).ok();
    assert_eq!(output.stdout(), "one\ntwo\nthree\n", "everything the job wrote, the later lines as written");
    assert!(record.exists(), "--follow ended only once the job's record was written");
    assert!(started.elapsed() >= Duration::from_millis(1500), "it waited for the job: {:?}", started.elapsed());
    assert!(build.wait(Duration::from_secs(30)).success());

    // A finished job: its whole log, at once.
    let output = project.runs(&["logs", "slow", "--follow"]).ok();
    assert_eq!(output.stdout(), "one\ntwo\nthree\n");
}

#[test]
fn logs_follow_of_a_job_no_build_runs_ends_by_itself() {
    let project = Project::new();
    project.jobfile("[params]\nx = [1]\n\n[job]\nname = \"cut\"\ncommand = \"echo started\"\n");
    assert_exit(&project.build(&[]), 0);
    // As a build killed before its job's record was written leaves the folder.
    let dir = project.job_dirs().into_iter().next().unwrap();
    fs::remove_file(dir.join("jobman-record.json")).unwrap();

    let started = Instant::now();
    let output = project.runs(&["logs", "cut", "--follow"]).ok();
    assert_eq!(output.stdout(), "started\n");
    assert!(output.stderr().contains("no build is running job cut"), "{}", output.stderr());
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// The documented JSON shapes

/// The example JSON under `heading` in docs/cli.md.
fn documented_example(heading: &str) -> Value {
    let docs = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md")).unwrap();
    let section =
        docs.split(&format!("\n{heading}\n")).nth(1).unwrap_or_else(|| panic!("no `{heading}` in docs/cli.md"));
    let block = section.split("```json\n").nth(1).unwrap().split("\n```").next().unwrap();
    serde_json::from_str(block).unwrap_or_else(|e| panic!("the example under `{heading}` is not JSON: {e}"))
}

/// Checks that `actual` has exactly the fields of `documented`, recursively (the first element
/// of arrays; not inside maps named by the Jobfile, such as `params`), with the same JSON types
/// where both are not null.
#[track_caller]
fn assert_same_shape(actual: &Value, documented: &Value, path: &str) {
    match (actual, documented) {
        // Maps whose names are the Jobfile's: params, template targets, input paths, env names.
        (Value::Object(_), Value::Object(_))
            if [".params", ".templates", ".inputs", ".env"].iter().any(|free| path.ends_with(free)) => {}
        (Value::Object(a), Value::Object(d)) => {
            let mut a_keys: Vec<&String> = a.keys().collect();
            let mut d_keys: Vec<&String> = d.keys().collect();
            a_keys.sort();
            d_keys.sort();
            assert_eq!(a_keys, d_keys, "the fields of {path}");
            for (key, value) in a {
                assert_same_shape(value, &d[key], &format!("{path}.{key}"));
            }
        }
        (Value::Array(a), Value::Array(d)) => {
            if let (Some(a), Some(d)) = (a.first(), d.first()) {
                assert_same_shape(a, d, &format!("{path}[0]"));
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (a, d) => {
            assert_eq!(std::mem::discriminant(a), std::mem::discriminant(d), "{path} is {a} where the docs show {d}")
        }
    }
}

#[test]
fn status_and_ls_json_have_exactly_the_documented_fields() {
    let project = Project::new();
    project.jobfile(&grid("test {{x}} != 2"));
    assert_exit(&project.build(&["--where", "y == 'a'"]), 1);

    let output = project.cmd(&["status", "--json"]).output().unwrap();
    assert_exit(&output, 0);
    let status: Value = serde_json::from_slice(&output.stdout).expect("status --json is JSON");
    assert_same_shape(&status, &documented_example("### `jobman status --json`"), "status");
    assert_eq!(status["format"], 1);
    assert_eq!(
        (status["total"].as_u64(), status["done"].as_u64(), status["pending"].as_u64()),
        (Some(4), Some(1), Some(2))
    );

    let output = ls(&project, &["--format", "json"]);
    assert_exit(&output, 0);
    let listing: Value = serde_json::from_slice(&output.stdout).expect("ls --format json is JSON");
    assert_same_shape(&listing, &documented_example("### `jobman ls --format json`"), "ls");
    assert_eq!(ls(&project, &["--json"]).stdout, output.stdout, "--json is --format json");
    let jobs = listing["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 4);
    for job in jobs {
        let name = job["name"].as_str().unwrap();
        match fs::read(Path::new(job["dir"].as_str().unwrap()).join("jobman-record.json")) {
            Ok(bytes) => {
                let record: Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!((&job["id"], &job["status"]), (&record["id"], &record["status"]), "{name}");
                assert_eq!(job["duration_secs"], record["duration_secs"], "{name}");
                assert_eq!(job["params"], record["ingredients"]["params"], "{name}");
            }
            Err(_) => assert_eq!((&job["status"], &job["duration_secs"]), (&Value::from("pending"), &Value::Null)),
        }
    }

    // status --jobs lists the same Job objects.
    let output = project.cmd(&["status", "--json", "--jobs"]).output().unwrap();
    let with_jobs: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(with_jobs["jobs"], listing["jobs"]);

    let output = project.cmd(&["show", "x2-ya", "--json"]).output().unwrap();
    assert_exit(&output, 0);
    let view: Value = serde_json::from_slice(&output.stdout).expect("show --json is JSON");
    assert_same_shape(&view, &documented_example("### `jobman show --json`"), "show");
    assert_eq!((&view["status"], &view["exit_code"]), (&Value::from("failed"), &Value::from(1)));
}

#[test]
fn show_and_logs_take_a_where_filter_that_names_exactly_one_job() {
    let project = Project::new();
    project.jobfile(&grid(WRITES_BOTH));
    assert_exit(&project.build(&[]), 0);

    let out = project.cmd(&["logs", "--where", "x == 2 and y == 'a'"]).output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "out-x2-ya\n");
    let out = project.cmd(&["show", "--where", "x == 1 and y == 'b'", "--json"]).output().unwrap();
    assert_exit(&out, 0);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["name"], "x1-yb");

    let out = project.runs(&["show", "--where", "x == 2"]).refused();
    assert!(out.stderr().contains("`x == 2` fits 2 jobs:"), "{}", out.stderr());
    let out = project.runs(&["show", "--where", "x == 3"]).refused();
    assert!(out.stderr().contains("no job has params that meet `x == 3`"), "{}", out.stderr());
    let out = project.runs(&["show", "--where", "z == 3"]).refused();
    assert!(out.stderr().contains("unknown parameter `z`"), "{}", out.stderr());
    project.runs(&["show"]).refused();
}

#[test]
fn each_job_records_what_it_used_and_the_report_offers_it_as_columns() {
    let project = Project::with_jobfile(
        r#"
[params]
mb = [1, 80]

[job]
name = "m{{mb}}"
# The shell holds `mb` megabytes in a variable; then it burns CPU for a moment.
command = "x=$(head -c {{mb}}000000 /dev/zero | tr '\\0' a); i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo \"$x\" | wc -c > size.txt"

[report]
columns = ["name", "max_rss_mb", "cpu_secs"]
"#,
    );
    project.builds(&[]).ok();
    let report = project.read("report.csv").unwrap();
    let rows: Vec<Vec<&str>> = report.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let used = |name: &str| -> (f64, f64) {
        let row = rows.iter().find(|r| r[0] == name).unwrap_or_else(|| panic!("{report}"));
        (row[1].parse().unwrap(), row[2].parse().unwrap())
    };
    let ((small_rss, small_cpu), (big_rss, big_cpu)) = (used("m1"), used("m80"));
    assert!(big_rss - small_rss > 60.0, "80 MB held shows in the peak memory: {report}");
    assert!(small_cpu > 0.05 && big_cpu > 0.05, "the loop's CPU time is counted: {report}");
    let show: Value = serde_json::from_str(&project.runs(&["show", "m80", "--json"]).ok().stdout()).unwrap();
    assert_eq!(show["usage"]["max_rss_mb"].as_f64(), Some(big_rss), "{show:#}");
    assert!(project.runs(&["show", "m80"]).ok().stdout().contains(" MB peak memory, "));
    // Not in a report that does not ask for them.
    project.jobfile(
        &project.read("Jobfile.toml").unwrap().replace("columns = [\"name\", \"max_rss_mb\", \"cpu_secs\"]", ""),
    );
    project.builds(&[]).ok();
    assert!(!project.read("report.csv").unwrap().contains("max_rss_mb"));
}
