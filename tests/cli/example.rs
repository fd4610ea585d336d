//! The README's example (`Jobfile.toml` and `templates/` at the top of the repository), built as
//! the README says, and each claim the README makes of it checked by what comes out.

use super::*;

/// A project holding a copy of the example.
fn example() -> Project {
    let project = Project::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    project.file("Jobfile.toml", &fs::read_to_string(repo.join("Jobfile.toml")).unwrap());
    for entry in fs::read_dir(repo.join("templates")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        project.template(&name, &fs::read_to_string(&path).unwrap());
    }
    project
}

/// Each job of a stage by name, with its record as written (rewritten by every run: its times and
/// duration change).
fn records(project: &Project, stage: &str) -> Vec<(String, String)> {
    let listed: Value = serde_json::from_str(&project.runs(&["ls", "--json"]).ok().stdout()).unwrap();
    let mut records: Vec<(String, String)> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|job| job["stage"] == stage)
        .map(|job| {
            let record = fs::read_to_string(Path::new(job["dir"].as_str().unwrap()).join("jobman-record.json"));
            (job["name"].as_str().unwrap().to_string(), record.unwrap())
        })
        .collect();
    records.sort();
    records
}

#[test]
fn the_example_builds_what_the_readme_says_and_keeps_its_promises() {
    let project = example();
    // "`jobman build train` trains only"
    project.builds(&["train"]).ok();
    let status: Value = serde_json::from_str(&project.runs(&["status", "--json"]).ok().stdout()).unwrap();
    let stages = status["stages"].as_array().unwrap();
    assert_eq!((stages[0]["name"].as_str(), stages[0]["done"].as_u64()), (Some("train"), Some(36)), "{status:#}");
    assert_eq!(stages[1]["done"], 0, "{status:#}");
    assert!(project.read("report.csv").is_none(), "training only makes no report");

    // "36 small neural networks trained, then tested on 5 noise levels"; the report and three
    // figures as PNG, PDF and SVG with figures/index.html.
    project.builds(&[]).ok();
    let status: Value = serde_json::from_str(&project.runs(&["status", "--json"]).ok().stdout()).unwrap();
    assert_eq!((status["total"].as_u64(), status["done"].as_u64()), (Some(216), Some(216)), "{status:#}");
    let report = project.read("report.csv").unwrap();
    assert_eq!(report.lines().count(), 1 + 180, "one row per eval job");
    let header = report.lines().next().unwrap();
    assert!(header.contains("noise") && header.contains("accuracy"), "{header}");
    let figures: Vec<String> = fs::read_dir(project.path().join("figures"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for ext in ["png", "pdf", "svg"] {
        assert_eq!(figures.iter().filter(|f| f.ends_with(ext)).count(), 3, "{figures:?}");
    }
    assert!(figures.contains(&"index.html".to_string()), "{figures:?}");

    // "a train job run again (`--force`) that writes the same weights reruns no eval job"
    let eval_before = records(&project, "eval");
    let train_before = records(&project, "train");
    project.builds(&["train", "--force", "--where", "hidden == 4"]).ok();
    project.builds(&[]).ok();
    assert!(records(&project, "eval") == eval_before, "no eval job ran again");
    let train_after = records(&project, "train");
    let forced = train_after.iter().zip(&train_before).filter(|(a, b)| a != b).count();
    assert_eq!(forced, 9, "the 9 forced train jobs ran again");

    // "Edit `seed = [0, 1, 2]` to `[0, 1, 3]` and `jobman build -n` says exactly which 12 train
    // jobs would run and why; their 60 eval jobs wait for them."
    let jobfile = project.read("Jobfile.toml").unwrap();
    assert!(jobfile.contains("seed = [0, 1, 2]"));
    project.file("Jobfile.toml", &jobfile.replace("seed = [0, 1, 2]", "seed = [0, 1, 3]"));
    let dry = project.runs(&["build", "-n"]).ok().stdout();
    assert!(dry.contains("would run 12 of 36 jobs:"), "{dry}");
    assert_eq!(dry.matches("param `seed` changed 2 → 3").count(), 12, "{dry}");
    assert!(dry.contains("would run the 60 of 180 jobs waiting for upstream jobs"), "{dry}");
}

/// The keys name what a job reads, not where the project lives: a copy of the example in
/// another folder restores every job the first copy ran, through a cache (`JOBMAN_CACHE`).
#[test]
fn a_copy_of_the_example_in_another_folder_restores_every_job_from_a_shared_cache() {
    let cache = tempfile::tempdir().unwrap();
    let env = [("JOBMAN_CACHE", cache.path().to_str().unwrap())];
    let (first, second) = (example(), example());
    // The whole example in one build: longer than one command's usual limit when the suite's
    // other tests share the two cores.
    let built = first.cmd(&["build"]).envs(env).timeout(Duration::from_secs(600)).output().unwrap();
    assert_exit(&built, 0);
    let output = second.build_with(&[], &env);
    assert_exit(&output, 0);
    let said = stderr(&output);
    assert!(said.contains("Restored 36 jobs from") && said.contains("Restored 180 jobs from"), "{said}");
    assert!(!said.contains("Ran "), "{said}");
    for stage in ["train", "eval"] {
        let (made, restored) = (records(&first, stage), records(&second, stage));
        assert_eq!(made.len(), restored.len());
        for ((name, made), (_, restored)) in made.iter().zip(&restored) {
            // The same run (its times, its outputs' hashes), saying where it came from.
            let mut restored: Value = serde_json::from_str(restored).unwrap();
            assert_eq!(restored["restored_from"], cache.path().display().to_string(), "{name}");
            restored.as_object_mut().unwrap().remove("restored_from");
            assert_eq!(restored, serde_json::from_str::<Value>(made).unwrap(), "{name}");
        }
    }
    assert_eq!(first.read("report.csv"), second.read("report.csv"));
}
