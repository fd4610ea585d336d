//! Retries: a failed or timed-out job is tried again in the same build, up to `[job] retries`
//! (or `--retries`) more times, with every attempt's logs kept. Jobs read `$JOBMAN_ATTEMPT` to
//! fail on their first attempts and append `NAME ATTEMPT` to ran.log on each one.

use super::*;

/// Jobs `fN` that fail (exit 3) on their first N attempts, after logging the attempt to ran.log,
/// stdout and stderr.
fn failing_first(fails: &str, extra_job_keys: &str) -> String {
    format!(
        r#"[params]
fails = {fails}

[job]
name = "f{{{{fails}}}}"
command = "echo {{{{job.name}}}} $JOBMAN_ATTEMPT >> ../../ran.log; echo out $JOBMAN_ATTEMPT; echo err $JOBMAN_ATTEMPT >&2; if [ $JOBMAN_ATTEMPT -le {{{{fails}}}} ]; then exit 3; fi"
{extra_job_keys}"#
    )
}

/// The folder of the job whose record names it.
fn dir_of(project: &Project, name: &str) -> PathBuf {
    let id = project.record_of(name)["id"].as_str().expect("an id").to_string();
    project.path().join("scratch_space").join(id)
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("cannot read {file} in {}: {e}", dir.display()))
}

#[test]
fn a_job_failing_twice_is_done_on_its_third_attempt_and_every_attempts_logs_are_kept() {
    let project = Project::new();
    project.jobfile(&failing_first("[0, 2]", "retries = 2\n"));
    let output = project.builds(&["-j", "1"]).ok();
    assert_eq!(project.ran(), ["f0 1", "f2 1", "f2 2", "f2 3"], "f2 ran three times, f0 once");

    let record = project.record_of("f2");
    assert_eq!(record["status"], "done");
    assert_eq!(record["exit_code"], 0);
    assert_eq!(record["attempts"], 3, "attempts counts every run, the first included");
    assert_eq!(project.record_of("f0")["attempts"], 1);

    let dir = dir_of(&project, "f2");
    assert_eq!(read(&dir, "stdout.attempt-1.log"), "out 1\n");
    assert_eq!(read(&dir, "stderr.attempt-1.log"), "err 1\n");
    assert_eq!(read(&dir, "stdout.attempt-2.log"), "out 2\n");
    assert_eq!(read(&dir, "stderr.attempt-2.log"), "err 2\n");
    assert_eq!(read(&dir, "stdout.log"), "out 3\n", "the last attempt's logs keep the usual names");
    assert_eq!(read(&dir, "stderr.log"), "err 3\n");
    assert!(!dir.join("stdout.attempt-3.log").exists());
    assert!(!dir_of(&project, "f0").join("stdout.attempt-1.log").exists(), "a job that ran once has no attempt logs");

    let text = project.redact(&output.stderr());
    assert!(
        text.contains("    Retrying f2 (attempt 1 of 3 failed, exit code 3): scratch_space/[ID]\n"),
        "each failed attempt that is tried again is said: {text}"
    );
    assert!(text.contains("    Retrying f2 (attempt 2 of 3 failed, exit code 3)"), "{text}");
    assert!(text.contains("(3rd attempt)\n"), "{text}");
    assert!(text.contains("2 jobs: 2 ran, 0 cached, 0 failed in "), "{text}");

    project.builds(&[]).ok().ran_nothing(); // a job done on a retry is done
}

#[test]
fn a_job_still_failing_after_its_retries_is_failed_with_its_exit_code_and_the_build_exits_1() {
    let project = Project::new();
    project.jobfile(&failing_first("[0, 9]", "retries = 2\n"));
    let output = project.builds(&["-j", "1"]).job_failed();
    assert_eq!(project.ran(), ["f0 1", "f9 1", "f9 2", "f9 3"], "one run and two retries, no more");

    let record = project.record_of("f9");
    assert_eq!(record["status"], "failed");
    assert_eq!(record["exit_code"], 3);
    assert_eq!(record["attempts"], 3);
    let dir = dir_of(&project, "f9");
    assert_eq!(read(&dir, "stderr.attempt-1.log"), "err 1\n");
    assert_eq!(read(&dir, "stderr.attempt-2.log"), "err 2\n");
    assert_eq!(read(&dir, "stderr.log"), "err 3\n");

    let text = project.redact(&output.stderr());
    assert!(text.contains("Failed f9 (failed after 3 attempts, exit code 3) in "), "{text}");
    assert!(
        text.contains(
            "  f9 (failed after 3 attempts, exit code 3)\n    log: scratch_space/[ID]/stderr.log\n      | err 3\n"
        ),
        "the failure summary shows the last attempt's log: {text}"
    );
    assert!(text.contains("2 jobs: 1 ran, 0 cached, 1 failed in "), "{text}");

    // The next build tries it again, with its retries, from attempt 1.
    project.builds(&[]).job_failed().ran(["f9 1", "f9 2", "f9 3"]);
}

