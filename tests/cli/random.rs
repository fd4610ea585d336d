//! Random search: `[sweep] samples` draws of the sampled parameters per grid point. Which jobs
//! ran is read from `ran.log`; the drawn values from the jobs' own params files and the report.

use super::*;

/// A search over `lr` and `opt` per `model`, each job named after its values.
fn search(samples: usize, seed: i64) -> String {
    format!(
        "[params]\nmodel = [\"a\", \"b\"]\nlr = {{ loguniform = [1e-4, 1e-1] }}\nopt = {{ choice = [\"adam\", \"sgd\", \"rmsprop\"] }}\n\n[sweep]\nsamples = {samples}\nseed = {seed}\n\n[job]\nname = \"{{{{model}}}}-{{{{lr}}}}-{{{{opt}}}}\"\ncommand = \"{RECORD_RUN}\"\n"
    )
}

/// The params files of every job, as JSON.
fn params_of_jobs(project: &Project) -> Vec<Value> {
    project
        .job_dirs()
        .iter()
        .map(|dir| serde_json::from_slice(&fs::read(dir.join("params.json")).expect("params.json")).expect("JSON"))
        .collect()
}

#[test]
fn growing_samples_runs_only_the_new_jobs() {
    let project = Project::new();
    project.jobfile(&search(3, 1));
    assert_exit(&project.build(&[]), 0);
    let first = project.ran();
    assert_eq!(first.len(), 6, "{first:?}");

    project.jobfile(&search(6, 1));
    project.builds(&[]).ok();
    let second = project.ran();
    assert_eq!(second.len(), 6, "3 new samples for each of 2 models: {second:?}");
    assert!(second.iter().all(|name| !first.contains(name)), "{first:?} then {second:?}");
    assert_eq!(project.job_dirs().len(), 12);

    project.builds(&[]).ok().ran_nothing();
}

#[test]
fn changing_the_seed_reruns_every_job() {
    let project = Project::new();
    project.jobfile(&search(3, 1));
    assert_exit(&project.build(&[]), 0);
    let first = project.ran();

    project.jobfile(&search(3, 2));
    assert_exit(&project.build(&[]), 0);
    let second = project.ran();
    assert_eq!(second.len(), 6, "{second:?}");
    assert!(second.iter().all(|name| !first.contains(name)), "{first:?} then {second:?}");

    // Back to the first seed: its jobs are still cached.
    project.jobfile(&search(3, 1));
    project.builds(&[]).ok().ran_nothing();
}

#[test]
fn every_grid_point_gets_the_same_draws_within_bounds() {
    let project = Project::new();
    project.jobfile(&search(4, 0));
    assert_exit(&project.build(&[]), 0);
    let params = params_of_jobs(&project);
    let draws = |model: &str| {
        let mut draws: Vec<String> =
            params.iter().filter(|p| p["model"] == model).map(|p| format!("{}-{}", p["lr"], p["opt"])).collect();
        draws.sort();
        draws
    };
    assert_eq!(draws("a").len(), 4, "{params:?}");
    assert_eq!(draws("a"), draws("b"));
    for p in &params {
        let lr = p["lr"].as_f64().expect("lr is a number");
        assert!((1e-4..=1e-1).contains(&lr), "{p}");
        assert!(["adam", "sgd", "rmsprop"].contains(&p["opt"].as_str().expect("opt is a string")), "{p}");
    }
}

#[test]
fn sampled_values_reach_the_report_and_where_selects_on_them() {
    let project = Project::new();
    project.jobfile(&search(5, 3));
    assert_exit(&project.build(&["--where", "lr < 0.001"]), 0);
    let ran = project.ran();
    // Only the selected jobs have folders yet: each of them drew lr < 0.001.
    let selected = params_of_jobs(&project);
    assert!(!ran.is_empty() && ran.len() < 10, "{ran:?}");
    assert_eq!(selected.len(), ran.len());
    assert!(selected.iter().all(|p| p["lr"].as_f64().is_some_and(|lr| lr < 0.001)), "{selected:?}");

    assert_exit(&project.build(&[]), 0);
    assert_eq!(project.ran().len(), 10 - ran.len());
    let report = project.read("report.csv").expect("report.csv");
    let header: Vec<&str> = report.lines().next().expect("a header").split(',').collect();
    let lr_column = header.iter().position(|c| *c == "lr").expect("an lr column");
    let mut reported: Vec<String> =
        report.lines().skip(1).map(|l| l.split(',').nth(lr_column).unwrap().to_string()).collect();
    let mut written: Vec<String> = params_of_jobs(&project).iter().map(|p| p["lr"].to_string()).collect();
    reported.sort();
    written.sort();
    assert_eq!(reported, written, "the report holds the exact values the jobs were given");
}

#[test]
fn a_distribution_without_samples_is_refused_before_anything_runs() {
    let project = Project::new();
    project.jobfile(&format!("[params]\nlr = {{ uniform = [0, 1] }}\n\n[job]\ncommand = \"{RECORD_RUN}\"\n"));
    let out = project.builds(&[]).refused();
    assert!(out.stderr().contains("`lr` is sampled, but [sweep] has no `samples`"), "{}", out.stderr());
    assert!(out.stderr().contains("samples = 20"), "{}", out.stderr());
    assert_eq!(project.ran(), Vec::<String>::new());
}

#[test]
fn explain_names_only_what_changed_for_sampled_jobs() {
    // Drawn floats use all 17 digits: a record read back must give the very same numbers.
    let project = Project::new();
    project.jobfile(&search(5, 3));
    assert_exit(&project.build(&[]), 0);
    project.jobfile(&search(5, 3).replace(">> ../../ran.log", ">> ../../ran.log; true"));
    let out = project.cmd(&["explain"]).output().expect("jobman runs");
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert_eq!(text.matches("command changed").count(), 10, "{text}");
    assert!(!text.contains("param `"), "{text}");
}
