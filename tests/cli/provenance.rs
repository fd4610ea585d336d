//! Provenance: each record says which commit, user and build made its job, outside the key.
//!
//! The commit is checked against git itself, the user against `id -un`, and "nothing reran"
//! against the jobs' own log.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{Project, RECORD_RUN};

/// `git ARGS` in `dir`, with an identity and no signing, whatever the machine's git config.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The project made a repository of one commit (its outputs ignored); that commit's hash.
fn repository(project: &Project) -> String {
    let dir = project.path();
    project.file(".gitignore", "scratch_space/\n.jobman/\n*.log\n");
    git(dir, &["init", "-q"]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "first"]);
    git(dir, &["rev-parse", "HEAD"])
}

fn jobfile(columns: &str) -> String {
    format!(
        r#"[params]
x = [1, 2]

[job]
name = "x{{{{x}}}}"
command = "{RECORD_RUN}; echo '{{\"y\": {{{{x}}}}}}' > out.json"
results = "out.json"
{columns}"#
    )
}

#[test]
fn each_record_names_the_commit_user_and_build_that_made_it_and_none_of_it_reruns_a_job() {
    let project = Project::with_jobfile(&jobfile(""));
    let dir = project.path();
    project.file("train.py", "print('v1')\n");
    let first = repository(&project);

    project.builds(&[]).ok();
    assert_eq!(project.ran(), ["x1", "x2"]);
    let record = project.record_of("x1");
    let made = &record["provenance"];
    assert_eq!(made["git"]["commit"], first.as_str(), "{record:#}");
    assert_eq!(made["git"]["dirty"], false);
    assert!(made["git"]["diff"].is_null(), "a clean tree has no diff: {made:#}");
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    assert_eq!(made["user"], user.trim());
    let build: Vec<&str> = made["build"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(build[1..], ["build"], "{made:#}");
    let shown = project.runs(&["show", "x1"]).ok().stdout();
    assert!(shown.contains(&format!("commit     {first}\n")), "{shown}");

    // A new commit reruns nothing; explain says the jobs were made at the earlier one.
    project.file("train.py", "print('v2')\n");
    git(dir, &["commit", "-q", "-am", "second"]);
    project.builds(&[]).ok();
    assert!(project.ran().is_empty(), "the commit is not part of the key");
    let explained = project.runs(&["explain", "x1"]).ok().stdout();
    assert!(
        explained.contains(&format!(
            "x1 ({}) is up to date (made at {}): ",
            &record["id"].as_str().unwrap(),
            &first[..7]
        )),
        "{explained}"
    );

    // Tracked changes not committed: a forced rerun records them as dirty, with the diff's hash.
    project.file("train.py", "print('v3')\n");
    project.builds(&["--force", "--where", "x == 2"]).ok();
    assert_eq!(project.ran(), ["x2"]);
    let dirty: Value = serde_json::from_str(&project.runs(&["show", "x2", "--json"]).ok().stdout()).unwrap();
    assert_eq!(dirty["provenance"]["git"]["dirty"], true, "{dirty:#}");
    assert_eq!(dirty["provenance"]["git"]["diff"].as_str().map(str::len), Some(64));
    let listed = project.runs(&["ls", "--where", "git.dirty", "--format", "json"]).ok().stdout();
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let names: Vec<&str> = listed["jobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["x2"], "{listed:#}");
    let explained = project.runs(&["explain", "x2"]).ok().stdout();
    assert!(explained.contains(" is up to date (made at ") && explained.contains(", dirty): "), "{explained}");

    // On request, the report has the columns; without a request, it does not read the records.
    project.jobfile(&jobfile("\n[report]\ncolumns = [\"name\", \"git.commit\", \"git.dirty\", \"user\"]\n"));
    project.builds(&[]).ok();
    let second = git(dir, &["rev-parse", "HEAD"]);
    let report = project.read("report.csv").unwrap();
    assert_eq!(
        report,
        format!("name,git.commit,git.dirty,user\nx1,{first},false,{0}\nx2,{second},true,{0}\n", user.trim()),
    );
}

#[test]
fn a_job_made_outside_a_repository_records_no_commit() {
    let project = Project::with_jobfile(&jobfile(""));
    project.builds(&[]).ok();
    let record = project.record_of("x1");
    assert!(record["provenance"].get("git").is_none(), "{record:#}");
    let listed = project.runs(&["ls", "--where", "not git.dirty"]).ok().stdout();
    assert!(!listed.contains("x1"), "a job without a commit has no `git.dirty`: {listed}");
}

#[test]
fn show_lineage_follows_a_result_through_the_upstream_jobs_it_read_down_to_the_commit() {
    let project = Project::with_jobfile(super::stages::STAGES);
    let dir = project.path();
    project.file("data.txt", "w1\n");
    let commit = repository(&project);
    project.builds(&["--where", "lr == 1 and seed == 0"]).ok();

    let text = project.runs(&["show", "eval-lr1-s0-n5", "--lineage"]).ok().stdout();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("eval-lr1-s0-n5 (") && lines[0].contains(") in eval: done "), "{text}");
    assert!(lines[0].ends_with(&format!(", made at {}", &commit[..7])), "{text}");
    assert!(lines.contains(&"  params    lr=1 noise=5 seed=0"), "{text}");
    let train = project.record_of("train-lr1-s0");
    let weights = fs::read(dir.join("scratch_space").join(train["id"].as_str().unwrap()).join("weights.txt")).unwrap();
    let read = format!(": read weights.txt {}", &blake3::hash(&weights).to_hex()[..12]);
    assert!(lines.iter().any(|l| l.starts_with("  needs train ") && l.ends_with(&read)), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("    train-lr1-s0 (") && l.contains(") in train: done ")), "{text}");

    // The train job run again with other data: the eval job of the old weights still tells
    // what it read, and that its upstream folder holds other outputs now.
    let old_eval = project.runs(&["show", "eval-lr1-s0-n5", "--json"]).ok().stdout();
    let old_eval: Value = serde_json::from_str(&old_eval).unwrap();
    project.file("data.txt", "w2\n");
    project.builds(&["train", "--force", "--where", "lr == 1 and seed == 0"]).ok();
    let id = old_eval["id"].as_str().unwrap();
    let lineage = project.runs(&["show", id, "--lineage", "--json"]).ok().stdout();
    let lineage: Value = serde_json::from_str(&lineage).unwrap();
    let needed = &lineage["lineage"]["needs"][0];
    assert_eq!((&needed["stage"], &needed["unchanged"]), (&Value::from("train"), &Value::from(false)), "{lineage:#}");
    assert_eq!(needed["job"]["name"], "train-lr1-s0");
    assert_eq!(needed["job"]["provenance"]["git"]["commit"], commit.as_str());
}

#[test]
fn a_job_read_twice_in_a_lineage_is_written_out_once() {
    let project = Project::with_jobfile(
        r#"
[params]
x = [1]

[stage.a]
name = "a{{x}}"
command = "echo a > a.txt"
outputs = ["a.txt"]

[stage.b]
needs = ["a"]
name = "b{{x}}"
command = "cat {{needs.a.dir}}/a.txt > b.txt"
outputs = ["b.txt"]

[stage.c]
needs = ["a", "b"]
name = "c{{x}}"
command = "true"
"#,
    );
    project.builds(&[]).ok();
    let text = project.runs(&["show", "c1", "--lineage"]).ok().stdout();
    assert_eq!(text.matches("a1 (").count(), 1, "{text}");
    assert_eq!(text.matches("(its lineage is shown above)").count(), 1, "{text}");
    assert!(text.contains("b1 ("), "{text}");
}
