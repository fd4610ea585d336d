//! A real Slurm cluster: sweeps built with `--executor slurm`, submitted as job arrays and
//! followed to their end. Skipped (with a message) when
//! Slurm is not installed or its controller does not answer, unless `CI` is set:
//! `bash scripts/slurm-up.sh` installs and starts a single-node cluster on this machine.

use std::process::Command;
use std::time::Duration;
use std::{env, fs};

use serde_json::Value;

use super::{Project, assert_exit, holds_for, send_signal, stderr, stdout, wait_until};

/// Whether Slurm is installed and its controller answers. Otherwise `false` after saying how to
/// start a local cluster, or a failure when `CI` is set: CI must run this test.
pub(super) fn slurm_cluster() -> bool {
    let installed = Command::new("sinfo").arg("--version").output().is_ok_and(|o| o.status.success());
    if installed && Command::new("scontrol").arg("ping").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    let message = if installed {
        "the Slurm test needs a running cluster, and `scontrol ping` finds none: start one on this \
         machine with `bash scripts/slurm-up.sh` (as root)"
    } else {
        "the Slurm test needs Slurm (`sinfo` is not installed): `bash scripts/slurm-up.sh` (as root) \
         installs and starts a single-node cluster on this machine"
    };
    super::skip::skip(message);
    false
}

