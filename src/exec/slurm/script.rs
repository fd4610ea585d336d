//! What jobman submits: the batch script of one job array, and how pending jobs are grouped
//! into arrays.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use crate::util::text::shell_word;

/// `MaxArraySize` when `scontrol show config` does not say: Slurm's default (indices 0–1000).
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

/// The sbatch settings of one job, rendered and checked: jobs with equal settings share arrays.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct SlurmSettings {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// As `--time` reads it: `HH:MM:SS`, `D-HH:MM:SS`, minutes…
    pub time: Option<String>,
    /// `--cpus-per-task`.
    pub cpus: Option<u32>,
    /// `--mem`: `4G`, `500M`, megabytes.
    pub mem: Option<String>,
    /// `--gres=gpu:N`; none when 0.
    pub gpus: Option<u32>,
    /// Further sbatch options, one `#SBATCH` line each.
    pub extra_args: Vec<String>,
    /// Shell lines run before the job (`module load …`).
    pub setup: Option<String>,
}

/// One job array to write a batch script for.
#[derive(Debug, Clone)]
pub struct ArrayScript<'a> {
    /// What `squeue` shows, e.g. `jobman-mnist`.
    pub job_name: &'a str,
    pub settings: &'a SlurmSettings,
    /// Task indices are `0..tasks`.
    pub tasks: usize,
    /// At most this many tasks run at once (`--array=…%N`).
    pub max_parallel: Option<u32>,
    /// Task `i` runs manifest lines `i*k` to `i*k + k - 1`, in turn.
    pub jobs_per_task: usize,
    /// `--requeue` or `--no-requeue`; `None`: as the cluster says.
    pub requeue: Option<bool>,
    /// The build's folder: Slurm writes each task's log here.
    pub build_dir: &'a Path,
    /// The job folders, line `i` for task `i` ([`manifest_text`]).
    pub manifest: &'a Path,
    /// The jobman binary the task runs (`jobman __run-task MANIFEST TASK`).
    pub jobman: &'a Path,
}

/// The sbatch script of one array: `#SBATCH` lines, the setup prelude (a failing line stops the
/// task before its job starts), then `jobman __run-task MANIFEST $SLURM_ARRAY_TASK_ID`, which
/// runs line `$SLURM_ARRAY_TASK_ID` of the manifest in its folder and writes its record.
/// Fails only for paths that an `#SBATCH` line cannot hold (a `"` or a line break).
pub fn batch_script(array: &ArrayScript<'_>) -> Result<String, String> {
    if array.tasks == 0 {
        return Err("an array needs at least one task".into());
    }
    let settings = array.settings;
    let mut range = if array.tasks == 1 { "0".to_string() } else { format!("0-{}", array.tasks - 1) };
    if let Some(n) = array.max_parallel {
        range.push_str(&format!("%{n}"));
    }
    let log = array.build_dir.join("%A_%a.log");
    let mut options = vec![
        format!("--job-name={}", job_name(array.job_name)),
        format!("--array={range}"),
        format!("--output={}", sbatch_word(&log)?),
        "--open-mode=append".to_string(),
        // Not wherever `jobman build` happened to run, which a compute node may not see.
        format!("--chdir={}", sbatch_word(array.build_dir)?),
    ];
    match array.requeue {
        Some(true) => options.push("--requeue".into()),
        Some(false) => options.push("--no-requeue".into()),
        None => {}
    }
    let mut option = |name: &str, value: &Option<String>| {
        if let Some(value) = value {
            options.push(format!("--{name}={value}"));
        }
    };
    option("partition", &settings.partition);
    option("account", &settings.account);
    option("qos", &settings.qos);
    option("time", &settings.time);
    option("cpus-per-task", &settings.cpus.map(|n| n.to_string()));
    option("mem", &settings.mem);
    option("gres", &settings.gpus.filter(|&n| n > 0).map(|n| format!("gpu:{n}")));
    options.extend(settings.extra_args.iter().cloned());

    let mut script = String::from("#!/bin/bash\n");
    for option in options {
        script.push_str(&format!("#SBATCH {option}\n"));
    }
    script.push_str(
        "\n# Array task i runs the job whose folder is line i (from 0) of the manifest; jobman runs\n\
         # it there and writes its record.\n",
    );
    if let Some(setup) = settings.setup.as_deref().filter(|s| !s.trim().is_empty()) {
        script.push_str("set -e  # a failing setup line stops the task before its job starts\n");
        script.push_str(setup.trim_end_matches('\n'));
        script.push_str("\nset +e\n");
    }
    let (jobman, manifest) = (path_text(array.jobman)?, path_text(array.manifest)?);
    let packed =
        if array.jobs_per_task > 1 { format!(" --jobs-per-task {}", array.jobs_per_task) } else { String::new() };
    script.push_str(&format!(
        "exec {} __run-task {} \"$SLURM_ARRAY_TASK_ID\"{packed}\n",
        shell_word(&jobman),
        shell_word(&manifest)
    ));
    Ok(script)
}