#[test]
fn without_retries_a_failed_job_runs_once_as_attempt_1() {
    let project = Project::new();
    project.jobfile(&failing_first("[0, 1]", ""));
    let output = project.builds(&["-j", "1"]).job_failed();
    assert_eq!(project.ran(), ["f0 1", "f1 1"]);
    assert_eq!(project.record_of("f1")["attempts"], 1);
    assert_eq!(project.record_of("f1")["exit_code"], 3);
    let text = output.stderr();
    assert!(!text.contains("Retrying") && !text.contains("attempt"), "{text}");
    assert!(!dir_of(&project, "f1").join("stdout.attempt-1.log").exists());
}

#[test]
fn retries_on_the_command_line_override_the_jobfile_and_are_not_part_of_the_key() {
    let project = Project::new();
    project.jobfile(&failing_first("[1]", "retries = 5\n"));
    project.builds(&["--retries", "0"]).job_failed().ran(["f1 1"]); // --retries 0 turns the Jobfile's retries off

    project.jobfile(&failing_first("[1]", ""));
    project.builds(&["--retries", "1"]).ok().ran(["f1 1", "f1 2"]); // --retries 1 gives a Jobfile without retries one
    assert_eq!(project.record_of("f1")["attempts"], 2);

    project.jobfile(&failing_first("[1]", "retries = 4\n"));
    project.builds(&[]).ok().ran_nothing(); // changing retries reruns nothing
}

#[test]
fn the_report_has_an_attempts_column() {
    let project = Project::new();
    // Jobs fail on their first `$FAIL` attempts (a variable outside the key).
    project.jobfile(
        r#"[params]
x = [1, 2]

[job]
name = "x{{x}}"
retries = 1
command = "echo {{job.name}} $JOBMAN_ATTEMPT >> ../../ran.log; if [ {{x}} = 2 ] && [ $JOBMAN_ATTEMPT -le ${FAIL:-0} ]; then exit 1; fi"
"#,
    );
    let attempts = |project: &Project| -> Vec<String> {
        let report = project.read("report.csv").expect("report.csv");
        let mut reader = csv::Reader::from_reader(report.as_bytes());
        assert_eq!(reader.headers().unwrap(), vec!["id", "name", "x", "status", "duration", "attempts"]);
        reader.records().map(|r| r.unwrap()).map(|r| format!("{} {}", &r[1], &r[5])).collect()
    };
    assert_exit(&project.build_with(&["-j", "1"], &[("FAIL", "1")]), 0);
    assert_eq!(project.ran(), ["x1 1", "x2 1", "x2 2"]);
    assert_eq!(attempts(&project), ["x1 1", "x2 2"]);

    project.builds(&["--force", "--where", "x == 2"]).ok().ran(["x2 1"]);
    assert_eq!(attempts(&project), ["x1 1", "x2 1"], "the report follows the new record");
}

#[test]
fn a_results_file_left_by_a_failed_attempt_never_makes_a_later_attempt_done() {
    let project = Project::new();
    // Attempt 1 writes its results and crashes; attempt 2 exits 0 without writing any.
    project.jobfile(
        r#"[params]
x = [1]

[job]
name = "x{{x}}"
results = "out.json"
retries = 1
command = "echo {{job.name}} $JOBMAN_ATTEMPT >> ../../ran.log; if [ $JOBMAN_ATTEMPT = 1 ]; then echo '{\"loss\": 1}' > out.json; exit 1; fi"
"#,
    );
    let output = project.builds(&[]).job_failed();
    assert_eq!(project.ran(), ["x1 1", "x1 2"]);
    let record = project.record_of("x1");
    assert_eq!(record["status"], "failed");
    assert_eq!(record["attempts"], 2);
    assert!(
        output.stderr().contains("(failed after 2 attempts: results file out.json is missing; the job wrote no file)"),
        "{}",
        output.stderr()
    );
    let dir = dir_of(&project, "x1");
    assert_eq!(read(&dir, "out.attempt-1.json"), "{\"loss\": 1}\n", "the failed attempt's results are kept aside");
    assert!(!dir.join("out.json").exists());
}

