//! Shared caches: jobs published by one workspace and restored by another, checked file by file.
//!
//! Jobs append to a log outside both workspaces, so "it did not run" is what the jobs say, not
//! jobman; restored files are compared byte for byte with those of the workspace that ran them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::*;

/// A sweep of three jobs that log to `log` (outside the workspace) and write results, a file in
/// a subfolder and output; its cache is `cache`.
fn sweep(log: &Path, cache: &Path) -> String {
    format!(
        r#"[params]
x = [1, 2, 3]

[job]
name = "x{{{{x}}}}"
command = "echo {{{{x}}}} >> {log}; echo '{{\"y\": {{{{x * x}}}}}}' > out.json; mkdir -p sub; echo x{{{{x}}}} > sub/note.txt; echo exit 0 > tool.sh; chmod +x tool.sh; echo ran"
results = "out.json"

[cache]
dirs = ["{cache}"]
"#,
        log = log.display(),
        cache = cache.display(),
    )
}

/// Two projects in different folders, a cache and a log beside them.
fn two_workspaces() -> (tempfile::TempDir, Project, Project, PathBuf, PathBuf) {
    let shared = tempfile::tempdir().unwrap();
    let (log, cache) = (shared.path().join("ran.log"), shared.path().join("cache"));
    let (a, b) = (Project::new(), Project::new());
    a.jobfile(&sweep(&log, &cache));
    b.jobfile(&sweep(&log, &cache));
    (shared, a, b, log, cache)
}

fn ran(log: &Path) -> Vec<String> {
    let mut ran: Vec<String> = fs::read_to_string(log).unwrap_or_default().lines().map(String::from).collect();
    let _ = fs::remove_file(log);
    ran.sort();
    ran
}

/// Every file under `dir` by relative path, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.push((name, fs::read(entry.path()).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.sort();
    out
}

/// Whether the tests run as root; else a skip, said loudly, of what `test` needs root for.
fn root(test: &str) -> bool {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root {
        super::skip::skip(&format!("{test}, which needs root"));
    }
    root
}

fn show(project: &Project, job: &str) -> Value {
    serde_json::from_str(&project.runs(&["show", job, "--json"]).ok().stdout()).unwrap()
}

#[test]
fn a_workspace_in_another_folder_restores_every_job_another_ran_and_runs_none() {
    let (_shared, a, b, log, cache) = two_workspaces();
    a.builds(&[]).ok();
    assert_eq!(ran(&log), ["1", "2", "3"]);

    let explained = b.runs(&["explain", "jobs"]).ok().stdout();
    assert!(explained.contains("would restore 3 and run 0 of 3 jobs:"), "{explained}");
    assert!(explained.contains(&format!("in the cache {}: restored, not run (new job)", cache.display())));

    let built = b.builds(&[]).ok();
    assert!(built.stderr().contains(&format!("Restored 3 jobs from {}", cache.display())), "{}", built.stderr());
    assert!(ran(&log).is_empty(), "no job ran in the second workspace");
    for job in ["x1", "x2", "x3"] {
        let (made, restored) = (show(&a, job), show(&b, job));
        assert_eq!(restored["restored_from"], cache.display().to_string());
        assert_eq!(restored["status"], "done");
        let (a_dir, b_dir) =
            (a.path().join(made["dir"].as_str().unwrap()), b.path().join(restored["dir"].as_str().unwrap()));
        let (a_files, mut b_files) = (files(&a_dir), files(&b_dir));
        // The record says where it came from; every other file is the same, byte for byte.
        let record = b_files.iter().position(|(name, _)| name == "jobman-record.json").unwrap();
        b_files.remove(record);
        let a_files: Vec<_> = a_files.into_iter().filter(|(name, _)| name != "jobman-record.json").collect();
        assert_eq!(a_files, b_files, "{job}");
    }
    use std::os::unix::fs::PermissionsExt;
    let tool = b.path().join(show(&b, "x1")["dir"].as_str().unwrap()).join("tool.sh");
    assert_eq!(fs::metadata(tool).unwrap().permissions().mode() & 0o111, 0o111, "still executable");
    assert_eq!(a.read("report.csv"), b.read("report.csv"), "the same report, durations included");
    b.builds(&[]).ok();
    assert!(ran(&log).is_empty());
}