/// A job name Slurm shows as given: letters, digits, `.`, `_`, `-`; anything else becomes `_`.
fn job_name(name: &str) -> String {
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    if name.is_empty() { "jobman".into() } else { name }
}

fn path_text(path: &Path) -> Result<String, String> {
    let text = path.to_str().ok_or_else(|| format!("{} is not valid UTF-8", path.display()))?;
    if text.contains('\n') {
        return Err(format!("the path {text:?} holds a line break"));
    }
    Ok(text.to_string())
}

/// A path as one `#SBATCH` argument: sbatch splits at spaces unless the word is double-quoted.
pub(super) fn sbatch_word(path: &Path) -> Result<String, String> {
    let text = path_text(path)?;
    if text.contains('"') {
        return Err(format!("{text} holds a `\"`, which an #SBATCH line cannot carry; move the project"));
    }
    Ok(if text.contains(char::is_whitespace) { format!("\"{text}\"") } else { text })
}

/// One array to submit: the settings its tasks share and the jobs it runs, task `i` running
/// `jobs[i]` (an index into the caller's list of pending jobs).
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayPlan {
    pub settings: SlurmSettings,
    pub jobs: Vec<usize>,
    /// How many jobs each task runs in turn.
    pub jobs_per_task: usize,
}

impl ArrayPlan {
    pub fn tasks(&self) -> usize {
        self.jobs.len().div_ceil(self.jobs_per_task)
    }

    /// Two arrays of about half the tasks each, the same way packed.
    pub fn split(self) -> (ArrayPlan, ArrayPlan) {
        let at = (self.tasks() / 2).max(1) * self.jobs_per_task;
        let second = ArrayPlan { jobs: self.jobs[at.min(self.jobs.len())..].to_vec(), ..self.clone() };
        let first = ArrayPlan { jobs: self.jobs[..at.min(self.jobs.len())].to_vec(), ..self };
        (first, second)
    }
}

/// Groups pending jobs by their settings (groups in order of their first job, jobs in order),
/// packs `per_task(settings, jobs of the group)` jobs into each task, and splits each group into
/// arrays of at most `max_array_size` tasks: the cluster's `MaxArraySize` allows task indices up
/// to `MaxArraySize - 1`, and each array's indices start at 0.
pub fn plan_arrays(
    settings: &[SlurmSettings],
    per_task: impl Fn(&SlurmSettings, usize) -> usize,
    max_array_size: usize,
) -> Vec<ArrayPlan> {
    let mut groups: Vec<ArrayPlan> = Vec::new();
    let mut group_of: HashMap<&SlurmSettings, usize> = HashMap::new();
    for (job, s) in settings.iter().enumerate() {
        let group = *group_of.entry(s).or_insert_with(|| {
            groups.push(ArrayPlan { settings: s.clone(), jobs: Vec::new(), jobs_per_task: 1 });
            groups.len() - 1
        });
        groups[group].jobs.push(job);
    }
    groups
        .into_iter()
        .flat_map(|group| {
            let settings = group.settings;
            let jobs_per_task = per_task(&settings, group.jobs.len()).max(1);
            group
                .jobs
                .chunks(max_array_size.max(1) * jobs_per_task)
                .map(|jobs| ArrayPlan { settings: settings.clone(), jobs: jobs.to_vec(), jobs_per_task })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `MaxArraySize` from `scontrol show config`.
pub fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        (name.trim() == "MaxArraySize").then(|| value.trim().parse().ok())?
    })
}