#[test]
fn a_job_that_exits_0_without_its_results_file_is_retried() {
    let project = Project::new();
    project.jobfile(
        r#"[params]
x = [1]

[job]
name = "x{{x}}"
results = "out.json"
retries = 1
command = "echo {{job.name}} $JOBMAN_ATTEMPT >> ../../ran.log; if [ $JOBMAN_ATTEMPT = 2 ]; then echo '{\"loss\": 2}' > out.json; fi"
"#,
    );
    project.builds(&[]).ok().ran(["x1 1", "x1 2"]);
    assert_eq!(project.record_of("x1")["attempts"], 2);
    assert_eq!(read(&dir_of(&project, "x1"), "out.json"), "{\"loss\": 2}\n");
}

#[test]
fn a_timed_out_job_is_retried() {
    let project = Project::new();
    project.jobfile(
        r#"[params]
x = [1]

[job]
name = "x{{x}}"
timeout = "100ms"
retries = 1
command = "echo {{job.name}} $JOBMAN_ATTEMPT >> ../../ran.log; if [ $JOBMAN_ATTEMPT = 1 ]; then sleep 30; fi"
"#,
    );
    let output = project.builds(&[]).ok();
    assert_eq!(project.ran(), ["x1 1", "x1 2"]);
    assert_eq!(project.record_of("x1")["attempts"], 2);
    assert!(
        output.stderr().contains("Retrying x1 (attempt 1 of 2 timed out: over its timeout of 100ms)"),
        "{}",
        output.stderr()
    );
}

#[test]
fn a_job_stopped_by_ctrl_c_is_not_retried() {
    let project = Project::new();
    project.jobfile(
        r#"[params]
x = [1]

[job]
name = "x{{x}}"
retries = 3
command = "echo {{job.name}} $JOBMAN_ATTEMPT >> ../../ran.log; sleep 30"
"#,
    );
    project
        .spawn_build(&[], &[])
        .once_logged(&project, "ran.log", 1, Duration::from_secs(20))
        .interrupted(Duration::from_secs(10));
    assert_eq!(project.ran(), ["x1 1"], "no second attempt after Ctrl-C");
    assert_eq!(project.record_of("x1")["status"], "interrupted");
}

/// The launch file (JSON) that a build writes into a job folder for a cluster task.
fn launch_file(command: &str, retries: Option<u32>) -> Value {
    let mut launch = json!({
        "format": 1,
        "key": "0".repeat(64),
        "id": "abc",
        "name": "x1",
        "index": 0,
        "command": command,
        "timeout_secs": null,
        "results": null,
        "outputs": [],
        "required": [],
        "ingredients": {
            "format": 1, "params": {}, "command": "", "templates": {}, "params_file": null, "inputs": {}, "env": {}
        },
    });
    if let Some(retries) = retries {
        launch["retries"] = json!(retries);
    }
    launch
}