#[test]
fn a_truncated_or_changed_entry_is_a_warning_and_a_run_whose_result_replaces_it() {
    let (_shared, a, b, log, cache) = two_workspaces();
    a.builds(&[]).ok();
    ran(&log);
    let entry = |job: &str| {
        let key = show(&a, job)["key"].as_str().unwrap().to_string();
        cache.join("v1").join(&key[..2]).join(&key)
    };
    // x1: its results cut short; x2: a byte of a file changed, same size; x3: a manifest that
    // does not parse.
    fs::write(entry("x1").join("out.json"), "{\"y\"").unwrap();
    fs::write(entry("x2").join("sub/note.txt"), "X2\n").unwrap();
    fs::write(entry("x3").join("jobman-cache.json"), "{").unwrap();

    let built = b.builds(&[]).ok();
    assert_eq!(ran(&log), ["1", "2", "3"], "each job ran: no entry was trusted");
    let said = built.stderr();
    assert_eq!(said.matches("does not check out, so the job runs: ").count(), 3, "{said}");
    assert!(said.contains("`out.json` differs from the manifest"), "{said}");
    assert!(!said.contains("Restored"), "{said}");
    let report = b.read("report.csv").unwrap();
    assert!(report.contains(",x1,1,1,done,") && report.contains(",x3,3,9,done,"), "{report}");
    assert_eq!(show(&b, "x2")["restored_from"], Value::Null);
    // The broken entries were removed, and the jobs' new runs published in their place.
    a.runs(&["cache", "verify"]).ok();
    let c = Project::with_jobfile(&a.read("Jobfile.toml").unwrap());
    assert!(c.builds(&[]).ok().stderr().contains("Restored 3 jobs"));
    assert!(ran(&log).is_empty());
}

#[test]
fn a_folder_that_is_not_a_cache_is_never_written_and_the_next_cache_is_read() {
    let (shared, a, b, log, cache) = two_workspaces();
    a.builds(&[]).ok();
    ran(&log);
    // b publishes to a folder of someone's files, and reads the cache after it.
    let theirs = shared.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    fs::write(theirs.join("thesis.tex"), "chapter 1").unwrap();
    let jobfile = b.read("Jobfile.toml").unwrap();
    let dirs = format!("dirs = [\"{}\", \"{}\"]", theirs.display(), cache.display());
    b.jobfile(&jobfile.replace(&format!("dirs = [\"{}\"]", cache.display()), &dirs));
    b.jobfile(&b.read("Jobfile.toml").unwrap().replace("x = [1, 2, 3]", "x = [1, 2, 3, 4]"));

    let explained = b.runs(&["explain", "x4"]).ok().stdout();
    assert!(
        explained.contains(&format!("would run: new job; no cache holds its key ({})", cache.display())),
        "{explained}"
    );
    let built = b.builds(&[]).ok();
    assert_eq!(ran(&log), ["4"], "three restored from the second cache, one new job ran");
    assert!(built.stderr().contains(&format!("Restored 3 jobs from {}", cache.display())), "{}", built.stderr());
    let warned = built.stderr();
    assert_eq!(warned.matches("jobs are not published to").count(), 1, "{warned}");
    assert!(warned.contains("is not a jobman cache (it has no JOBMAN-CACHE file) and is not empty"), "{warned}");
    let left: Vec<_> = fs::read_dir(&theirs).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["thesis.tex"], "nothing written beside their files");
}

#[test]
fn a_job_restored_from_a_later_cache_is_published_to_the_first() {
    let (shared, a, b, log, team) = two_workspaces();
    a.builds(&[]).ok();
    assert_eq!(ran(&log), ["1", "2", "3"]);
    // b publishes to its own cache first and reads the team's after it.
    let own = shared.path().join("own");
    let with_dirs = |project: &Project, dirs: &[&Path]| {
        let listed: Vec<String> = dirs.iter().map(|d| format!("\"{}\"", d.display())).collect();
        let jobfile = project.read("Jobfile.toml").unwrap();
        project.jobfile(
            &jobfile.replace(&format!("dirs = [\"{}\"]", team.display()), &format!("dirs = [{}]", listed.join(", "))),
        );
    };
    with_dirs(&b, &[&own, &team]);
    let built = b.builds(&[]).ok();
    assert!(built.stderr().contains(&format!("Restored 3 jobs from {}", team.display())), "{}", built.stderr());
    assert!(ran(&log).is_empty());

    // A third workspace that knows only b's own cache restores them from there.
    let c = Project::with_jobfile(&a.read("Jobfile.toml").unwrap());
    with_dirs(&c, &[&own]);
    let built = c.builds(&[]).ok();
    assert!(built.stderr().contains(&format!("Restored 3 jobs from {}", own.display())), "{}", built.stderr());
    assert!(ran(&log).is_empty(), "no job ran in the third workspace");
    c.runs(&["cache", "verify"]).ok();
}