/// Why sbatch refused an array, when waiting is the answer rather than failing its jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A limit on how many jobs the user (or account) may have queued: a smaller array may fit
    /// now, the rest once some of the jobs end.
    SubmitLimit(String),
    /// The controller is busy, full or out of reach for now (sbatch already retried for a while).
    Busy(String),
}

/// What sbatch's error output means: a [`Refusal`] to wait out, or `None` for a real error
/// (a bad option, an unknown partition…) that no wait mends.
pub fn parse_refusal(stderr: &str) -> Option<Refusal> {
    const SUBMIT_LIMITS: &[&str] = &[
        "QOSMaxSubmitJobPerUserLimit",
        "QOSMaxSubmitJobPerAccountLimit",
        "AssocMaxSubmitJobLimit",
        "job submit limit",
    ];
    const BUSY: &[&str] = &[
        "temporarily unable to accept job",
        "Socket timed out",
        "Unable to contact slurm controller",
        "job queue full",
        "Job creation temporarily disabled",
        "MaxJobCount",
    ];
    let reason = |pattern: &str| {
        let line = stderr.lines().find(|l| l.contains(pattern)).unwrap_or(pattern);
        line.trim().trim_start_matches("sbatch: error: ").to_string()
    };
    if let Some(pattern) = SUBMIT_LIMITS.iter().find(|p| stderr.contains(**p)) {
        return Some(Refusal::SubmitLimit(reason(pattern)));
    }
    BUSY.iter().find(|p| stderr.contains(**p)).map(|pattern| Refusal::Busy(reason(pattern)))
}

/// The idle CPUs of one line of `sinfo --format=%C`: `ALLOCATED/IDLE/OTHER/TOTAL`.
pub fn parse_idle_cpus(line: &str) -> Option<usize> {
    line.trim().split('/').nth(1)?.parse().ok()
}

