//! End-to-end tests: the real `jobman` binary, run in a temporary project built by [`Project`].
//!
//! Which jobs ran is observed, never taken from jobman's output: job commands append their name
//! to `ran.log` in the project folder (two levels above the job folder), and [`Project::ran`]
//! reads it. Waits poll against a deadline.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::{cargo_bin, cargo_bin_cmd};
use predicates::prelude::*;
use serde_json::{Value, json};
use tempfile::TempDir;

#[path = "cli/architecture.rs"]
mod architecture;
#[path = "cli/bad_input.rs"]
mod bad_input;
#[path = "cli/cache.rs"]
mod cache;
#[path = "cli/conditional.rs"]
mod conditional;
#[path = "cli/example.rs"]
mod example;
#[path = "cli/explain.rs"]
mod explain;
#[path = "cli/inspect.rs"]
mod inspect;
#[path = "cli/maint.rs"]
mod maint;
#[path = "cli/products.rs"]
mod products;
#[path = "cli/provenance.rs"]
mod provenance;
#[path = "cli/random.rs"]
mod random;
#[path = "cli/resources.rs"]
mod resources;
#[path = "cli/retries.rs"]
mod retries;
#[path = "cli/scaffold.rs"]
mod scaffold;
#[path = "support/skip.rs"]
mod skip;
#[path = "cli/slurm.rs"]
mod slurm;
#[path = "cli/stages.rs"]
mod stages;

/// The usual job command: record that the job ran.
const RECORD_RUN: &str = "echo {{job.name}} >> ../../ran.log";

/// The same, with a command text that does not change with the params.
const RECORD_BY_ENV: &str = "echo $JOBMAN_JOB_NAME >> ../../ran.log";

/// Environment variables tests set on purpose; removed from every run so the suite is hermetic.
const TEST_VARS: &[&str] = &["MY_VAR", "OTHER_VAR", "JOB_SLEEP", "FAIL", "WRITE_RESULTS", "JOBMAN_CACHE"];

/// A project folder: a Jobfile, templates, input files, and the jobs' logs.
struct Project {
    dir: TempDir,
}

impl Project {
    fn new() -> Project {
        Project { dir: tempfile::Builder::new().prefix("jobman-test-").tempdir().expect("a temp dir") }
    }

    /// A new project holding this Jobfile (a raw string, written as a user would).
    fn with_jobfile(text: &str) -> Project {
        let project = Project::new();
        project.jobfile(text);
        project
    }

    /// `jobman build ARGS`, run to its end, for assertions that read as sentences:
    /// `project.builds(&[]).ok().ran(["x1", "x2"])`.
    fn builds(&self, args: &[&str]) -> Exited<'_> {
        Exited { project: self, output: self.build(args) }
    }

    /// `jobman ARGS`, run to its end.
    fn runs(&self, args: &[&str]) -> Exited<'_> {
        Exited { project: self, output: self.cmd(args).output().expect("jobman runs") }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn jobfile(&self, text: &str) -> &Self {
        self.file("Jobfile.toml", text)
    }

    fn template(&self, name: &str, text: &str) -> &Self {
        self.file(&format!("templates/{name}"), text)
    }

    fn file(&self, path: &str, text: &str) -> &Self {
        let path = self.path().join(path);
        fs::create_dir_all(path.parent().expect("a file has a parent")).expect("create folder");
        fs::write(&path, text).expect("write file");
        self
    }

    fn read(&self, path: &str) -> Option<String> {
        fs::read_to_string(self.path().join(path)).ok()
    }

    /// `jobman ARGS` in the project folder, without colours and without the test variables.
    fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = cargo_bin_cmd!("jobman");
        cmd.current_dir(self.path()).args(args).env("NO_COLOR", "1").timeout(Duration::from_secs(60));
        for var in TEST_VARS {
            cmd.env_remove(var);
        }
        cmd
    }

    fn build(&self, args: &[&str]) -> Output {
        self.build_with(args, &[])
    }

    fn build_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.cmd(&[&["build"], args].concat());
        cmd.envs(env.iter().copied());
        cmd.output().expect("jobman runs")
    }

    /// `jobman build ARGS` started in the background, for tests that signal it.
    fn spawn_build(&self, args: &[&str], env: &[(&str, &str)]) -> Background {
        self.spawn_build_into(args, env, Stdio::null())
    }

    /// The same, its stderr written to `file` in the project, for tests that read what it said.
    fn spawn_build_logged(&self, args: &[&str], env: &[(&str, &str)], file: &str) -> Background {
        let log = fs::File::create(self.path().join(file)).expect("create the build's log");
        self.spawn_build_into(args, env, Stdio::from(log))
    }

    fn spawn_build_into(&self, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Background {
        let mut cmd = Command::new(cargo_bin("jobman"));
        cmd.current_dir(self.path())
            .arg("build")
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for var in TEST_VARS {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().copied());
        Background(cmd.spawn().expect("jobman starts"))
    }

    /// The lines of a log in the project folder, in the order written.
    fn lines(&self, log: &str) -> Vec<String> {
        self.read(log).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// The jobs that ran since the last call, sorted; empties `ran.log`.
    fn ran(&self) -> Vec<String> {
        let mut ran = self.lines("ran.log");
        let _ = fs::remove_file(self.path().join("ran.log"));
        ran.sort();
        ran
    }

    /// Every job folder under `scratch_space/`, sorted (not `by-name/`, the folder of links).
    fn job_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(self.path().join("scratch_space")) else { return Vec::new() };
        let mut dirs: Vec<PathBuf> =
            entries.map(|e| e.expect("dir entry").path()).filter(|p| p.is_dir() && !p.ends_with("by-name")).collect();
        dirs.sort();
        dirs
    }

    /// The record of the one job folder whose `jobman-record.json` names this job.
    fn record_of(&self, name: &str) -> Value {
        let mut records: Vec<Value> = self
            .job_dirs()
            .iter()
            .filter_map(|dir| fs::read(dir.join("jobman-record.json")).ok())
            .map(|bytes| serde_json::from_slice::<Value>(&bytes).expect("a record is JSON"))
            .filter(|record| record["name"] == name)
            .collect();
        assert_eq!(records.len(), 1, "expected one record for job {name}: {records:#?}");
        records.remove(0)
    }

    /// Text with the project's path and the 12-hex job ids replaced, for exact comparisons.
    fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        if let Ok(real) = self.path().canonicalize() {
            text = text.replace(&real.display().to_string(), "[ROOT]");
        }
        text = text.replace(&self.path().display().to_string(), "[ROOT]");
        redact_ids(&text)
    }
}

/// Replaces every word of exactly 12 lowercase hex digits with `[ID]`.
fn redact_ids(text: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let is_id = word.len() == 12 && word.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        out.push_str(if is_id { "[ID]" } else { word });
        word.clear();
    };
    for c in text.chars() {
        if is_word(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "unexpected exit status\n--- stdout\n{}--- stderr\n{}",
        stdout(output),
        stderr(output)
    );
    assert!(!stderr(output).contains("panicked"), "jobman panicked:\n{}", stderr(output));
}

/// A jobman command that ended, and its project; each check fails the test with the whole output.
struct Exited<'p> {
    project: &'p Project,
    output: Output,
}