#[test]
fn a_worker_takes_the_next_job_while_the_last_ones_folder_is_published() {
    let shared = tempfile::tempdir().unwrap();
    let (log, cache) = (shared.path().join("started.log"), shared.path().join("cache"));
    // x1 leaves 256 MB to publish; x2 notes when it starts, on the one worker.
    let project = Project::with_jobfile(&format!(
        r#"[params]
x = [1, 2]

[job]
name = "x{{{{x}}}}"
command = "date +%s%N >> {log}; test {{{{x}}}} = 2 || head -c 256000000 /dev/zero > big.bin"

[cache]
dirs = ["{cache}"]
"#,
        log = log.display(),
        cache = cache.display(),
    ));
    project.builds(&["-j1"]).ok();
    let started: Vec<u128> = fs::read_to_string(&log).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    let key = show(&project, "x1")["key"].as_str().unwrap().to_string();
    let manifest = cache.join("v1").join(&key[..2]).join(&key).join("jobman-cache.json");
    let published = fs::metadata(&manifest).unwrap().modified().unwrap();
    let published = published.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    assert_eq!(started.len(), 2);
    assert!(started[1] < published, "x2 started {} ns after x1's entry was whole", started[1] - published);
    project.runs(&["cache", "verify"]).ok();
}

#[test]
fn two_builds_publishing_the_same_keys_at_once_leave_whole_entries() {
    let (_shared, a, b, log, cache) = two_workspaces();
    let (mut first, mut second) = (a.spawn_build(&["-j", "3"], &[]), b.spawn_build(&["-j", "3"], &[]));
    assert!(first.wait(Duration::from_secs(60)).success() && second.wait(Duration::from_secs(60)).success());
    let runs = ran(&log).len();
    assert!((3..=6).contains(&runs), "each job ran once or twice: {runs}");
    let temporary: Vec<_> = fs::read_dir(cache.join("v1/tmp")).unwrap().collect();
    assert!(temporary.is_empty(), "no half-written entry is left: {temporary:?}");
    // A third workspace restores all three, each checked against its manifest.
    let c = Project::with_jobfile(&a.read("Jobfile.toml").unwrap());
    let built = c.builds(&[]).ok();
    assert!(built.stderr().contains("Restored 3 jobs"), "{}", built.stderr());
    assert!(!built.stderr().contains("does not check out"), "{}", built.stderr());
    assert!(ran(&log).is_empty());
}

#[test]
fn cache_status_verify_and_gc_say_what_the_cache_holds_and_trim_it() {
    let (_shared, a, _b, _log, cache) = two_workspaces();
    a.builds(&[]).ok();
    let status = a.runs(&["cache", "status"]).ok().stdout();
    assert!(status.starts_with(&format!("{}: 3 jobs, ", cache.display())), "{status}");
    assert!(status.contains("(published to and read)"), "{status}");
    a.runs(&["cache", "verify"]).ok();

    let key = show(&a, "x2")["key"].as_str().unwrap().to_string();
    fs::write(cache.join("v1").join(&key[..2]).join(&key).join("out.json"), "{}").unwrap();
    let verified = a.runs(&["cache", "verify"]);
    assert_exit(&verified.output, 1);
    assert!(
        verified.stdout().contains(&format!("{key}: broken: `out.json` differs from the manifest")),
        "{}",
        verified.stdout()
    );
    a.runs(&["cache", "verify", "--remove"]).ok();
    assert!(a.runs(&["cache", "status"]).ok().stdout().contains(": 2 jobs, "));

    let trimmed = a.runs(&["cache", "gc", "--older-than", "0s"]).ok().stdout();
    assert!(trimmed.contains("removed 2 jobs"), "{trimmed}");
    assert!(a.runs(&["cache", "status"]).ok().stdout().contains(": 0 jobs, "));
}

