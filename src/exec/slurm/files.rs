//! The files of one build's submissions.
//! One build's submissions live in `.jobman/slurm/<build>/`:
//!
//! | file | what |
//! |---|---|
//! | `manifest-N` | the job folders of array N, one absolute path per line: task `i` runs line `i` (from 0) |
//! | `array-N.sh` | the batch script submitted for array N ([`batch_script`]) |
//! | `arrays.json` | the arrays submitted: Slurm job id, manifest, task count ([`SubmittedArray`]) |
//! | `JOBID_TASK.log` | each task's Slurm output: the setup prelude and jobman's own messages ([`task_log`]) |
//!
//! A job's own output goes to `stdout.log` and `stderr.log` in its folder, as with the local
//! executor, and the task writes the job's record itself: the compute node needs no lock.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::queue::TaskLimits;

/// The submitted arrays' file in a build's folder.
pub const ARRAYS_FILE: &str = "arrays.json";

/// Version of [`ARRAYS_FILE`]: a file of another version is not read.
const ARRAYS_FORMAT: u32 = 1;

/// The manifest of array `n`.
pub fn manifest_path(build_dir: &Path, n: usize) -> PathBuf {
    build_dir.join(format!("manifest-{n}"))
}

/// The batch script of array `n`.
pub fn script_path(build_dir: &Path, n: usize) -> PathBuf {
    build_dir.join(format!("array-{n}.sh"))
}

/// Where Slurm writes the output of task `task` of array job `job_id` ([`batch_script`]'s
/// `--output`).
pub fn task_log(build_dir: &Path, job_id: u64, task: u32) -> PathBuf {
    build_dir.join(format!("{job_id}_{task}.log"))
}

/// A manifest's bytes: each job folder's absolute path on its own line.
pub fn manifest_text(job_dirs: &[PathBuf]) -> Result<Vec<u8>, String> {
    use std::os::unix::ffi::OsStrExt;
    let mut text = Vec::new();
    for dir in job_dirs {
        let bytes = dir.as_os_str().as_bytes();
        if !dir.is_absolute() || bytes.contains(&b'\n') {
            return Err(format!("a manifest holds absolute paths on one line each, not {dir:?}"));
        }
        text.extend_from_slice(bytes);
        text.push(b'\n');
    }
    Ok(text)
}

/// Writes a manifest atomically (temp + rename), creating the build's folder.
pub fn write_manifest(path: &Path, job_dirs: &[PathBuf]) -> io::Result<()> {
    let text = manifest_text(job_dirs).map_err(io::Error::other)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    crate::store::write_atomic(path, &text)
}

/// The job folder of task `task`: line `task` (from 0) of the manifest.
pub fn manifest_entry(manifest: &[u8], task: usize) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let line = manifest.split(|&b| b == b'\n').nth(task).filter(|line| !line.is_empty())?;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(line)))
}

/// What `jobman __run-task MANIFEST TASK` reads: the job folder of one task, or an error saying
/// which file and line were expected.
pub fn read_manifest_entry(manifest: &Path, task: &str) -> anyhow::Result<PathBuf> {
    let index: usize = task
        .parse()
        .map_err(|_| anyhow::anyhow!("the array task id `{task}` is not a number (is SLURM_ARRAY_TASK_ID set?)"))?;
    let bytes =
        std::fs::read(manifest).map_err(|e| anyhow::anyhow!("cannot read the manifest {}: {e}", manifest.display()))?;
    manifest_entry(&bytes, index).ok_or_else(|| {
        let lines = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        anyhow::anyhow!("the manifest {} has {lines} lines; task {index} has none", manifest.display())
    })
}

/// An array this build submitted, so that a later build or `jobman status` finds jobs that are
/// still queued or running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmittedArray {
    /// Slurm's id of the array (`%A`).
    pub job_id: u64,
    /// The manifest's file name in the build's folder.
    pub manifest: String,
    pub tasks: usize,
    /// Jobs per task: task `i` runs manifest lines `i*k` to `i*k + k - 1`.
    #[serde(default = "one")]
    pub jobs_per_task: usize,
    /// Its `--time`, for the verdict of a task that reaches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit: Option<String>,
    /// Its `--mem`, for the efficiency line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// When it was submitted, in seconds since 1970 (0: not recorded).
    #[serde(default)]
    pub submitted: u64,
}