impl Exited<'_> {
    /// It exited with 0.
    #[track_caller]
    fn ok(self) -> Self {
        assert_exit(&self.output, 0);
        self
    }

    /// It exited with 1: a job failed.
    #[track_caller]
    fn job_failed(self) -> Self {
        assert_exit(&self.output, 1);
        self
    }

    /// It exited with 2: a mistake in the input, nothing run.
    #[track_caller]
    fn refused(self) -> Self {
        assert_exit(&self.output, 2);
        self
    }

    /// Exactly these jobs ran (as they logged themselves), in any order.
    #[track_caller]
    fn ran<const N: usize>(self, names: [&str; N]) -> Self {
        let mut expected = names.to_vec();
        expected.sort();
        assert_eq!(self.project.ran(), expected, "the jobs that ran");
        self
    }

    /// No job ran.
    #[track_caller]
    fn ran_nothing(self) -> Self {
        assert_eq!(self.project.ran(), Vec::<String>::new(), "no job should have run");
        self
    }

    /// Its standard error (where jobman's status lines and errors go) holds `text`.
    #[track_caller]
    fn says(self, text: &str) -> Self {
        let said = stderr(&self.output);
        assert!(said.contains(text), "expected {text:?} on stderr:\n{said}");
        self
    }

    fn stdout(&self) -> String {
        stdout(&self.output)
    }

    fn stderr(&self) -> String {
        stderr(&self.output)
    }
}

/// A jobman running in the background; killed if a failing test leaves it running.
struct Background(Child);

impl Background {
    fn id(&self) -> u32 {
        self.0.id()
    }

    /// Whether it has not exited yet.
    fn is_running(&mut self) -> bool {
        self.0.try_wait().is_ok_and(|status| status.is_none())
    }

    /// Waits (at most `limit`) until `log` in `project` has `lines` lines: jobs started.
    #[track_caller]
    fn once_logged(self, project: &Project, log: &str, lines: usize, limit: Duration) -> Self {
        wait_until(&format!("{lines} lines in {log}"), limit, || project.lines(log).len() >= lines);
        self
    }

    /// Ctrl-C, then its exit within `limit`: 130, as any interrupted build.
    #[track_caller]
    fn interrupted(mut self, limit: Duration) -> ExitStatus {
        send_signal("INT", self.id());
        let status = self.wait(limit);
        assert_eq!(status.code(), Some(130), "an interrupted build exits with 130");
        status
    }