#[test]
fn a_cluster_task_retries_from_its_launch_file() {
    let project = Project::new();
    let dir = project.path().join("scratch_space/abc");
    fs::create_dir_all(&dir).unwrap();
    let third_time_lucky = "echo x1 $JOBMAN_ATTEMPT >> ../../ran.log; [ $JOBMAN_ATTEMPT = 3 ]";
    fs::write(dir.join("jobman-launch.json"), launch_file(third_time_lucky, Some(2)).to_string()).unwrap();
    // A manifest: one job folder per line, task N runs line N.
    let manifest = project.path().join("manifest-0");
    fs::write(&manifest, format!("{}\n", dir.display())).unwrap();
    let output = project.runs(&["__run-task", manifest.to_str().unwrap(), "0"]).ok();
    assert_eq!(project.ran(), ["x1 1", "x1 2", "x1 3"]);
    assert_eq!(project.record_of("x1")["attempts"], 3);
    // Each failed attempt is kept, whatever it wrote: here nothing (a kept stdout counts it).
    assert!(dir.join("stdout.attempt-2.log").exists() && !dir.join("stderr.attempt-2.log").exists());
    let text = output.stderr();
    assert!(text.contains("jobman: x1 attempt 1 of 3 failed, exit code 1; trying again\n"), "{text}");
    assert!(text.contains("jobman: x1 done in ") && text.contains("(3rd attempt)"), "{text}");

    // A launch file from before retries runs its job once (in a folder prepared afresh, as every
    // submission prepares it: a task finds a record of its job's key only when Slurm requeued it).
    fs::remove_dir_all(&dir).unwrap();
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("jobman-launch.json"), launch_file(third_time_lucky, None).to_string()).unwrap();
    project.runs(&["__run-task", manifest.to_str().unwrap(), "0"]).job_failed();
    assert_eq!(project.ran(), ["x1 1"]);
}

#[test]
fn retries_that_are_not_a_whole_number_from_0_are_refused() {
    let project = Project::new();
    project.jobfile(&failing_first("[1]", "retries = -1\n"));
    let output = project.builds(&[]).refused();
    let text = output.stderr();
    assert!(text.contains("invalid `retries`"), "{text}");
    assert!(text.contains("expected a whole number from 0, found `-1`"), "{text}");
    assert!(text.contains("e.g. `retries = 2`"), "{text}");

    project.jobfile(&failing_first("[1]", "retries = \"two\"\n"));
    project.builds(&[]).refused().says("found a string");

    project.builds(&["--retries", "-2"]).refused();
}

#[test]
fn a_job_on_slurm_is_retried_in_its_array_task() {
    if !super::slurm::slurm_cluster() {
        return;
    }
    let project = Project::new();
    project.jobfile(&format!("{}\n{}", failing_first("[0, 1]", "retries = 1\n"), super::slurm::ON_SLURM));
    let output = project.builds(&[]).ok();
    assert_eq!(project.ran(), ["f0 1", "f1 1", "f1 2"]);
    assert_eq!(project.record_of("f1")["attempts"], 2);
    assert_eq!(read(&dir_of(&project, "f1"), "stdout.attempt-1.log"), "out 1\n");
    assert!(output.stderr().contains("(2nd attempt)"), "{}", output.stderr());
}

#[test]
fn a_slurm_task_stopped_before_its_job_wrote_a_record_is_submitted_again_under_retries() {
    if !super::slurm::slurm_cluster() {
        return;
    }
    let project = Project::new();
    // The task's setup fails the first time: Slurm ends the task (FAILED) before the job starts,
    // as a time limit or a node failure would end it before the record.
    let marker = project.path().join("setup-failed-once");
    let setup = format!("setup = \"test -e {m} || {{ touch {m}; exit 1; }}\"\n", m = marker.display());
    let executor = format!("{}{setup}", super::slurm::ON_SLURM);
    project.jobfile(&format!("{}\n{executor}", failing_first("[0]", "retries = 1\n")));
    let output = project.builds(&[]).ok();
    assert_eq!(project.ran(), ["f0 2"], "the job ran once, as its second attempt");
    let record = project.record_of("f0");
    assert_eq!((record["status"].as_str(), record["attempts"].as_u64()), (Some("done"), Some(2)), "{record:#}");
    let kept = read(&dir_of(&project, "f0"), "stderr.attempt-1.log");
    assert!(kept.contains("jobman: Slurm: FAILED, exit code 1 before the job's record was written"), "{kept}");
    assert!(output.stderr().contains("f0 attempt 1 of 2 ended: Slurm: FAILED"), "{}", output.stderr());

    // Without retries, the same stop is the job's failure.
    let project = Project::new();
    let marker = project.path().join("setup-failed-once");
    let setup = format!("setup = \"test -e {m} || {{ touch {m}; exit 1; }}\"\n", m = marker.display());
    project.jobfile(&format!("{}\n{}{setup}", failing_first("[0]", ""), super::slurm::ON_SLURM));
    project.builds(&[]).job_failed();
    assert_eq!(project.record_of("f0")["status"], "failed");
}