impl SubmittedArray {
    pub fn limits(&self) -> TaskLimits {
        TaskLimits { time: self.time_limit.clone(), mem: self.mem.clone(), jobs_per_task: self.jobs_per_task }
    }
}

fn one() -> usize {
    1
}

#[derive(Serialize, Deserialize)]
struct ArraysFile {
    format: u32,
    arrays: Vec<SubmittedArray>,
}

/// Writes a build's [`ARRAYS_FILE`] atomically; call it after each `sbatch`, with all arrays so far.
pub fn write_submitted(build_dir: &Path, arrays: &[SubmittedArray]) -> io::Result<()> {
    let file = ArraysFile { format: ARRAYS_FORMAT, arrays: arrays.to_vec() };
    let bytes = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
    crate::store::write_atomic(&build_dir.join(ARRAYS_FILE), &bytes)
}

/// The arrays a build submitted; none when the file is missing, torn, or of another version.
pub fn read_submitted(build_dir: &Path) -> Vec<SubmittedArray> {
    std::fs::read(build_dir.join(ARRAYS_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<ArraysFile>(&bytes).ok())
        .filter(|file| file.format == ARRAYS_FORMAT)
        .map(|file| file.arrays)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_holds_one_absolute_job_folder_per_line() {
        let dirs = [PathBuf::from("/w/scratch_space/a1b2c3d4e5f6"), PathBuf::from("/w/scratch space/0123456789ab")];
        let text = manifest_text(&dirs).unwrap();
        assert_eq!(text, b"/w/scratch_space/a1b2c3d4e5f6\n/w/scratch space/0123456789ab\n");
        assert_eq!(manifest_entry(&text, 1), Some(dirs[1].clone()));
        assert_eq!(manifest_entry(&text, 2), None);
        assert!(manifest_text(&[PathBuf::from("relative/dir")]).is_err());
        assert!(manifest_text(&[PathBuf::from("/a\nb")]).is_err());
    }

    #[test]
    fn a_manifest_is_written_whole_and_read_back_by_task() {
        let dir = tempfile::tempdir().unwrap();
        let build = dir.path().join("slurm/b1");
        let manifest = manifest_path(&build, 0);
        let dirs = [PathBuf::from("/w/a"), PathBuf::from("/w/b")];
        write_manifest(&manifest, &dirs).unwrap();
        assert_eq!(read_manifest_entry(&manifest, "1").unwrap(), dirs[1]);
        let error = read_manifest_entry(&manifest, "2").unwrap_err().to_string();
        assert!(error.ends_with("manifest-0 has 2 lines; task 2 has none"), "{error}");
        let error = read_manifest_entry(&manifest, "").unwrap_err().to_string();
        assert!(error.contains("is SLURM_ARRAY_TASK_ID set?"), "{error}");
        let leftovers: Vec<_> = std::fs::read_dir(&build).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, ["manifest-0"], "no temporary file is left");
    }

    #[test]
    fn submitted_arrays_round_trip_and_another_version_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_submitted(dir.path()), []);
        let arrays = [SubmittedArray {
            job_id: 145,
            manifest: "manifest-0".into(),
            tasks: 3,
            jobs_per_task: 1,
            time_limit: Some("00:05:00".into()),
            mem: Some("1G".into()),
            submitted: 1_796_000_000,
        }];
        write_submitted(dir.path(), &arrays).unwrap();
        assert_eq!(read_submitted(dir.path()), arrays);
        std::fs::write(dir.path().join(ARRAYS_FILE), r#"{"format": 2, "arrays": []}"#).unwrap();
        assert_eq!(read_submitted(dir.path()), []);
    }
}