/// How many tasks of these Slurm jobs are still queued or running, as `squeue` lists them.
fn live_tasks(job_ids: &[u64]) -> usize {
    let ids: Vec<String> = job_ids.iter().map(u64::to_string).collect();
    let output = Command::new("squeue")
        .args(["--noheader", "--array", "--format=%i", "--states=PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED"])
        .arg(format!("--jobs={}", ids.join(",")))
        .env("SLURM_BITSTR_LEN", "0")
        .output()
        .expect("run squeue");
    assert!(output.status.success(), "squeue: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().filter(|l| !l.trim().is_empty()).count()
}

/// A sweep of `x` whose jobs note their name in `ran.log` (once per run, whatever the node) and
/// write `out.json`; `{{extra}}` goes into the command after that.
fn sweep(xs: &str, extra_command: &str, executor: &str) -> String {
    format!(
        "[params]\nx = {xs}\n\n[job]\nname = \"x{{{{x}}}}\"\n\
         command = \"echo {{{{job.name}}}} >> ../../ran.log; echo '{{\\\"y\\\": {{{{x * x}}}}}}' > out.json{extra_command}\"\n\
         results = \"out.json\"\n\n[report]\ncolumns = [\"name\", \"x\", \"y\", \"status\"]\n\n{executor}"
    )
}

pub(super) const ON_SLURM: &str =
    "[executor]\nkind = \"slurm\"\n\n[executor.slurm]\ntime = \"00:05:00\"\npoll_interval = \"1s\"\n";

/// Every array a project's builds submitted, from the files jobman keeps of them.
fn submitted_arrays(project: &Project) -> Vec<Value> {
    let Ok(builds) = fs::read_dir(project.path().join(".jobman/slurm")) else { return Vec::new() };
    let mut arrays = Vec::new();
    for build in builds {
        let build = build.unwrap().path();
        for name in ["arrays.json", "arrays.json.ended"] {
            if let Ok(bytes) = fs::read(build.join(name)) {
                let file: Value = serde_json::from_slice(&bytes).unwrap();
                arrays.extend(file["arrays"].as_array().unwrap().iter().cloned());
            }
        }
    }
    // In submission order: Slurm's job ids grow.
    arrays.sort_by_key(|a| a["job_id"].as_u64());
    arrays
}

#[test]
fn a_sweep_runs_as_one_array_and_its_report_matches_the_same_sweep_run_locally() {
    if !slurm_cluster() {
        return;
    }
    let on_slurm = Project::new();
    on_slurm.jobfile(&sweep("[1, 2, 3, 4]", "", ON_SLURM));
    on_slurm.builds(&["report"]).ok();
    assert_eq!(on_slurm.ran(), ["x1", "x2", "x3", "x4"]);
    let arrays = submitted_arrays(&on_slurm);
    assert_eq!(arrays.len(), 1, "one sbatch for the whole sweep: {arrays:?}");
    assert_eq!(arrays[0]["tasks"], 4);
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let record = on_slurm.record_of("x2");
    assert_eq!(record["host"], host.trim(), "the record was written by the task");
    let build = record["provenance"]["build"].as_array().map(|args| args[1..].to_vec());
    assert_eq!(build, Some(vec!["build".into(), "report".into()]), "with what its build found: {record:#}");

    let local = Project::new();
    local.jobfile(&sweep("[1, 2, 3, 4]", "", ""));
    assert_exit(&local.build(&["report"]), 0);
    assert_eq!(on_slurm.read("report.csv").unwrap(), local.read("report.csv").unwrap());
    assert!(on_slurm.read("report.csv").unwrap().contains("x3,3,9,done"));

    // Done is done, wherever it ran: nothing is submitted again.
    on_slurm.builds(&["--executor", "local"]).ok();
    assert_eq!(on_slurm.ran(), Vec::<String>::new());
    let out = on_slurm.builds(&[]).ok();
    assert!(!out.stderr().contains("Submitted"), "{}", out.stderr());
    assert_eq!(submitted_arrays(&on_slurm).len(), 1);
}

#[test]
fn a_failing_task_is_reported_failed_with_its_exit_code_and_only_it_is_submitted_again() {
    if !slurm_cluster() {
        return;
    }
    let project = Project::new();
    project.jobfile(&sweep("[1, 2, 3]", "; test {{x}} != 2 || exit 3", ON_SLURM));
    project.builds(&[]).job_failed().says("Failed x2 (failed, exit code 3)");
    assert_eq!(project.record_of("x2")["exit_code"], 3);
    assert_eq!(project.ran(), ["x1", "x2", "x3"]);

    project.builds(&[]).job_failed();
    assert_eq!(project.ran(), ["x2"], "only the failed job is submitted again");
    let arrays = submitted_arrays(&project);
    assert_eq!(arrays.iter().map(|a| a["tasks"].as_u64().unwrap()).collect::<Vec<_>>(), [3, 1], "{arrays:?}");
}

#[test]
fn a_task_over_its_time_limit_is_reported_as_timeout() {
    if !slurm_cluster() {
        return;
    }
    let project = Project::new();
    // Slurm's smallest limit is a minute, and it checks limits every 30 s or so.
    let executor = ON_SLURM.replace("00:05:00", "00:01:00");
    project.jobfile(&sweep("[1]", "; sleep 300", &executor));
    let out = project.cmd(&["build"]).timeout(Duration::from_secs(300)).output().unwrap();
    assert_exit(&out, 1);
    let record = project.record_of("x1");
    assert_eq!(record["status"], "timed_out", "{record:#}");
    let message = record["message"].as_str().unwrap();
    assert!(
        message.starts_with("Slurm: TIMEOUT, the task reached its time limit of 00:01:00; raise `time`"),
        "{message}"
    );
    assert!(message.contains(".log"), "the Slurm log is named: {message}");
    assert!(stderr(&out).contains("x1 (timed out: Slurm: TIMEOUT"), "{}", stderr(&out));
}

#[test]
fn a_detached_build_is_followed_by_status_and_collected_by_the_next_build_without_resubmitting() {
    if !slurm_cluster() {
        return;
    }
    let project = Project::new();
    // Each job waits for a file the test writes, so that it is still running when looked at.
    project.jobfile(&sweep("[1, 2]", "; while [ ! -e ../../go ]; do sleep 0.2; done", ON_SLURM));
    project.builds(&["--detach"]).ok().says("Submitted 2 jobs as Slurm array");
    wait_until("both tasks to start", Duration::from_secs(60), || project.lines("ran.log").len() == 2);

    let status: Value = serde_json::from_str(&project.runs(&["status", "--json"]).ok().stdout()).unwrap();
    assert_eq!((status["done"].as_u64(), status["on_slurm"].as_u64()), (Some(0), Some(2)), "{status:#}");
    assert_eq!(status["running_on_slurm"].as_u64(), Some(2), "{status:#}");
    let listed = project.runs(&["status", "--jobs"]).ok().stdout();
    assert_eq!(listed.matches("running on Slurm").count(), 3, "two jobs and the summary: {listed}");
    let listed = |status: &str| -> usize {
        let json: Value =
            serde_json::from_str(&project.runs(&["ls", "--status", status, "--json"]).ok().stdout()).unwrap();
        json["jobs"].as_array().unwrap().len()
    };
    assert_eq!((listed("running"), listed("queued"), listed("pending")), (2, 0, 2));

    // A build while they run submits nothing again and follows them to their end: it never
    // calls them up to date, and makes the report once they are done.
    let mut following = project.spawn_build(&[], &[]);
    holds_for("the build to follow the jobs still on Slurm", Duration::from_secs(3), || following.is_running());
    assert!(project.read("report.csv").is_none(), "no report before the jobs are done");
    assert_eq!(submitted_arrays(&project).len(), 1);
    project.file("go", "");
    assert_eq!(following.wait(Duration::from_secs(60)).code(), Some(0));
    assert_eq!(project.ran(), ["x1", "x2"], "each job ran once");
    assert!(project.read("report.csv").unwrap().contains("x2,2,4,done"));
    assert_eq!(submitted_arrays(&project).len(), 1);
}

#[test]
fn a_cancelled_job_is_submitted_again_by_the_next_build() {
    if !slurm_cluster() {
        return;
    }
    let project = Project::new();
    project.jobfile(&sweep("[1]", "; test -e ../../go || sleep 300", ON_SLURM));
    assert_exit(&project.build(&["--detach"]), 0);
    wait_until("the task to start", Duration::from_secs(60), || project.lines("ran.log").len() == 1);
    let id = submitted_arrays(&project)[0]["job_id"].as_u64().unwrap();
    let scancel = Command::new("scancel").arg(id.to_string()).output().expect("run scancel");
    assert!(scancel.status.success(), "scancel: {}", String::from_utf8_lossy(&scancel.stderr));
    wait_until("the task to leave the queue", Duration::from_secs(60), || live_tasks(&[id]) == 0);

    project.file("go", "");
    project.builds(&[]).ok();
    assert_eq!(project.ran(), ["x1", "x1"], "cancelled, then run again");
    assert_eq!(submitted_arrays(&project).len(), 2);
    assert!(stdout(&project.cmd(&["status"]).output().unwrap()).contains("1 done"));
}

#[test]
fn packed_jobs_share_array_tasks_and_each_gets_its_own_record() {
    if !slurm_cluster() {
        return;
    }
    let project = Project::new();
    let executor = format!("{ON_SLURM}jobs_per_task = 3\n");
    project.jobfile(&sweep("[1, 2, 3, 4, 5, 6, 7]", "; test {{x}} != 5 || exit 4", &executor));
    project.builds(&[]).job_failed();
    assert_eq!(project.ran(), ["x1", "x2", "x3", "x4", "x5", "x6", "x7"], "a failing job does not stop its task");
    let arrays = submitted_arrays(&project);
    assert_eq!((arrays.len(), arrays[0]["tasks"].as_u64()), (1, Some(3)), "7 jobs, 3 per task: {arrays:?}");
    assert_eq!(project.record_of("x5")["exit_code"], 4);
    assert_eq!(project.record_of("x7")["status"], "done");
    let dry = project.build(&["-n"]);
    assert!(stdout(&dry).contains("--jobs-per-task 3"), "{}", stdout(&dry));
}

#[test]
fn ctrl_c_cancels_the_submitted_arrays_and_no_cancel_leaves_them_running() {
    if !slurm_cluster() {
        return;
    }
    let project = Project::new();
    project.jobfile(&sweep("[1]", "; while [ ! -e ../../go ]; do sleep 0.2; done", ON_SLURM));
    let queued = |id: u64| live_tasks(&[id]);

    let build = project.spawn_build(&[], &[]).once_logged(&project, "ran.log", 1, Duration::from_secs(60));
    build.interrupted(Duration::from_secs(30));
    let first = submitted_arrays(&project)[0]["job_id"].as_u64().unwrap();
    wait_until("Slurm to cancel the task", Duration::from_secs(30), || queued(first) == 0);

    let build = project.spawn_build(&["--no-cancel"], &[]).once_logged(&project, "ran.log", 2, Duration::from_secs(60));
    build.interrupted(Duration::from_secs(30));
    let second = submitted_arrays(&project).iter().map(|a| a["job_id"].as_u64().unwrap()).max().unwrap();
    assert_ne!(first, second);
    assert_eq!(queued(second), 1, "--no-cancel leaves the task running");

    project.file("go", "");
    wait_until("its record", Duration::from_secs(60), || {
        project.job_dirs().iter().any(|d| d.join("jobman-record.json").exists())
    });
    project.builds(&[]).ok();
    assert_eq!(project.ran(), ["x1", "x1"], "cancelled once, then run to its end by the task left running");
    assert_eq!(submitted_arrays(&project).len(), 2, "nothing submitted after --no-cancel");
}

#[test]
fn a_dry_run_prints_the_exact_batch_scripts_one_array_per_distinct_setting() {
    // No cluster needed: a dry run submits nothing.
    let project = Project::new();
    let executor = "[executor.slurm]\ntime = \"{% if x > 2 %}00:10:00{% else %}00:05:00{% endif %}\"\n\
                    partition = \"debug\"\nmax_parallel = 2\n";
    project.jobfile(&sweep("[1, 2, 3]", "", executor));
    let out = project.builds(&["-n", "--executor", "slurm"]).ok();
    let text = out.stdout();
    assert_eq!(text.matches("#!/bin/bash").count(), 2, "{text}");
    assert!(text.contains("# array 0: 2 jobs"), "{text}");
    assert!(text.contains("#SBATCH --array=0-1%2\n"), "{text}");
    assert!(text.contains("#SBATCH --time=00:05:00\n"), "{text}");
    assert!(text.contains("# array 1: 1 job"), "{text}");
    assert!(text.contains("#SBATCH --array=0%2\n"), "{text}");
    assert!(text.contains("#SBATCH --time=00:10:00\n"), "{text}");
    assert!(text.contains("#SBATCH --partition=debug\n"), "{text}");
    assert!(text.contains("__run-task "), "{text}");
    assert!(project.job_dirs().is_empty(), "a dry run prepares no folder");
    assert!(!project.path().join(".jobman/slurm").exists(), "and submits nothing");
}

#[test]
fn stages_go_to_slurm_and_a_failed_upstream_task_leaves_nothing_queued() {
    if !slurm_cluster() {
        return;
    }
    let project = Project::new();
    project.jobfile(&format!("{}\n{ON_SLURM}", super::stages::STAGES)).file("data.txt", "w1\n").file("fail-lr2", "");
    let out = project.builds(&[]).job_failed();
    let ran = project.ran();
    assert_eq!(ran.iter().filter(|j| j.starts_with("train")).count(), 4, "{ran:?}");
    assert!(ran.iter().all(|j| j.starts_with("train") || j.contains("lr1")), "only lr1's dependents ran: {ran:?}");
    assert_eq!(ran.len(), 4 + 4 + 1, "{ran:?}");
    assert!(out.stderr().contains("upstream failed (train job train-lr2-s0)"), "{}", out.stderr());
    // What the jobs used against what they asked, per stage.
    assert!(out.stderr().contains("Used train: peak memory "), "{}", out.stderr());
    assert!(out.stderr().contains("(no `mem` asked), longest job "), "{}", out.stderr());
    assert!(out.stderr().contains(" of 5m00s ("), "{}", out.stderr());
    // At least one array per stage: downstream jobs go as their upstream jobs end.
    let arrays = submitted_arrays(&project);
    assert!(arrays.len() >= 3, "{arrays:#?}");
    // Nothing of this project is left in the queue: the skipped jobs were never submitted.
    let ids: Vec<u64> = arrays.iter().filter_map(|a| a["job_id"].as_u64()).collect();
    assert_eq!(live_tasks(&ids), 0, "tasks of this project left in the queue");

    fs::remove_file(project.path().join("fail-lr2")).unwrap();
    assert_exit(&project.build(&[]), 0);
    let ran = project.ran();
    assert_eq!(ran.len(), 2 + 4 + 1, "{ran:?}");
    assert!(ran.iter().all(|j| j.contains("lr2")), "{ran:?}");
}

/// Two stages on Slurm: `train-xN` sleeps N/2 s (`train-x2` until the test writes `go`),
/// `eval-xN` needs it; each job notes its name in `ran.log`.
fn two_stages(train_extra: &str) -> String {
    format!(
        r#"[params]
x = [1, 2]

[stage.train]
name = "train-x{{{{x}}}}"
command = "echo {{{{job.name}}}} >> ../../ran.log; {train_extra}echo '{{\"loss\": {{{{x}}}}}}' > results.json"
results = "results.json"

[stage.eval]
needs = ["train"]
name = "eval-x{{{{x}}}}"
command = "echo {{{{job.name}}}} >> ../../ran.log; echo '{{\"acc\": {{{{needs.train.results.loss}}}}}}' > results.json"
results = "results.json"

[report]
stage = "eval"

[[figure]]
name = "acc"
kind = "line"
x = "x"
y = "acc"

{ON_SLURM}"#
    )
}

#[test]
fn a_downstream_job_goes_to_slurm_as_soon_as_its_own_upstream_job_is_done() {
    if !slurm_cluster() {
        return;
    }
    let project = Project::new();
    // train-x2 runs until the test sees eval-x1 run: were the stages run in waves, eval-x1 would
    // wait for train-x2 and this test would time out.
    project.jobfile(&two_stages("[ {{x}} = 1 ] || while [ ! -e ../../go ]; do sleep 0.2; done; "));
    let mut building = project.spawn_build(&[], &[]);
    wait_until("eval-x1 to run while train-x2 still runs", Duration::from_secs(90), || {
        project.lines("ran.log").contains(&"eval-x1".to_string())
    });
    assert!(building.is_running(), "the build follows train-x2");
    assert!(!project.lines("ran.log").contains(&"eval-x2".to_string()), "eval-x2 waits for train-x2");
    project.file("go", "");
    assert_eq!(building.wait(Duration::from_secs(90)).code(), Some(0));
    assert_eq!(project.ran(), ["eval-x1", "eval-x2", "train-x1", "train-x2"], "each job ran once");
    let report = project.read("report.csv").unwrap();
    assert_eq!(report.lines().filter(|l| l.contains(",done")).count(), 2, "{report}");
}

#[test]
fn a_detached_build_of_stages_finishes_on_the_cluster_with_nobody_logged_in() {
    if !slurm_cluster() {
        return;
    }
    let project = Project::new();
    project.jobfile(&two_stages(""));
    let detached = project.builds(&["--detach"]).ok().says("Submitted 2 jobs of train as Slurm array");
    assert!(detached.stderr().contains("Detached pipeline job"), "{}", detached.stderr());
    // No jobman runs here from now on: the pipeline job on the cluster does the rest.
    wait_until("the pipeline job to draw the figures", Duration::from_secs(120), || {
        project.path().join("figures/index.html").exists()
    });
    let report = project.read("report.csv").unwrap();
    assert!(report.lines().filter(|l| l.contains(",done")).count() == 2, "{report}");
    assert_eq!(project.ran(), ["eval-x1", "eval-x2", "train-x1", "train-x2"], "each job ran once");
    let log = fs::read_dir(project.path().join(".jobman/slurm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("pipeline-"))
        .expect("the pipeline job's log");
    let log = fs::read_to_string(log).unwrap();
    assert!(log.contains("Submitted 1 job of eval") || log.contains("Submitted 2 jobs of eval"), "{log}");
    assert!(log.contains("Wrote report.csv"), "{log}");
    wait_until("the pipeline job to leave the queue", Duration::from_secs(60), || {
        !stdout(
            &Command::new("squeue")
                .args([
                    "--noheader",
                    "--name",
                    &format!("jobman-{}-build", project.path().file_name().unwrap().to_string_lossy()),
                ])
                .output()
                .unwrap(),
        )
        .contains("jobman")
    });
    project.builds(&[]).ok().ran_nothing().says("Fresh");
}

#[test]
fn a_build_killed_while_following_is_taken_up_by_the_next_one_which_submits_nothing_twice() {
    if !slurm_cluster() {
        return;
    }
    let project = Project::new();
    project.jobfile(&sweep("[1, 2]", "; while [ ! -e ../../go ]; do sleep 0.2; done", ON_SLURM));
    let mut following = project.spawn_build(&[], &[]).once_logged(&project, "ran.log", 2, Duration::from_secs(60));
    send_signal("KILL", following.id());
    following.wait(Duration::from_secs(10));
    project.file("go", "");
    project.builds(&[]).ok().says("Following 2 jobs still on Slurm from an earlier build");
    assert_eq!(project.ran(), ["x1", "x2"], "each job ran once");
    assert_eq!(submitted_arrays(&project).len(), 1, "nothing submitted twice");
    assert!(project.read("report.csv").unwrap().contains("x2,2,4,done"));
}

#[test]
fn a_pipeline_job_warned_of_its_time_limit_hands_the_build_on_to_a_new_one() {
    if !slurm_cluster() {
        return;
    }
    let project = Project::new();
    project.jobfile(&two_stages("[ {{x}} = 1 ] || while [ ! -e ../../go ]; do sleep 0.2; done; "));
    project.builds(&["--detach"]).ok();
    let pipeline_job = || -> u64 {
        let file: Value = serde_json::from_str(&project.read(".jobman/slurm/pipeline.json").unwrap()).unwrap();
        file["job_id"].as_u64().unwrap()
    };
    let first = pipeline_job();
    let log = |job: u64| project.read(&format!(".jobman/slurm/pipeline-{job}.log")).unwrap_or_default();
    wait_until("the pipeline job to follow the jobs", Duration::from_secs(60), || log(first).contains("eval-x1"));
    // Per stage: train-x2 runs, eval-x2 waits for it.
    let status: Value = serde_json::from_str(&project.runs(&["status", "--json"]).ok().stdout()).unwrap();
    let stages = status["stages"].as_array().unwrap();
    assert_eq!(stages[0]["name"], "train", "{status:#}");
    assert_eq!((stages[0]["done"].as_u64(), stages[0]["running_on_slurm"].as_u64()), (Some(1), Some(1)));
    assert_eq!((stages[1]["done"].as_u64(), stages[1]["waiting"].as_u64()), (Some(1), Some(1)), "{status:#}");
    let text = project.runs(&["status"]).ok().stdout();
    assert!(text.contains(&format!("A pipeline job on Slurm ({first}) is building the rest")), "{text}");
    // What Slurm sends two minutes before the time limit (`--signal=B:USR1@120`).
    let warn = Command::new("scancel").args(["--signal=USR1", "--batch", &first.to_string()]).output().unwrap();
    assert!(warn.status.success(), "scancel: {}", String::from_utf8_lossy(&warn.stderr));
    wait_until("a new pipeline job", Duration::from_secs(60), || pipeline_job() != first);
    assert!(log(first).contains("Handed on"), "{}", log(first));
    project.file("go", "");
    wait_until("the new pipeline job to draw the figures", Duration::from_secs(120), || {
        project.path().join("figures/index.html").exists()
    });
    assert_eq!(project.ran(), ["eval-x1", "eval-x2", "train-x1", "train-x2"], "each job ran once");
    assert!(log(pipeline_job()).contains("Wrote report.csv"), "{}", log(pipeline_job()));
}

#[test]
fn a_requeued_task_is_followed_to_its_new_run_and_counted_once() {
    if !slurm_cluster() {
        return;
    }
    let project = Project::new();
    let executor = format!("{ON_SLURM}requeue = true\nmax_parallel = 1\n");
    project.jobfile(&sweep("[1, 2]", "; while [ ! -e ../../go ]; do sleep 0.2; done", &executor));
    let mut building =
        project.spawn_build_logged(&[], &[], "build.err").once_logged(&project, "ran.log", 1, Duration::from_secs(60));
    // x1 runs; x2 waits in the queue for the throttle (`max_parallel = 1`).
    let listed = |status: &str| -> Vec<String> {
        let json: Value =
            serde_json::from_str(&project.runs(&["ls", "--status", status, "--json"]).ok().stdout()).unwrap();
        json["jobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!((listed("running"), listed("queued")), (vec!["x1".to_string()], vec!["x2".to_string()]));
    let id = submitted_arrays(&project)[0]["job_id"].as_u64().unwrap();
    // What preemption or a node failure does to a task submitted with `--requeue`.
    let requeue = Command::new("scontrol").args(["requeue", &format!("{id}_0")]).output().unwrap();
    assert!(requeue.status.success(), "scontrol requeue: {}", String::from_utf8_lossy(&requeue.stderr));
    wait_until("a second job to start", Duration::from_secs(60), || project.lines("ran.log").len() >= 2);
    project.file("go", "");
    assert_eq!(building.wait(Duration::from_secs(120)).code(), Some(0), "{}", project.read("build.err").unwrap());
    assert_eq!(project.ran(), ["x1", "x1", "x2"], "x1 ran again after its requeue, x2 once");
    let said = project.read("build.err").unwrap();
    assert!(said.contains("2 jobs: 2 ran, 0 cached, 0 failed"), "each job counted once: {said}");
    assert_eq!(project.record_of("x1")["status"], "done");
    assert_eq!(submitted_arrays(&project).len(), 1, "nothing submitted again: Slurm ran the task again");
}

/// A `sbatch` in front of the real one that enforces what a site's QOS would, on a cluster run
/// without accounting (where Slurm itself has no such limits): at most `limit` of the project's
/// jobs queued or running, refused with Slurm's own message; `scontrol show config` says
/// `MaxArraySize = max_array` and arrays past it are refused as Slurm refuses them.
fn site_limits(project: &Project, limit: usize, max_array: usize) -> String {
    let bin = project.path().join("site-bin");
    fs::create_dir_all(&bin).unwrap();
    let name = format!("jobman-{}", project.path().file_name().unwrap().to_string_lossy());
    let real = |tool: &str| {
        let path = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap();
        String::from_utf8_lossy(&path.stdout).trim().to_string()
    };
    let sbatch = format!(
        r#"#!/bin/bash
script="${{@: -1}}"
range=$(sed -n 's/^#SBATCH --array=0-\([0-9]*\).*/\1/p; s/^#SBATCH --array=0\(%.*\)\{{0,1\}}$/0/p' "$script")
tasks=$((range + 1))
if [ "$tasks" -gt {max_array} ]; then
    echo "sbatch: error: Batch job submission failed: Invalid job array specification" >&2; exit 1
fi
live=$(SLURM_BITSTR_LEN=0 squeue --noheader --array --name={name} --states=PENDING,RUNNING,CONFIGURING,COMPLETING --format=%i | wc -l)
if [ $((live + tasks)) -gt {limit} ]; then
    echo "refused $tasks with $live live" >> {log}
    echo "sbatch: error: QOSMaxSubmitJobPerUserLimit" >&2
    echo "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)" >&2
    exit 1
fi
echo "accepted $tasks with $live live" >> {log}
exec {sbatch} "$@"
"#,
        log = project.path().join("sbatch.log").display(),
        sbatch = real("sbatch"),
    );
    let scontrol = format!(
        "#!/bin/bash\nif [ \"$1 $2\" = \"show config\" ]; then {real} \"$@\" | sed 's/^MaxArraySize .*/MaxArraySize            = {max_array}/'; else exec {real} \"$@\"; fi\n",
        real = real("scontrol"),
    );
    for (tool, text) in [("sbatch", sbatch), ("scontrol", scontrol)] {
        let path = bin.join(tool);
        fs::write(&path, text).unwrap();
        let chmod = Command::new("chmod").arg("+x").arg(&path).status().unwrap();
        assert!(chmod.success());
    }
    format!("{}:{}", bin.display(), env::var("PATH").unwrap_or_default())
}

#[test]
fn jobs_refused_for_a_site_limit_wait_and_go_as_others_end_in_arrays_within_max_array_size() {
    if !slurm_cluster() {
        return;
    }
    let project = Project::new();
    // 7 jobs, at most 5 queued, arrays of at most 2 tasks.
    let path = site_limits(&project, 5, 2);
    project.jobfile(&sweep("[1, 2, 3, 4, 5, 6, 7]", "; sleep 1", &format!("{ON_SLURM}jobs_per_task = 1\n")));
    let out = project.cmd(&["build"]).env("PATH", &path).timeout(Duration::from_secs(240)).output().unwrap();
    assert_exit(&out, 0);
    let said = stderr(&out);
    assert!(said.contains("for now (QOSMaxSubmitJobPerUserLimit)"), "the wait is explained: {said}");
    assert_eq!(project.ran(), ["x1", "x2", "x3", "x4", "x5", "x6", "x7"], "each job ran once");
    let sbatch = project.read("sbatch.log").unwrap();
    assert!(sbatch.contains("refused"), "the limit was met: {sbatch}");
    let arrays = submitted_arrays(&project);
    let tasks: Vec<u64> = arrays.iter().map(|a| a["tasks"].as_u64().unwrap()).collect();
    assert_eq!(tasks.iter().sum::<u64>(), 7, "{arrays:?}");
    assert!(tasks.iter().all(|&t| t <= 2), "within MaxArraySize: {tasks:?}");
    let report = project.read("report.csv").unwrap();
    assert_eq!(report.lines().filter(|l| l.ends_with(",done")).count(), 7, "{report}");
}

#[test]
fn short_jobs_are_packed_by_what_the_first_ones_took_and_a_new_sweep_packs_at_once() {
    if !slurm_cluster() {
        return;
    }
    let project = Project::new();
    // `jobs_per_task` is left to "auto", the default.
    project.jobfile(&sweep("{ range = [0, 40] }", "", ON_SLURM));
    let first = project.builds(&[]).ok().says("Holding");
    assert!(first.stderr().contains("until one of the first"), "{}", first.stderr());
    let arrays = submitted_arrays(&project);
    assert_eq!(arrays[0]["jobs_per_task"], 1, "nothing measured yet: one job per task first: {arrays:?}");
    assert!(arrays[1..].iter().any(|a| a["jobs_per_task"].as_u64() > Some(1)), "the rest packed: {arrays:?}");
    assert_eq!(project.ran().len(), 40, "each job ran once");
    let report = project.read("report.csv").unwrap();
    assert_eq!(report.lines().filter(|l| l.ends_with(",done")).count(), 40, "{report}");

    // A new sweep of the same stage (other values): packed from the start, by what the last took.
    let before = arrays.len();
    project.jobfile(&sweep("{ range = [40, 80] }", "", ON_SLURM));
    let second = project.builds(&[]).ok();
    assert!(!second.stderr().contains("Holding"), "{}", second.stderr());
    let arrays = submitted_arrays(&project);
    assert!(arrays[before].get("jobs_per_task").and_then(Value::as_u64) > Some(1), "{arrays:?}");
    assert_eq!(project.ran().len(), 40, "each job ran once");
}

/// Jobs that ran on a compute node are published to the cache from there, and a workspace that
/// runs locally restores them, running none; a Slurm build restores before it submits.
#[test]
fn jobs_run_on_slurm_are_published_from_the_node_and_restored_elsewhere() {
    if !slurm_cluster() {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let cached = format!("\n[cache]\ndirs = [\"{}\"]\n", cache.path().join("jobs").display());
    let on_slurm = Project::new();
    on_slurm.jobfile(&(sweep("[1, 2, 3]", "", ON_SLURM) + &cached));
    on_slurm.builds(&[]).ok();
    assert_eq!(on_slurm.ran(), ["x1", "x2", "x3"]);

    let local = Project::new();
    local.jobfile(&(sweep("[1, 2, 3]", "", "") + &cached));
    let built = local.builds(&[]).ok();
    assert!(built.stderr().contains("Restored 3 jobs from"), "{}", built.stderr());
    assert!(local.ran().is_empty(), "nothing ran: every job came from the cache");
    assert_eq!(local.read("report.csv"), on_slurm.read("report.csv"));

    let again = Project::new();
    again.jobfile(&(sweep("[1, 2, 3, 4]", "", ON_SLURM) + &cached));
    let built = again.builds(&[]).ok();
    assert!(built.stderr().contains("Restored 3 jobs from"), "{}", built.stderr());
    assert_eq!(again.ran(), ["x4"], "only the new job went to Slurm");
}
