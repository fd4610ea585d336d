//! Where a build's results come from: the commit of the git repository holding the Jobfile (and
//! whether its tracked files differed from it), the user and the build's command line. Found
//! once per build, when its first job is prepared, so that a build that runs nothing asks git
//! nothing; a Slurm task reads its build's from the launch file.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::store::{GitState, Provenance};

/// This build's provenance; `root` is the Jobfile's folder (a build reads one Jobfile).
pub fn of_this_build(root: &Path) -> &'static Provenance {
    static FOUND: OnceLock<Provenance> = OnceLock::new();
    FOUND.get_or_init(|| {
        let build = std::env::args_os().map(|arg| arg.to_string_lossy().into_owned()).collect();
        Provenance { git: git_state(root), user: user(), build }
    })
}

/// The full hash of the commit checked out in the repository holding `dir`; `None` outside a
/// repository, before its first commit, or without git.
pub fn head_commit(dir: &Path) -> Option<String> {
    let out = git(dir, &["rev-parse", "--verify", "--quiet", "HEAD"]).output().ok()?;
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !commit.is_empty()).then_some(commit)
}

/// The commit checked out in the repository holding `dir`, and whether its tracked files differ
/// from it (with a hash of the difference); `None` outside a repository, before its first
/// commit, or without git.
fn git_state(dir: &Path) -> Option<GitState> {
    let commit = head_commit(dir)?;
    // The same changes give the same hash whatever the user's diff settings.
    let mut diff = git(dir, &["diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--no-textconv"])
        .args(["--no-renames", "--src-prefix=a/", "--dst-prefix=b/"])
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut hasher = blake3::Hasher::new();
    let bytes = std::io::copy(&mut diff.stdout.take()?.by_ref(), &mut hasher).ok()?;
    if !diff.wait().ok()?.success() {
        return None;
    }
    let dirty = bytes > 0;
    Some(GitState { commit, dirty, diff: dirty.then(|| hasher.finalize().to_hex().to_string()) })
}

/// `git -C dir ARGS`, quiet, never taking the index lock of the user's repository.
fn git(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command.arg("-C").arg(dir).args(args).env("GIT_OPTIONAL_LOCKS", "0").stdin(Stdio::null()).stderr(Stdio::null());
    command
}

/// The login name of the user running jobman (from the password database, as `id -un`), else
/// `$USER`, else the user id.
fn user() -> String {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 4096];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes the entry into `entry`, its strings into `buffer` (of the length
    // given) and sets `found` to `&entry` or null; pw_name is read only when found.
    let name = unsafe {
        let status = libc::getpwuid_r(uid, &mut entry, buffer.as_mut_ptr(), buffer.len(), &mut found);
        (status == 0 && !found.is_null() && !entry.pw_name.is_null())
            .then(|| std::ffi::CStr::from_ptr(entry.pw_name).to_string_lossy().into_owned())
    };
    name.or_else(|| std::env::var("USER").ok()).filter(|name| !name.is_empty()).unwrap_or_else(|| format!("uid {uid}"))
}