/// The job id `sbatch --parsable` prints: `ID` or `ID;CLUSTER`.
pub fn parse_sbatch_id(output: &str) -> Option<u64> {
    output.trim().split(';').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(settings: &SlurmSettings, tasks: usize, max_parallel: Option<u32>) -> String {
        batch_script(&ArrayScript {
            job_name: "jobman-mnist",
            settings,
            tasks,
            max_parallel,
            jobs_per_task: 1,
            requeue: None,
            build_dir: Path::new("/home/ada/mnist/.jobman/slurm/b1"),
            manifest: Path::new("/home/ada/mnist/.jobman/slurm/b1/manifest-0"),
            jobman: Path::new("/home/ada/.cargo/bin/jobman"),
        })
        .unwrap()
    }

    #[test]
    fn the_script_of_an_array_without_settings_runs_each_task_through_jobman() {
        assert_eq!(
            script(&SlurmSettings::default(), 3, None),
            r#"#!/bin/bash
#SBATCH --job-name=jobman-mnist
#SBATCH --array=0-2
#SBATCH --output=/home/ada/mnist/.jobman/slurm/b1/%A_%a.log
#SBATCH --open-mode=append
#SBATCH --chdir=/home/ada/mnist/.jobman/slurm/b1

# Array task i runs the job whose folder is line i (from 0) of the manifest; jobman runs
# it there and writes its record.
exec /home/ada/.cargo/bin/jobman __run-task /home/ada/mnist/.jobman/slurm/b1/manifest-0 "$SLURM_ARRAY_TASK_ID"
"#
        );
    }

    #[test]
    fn the_script_carries_every_setting_the_throttle_and_the_setup() {
        let settings = SlurmSettings {
            partition: Some("gpu".into()),
            account: Some("lab".into()),
            qos: Some("high".into()),
            time: Some("04:00:00".into()),
            cpus: Some(8),
            mem: Some("32G".into()),
            gpus: Some(2),
            extra_args: vec!["--constraint=a100".into(), "--exclusive".into()],
            setup: Some("module load cuda/12.1\nsource ~/venv/bin/activate\n".into()),
        };
        assert_eq!(
            script(&settings, 1000, Some(16)),
            r#"#!/bin/bash
#SBATCH --job-name=jobman-mnist
#SBATCH --array=0-999%16
#SBATCH --output=/home/ada/mnist/.jobman/slurm/b1/%A_%a.log
#SBATCH --open-mode=append
#SBATCH --chdir=/home/ada/mnist/.jobman/slurm/b1
#SBATCH --partition=gpu
#SBATCH --account=lab
#SBATCH --qos=high
#SBATCH --time=04:00:00
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --gres=gpu:2
#SBATCH --constraint=a100
#SBATCH --exclusive

# Array task i runs the job whose folder is line i (from 0) of the manifest; jobman runs
# it there and writes its record.
set -e  # a failing setup line stops the task before its job starts
module load cuda/12.1
source ~/venv/bin/activate
set +e
exec /home/ada/.cargo/bin/jobman __run-task /home/ada/mnist/.jobman/slurm/b1/manifest-0 "$SLURM_ARRAY_TASK_ID"
"#
        );
    }

    #[test]
    fn paths_with_spaces_are_quoted_for_sbatch_and_for_the_shell() {
        let text = batch_script(&ArrayScript {
            job_name: "my project!",
            settings: &SlurmSettings { gpus: Some(0), ..SlurmSettings::default() },
            tasks: 1,
            max_parallel: None,
            jobs_per_task: 1,
            requeue: None,
            build_dir: Path::new("/data/my runs/.jobman/slurm/b1"),
            manifest: Path::new("/data/my runs/.jobman/slurm/b1/manifest-0"),
            jobman: Path::new("/opt/it's/jobman"),
        })
        .unwrap();
        assert!(text.contains("#SBATCH --job-name=my_project_\n"), "{text}");
        assert!(text.contains("#SBATCH --array=0\n"), "{text}");
        assert!(text.contains("#SBATCH --output=\"/data/my runs/.jobman/slurm/b1/%A_%a.log\"\n"), "{text}");
        assert!(text.contains("#SBATCH --chdir=\"/data/my runs/.jobman/slurm/b1\"\n"), "{text}");
        assert!(!text.contains("--gres"), "no GPUs asked for: {text}");
        assert!(
            text.ends_with("exec '/opt/it'\\''s/jobman' __run-task '/data/my runs/.jobman/slurm/b1/manifest-0' \"$SLURM_ARRAY_TASK_ID\"\n"),
            "{text}"
        );
        let quoted = ArrayScript {
            job_name: "x",
            settings: &SlurmSettings::default(),
            tasks: 1,
            max_parallel: None,
            jobs_per_task: 1,
            requeue: None,
            build_dir: Path::new("/data/\"q\""),
            manifest: Path::new("/m"),
            jobman: Path::new("/j"),
        };
        assert!(batch_script(&quoted).unwrap_err().contains("holds a `\"`"));
    }

    #[test]
    fn jobs_with_equal_settings_share_arrays_split_at_the_cluster_limit() {
        let cpu = SlurmSettings { partition: Some("cpu".into()), ..SlurmSettings::default() };
        let gpu = SlurmSettings { partition: Some("gpu".into()), gpus: Some(1), ..SlurmSettings::default() };
        let jobs = [cpu.clone(), gpu.clone(), cpu.clone(), cpu.clone(), gpu.clone(), cpu.clone(), cpu.clone()];
        let arrays = plan_arrays(&jobs, |_, _| 1, 3);
        let shape: Vec<_> = arrays.iter().map(|a| (a.settings.partition.as_deref().unwrap(), a.jobs.clone())).collect();
        assert_eq!(shape, [("cpu", vec![0, 2, 3]), ("cpu", vec![5, 6]), ("gpu", vec![1, 4])]);
        assert_eq!(plan_arrays(&[], |_, _| 1, 1001), []);
        assert_eq!(
            plan_arrays(&vec![cpu.clone(); 2003], |_, _| 1, 1001).iter().map(|a| a.jobs.len()).collect::<Vec<_>>(),
            [1001, 1001, 1]
        );
        // Packed, an array of at most 3 tasks holds 3 tasks' worth of jobs; each group packs its own way.
        let packed = plan_arrays(&jobs, |s, n| if s == &cpu { n } else { 2 }, 3);
        let shape: Vec<_> = packed.iter().map(|a| (a.jobs.clone(), a.jobs_per_task, a.tasks())).collect();
        assert_eq!(shape, [(vec![0, 2, 3, 5, 6], 5, 1), (vec![1, 4], 2, 1)]);
        let plan = ArrayPlan { settings: cpu, jobs: (0..7).collect(), jobs_per_task: 2 };
        let (first, second) = plan.split();
        assert_eq!((first.jobs, second.jobs), ((0..4).collect(), (4..7).collect()), "4 tasks: 2 and 2");
    }

    #[test]
    fn the_array_limit_and_the_job_id_are_read_from_slurms_output() {
        let config = "Configuration data as of 2026-11-26T03:40:01\nMailProg                = /bin/true\nMaxArraySize            = 1001\nMaxDBDMsgs              = 20008\n";
        assert_eq!(parse_max_array_size(config), Some(1001));
        assert_eq!(parse_max_array_size("MaxJobCount = 10000\n"), None);
        assert_eq!(parse_sbatch_id("145\n"), Some(145));
        assert_eq!(parse_sbatch_id("145;cluster2\n"), Some(145));
        assert_eq!(parse_idle_cpus("4/12/0/16\n"), Some(12));
        assert_eq!(parse_idle_cpus("n/a"), None);
        assert_eq!(parse_sbatch_id("sbatch: error: Batch job submission failed"), None);
    }

    #[test]
    fn limits_and_a_busy_controller_are_refusals_to_wait_out_other_errors_are_not() {
        let limit = "sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)\n";
        assert_eq!(parse_refusal(limit), Some(Refusal::SubmitLimit("QOSMaxSubmitJobPerUserLimit".into())));
        let assoc = "sbatch: error: AssocMaxSubmitJobLimit\nsbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)";
        assert!(matches!(parse_refusal(assoc), Some(Refusal::SubmitLimit(_))));
        let busy = "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying\nsbatch: error: Batch job submission failed: Resource temporarily unavailable";
        assert_eq!(
            parse_refusal(busy),
            Some(Refusal::Busy("Slurm temporarily unable to accept job, sleeping and retrying".into()))
        );
        let timeout = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation";
        assert!(matches!(parse_refusal(timeout), Some(Refusal::Busy(_))));
        for error in [
            "sbatch: error: invalid partition specified: gpu\nsbatch: error: Batch job submission failed: Invalid partition name specified",
            "sbatch: error: Batch job submission failed: Invalid job array specification",
        ] {
            assert_eq!(parse_refusal(error), None, "{error}");
        }
    }
}
