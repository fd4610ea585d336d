//! The batch script jobman generates, submitted with `sbatch` to a real cluster as a job array and
//! followed to its end with jobman's `squeue` parser. Skipped (with a message) when no cluster
//! answers, unless `CI` is set: `bash scripts/slurm-up.sh` starts one on this machine.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::command;
use super::files::{manifest_path, script_path, task_log, write_manifest};
use super::queue::{SlurmState, TaskLimits, task_states, verdict};
use super::script::{ArrayScript, SlurmSettings, batch_script};
use crate::store::JobStatus;

/// Whether a Slurm controller answers; otherwise `false` after saying so (counted at the end of
/// `cargo test`), or a failure when `CI` is set (CI must run this test).
fn cluster_answers_or_skip() -> bool {
    if command::cluster_answers().is_ok() {
        return true;
    }
    crate::util::skip::skip(
        "the Slurm test needs a running cluster: `bash scripts/slurm-up.sh` (as root) installs and starts one on \
         this machine",
    );
    false
}

/// A stand-in for `jobman __run-task MANIFEST TASK`: in the folder on line TASK (from 0) of the
/// manifest, it writes what it saw, then exits with the code the folder asks for.
const RUN_TASK: &str = r#"#!/bin/sh
[ "$1" = __run-task ] || exit 64
folder=$(sed -n "$(($3 + 1))p" "$2")
cd "$folder" || exit 65
echo "task $3 $GREETING" > ran.txt
exit "$(cat exit-code 2>/dev/null || echo 0)"
"#;

#[test]
fn a_generated_batch_script_runs_one_array_task_per_job_folder() {
    if !cluster_answers_or_skip() {
        return;
    }
    let dir = tempfile::Builder::new().prefix("jobman-slurm-").tempdir().expect("a temp dir");
    let jobman = dir.path().join("fake-jobman");
    fs::write(&jobman, RUN_TASK).expect("write the stand-in");
    fs::set_permissions(&jobman, fs::Permissions::from_mode(0o755)).expect("make it executable");
    let folders: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("scratch_space/job{i}"))).collect();
    for folder in &folders {
        fs::create_dir_all(folder).expect("create a job folder");
    }
    fs::write(folders[2].join("exit-code"), "3").expect("ask job 2 to fail");

    let build_dir = dir.path().join(".jobman/slurm/b1");
    let manifest = manifest_path(&build_dir, 0);
    write_manifest(&manifest, &folders).expect("write the manifest");
    let settings = SlurmSettings {
        time: Some("00:05:00".into()),
        cpus: Some(1),
        mem: Some("100M".into()),
        setup: Some("export GREETING=hello".into()),
        ..SlurmSettings::default()
    };
    let script = batch_script(&ArrayScript {
        job_name: "jobman-test",
        settings: &settings,
        tasks: folders.len(),
        max_parallel: Some(2),
        jobs_per_task: 1,
        requeue: Some(true),
        build_dir: &build_dir,
        manifest: &manifest,
        jobman: &jobman,
    })
    .expect("a script");
    assert!(script.contains("#SBATCH --requeue\n"), "{script}");
    let script_path = script_path(&build_dir, 0);
    fs::write(&script_path, &script).expect("write the script");
    let job_id = command::submit(&script_path).expect("sbatch accepts the script");

    // Follow the array with one squeue call per look, as a build does, until every task ended.
    let deadline = Instant::now() + Duration::from_secs(90);
    let states = loop {
        let entries = command::queue(&[job_id]).expect("squeue answers");
        let states = task_states(&entries);
        let ended = (0..3).all(|task| states.get(&(job_id, task)).is_some_and(|s| s.state.is_finished()));
        if ended {
            break states;
        }
        if Instant::now() > deadline {
            let _ = command::cancel(&[job_id]);
            panic!("the array did not end within 90 s; last seen: {entries:#?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };

    for (task, folder) in folders.iter().enumerate() {
        let ran = fs::read_to_string(folder.join("ran.txt")).unwrap_or_default();
        assert_eq!(ran, format!("task {task} hello\n"), "task {task} ran in {} after the setup", folder.display());
        let log = task_log(&build_dir, job_id, task as u32);
        assert!(log.is_file(), "Slurm wrote no log at {}", log.display());
    }
    for task in [0, 1] {
        assert_eq!(states[&(job_id, task)].state, SlurmState::Completed, "{:?}", states[&(job_id, task)]);
    }
    let failed = &states[&(job_id, 2)];
    assert_eq!((failed.state.clone(), failed.exit.code), (SlurmState::Failed, 3), "{failed:?}");
    let verdict = verdict(Some(failed), &task_log(&build_dir, job_id, 2), &TaskLimits::default());
    assert_eq!(verdict.status, JobStatus::Failed);
    assert!(verdict.message.starts_with("Slurm: FAILED, exit code 3"), "{}", verdict.message);
}
