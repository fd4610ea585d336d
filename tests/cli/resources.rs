//! GPUs and named resources on the local executor: concurrent jobs never share a GPU nor hold
//! more of a resource than declared. Jobs log what they were given and when they ran.

use std::collections::HashMap;

use super::*;

/// A fake `nvidia-smi` listing two GPUs, on a PATH of its own.
fn with_fake_nvidia_smi(project: &Project) -> String {
    project.file(
        "bin/nvidia-smi",
        "#!/bin/sh\n[ \"$1\" = -L ] || exit 2\necho 'GPU 0: Fake GPU (UUID: GPU-0)'\necho 'GPU 1: Fake GPU (UUID: GPU-1)'\n",
    );
    let bin = project.path().join("bin");
    fs::set_permissions(bin.join("nvidia-smi"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

/// Each job logs `+ID DEVICES` when it starts and `-ID DEVICES` when it ends, around a short sleep.
const LOG_DEVICES: &str =
    "echo +{{x}} $CUDA_VISIBLE_DEVICES >> ../../use.log; sleep 0.3; echo -{{x}} $CUDA_VISIBLE_DEVICES >> ../../use.log";

/// The most GPUs ids in use at once per id, and the largest number of jobs running at once.
fn replay(lines: &[String]) -> (HashMap<String, usize>, usize) {
    let mut holders: HashMap<String, usize> = HashMap::new();
    let mut most: HashMap<String, usize> = HashMap::new();
    let (mut running, mut peak) = (0usize, 0usize);
    for line in lines {
        let (sign, rest) = line.split_at(1);
        let devices: Vec<String> =
            rest.split_whitespace().nth(1).map(|d| d.split(',').map(str::to_string).collect()).unwrap_or_default();
        if sign == "+" {
            running += 1;
            peak = peak.max(running);
            for d in devices {
                let held = holders.entry(d.clone()).or_default();
                *held += 1;
                let m = most.entry(d).or_default();
                *m = (*m).max(*held);
            }
        } else {
            running -= 1;
            for d in devices {
                *holders.entry(d).or_default() -= 1;
            }
        }
    }
    (most, peak)
}

#[test]
fn concurrent_jobs_never_share_a_gpu_and_see_only_theirs() {
    let project = Project::new();
    let path = with_fake_nvidia_smi(&project);
    project.jobfile(&format!(
        "[params]\nx = [1, 2, 3, 4, 5, 6]\n\n[job]\nname = \"x{{{{x}}}}\"\ncommand = \"{LOG_DEVICES}\"\ngpus = 1\n"
    ));
    let out = project.cmd(&["build", "-j4"]).env("PATH", &path).output().unwrap();
    assert_exit(&out, 0);
    let lines = project.lines("use.log");
    assert_eq!(lines.len(), 12, "{lines:?}");
    let (most, peak) = replay(&lines);
    assert_eq!(most.keys().map(String::as_str).collect::<std::collections::BTreeSet<_>>(), ["0", "1"].into());
    assert!(most.values().all(|&n| n == 1), "a GPU was shared: {most:?}\n{lines:#?}");
    assert_eq!(peak, 2, "two GPUs: two jobs at once, whatever -j says");
}

#[test]
fn a_job_asking_for_two_gpus_gets_both_and_a_job_asking_for_none_sees_none() {
    let project = Project::new();
    let path = with_fake_nvidia_smi(&project);
    project.jobfile(&format!(
        "[params]\nx = [0, 2]\n\n[job]\nname = \"x{{{{x}}}}\"\ncommand = \"{LOG_DEVICES}\"\ngpus = \"{{{{x}}}}\"\n"
    ));
    let out = project.cmd(&["build", "-j2"]).env("PATH", &path).output().unwrap();
    assert_exit(&out, 0);
    let lines = project.lines("use.log");
    assert!(lines.contains(&"+2 0,1".to_string()), "{lines:?}");
    assert!(lines.contains(&"+0".to_string()), "CUDA_VISIBLE_DEVICES is empty for a job without GPUs: {lines:?}");
}

#[test]
fn a_job_asking_for_more_gpus_than_the_machine_has_is_a_clear_error() {
    let project = Project::new();
    project.jobfile(&format!(
        "[params]\nx = [1]\n\n[executor.local]\ngpus = [0]\n\n[job]\nname = \"x{{{{x}}}}\"\ncommand = \"{RECORD_RUN}\"\ngpus = 2\n"
    ));
    let out = project.builds(&[]).refused();
    assert!(out.stderr().contains("each job needs 2 GPUs, but [executor.local] lists 1"), "{}", out.stderr());
    assert!(out.stderr().contains("Jobfile.toml:10:8"), "{}", out.stderr());

    // Known only per job, and on a machine where `nvidia-smi` finds none.
    project.jobfile(&format!(
        "[params]\nx = [0, 1]\n\n[job]\nname = \"x{{{{x}}}}\"\ncommand = \"{RECORD_RUN}\"\ngpus = \"{{{{x}}}}\"\n"
    ));
    let out = project.cmd(&["build"]).env("PATH", "/usr/bin:/bin").output().unwrap();
    assert_exit(&out, 2);
    let said = stderr(&out);
    assert!(said.contains("error: job x1 can never start\n --> Jobfile.toml:7:8"), "{said}");
    assert!(said.contains("it asks for 1 GPU, and this machine has 0"), "{said}");
    assert_eq!(project.ran(), Vec::<String>::new(), "nothing runs");
}

#[test]
fn named_resources_limit_how_many_jobs_run_at_once() {
    let project = Project::new();
    project.jobfile(&format!(
        "[params]\nx = [1, 2, 3, 4, 5, 6]\n\n[executor.local]\nresources = {{ mem_gb = 16 }}\n\n\
         [job]\nname = \"x{{{{x}}}}\"\ncommand = \"{LOG_DEVICES}\"\nresources = {{ mem_gb = 8 }}\n"
    ));
    assert_exit(&project.build(&["-j4"]), 0);
    let lines = project.lines("use.log");
    assert_eq!(lines.len(), 12);
    let (_, peak) = replay(&lines);
    assert_eq!(peak, 2, "16 GB for jobs of 8 GB: two at once\n{lines:#?}");
}