    /// Polls until it exits; fails the test after `limit`.
    #[track_caller]
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "jobman did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Polls `done` until it holds; fails the test after `limit`.
#[track_caller]
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "gave up after {limit:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Checks that `ok` keeps holding for the whole `window`.
#[track_caller]
fn holds_for(what: &str, window: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + window;
    loop {
        assert!(ok(), "expected {what}, but it stopped being true");
        if Instant::now() >= end {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `kill -SIGNAL PID` through the `kill` program.
fn send_signal(signal: &str, pid: u32) {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A Jobfile sweeping `x` (written as given, e.g. `[1, 2]`) with the usual command.
fn sweep_x(x: &str, extra_job_keys: &str) -> String {
    format!("[params]\nx = {x}\n\n[job]\nname = \"x{{{{x}}}}\"\ncommand = \"{RECORD_RUN}\"\n{extra_job_keys}")
}

// ---------------------------------------------------------------------------------------------
// Rebuilds and the cache

#[test]
fn a_record_removed_or_edited_by_hand_is_not_trusted_from_the_index() {
    let project = Project::with_jobfile(
        r#"
[params]
x = [1, 2, 3]

[job]
name = "x{{x}}"
command = "echo {{job.name}} >> ../../ran.log"
"#,
    );
    project.builds(&[]).ok().ran(["x1", "x2", "x3"]);
    project.builds(&[]).ok().ran_nothing(); // the second build reads the index

    let record = |name: &str| {
        let id = project.record_of(name)["id"].as_str().expect("an id").to_string();
        project.path().join("scratch_space").join(id).join("jobman-record.json")
    };
    fs::remove_file(record("x1")).unwrap();
    let edited = fs::read_to_string(record("x2")).unwrap().replace("\"status\": \"done\"", "\"status\": \"failed\"");
    fs::write(record("x2"), edited).unwrap();
    project.builds(&[]).ok().ran(["x1", "x2"]); // the index never outvotes the records
}

#[test]
fn a_rebuild_runs_nothing_and_changing_one_param_reruns_only_its_jobs() {
    const JOBFILE: &str = r#"
[params]
x = [1, 2]
y = ["a", "b"]

[job]
name = "x{{x}}-y{{y}}"
command = "echo {{job.name}} >> ../../ran.log"
"#;
    let project = Project::with_jobfile(JOBFILE);
    project.builds(&[]).ok().ran(["x1-ya", "x1-yb", "x2-ya", "x2-yb"]);
    project.builds(&[]).ok().ran_nothing();

    project.jobfile(&JOBFILE.replace("x = [1, 2]", "x = [1, 3]"));
    project.builds(&[]).ok().ran(["x3-ya", "x3-yb"]);

    project.jobfile(JOBFILE);
    project.builds(&[]).ok().ran_nothing(); // reverting reruns nothing
    assert_eq!(project.runs(&["status"]).ok().stdout(), "4 jobs: 4 done, 0 pending\n");
}

#[test]
fn by_name_links_lead_to_the_current_jobs_folders_and_follow_the_jobfile() {
    let project = Project::with_jobfile(&sweep_x("[1, 2]", ""));
    project.builds(&[]).ok();
    let link = |name: &str| fs::read_link(project.path().join("scratch_space/by-name").join(name));
    let x1 = project.record_of("x1")["id"].as_str().unwrap().to_string();
    assert_eq!(link("x1").unwrap(), Path::new("..").join(&x1));
    let record = project.read(&format!("scratch_space/by-name/x1/{}", "jobman-record.json")).unwrap();
    assert!(record.contains(&x1), "the link leads to x1's folder");

    // x1 leaves the Jobfile: its link goes (its folder stays, for gc), x3's comes.
    project.jobfile(&sweep_x("[2, 3]", ""));
    project.builds(&[]).ok();
    assert!(link("x1").is_err() && link("x2").is_ok() && link("x3").is_ok());
    assert!(project.path().join("scratch_space").join(&x1).is_dir());
    project.runs(&["gc", "--yes"]).ok();
    assert!(!project.path().join("scratch_space").join(&x1).exists());
    assert!(link("x2").is_ok(), "gc keeps the links of current jobs");
    project.ran();
    project.builds(&[]).ok().ran_nothing();
}

/// Jobs `hN` that render `templates/cfg.txt.j2` into their folder.
const HIDDEN_WITH_CONFIG: &str = r#"
[params]
hidden = [4, 8, 16, 32]

[[template]]
src = "cfg.txt.j2"

[job]
name = "h{{hidden}}"
command = "echo {{job.name}} >> ../../ran.log"
"#;

#[test]
fn editing_a_template_branch_reruns_only_the_jobs_that_take_it() {
    let project = Project::with_jobfile(HIDDEN_WITH_CONFIG);
    project.template("cfg.txt.j2", "hidden = {{ hidden }}\n{% if hidden > 8 %}wide{% endif %}\n");
    project.builds(&[]).ok().ran(["h4", "h8", "h16", "h32"]);
    let dir = project.record_of("h16")["id"].as_str().unwrap().to_string();
    assert_eq!(project.read(&format!("scratch_space/{dir}/cfg.txt")).unwrap(), "hidden = 16\nwide\n");

    project.template("cfg.txt.j2", "hidden = {{ hidden }}\n{% if hidden > 8 %}wider{% endif %}\n");
    project.builds(&[]).ok().ran(["h16", "h32"]);
}

#[test]
fn a_template_edit_that_renders_the_same_bytes_reruns_nothing() {
    let project = Project::with_jobfile(&HIDDEN_WITH_CONFIG.replace("[4, 8, 16, 32]", "[4, 16]"));
    project.template("cfg.txt.j2", "hidden = {{ hidden }}\n{% if hidden > 8 %}wide{% endif %}\n");
    project.builds(&[]).ok().ran(["h4", "h16"]);

    project.template(
        "cfg.txt.j2",
        "hidden = {{hidden}}{# spacing changed #}\n{% if hidden > 8 %}wide{% endif %}{# only the wide ones #}\n",
    );
    project.builds(&[]).ok().ran_nothing();
}

#[test]
fn changing_a_constant_param_reruns_every_job_and_rewriting_the_same_values_reruns_none() {
    let project = Project::new();
    let body = format!("\n[job]\nname = \"x{{{{x}}}}\"\ncommand = \"{RECORD_RUN}\"\n");
    project.jobfile(&format!("[params]\nx = [1, 2]\nlr = 0.1\n[params.model]\nwidth = 3\n{body}"));
    project.builds(&[]).ok().ran(["x1", "x2"]);

    // The same values spelt differently: spacing, comments, an inline table for the nested one.
    project.jobfile(&format!(
        "# a comment\n[params]\nx = [ 1,\n      2 ]  # the axis\nlr = 1e-1\nmodel = {{ width = 3 }}\n{body}"
    ));
    project.builds(&[]).ok().ran_nothing();

    project.jobfile(&format!("[params]\nx = [1, 2]\nlr = 0.2\n[params.model]\nwidth = 3\n{body}"));
    project.builds(&[]).ok().ran(["x1", "x2"]);

    project.jobfile(&format!("[params]\nx = [1, 2]\nlr = 0.2\n[params.model]\nwidth = 4\n{body}"));
    project.builds(&[]).ok().ran(["x1", "x2"]);
}

#[test]
fn changing_the_command_reruns_every_job_and_requoting_it_reruns_none() {
    let project = Project::new();
    project.jobfile(&sweep_x("[1, 2]", ""));
    project.builds(&[]).ok().ran(["x1", "x2"]);

    // A TOML literal string holding the same command.
    project.jobfile(&format!("[params]\nx = [1, 2]\n\n[job]\nname = 'x{{{{x}}}}'\ncommand = '{RECORD_RUN}'\n"));
    project.builds(&[]).ok().ran_nothing();

    project.jobfile(&format!("[params]\nx = [1, 2]\n\n[job]\nname = 'x{{{{x}}}}'\ncommand = 'true; {RECORD_RUN}'\n"));
    project.builds(&[]).ok().ran(["x1", "x2"]);
}

#[test]
fn changing_an_input_file_reruns_and_touching_it_or_an_undeclared_file_does_not() {
    let project = Project::new();
    project
        .jobfile(&sweep_x("[1, 2]", "inputs = [\"data/*.csv\"]\n"))
        .file("data/a.csv", "a,b\n1,2\n")
        .file("data/notes.txt", "not an input\n");
    project.builds(&[]).ok().ran(["x1", "x2"]);

    // Rewritten with the same bytes: a new mtime, the same content.
    project.file("data/a.csv", "a,b\n1,2\n");
    project.file("data/notes.txt", "still not an input, longer\n");
    project.builds(&[]).ok().ran_nothing();

    project.file("data/a.csv", "a,b\n1,3\n");
    project.builds(&[]).ok().ran(["x1", "x2"]);

    project.file("data/b.csv", "c\n");
    project.builds(&[]).ok().ran(["x1", "x2"]); // a new file matching the glob is a new input
}

#[test]
fn an_input_edited_right_after_a_build_with_the_same_size_is_detected() {
    let project = Project::new();
    project
        .jobfile("[params]\nx = 1\n\n[job]\nname = \"only\"\ninputs = [\"data/*.csv\"]\ncommand = \"cat ../../data/a.csv >> ../../ran.log\"\n")
        .file("data/a.csv", "v00\n");
    project.builds(&[]).ok().ran(["v00"]);
    for i in 1..=20 {
        // Same size, written within milliseconds of the previous build's end.
        let content = format!("v{i:02}\n");
        project.file("data/a.csv", &content);
        assert_exit(&project.build(&[]), 0);
        assert_eq!(project.ran(), [content.trim_end()], "edit {i} was missed");
    }
}

#[test]
fn changing_a_declared_env_var_reruns_and_an_undeclared_one_does_not() {
    let project = Project::new();
    project.jobfile(&sweep_x("[1, 2]", "env = [\"MY_VAR\"]\n"));
    assert_exit(&project.build_with(&[], &[("MY_VAR", "a")]), 0);
    assert_eq!(project.ran(), ["x1", "x2"]);

    assert_exit(&project.build_with(&[], &[("MY_VAR", "a"), ("OTHER_VAR", "z")]), 0);
    assert_eq!(project.ran(), Vec::<String>::new(), "OTHER_VAR is not declared");

    assert_exit(&project.build_with(&[], &[("MY_VAR", "b"), ("OTHER_VAR", "z")]), 0);
    assert_eq!(project.ran(), ["x1", "x2"]);

    assert_exit(&project.build_with(&[], &[]), 0);
    assert_eq!(project.ran(), ["x1", "x2"], "unsetting a declared variable is a change");
}

#[test]
fn changing_the_params_file_name_reruns_and_naming_the_default_does_not() {
    let project = Project::new();
    project.jobfile(&sweep_x("[1, 2]", ""));
    project.builds(&[]).ok().ran(["x1", "x2"]);

    project.jobfile(&sweep_x("[1, 2]", "params_file = \"params.json\"\n"));
    project.builds(&[]).ok().ran_nothing();

    project.jobfile(&sweep_x("[1, 2]", "params_file = \"params.toml\"\n"));
    project.builds(&[]).ok().ran(["x1", "x2"]);
    let mut written: Vec<String> =
        project.job_dirs().iter().filter_map(|dir| fs::read_to_string(dir.join("params.toml")).ok()).collect();
    written.sort();
    assert_eq!(written, ["x = 1\n", "x = 2\n"]);
}

#[test]
fn reordering_an_axis_reruns_nothing() {
    let project = Project::new();
    project.jobfile(&sweep_x("[1, 2, 3]", ""));
    project.builds(&[]).ok().ran(["x1", "x2", "x3"]);

    project.jobfile(&sweep_x("[3, 1, 2]", ""));
    project.builds(&[]).ok().ran_nothing();
}

#[test]
fn adding_a_value_to_an_axis_runs_only_the_new_jobs() {
    let project = Project::new();
    let jobfile = |x: &str| {
        format!(
            "[params]\nx = {x}\nseed = [0, 1]\n\n[job]\nname = \"x{{{{x}}}}-s{{{{seed}}}}\"\ncommand = \"{RECORD_RUN}\"\n"
        )
    };
    project.jobfile(&jobfile("[1, 2]"));
    assert_exit(&project.build(&[]), 0);
    assert_eq!(project.ran().len(), 4);

    project.jobfile(&jobfile("[1, 5, 2]"));
    project.builds(&[]).ok().ran(["x5-s0", "x5-s1"]);
}

#[test]
fn changing_the_timeout_reruns_nothing() {
    let project = Project::new();
    project.jobfile(&sweep_x("[1, 2]", ""));
    project.builds(&[]).ok().ran(["x1", "x2"]);

    project.jobfile(&sweep_x("[1, 2]", "timeout = \"1h\"\n"));
    project.builds(&[]).ok().ran_nothing();

    project.jobfile(&sweep_x("[1, 2]", "timeout = 600\n"));
    project.builds(&[]).ok().ran_nothing();
}

#[test]
fn changing_the_results_file_name_reruns_nothing() {
    let project = Project::new();
    let jobfile = |results: &str| {
        format!(
            "[params]\nx = [1, 2]\n\n[job]\nname = \"x{{{{x}}}}\"\ncommand = \"echo {{}} > a.json; echo {{}} > b.json; {RECORD_RUN}\"\nresults = \"{results}\"\n"
        )
    };
    project.jobfile(&jobfile("a.json"));
    project.builds(&[]).ok().ran(["x1", "x2"]);

    project.jobfile(&jobfile("b.json"));
    project.builds(&[]).ok().ran_nothing();
}

#[test]
fn moving_the_project_folder_reruns_nothing() {
    let project = Project::new();
    project
        .jobfile(&format!(
            "[params]\nx = [1, 2]\n\n[[template]]\nsrc = \"where.txt.j2\"\n\n[job]\nname = \"x{{{{x}}}}\"\ninputs = [\"data/*.csv\"]\ncommand = \"{RECORD_RUN}\"\n"
        ))
        .template("where.txt.j2", "{{ job.dir }}\n")
        .file("data/a.csv", "1\n")
        .file("before/.keep", "");
    // Build in `before/`, move it to `after/`, build again: job.dir changed, nothing else did.
    for entry in ["Jobfile.toml", "templates", "data"] {
        fs::rename(project.path().join(entry), project.path().join("before").join(entry)).unwrap();
    }
    project.runs(&["-f", "before/Jobfile.toml", "build"]).ok();
    assert_eq!(project.lines("before/ran.log").len(), 2);
    fs::rename(project.path().join("before"), project.path().join("after")).unwrap();

    project.runs(&["-f", "after/Jobfile.toml", "build"]).ok();
    assert_eq!(project.lines("after/ran.log").len(), 2, "moving the project reran jobs");
    let output = project.cmd(&["-f", "after/Jobfile.toml", "status"]).output().unwrap();
    assert_eq!(stdout(&output), "2 jobs: 2 done, 0 pending\n");
}

// ---------------------------------------------------------------------------------------------
// Failures

#[test]
fn a_failing_job_is_not_cached_and_the_others_still_run() {
    let project = Project::new();
    project.jobfile(&format!(
        r#"[params]
x = [1, 2, 3]

[job]
name = "x{{{{x}}}}"
command = "{RECORD_RUN}; if [ {{{{x}}}} = 2 ]; then echo 'loading data' >&2; echo 'boom: x is two' >&2; exit 1; fi"
"#
    ));
    let output = project.builds(&["-j", "1"]).job_failed();
    assert_eq!(project.ran(), ["x1", "x2", "x3"]);
    let text = project.redact(&output.stderr());
    assert!(
        text.contains(
            "  x2 (failed, exit code 1)\n    log: scratch_space/[ID]/stderr.log\n      | loading data\n      | boom: x is two\n"
        ),
        "{text}"
    );
    assert!(text.contains("3 jobs: 2 ran, 0 cached, 1 failed in "), "{text}");
    assert_eq!(project.record_of("x2")["status"], "failed");
    assert_eq!(project.record_of("x2")["exit_code"], 1);

    let output = project.builds(&[]).job_failed();
    assert_eq!(project.ran(), ["x2"], "only the failed job reruns");
    assert!(output.stderr().contains("3 jobs: 0 ran, 2 cached, 1 failed in "), "{}", output.stderr());
}

#[test]
fn fail_fast_starts_no_new_job_after_a_failure() {
    let project = Project::new();
    // The failing job leaves a long log (20 MB on stderr), as a crashed training run does.
    project.jobfile(&format!(
        r#"[params]
x = [1, 2, 3, 4]

[job]
name = "x{{{{x}}}}"
command = "{RECORD_RUN}; if [ {{{{x}}}} = 2 ]; then yes 'a long log line' | head -c 20000000 >&2; exit 1; fi"
"#
    ));
    project.builds(&["-j", "1", "--fail-fast"]).job_failed();
    assert_eq!(project.ran(), ["x1", "x2"], "no job may start after x2 failed");

    // The jobs it skipped are still pending, and run next time with the failed one.
    project.builds(&["-j", "1"]).job_failed();
    assert_eq!(project.ran(), ["x2", "x3", "x4"]);
}

#[test]
fn a_declared_results_file_that_is_missing_means_the_job_is_not_done() {
    let project = Project::new();
    project.jobfile(&format!(
        r#"[params]
x = [1, 2]

[job]
name = "x{{{{x}}}}"
results = "out.json"
command = "{RECORD_RUN}; if [ -n \"$WRITE_RESULTS\" ]; then echo '{{\"loss\": 1}}' > out.json; fi"
"#
    ));
    let output = project.builds(&[]).job_failed();
    assert_eq!(project.ran(), ["x1", "x2"]);
    assert!(output.stderr().contains("results file out.json is missing"), "{}", output.stderr());
    assert_eq!(project.record_of("x1")["status"], "failed");

    project.builds(&[]).job_failed().ran(["x1", "x2"]); // jobs without their results rerun

    assert_exit(&project.build_with(&[], &[("WRITE_RESULTS", "1")]), 0);
    assert_eq!(project.ran(), ["x1", "x2"]);

    project.builds(&[]).ok().ran_nothing();
}

// ---------------------------------------------------------------------------------------------
// Stopping: kill -9, timeouts, Ctrl-C

/// Jobs `n1`..`n4`; `n3` and `n4` sleep `$JOB_SLEEP` seconds before they record their run.
fn slow_and_fast_jobs() -> String {
    r#"[params]
n = [1, 2, 3, 4]

[job]
name = "n{{n}}"
command = "echo {{job.name}} >> ../../started.log; {% if n > 2 %}sleep ${JOB_SLEEP:-0}; {% endif %}echo {{job.name}} >> ../../ran.log"
"#
    .to_string()
}

#[test]
fn kill_9_of_jobman_stops_its_jobs_and_the_next_build_reruns_only_the_unfinished_ones() {
    let project = Project::new();
    project.jobfile(&slow_and_fast_jobs());
    let mut jobman = project.spawn_build(&["-j", "2"], &[("JOB_SLEEP", "2")]);
    wait_until("the fast jobs finished and the slow ones started", Duration::from_secs(20), || {
        let mut started = project.lines("started.log");
        started.sort();
        let mut ran = project.lines("ran.log");
        ran.sort();
        ran == ["n1", "n2"] && started == ["n1", "n2", "n3", "n4"]
    });
    send_signal("KILL", jobman.id());
    let status = jobman.wait(Duration::from_secs(5));
    assert_eq!(status.code(), None, "jobman was killed by a signal");

    // Had the slow jobs survived, they would record their run 2 s after starting.
    holds_for("the killed jobs never to finish", Duration::from_millis(2800), || project.lines("ran.log").len() == 2);
    assert_eq!(project.ran(), ["n1", "n2"]);

    let status = project.cmd(&["status"]).output().unwrap();
    assert_eq!(stdout(&status), "4 jobs: 2 done, 2 pending\n");
    let output = project.builds(&["--dry-run"]).ok();
    assert_eq!(
        project.redact(&output.stdout()),
        "would run 2 of 4 jobs:
  [ID]  n3  interrupted last time (no record)
  [ID]  n4  interrupted last time (no record)
up to date: 2 jobs
report.csv would be remade: 2 jobs would run first
figures/index.html would be remade: the report or figures would be remade first
"
    );

    project.builds(&[]).ok();
    assert_eq!(project.ran(), ["n3", "n4"]);
}

/// The children of a process whose command line contains `word`.
fn children_running(pid: u32, word: &str) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .filter_map(|task| fs::read_to_string(task.ok()?.path().join("children")).ok())
        .flat_map(|children| children.split_whitespace().filter_map(|c| c.parse().ok()).collect::<Vec<u32>>())
        .filter(|child| {
            let cmdline = fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(word)
        })
        .collect()
}

#[test]
fn a_build_after_jobman_and_its_watchdog_were_killed_stops_the_jobs_left_behind() {
    let project = Project::new();
    let root = project.path().display().to_string();
    project.jobfile(&format!(
        r#"[params]
n = [1, 2]

[job]
name = "n{{{{n}}}}"
command = "echo {{{{job.name}}}} >> {root}/started.log; sleep ${{JOB_SLEEP:-0}}; echo {{{{job.name}}}}${{JOB_SLEEP:+ late}} >> {root}/ran.log"
"#
    ));
    let mut jobman = project.spawn_build(&["-j", "2"], &[("JOB_SLEEP", "3")]);
    wait_until("both jobs started", Duration::from_secs(20), || project.lines("started.log").len() == 2);
    let started = Instant::now();
    let watchdog = children_running(jobman.id(), "__watchdog");
    assert_eq!(watchdog.len(), 1, "one watchdog process");
    send_signal("KILL", watchdog[0]);
    send_signal("KILL", jobman.id());
    jobman.wait(Duration::from_secs(5));

    project.builds(&[]).ok().says("left running by an earlier build");
    assert_eq!(project.ran(), ["n1", "n2"]);
    // The orphaned jobs would write `late` 3 s after they started.
    let window = Duration::from_millis(3800).saturating_sub(started.elapsed());
    holds_for("the orphaned jobs never to finish", window, || project.read("ran.log").is_none());
}

#[test]
fn a_build_looks_at_no_process_but_its_own_jobs() {
    use std::os::unix::process::CommandExt as _;
    let project = Project::new();
    project.jobfile(&slow_and_fast_jobs());
    // A process of another kind that carries a job's environment: a build that searched the
    // machine's processes for its jobs would take it for a leftover job and kill it.
    let jobs_dir = project.path().join("scratch_space");
    let mut bystander = Command::new("sleep")
        .arg("30")
        .env("JOBMAN_JOB_DIR", jobs_dir.join("0123456789ab"))
        .process_group(0)
        .spawn()
        .expect("sleep starts");
    // jobman waits for its watchdog to end: both had their chance.
    project.builds(&["-j", "2"]).ok();
    assert!(bystander.try_wait().unwrap().is_none(), "the bystander still runs");
    let _ = bystander.kill();
    let _ = bystander.wait();
    // A build that ended well leaves no list of running job groups behind.
    assert!(!project.path().join(".jobman/running").exists());
}

#[test]
fn a_job_over_its_timeout_is_killed_with_its_whole_process_group() {
    let project = Project::new();
    project.jobfile(
        r#"[params]
x = [1]

[job]
name = "x{{x}}"
timeout = "1s"
command = "sh -c 'sleep 2; echo late >> ../../late.log' & sleep 30; echo {{job.name}} >> ../../ran.log"
"#,
    );
    let started = Instant::now();
    let output = project.build(&[]);
    let took = started.elapsed();
    assert_exit(&output, 1);
    assert!(took < Duration::from_secs(4), "the timeout took {took:?}");
    assert_eq!(project.record_of("x1")["status"], "timed_out");
    let status = project.cmd(&["status"]).output().unwrap();
    assert_eq!(stdout(&status), "1 job: 0 done, 1 timed out, 0 pending\n");
    assert!(stderr(&output).contains("x1 (timed out: over its timeout of 1s)"), "{}", stderr(&output));

    // The grandchild would write 2 s after the job started.
    let window = Duration::from_millis(3000).saturating_sub(started.elapsed());
    holds_for("the grandchild never to write", window, || project.read("late.log").is_none());
    assert_eq!(project.ran(), Vec::<String>::new());
}

#[test]
fn a_job_that_ignores_sigterm_is_killed_after_a_grace_period() {
    let project = Project::new();
    project.jobfile(
        r#"[params]
x = [1]

[job]
name = "x{{x}}"
timeout = "1s"
command = "trap '' TERM; sleep 30; echo {{job.name}} >> ../../ran.log"
"#,
    );
    let started = Instant::now();
    project.builds(&[]).job_failed();
    assert!(started.elapsed() < Duration::from_secs(10), "the timeout took {:?}", started.elapsed());
    assert_eq!(project.record_of("x1")["status"], "timed_out");
    assert_eq!(project.ran(), Vec::<String>::new());
}

#[test]
fn ctrl_c_stops_running_jobs_exits_130_and_they_rerun_next_time() {
    let project = Project::new();
    project.jobfile(
        r#"[params]
n = [3, 4, 5]

[job]
name = "n{{n}}"
command = "echo {{job.name}} >> ../../started.log; sleep ${JOB_SLEEP:-0}; echo {{job.name}} >> ../../ran.log"
"#,
    );
    let jobman = project.spawn_build_logged(&["-j", "2"], &[("JOB_SLEEP", "2")], "build.err");
    let jobman = jobman.once_logged(&project, "started.log", 2, Duration::from_secs(20));
    let signalled = Instant::now();
    jobman.interrupted(Duration::from_secs(10));
    assert!(signalled.elapsed() < Duration::from_millis(1500), "jobman took {:?} to stop", signalled.elapsed());
    assert_eq!(project.record_of("n3")["status"], "interrupted");
    let said = project.read("build.err").unwrap();
    assert!(said.contains("3 jobs: 0 ran, 0 cached, 0 failed, 2 interrupted, 1 not started"), "{said}");
    let status = project.cmd(&["status"]).output().unwrap();
    assert_eq!(stdout(&status), "3 jobs: 0 done, 2 interrupted, 1 pending\n");

    holds_for("the interrupted jobs never to finish", Duration::from_millis(2500), || {
        project.read("ran.log").is_none()
    });

    project.builds(&[]).ok().ran(["n3", "n4", "n5"]);
}

// ---------------------------------------------------------------------------------------------
// Dry runs, --force, --where

#[test]
fn a_dry_run_runs_nothing_and_says_why_each_job_and_product_would_be_made() {
    let project = Project::new();
    project.jobfile(&format!(
        "[params]\nx = [1]\n\n[job]\nname = \"x{{{{x}}}}\"\ncommand = \"{RECORD_BY_ENV}; test -z \\\"$FAIL\\\"\"\n"
    ));
    let output = project.builds(&["--dry-run"]).ok();
    assert_eq!(
        project.redact(&output.stdout()),
        concat!(
            "would run 1 of 1 job:\n  [ID]  x1  new job\nup to date: 0 jobs\n",
            "report.csv would be remade: 1 job would run first\nfigures/index.html would be remade: the report or figures would be remade first\n"
        )
    );
    assert_eq!(project.ran(), Vec::<String>::new());
    assert!(project.job_dirs().is_empty(), "a dry run makes no job folder");

    project.builds(&[]).ok().ran(["x1"]);
    let old_id = project.record_of("x1")["id"].as_str().unwrap().to_string();

    project.jobfile(&format!(
        "[params]\nx = [2]\n\n[job]\nname = \"x{{{{x}}}}\"\ncommand = \"{RECORD_BY_ENV}; test -z \\\"$FAIL\\\"\"\n"
    ));
    let output = project.builds(&["-n"]).ok();
    assert_eq!(
        project.redact(&output.stdout().replace(&old_id, "[OLD]")),
        concat!(
            "would run 1 of 1 job:\n  [ID]  x2  param `x` changed 1 → 2 (closest previous job: [OLD] x1)\nup to date: 0 jobs\n",
            "report.csv would be remade: 1 job would run first\nfigures/index.html would be remade: the report or figures would be remade first\n"
        )
    );
    assert_eq!(project.ran(), Vec::<String>::new());

    assert_exit(&project.build_with(&[], &[("FAIL", "1")]), 1);
    assert_eq!(project.ran(), ["x2"]);
    let output = project.builds(&["-n"]).ok();
    assert_eq!(
        project.redact(&output.stdout()),
        concat!(
            "would run 1 of 1 job:\n  [ID]  x2  failed last time (exit code 1)\nup to date: 0 jobs\n",
            "report.csv would be remade: 1 job would run first\nfigures/index.html would be remade: the report or figures would be remade first\n"
        )
    );
    assert_eq!(project.ran(), Vec::<String>::new());
}

#[test]
fn a_dry_run_of_many_jobs_lists_the_first_hundred_and_sums_up_the_rest() {
    let project = Project::with_jobfile(&sweep_x("{ range = [0, 150] }", ""));
    let text = project.runs(&["build", "-n"]).ok().stdout();
    assert!(text.starts_with("would run 150 of 150 jobs:\n"), "{text}");
    assert_eq!(text.lines().filter(|l| l.ends_with("  new job")).count(), 100, "{text}");
    assert!(text.contains("  … and 50 more (50 new); `jobman explain` lists every one\n"), "{text}");
    let all = project.runs(&["explain"]).ok().stdout();
    assert_eq!(all.lines().filter(|l| l.ends_with("  new job")).count(), 150);
    // Read in part (`| head`), it ends quietly: no panic on the closed pipe.
    let mut child = Command::new(cargo_bin("jobman"))
        .current_dir(project.path())
        .args(["build", "-n"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn force_reruns_done_jobs_and_where_selects_them() {
    let project = Project::new();
    project.jobfile(&sweep_x("[1, 2, 3]", ""));
    project.builds(&["--where", "x == 1"]).ok().ran(["x1"]);

    project.builds(&[]).ok().ran(["x2", "x3"]);

    project.builds(&["--force"]).ok().ran(["x1", "x2", "x3"]);

    project.builds(&["--force", "--where", "x >= 2"]).ok().ran(["x2", "x3"]);
}

#[test]
fn a_forced_rerun_that_fails_keeps_the_finished_result() {
    let project = Project::new();
    project.jobfile(&format!(
        "[params]\nx = [1]\n\n[job]\nname = \"x{{{{x}}}}\"\ncommand = \"{RECORD_RUN}; echo ${{FAIL:-good}} > out.txt; test -z \\\"$FAIL\\\"\"\n"
    ));
    assert_exit(&project.build(&[]), 0);
    let id = project.record_of("x1")["id"].as_str().expect("an id").to_string();

    assert_exit(&project.build_with(&["--force"], &[("FAIL", "bad")]), 1);
    assert_eq!(project.ran(), ["x1", "x1"]);
    assert_eq!(project.read(&format!("scratch_space/{id}/out.txt")).as_deref(), Some("bad\n"));
    let previous = format!("scratch_space/{id}.previous");
    assert_eq!(project.read(&format!("{previous}/out.txt")).as_deref(), Some("good\n"));
    let record: Value =
        serde_json::from_str(&project.read(&format!("{previous}/jobman-record.json")).unwrap()).unwrap();
    assert_eq!(record["status"], "done");
}

#[test]
fn an_unknown_param_in_where_is_refused_with_a_suggestion() {
    let project = Project::new();
    project.jobfile(&format!(
        "[params]\nhidden = [1, 2]\n\n[job]\nname = \"h{{{{hidden}}}}\"\ncommand = \"{RECORD_RUN}\"\n"
    ));
    let output = project.builds(&["--where", "hiden == 1"]).refused();
    assert_eq!(
        output.stderr(),
        "error: unknown parameter `hiden` in `hiden == 1`
 --> --where:1:1
  |
1 | hiden == 1
  | ^^^^^^^^^^ not a parameter of this Jobfile
  |
help: did you mean `hidden`?
"
    );
    assert_eq!(project.ran(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// The sweep

#[test]
fn the_sweep_is_the_product_in_declaration_order_first_axis_slowest() {
    let project = Project::new();
    project.jobfile(
        r#"[params]
a = [2, 1]
b = ["x", "y", "z"]
c = 0

[job]
name = "a{{a}}-b{{b}}-c{{c}}"
command = "echo $JOBMAN_JOB_INDEX {{job.index}} {{job.name}} >> ../../ran.log"
"#,
    );
    assert_exit(&project.build(&["-j", "1"]), 0);
    assert_eq!(
        project.lines("ran.log"),
        strings(&["0 0 a2-bx-c0", "1 1 a2-by-c0", "2 2 a2-bz-c0", "3 3 a1-bx-c0", "4 4 a1-by-c0", "5 5 a1-bz-c0"])
    );
}

#[test]
fn zip_where_and_include_shape_the_sweep() {
    let project = Project::new();
    project.jobfile(
        r#"[params]
h = [1, 2, 3]
s = [0, 1]
b = [10, 20, 30]

[sweep]
zip = [["h", "b"]]
where = "not (h == 2 and s == 1)"
include = [{ h = 9, s = 9, b = 9 }]

[job]
name = "h{{h}}-s{{s}}-b{{b}}"
command = "echo $JOBMAN_JOB_INDEX {{job.name}} >> ../../ran.log"
"#,
    );
    assert_exit(&project.build(&["-j", "1"]), 0);
    assert_eq!(
        project.lines("ran.log"),
        strings(&["0 h1-s0-b10", "1 h1-s1-b10", "2 h2-s0-b20", "3 h3-s0-b30", "4 h3-s1-b30", "5 h9-s9-b9"])
    );
}

#[test]
fn duplicate_points_are_an_error_naming_both_jobs() {
    let project = Project::new();
    project.jobfile(&format!(
        "[params]\nh = [1, 2]\n\n[sweep]\ninclude = [{{ h = 2 }}]\n\n[job]\nname = \"h{{{{h}}}}\"\ncommand = \"{RECORD_RUN}\"\n"
    ));
    project
        .cmd(&["build"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("error: jobs 1 and 2 have the same parameters: h=2"));
    project.jobfile(&sweep_x("[1, 2, 1]", ""));
    project
        .cmd(&["build"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("error: jobs 0 and 2 have the same parameters: x=1"));
    assert_eq!(project.ran(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// Bad input: exit code 2, a diagnostic with file, line:col, what was expected and a suggestion

/// Runs `jobman build` on `jobfile` and returns its stderr, checking it failed with 2 and ran
/// nothing.
#[track_caller]
fn refused(project: &Project, jobfile: &str) -> String {
    project.jobfile(jobfile);
    let output = project.builds(&[]).refused();
    assert_eq!(project.ran(), Vec::<String>::new());
    assert!(project.job_dirs().is_empty(), "nothing may run on bad input");
    project.redact(&output.stderr())
}

#[test]
fn several_mistakes_are_reported_at_once() {
    let project = Project::new();
    let text = refused(&project, "[parms]\nx = 1\n\n[job]\ncomand = \"true\"\n");
    assert_eq!(
        text,
        "error: unknown key `parms`
 --> Jobfile.toml:1:2
  |
1 | [parms]
  |  ^^^^^ not a Jobfile section
  |
help: did you mean `params`?

error: [job] needs a `command`
 --> Jobfile.toml:4:1
  |
4 | [job]
  | ^^^^^ expected `command = \"...\"`
  |
help: add e.g. `command = \"python3 train.py\"`

error: unknown key `comand`
 --> Jobfile.toml:5:1
  |
5 | comand = \"true\"
  | ^^^^^^ not a [job] key
  |
help: did you mean `command`?

error: 3 mistakes found
"
    );
}

#[test]
fn an_unknown_section_is_refused() {
    let project = Project::new();
    let text = refused(&project, &format!("{}\n[sweeep]\nwhere = \"x > 1\"\n", sweep_x("[1, 2]", "")));
    assert!(text.contains("error: unknown key `sweeep`\n --> Jobfile.toml:8:2\n"), "{text}");
    assert!(text.contains("not a Jobfile section"), "{text}");
    assert!(text.contains("help: did you mean `sweep`?"), "{text}");
}

#[test]
fn an_unknown_job_key_is_refused() {
    let project = Project::new();
    let text = refused(&project, &sweep_x("[1, 2]", "timout = \"1s\"\n"));
    assert_eq!(
        text,
        "error: unknown key `timout`
 --> Jobfile.toml:7:1
  |
7 | timout = \"1s\"
  | ^^^^^^ not a [job] key
  |
help: did you mean `timeout`?
"
    );
}

#[test]
fn a_toml_syntax_error_is_refused_with_its_line_and_column() {
    let project = Project::new();
    let text = refused(&project, "[params]\nx = [1, 2]\n\n[job]\ncommand = \"true\n");
    assert_eq!(
        text,
        "error: invalid TOML: invalid basic string, expected `\"`
 --> Jobfile.toml:5:16
  |
5 | command = \"true
  |                ^ here
"
    );
}

#[test]
fn a_value_of_the_wrong_type_is_refused() {
    let project = Project::new();
    let text = refused(&project, "[params]\nx = [1, 2]\n\n[job]\ncommand = 5\n");
    assert_eq!(
        text,
        "error: `command` must be a string
 --> Jobfile.toml:5:11
  |
5 | command = 5
  |           ^ expected the command that runs a job, found an integer
"
    );
    let text = refused(&project, &sweep_x("[1, 2]", "timeout = true\n"));
    assert!(text.contains("error: invalid timeout\n --> Jobfile.toml:7:11\n"), "{text}");
    assert!(text.contains("expected a duration such as \"10m\", found a boolean"), "{text}");
}

#[test]
fn an_unknown_param_in_the_sweep_filter_is_refused_with_a_suggestion() {
    let project = Project::new();
    let text = refused(
        &project,
        &format!("[params]\nhidden = [1, 2]\n\n[sweep]\nwhere = \"hiden > 1\"\n\n[job]\ncommand = \"{RECORD_RUN}\"\n"),
    );
    assert_eq!(
        text,
        "error: unknown parameter `hiden` in `hiden > 1`
 --> Jobfile.toml:5:9
  |
5 | where = \"hiden > 1\"
  |         ^^^^^^^^^^^ not a parameter of this Jobfile
  |
help: did you mean `hidden`?
"
    );
}

#[test]
fn a_template_using_an_undefined_variable_is_refused_naming_the_template_and_line() {
    let project = Project::new();
    project.template("cfg.txt.j2", "# config\nsize = {{ hiden }}\n");
    let text = refused(
        &project,
        &format!(
            "[params]\nhidden = [1, 2]\n\n[[template]]\nsrc = \"cfg.txt.j2\"\n\n[job]\ncommand = \"{RECORD_RUN}\"\n"
        ),
    );
    assert_eq!(
        text,
        "error: cannot render template `cfg.txt.j2`: undefined variable
 --> templates/cfg.txt.j2:2:11
  |
2 | size = {{ hiden }}
  |           ^^^^^ `hiden` is undefined
  |
help: did you mean `hidden`?
"
    );
}

#[test]
fn an_undefined_variable_in_the_command_is_refused_with_a_suggestion() {
    let project = Project::new();
    let text = refused(&project, "[params]\nhidden = [1, 2]\n\n[job]\ncommand = \"echo {{ hiden }}\"\n");
    assert_eq!(
        text,
        "error: cannot render this Jobfile string: undefined variable
 --> Jobfile.toml:5:20
  |
5 | command = \"echo {{ hiden }}\"
  |                    ^^^^^ `hiden` is undefined
  |
help: did you mean `hidden`?
"
    );
}

#[test]
fn a_missing_template_file_is_refused_with_a_suggestion() {
    let project = Project::new();
    project.template("cfg.txt.j2", "ok\n");
    let text = refused(
        &project,
        &format!("[params]\nx = [1, 2]\n\n[[template]]\nsrc = \"cgf.txt.j2\"\n\n[job]\ncommand = \"{RECORD_RUN}\"\n"),
    );
    assert_eq!(
        text,
        "error: template `cgf.txt.j2` not found in [ROOT]/templates
 --> Jobfile.toml:5:7
  |
5 | src = \"cgf.txt.j2\"
  |       ^^^^^^^^^^^^ no such file
  |
help: did you mean `cfg.txt.j2`?
"
    );
}

#[test]
fn a_template_target_outside_the_job_folder_is_refused() {
    let project = Project::new();
    project.template("cfg.txt.j2", "ok\n");
    for target in ["../escape.txt", "sub/../../escape.txt", "/tmp/jobman-absolute-target.txt"] {
        let text = refused(
            &project,
            &format!(
                "[params]\nx = [1, 2]\n\n[[template]]\nsrc = \"cfg.txt.j2\"\ntarget = \"{target}\"\n\n[job]\ncommand = \"{RECORD_RUN}\"\n"
            ),
        );
        assert!(
            text.contains(&format!("error: template target `{target}` is refused\n --> Jobfile.toml:6:10\n")),
            "{text}"
        );
        assert!(text.contains("it must stay inside the job folder (no `..`, not absolute)"), "{text}");
        assert!(project.read("escape.txt").is_none() && project.read("scratch_space/escape.txt").is_none());
    }
    assert!(!Path::new("/tmp/jobman-absolute-target.txt").exists());
}

#[test]
fn zip_groups_of_different_lengths_are_refused() {
    let project = Project::new();
    let text = refused(
        &project,
        &format!(
            "[params]\nx = [1, 2]\nb = [1, 2, 3]\n\n[sweep]\nzip = [[\"x\", \"b\"]]\n\n[job]\ncommand = \"{RECORD_RUN}\"\n"
        ),
    );
    assert_eq!(
        text,
        "error: zipped parameters must have the same number of values
 --> Jobfile.toml:6:8
  |
6 | zip = [[\"x\", \"b\"]]
  |        ^^^^^^^^^^ x has 2, b has 3
  |
help: give each parameter of a zip group as many values as the others
"
    );
}

#[test]
fn an_empty_axis_is_refused() {
    let project = Project::new();
    let text = refused(&project, &sweep_x("[]", ""));
    assert_eq!(
        text,
        "error: parameter `x` has no values
 --> Jobfile.toml:2:5
  |
2 | x = []
  |     ^^ an axis needs at least one value
"
    );
    let text = refused(&project, &sweep_x("{ range = [3, 3] }", ""));
    assert!(text.contains("error: this axis has no values\n --> Jobfile.toml:2:15\n"), "{text}");
}

#[test]
fn a_job_without_a_command_is_refused() {
    let project = Project::new();
    let text = refused(&project, "[params]\nx = [1, 2]\n\n[job]\nname = \"x{{x}}\"\n");
    assert_eq!(
        text,
        "error: [job] needs a `command`
 --> Jobfile.toml:4:1
  |
4 | [job]
  | ^^^^^ expected `command = \"...\"`
  |
help: add e.g. `command = \"python3 train.py\"`
"
    );
    let text = refused(&project, "[params]\nx = [1, 2]\n");
    assert!(text.contains("error: missing [job] section"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// What a job sees

#[test]
fn a_template_sees_its_own_params_over_the_jobs_and_writes_them_as_yaml() {
    let jobfile = r#"[params]
lr = [0.1]
model = { width = 32, depth = 2 }

[[template]]
src = "model.txt.j2"
params = { model = { width = 64 }, optimizer = "adam" }
params_file = "model.yaml"

[[template]]
src = "train.txt.j2"

[job]
name = "lr{{lr}}"
command = "echo {{job.name}} >> ../../ran.log"
params_file = "params.json"
"#;
    let project = Project::with_jobfile(jobfile);
    project.template("model.txt.j2", "{{ model.width }} {{ model.depth }} {{ optimizer }} {{ lr }}\n");
    project.template("train.txt.j2", "{{ model.width }}\n");
    project.builds(&[]).ok().ran(["lr0.1"]);
    let dir = project.job_dirs().pop().unwrap();
    let read = |name: &str| fs::read_to_string(dir.join(name)).unwrap();
    assert_eq!(read("model.txt"), "64 2 adam 0.1\n", "its own params over the job's, tables merged");
    assert_eq!(read("train.txt"), "32\n", "another template sees the job's params");
    let yaml = read("model.yaml");
    for line in ["lr: 0.1", "optimizer: adam", "  width: 64", "  depth: 2"] {
        assert!(yaml.lines().any(|l| l == line), "{line:?} in {yaml}");
    }
    // The template's params are part of the key: changing them reruns the job.
    project.jobfile(&jobfile.replace("optimizer = \"adam\"", "optimizer = \"sgd\""));
    project.builds(&[]).ok().ran(["lr0.1"]);
    project.builds(&[]).ok().ran_nothing();
}

#[test]
fn a_jobs_output_reaches_its_logs_whole_even_past_its_own_end() {
    let project = Project::new();
    // x1 writes a megabyte to each stream; x2 leaves a process writing to its stdout without end
    // and ends; x3 writes nothing and fails.
    project.jobfile(
        r#"[params]
x = [1, 2, 3]

[job]
name = "x{{x}}"
command = "{% if x == 1 %}head -c 1000000 /dev/zero | tr '\\0' o; head -c 1000000 /dev/zero | tr '\\0' e >&2{% elif x == 2 %}echo before; yes & sleep 0.3{% else %}exit 3{% endif %}"
"#,
    );
    let started = Instant::now();
    let out = project.builds(&[]).job_failed();
    assert!(started.elapsed() < Duration::from_secs(10), "a process left holding a pipe held the build");
    let dir = |name: &str| project.path().join("scratch_space/by-name").join(name);
    let size = |path: PathBuf| fs::metadata(path).map(|m| m.len()).ok();
    assert_eq!(
        (size(dir("x1").join("stdout.log")), size(dir("x1").join("stderr.log"))),
        (Some(1_000_000), Some(1_000_000))
    );
    let x2 = fs::read_to_string(dir("x2").join("stdout.log")).unwrap();
    assert!(x2.starts_with("before\ny\ny\n"), "{}", &x2[..x2.len().min(40)]);
    assert!(!dir("x3").join("stdout.log").exists() && !dir("x3").join("stderr.log").exists());
    out.says("x3 (failed, exit code 3)").says("it wrote nothing to stderr");
    let logs = project.runs(&["logs", "x3"]).ok();
    assert_eq!(logs.stdout(), "", "a job that wrote nothing has nothing to show");
}

#[test]
fn jobs_see_their_id_folder_and_index_and_their_params_file() {
    let project = Project::new();
    project
        .jobfile(
            r#"[params]
x = [1, 2]
lr = 0.5
tag = "a b"
[params.model]
width = 3

[[template]]
src = "id.txt.j2"

[job]
name = "x{{x}}"
command = "printf '%s\n%s\n%s\n' \"$JOBMAN_JOB_ID\" \"$JOBMAN_JOB_DIR\" \"$JOBMAN_JOB_INDEX\" > env.txt; [ {{x}} = 1 ] || echo said"
"#,
        )
        .template("id.txt.j2", "{{ job.id }}\n");
    assert_exit(&project.build(&[]), 0);
    let dirs = project.job_dirs();
    assert_eq!(dirs.len(), 2);
    let mut indices = Vec::new();
    for dir in &dirs {
        let id = dir.file_name().unwrap().to_str().unwrap();
        assert!(id.len() == 12 && id.chars().all(|c| c.is_ascii_hexdigit()), "folder {id}");
        let env = fs::read_to_string(dir.join("env.txt")).unwrap();
        let env: Vec<&str> = env.lines().collect();
        assert_eq!(env[0], id, "JOBMAN_JOB_ID");
        assert_eq!(Path::new(env[1]).canonicalize().unwrap(), dir.canonicalize().unwrap(), "JOBMAN_JOB_DIR");
        assert_eq!(fs::read_to_string(dir.join("id.txt")).unwrap(), format!("{id}\n"), "{{{{job.id}}}}");

        let record: Value = serde_json::from_slice(&fs::read(dir.join("jobman-record.json")).unwrap()).unwrap();
        assert_eq!(record["id"], id);
        assert_eq!(record["status"], "done");
        let x = record["ingredients"]["params"]["x"].as_i64().unwrap();
        assert_eq!(env[2], (x - 1).to_string(), "JOBMAN_JOB_INDEX");
        indices.push(env[2].to_string());
        let params: Value = serde_json::from_slice(&fs::read(dir.join("params.json")).unwrap()).unwrap();
        assert_eq!(params, json!({"x": x, "lr": 0.5, "tag": "a b", "model": {"width": 3}}));
        // A log is made when the job writes to it: x2 wrote to stdout, neither wrote to stderr.
        let said = fs::read_to_string(dir.join("stdout.log")).ok();
        assert_eq!(said.as_deref(), (x == 2).then_some("said\n"), "stdout.log in {}", dir.display());
        assert!(!dir.join("stderr.log").exists(), "stderr.log in {}", dir.display());
    }
    indices.sort();
    assert_eq!(indices, ["0", "1"]);
}

// ---------------------------------------------------------------------------------------------
// Concurrent builds and status

#[test]
fn a_second_build_waits_for_the_lock_and_runs_no_job_twice() {
    let project = Project::new();
    project.jobfile(
        r#"[params]
n = [1, 2, 3]

[job]
name = "n{{n}}"
command = "echo {{job.name}} >> ../../started.log; sleep ${JOB_SLEEP:-0}; echo {{job.name}} >> ../../ran.log"
"#,
    );
    let mut first = project.spawn_build(&["-j", "2"], &[("JOB_SLEEP", "1")]);
    wait_until("the first build started a job", Duration::from_secs(20), || !project.lines("started.log").is_empty());
    project.builds(&["-j", "2"]).ok().says("waiting for the lock");
    let status = first.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));

    assert_eq!(project.ran(), ["n1", "n2", "n3"], "each job ran once");
    let mut started = project.lines("started.log");
    started.sort();
    assert_eq!(started, ["n1", "n2", "n3"], "each job started once");
    let status = project.cmd(&["status"]).output().unwrap();
    assert_eq!(stdout(&status), "3 jobs: 3 done, 0 pending\n");
}

#[test]
fn status_counts_done_failed_and_pending_jobs() {
    let project = Project::new();
    let jobfile = |x: &str| {
        format!("[params]\nx = {x}\n\n[job]\nname = \"x{{{{x}}}}\"\ncommand = \"{RECORD_RUN}; test {{{{x}}}} != 2\"\n")
    };
    project.jobfile(&jobfile("[1, 2, 3]"));
    let output = project.runs(&["status"]).ok();
    assert_eq!(output.stdout(), "3 jobs: 0 done, 3 pending\n");

    assert_exit(&project.build(&[]), 1);
    project.jobfile(&jobfile("[1, 2, 3, 4]"));
    let output = project.runs(&["status"]).ok();
    assert_eq!(output.stdout(), "4 jobs: 2 done, 1 failed, 1 pending\n");

    let output = project.cmd(&["status", "--json"]).output().unwrap();
    assert_exit(&output, 0);
    let summary: Value = serde_json::from_slice(&output.stdout).expect("status --json is JSON");
    assert_eq!(
        summary,
        json!({"format": 1, "total": 4, "done": 2, "failed": 1, "timed_out": 0, "interrupted": 0, "pending": 1,
               "on_slurm": 0, "running_on_slurm": 0, "queued_on_slurm": 0, "waiting": 0})
    );

    let output = project.cmd(&["status", "--json", "--jobs"]).output().unwrap();
    assert_exit(&output, 0);
    let summary: Value = serde_json::from_slice(&output.stdout).expect("status --json --jobs is JSON");
    let jobs: Vec<(String, String)> = summary["jobs"]
        .as_array()
        .expect("a jobs list")
        .iter()
        .map(|j| (j["name"].as_str().unwrap().to_string(), j["status"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        jobs,
        [("x1", "done"), ("x2", "failed"), ("x3", "done"), ("x4", "pending")]
            .map(|(n, s)| (n.to_string(), s.to_string()))
    );
    assert_eq!(project.ran(), ["x1", "x2", "x3"], "status runs nothing");
}