/// Another user's cache that this user may read but not write (as a group's cache is to a user
/// outside the group): jobs are restored from it, nothing is written into it, and a job it does
/// not hold runs with one warning. The second workspace's build runs as the user `nobody`
/// (`setpriv`), which needs root.
#[test]
fn a_cache_this_user_cannot_write_is_read_and_left_as_it_is() {
    use std::os::unix::fs::PermissionsExt;
    if !root("the read-only cache test runs a build as `nobody` with setpriv") {
        return;
    }
    let (shared, a, _b, log, cache) = two_workspaces();
    a.builds(&[]).ok();
    ran(&log);
    // What `nobody` may reach: the shared folder, a copy of jobman, a workspace and the log.
    let open = |path: &Path, mode: u32| fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    open(shared.path(), 0o755);
    let jobman = shared.path().join("jobman");
    fs::copy(cargo_bin("jobman"), &jobman).unwrap();
    let workspace = shared.path().join("theirs");
    fs::create_dir(&workspace).unwrap();
    fs::write(
        workspace.join("Jobfile.toml"),
        a.read("Jobfile.toml").unwrap().replace("x = [1, 2, 3]", "x = [1, 2, 3, 4]"),
    )
    .unwrap();
    open(&workspace, 0o777);
    fs::write(&log, "").unwrap();
    open(&log, 0o666);
    let before = files(&cache);

    let built = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&jobman)
        .arg("build")
        .current_dir(&workspace)
        .env("NO_COLOR", "1")
        .env_remove("JOBMAN_CACHE")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&built.stderr);
    assert_eq!(built.status.code(), Some(0), "{said}");
    assert_eq!(ran(&log), ["4"], "three jobs restored, the new one ran: {said}");
    assert!(said.contains(&format!("Restored 3 jobs from {}", cache.display())), "{said}");
    assert_eq!(said.matches(&format!("jobs are not published to {}", cache.display())).count(), 1, "{said}");
    assert!(files(&cache) == before, "the cache is as it was");
}

/// A group's cache: a folder of the group with the setgid bit, and users whose umask lets the
/// group write. What a build publishes there belongs to the group and is group-writable, so that
/// every member's builds can publish and `gc` beside it.
#[test]
fn entries_take_the_cache_folders_group_and_the_users_umask() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !root("the group cache test gives the cache folder to another group") {
        return;
    }
    let (_shared, a, _b, _log, cache) = two_workspaces();
    fs::create_dir(&cache).unwrap();
    let group = 100; // `users` on Debian; any group other than root's shows the inheritance
    std::os::unix::fs::chown(&cache, None, Some(group)).unwrap();
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o2775)).unwrap();
    let built = Command::new("sh")
        .args(["-c", "umask 002 && exec \"$0\" build"])
        .arg(cargo_bin("jobman"))
        .current_dir(a.path())
        .env("NO_COLOR", "1")
        .env_remove("JOBMAN_CACHE")
        .output()
        .unwrap();
    assert_eq!(built.status.code(), Some(0), "{}", String::from_utf8_lossy(&built.stderr));
    let key = show(&a, "x1")["key"].as_str().unwrap().to_string();
    let entry = cache.join("v1").join(&key[..2]).join(&key);
    for path in [entry.clone(), entry.join("out.json"), entry.join("jobman-cache.json"), entry.join("sub")] {
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.gid(), group, "{} belongs to the cache's group", path.display());
        assert_eq!(meta.mode() & 0o020, 0o020, "{} is group-writable", path.display());
    }
}

/// `gc` and `verify` touch only folders named as jobman names them, never through a link: a
/// link planted in a shared cache cannot make them remove someone's files.
#[test]
fn cache_gc_follows_no_link_out_of_the_cache() {
    let (shared, a, _b, _log, cache) = two_workspaces();
    a.builds(&[]).ok();
    let victim = shared.path().join("victim");
    let old_key = format!("{}.1.1", "ab".repeat(32));
    fs::create_dir_all(victim.join(&old_key)).unwrap();
    fs::write(victim.join("thesis.tex"), "chapter 1").unwrap();
    fs::remove_dir_all(cache.join("v1/tmp")).unwrap();
    std::os::unix::fs::symlink(&victim, cache.join("v1/tmp")).unwrap();
    std::os::unix::fs::symlink(&victim, cache.join("v1/cd")).unwrap();
    let trimmed = a.runs(&["cache", "gc", "--older-than", "0s"]);
    let mut left: Vec<String> =
        fs::read_dir(&victim).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, [old_key, "thesis.tex".to_string()], "{}{}", trimmed.stdout(), trimmed.stderr());
}
