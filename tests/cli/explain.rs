//! `jobman explain` and `build --explain`: the exact reason each job and product would rebuild,
//! from what earlier builds rendered (`.jobman/log`).

use super::*;

fn sweep(lr: &str, extra: &str) -> String {
    format!(
        "[params]\nlr = {lr}\nseed = [0, 1]\n{extra}\n[[template]]\nsrc = \"train.sh.j2\"\ntarget = \"train.sh\"\n\n\
         [job]\nname = \"lr{{{{lr}}}}-s{{{{seed}}}}\"\ncommand = \"sh train.sh\"\n"
    )
}

const TRAIN: &str = "echo {{ job.name }} >> ../../ran.log\nlr={{ lr }}\nepochs=10\n";

fn explain(project: &Project, args: &[&str]) -> String {
    let out = project.cmd(&[&["explain"], args].concat()).output().unwrap();
    assert_exit(&out, 0);
    stdout(&out)
}

#[test]
fn explain_names_the_parameter_that_changed_with_old_and_new_values() {
    let project = Project::new();
    project.jobfile(&sweep("[0.1, 0.2]", "")).template("train.sh.j2", TRAIN);
    assert_exit(&project.build(&[]), 0);
    project.ran();
    assert_eq!(explain(&project, &["jobs"]), "4 jobs up to date\n");

    project.jobfile(&sweep("[0.1, 0.3]", ""));
    let text = project.redact(&explain(&project, &["jobs"]));
    assert_eq!(
        text,
        "would run 2 of 4 jobs:\n  \
         [ID]  lr0.3-s0  param `lr` changed 0.2 → 0.3 (closest previous job: [ID] lr0.2-s0)\n  \
         [ID]  lr0.3-s1  param `lr` changed 0.2 → 0.3 (closest previous job: [ID] lr0.2-s1)\n\
         up to date: 2 jobs\n"
    );
    assert_eq!(project.ran(), Vec::<String>::new(), "explain runs nothing");
}

#[test]
fn explain_shows_a_diff_of_an_edited_template_apart_from_parameter_changes() {
    let project = Project::new();
    project.jobfile(&sweep("[0.1]", "")).template("train.sh.j2", TRAIN);
    assert_exit(&project.build(&[]), 0);

    // An edit of the template and a new lr at once: the diff shows the edit only.
    project.jobfile(&sweep("[0.5]", "")).template("train.sh.j2", &TRAIN.replace("epochs=10", "epochs=20"));
    let text = project.redact(&explain(&project, &[]));
    assert!(
        text.contains(
            "[ID]  lr0.5-s0  param `lr` changed 0.1 → 0.5; template `train.sh` changed (closest previous job: [ID] lr0.1-s0)\n"
        ),
        "{text}"
    );
    assert!(text.contains("      -epochs=10\n      +epochs=20\n"), "{text}");
    assert!(!text.contains("-lr=0.1"), "the param change is not shown as a template edit:\n{text}");

    // The same through `build --explain`, which then runs the jobs.
    let out = project.builds(&["--explain"]).ok();
    assert!(out.stdout().contains("+epochs=20"), "{}", out.stdout());
    project.ran();
    assert_eq!(project.ran(), Vec::<String>::new());
    project.builds(&[]).ok().ran_nothing(); // build --explain ran the jobs
}

#[test]
fn one_template_edit_shows_its_diff_once_for_every_job_it_changes() {
    let project = Project::new();
    let train = "echo {{ job.name }} >> ../../ran.log\nlr={{ lr }}\n#1\n#2\n#3\n#4\nepochs=10\n";
    project.jobfile(&sweep("[0.1, 0.2]", "")).template("train.sh.j2", train);
    assert_exit(&project.build(&[]), 0);
    project.template("train.sh.j2", &train.replace("epochs=10", "epochs=20"));
    let text = project.redact(&explain(&project, &[]));
    assert_eq!(text.matches("+epochs=20").count(), 1, "{text}");
    assert_eq!(text.matches("(the same diff as lr0.1-s0)").count(), 3, "{text}");
}

#[test]
fn explain_names_a_changed_input_file_with_its_old_and_new_hashes() {
    let project = Project::new();
    project.jobfile(&sweep("[0.1]", "").replace("command =", "inputs = [\"data.csv\"]\ncommand ="));
    project.template("train.sh.j2", TRAIN).file("data.csv", "a,b\n1,2\n");
    assert_exit(&project.build(&[]), 0);
    let old = blake3::hash(b"a,b\n1,2\n").to_hex().to_string();
    project.file("data.csv", "a,b\n1,3\n");
    let new = blake3::hash(b"a,b\n1,3\n").to_hex().to_string();
    let text = explain(&project, &[]);
    assert!(text.contains(&format!("input `data.csv` changed ({} → {})", &old[..8], &new[..8])), "{text}");
}

#[test]
fn explain_says_a_failed_job_failed_last_time_with_its_exit_code() {
    let project = Project::new();
    project
        .jobfile(&sweep("[0.1]", ""))
        .template("train.sh.j2", &format!("{TRAIN}{{% if seed == 1 %}}exit 3{{% endif %}}\n"));
    assert_exit(&project.build(&[]), 1);
    let text = project.redact(&explain(&project, &["jobs"]));
    assert_eq!(text, "would run 1 of 2 jobs:\n  [ID]  lr0.1-s1  failed last time (exit code 3)\nup to date: 1 job\n");
}

#[test]
fn explain_json_gives_the_reason_as_data() {
    let project = Project::new();
    project.jobfile(&sweep("[0.1]", "")).template("train.sh.j2", TRAIN);
    assert_exit(&project.build(&[]), 0);
    project.jobfile(&sweep("[0.2]", ""));
    let out = project.cmd(&["explain", "--json"]).output().unwrap();
    assert_exit(&out, 0);
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["format"], 1);
    let job = &json["jobs"][0];
    assert_eq!(job["name"], "lr0.2-s0");
    assert_eq!(job["up_to_date"], false);
    assert_eq!(job["why"]["reason"], "new");
    assert_eq!(job["why"]["closest"]["name"], "lr0.1-s0");
    assert_eq!(
        job["why"]["closest"]["changes"],
        json!([{ "ingredient": "param", "name": "lr", "old": 0.1, "new": 0.2 }])
    );
}

#[test]
fn explain_says_why_the_report_and_a_figure_would_be_remade() {
    let project = Project::new();
    let jobfile = |extra: &str| {
        format!(
            "[params]\nx = [1, 2]\n\n[job]\nname = \"x{{{{x}}}}\"\ncommand = \"echo '{{\\\"y\\\": {{{{x * 2}}}}}}' > out.json\"\n\
             results = \"out.json\"\n\n[[figure]]\nname = \"y_vs_x\"\nkind = \"line\"\nx = \"x\"\ny = \"y\"\n{extra}"
        )
    };
    project.jobfile(&jobfile(""));
    assert_exit(&project.build(&[]), 0);
    assert_eq!(
        explain(&project, &["report", "figures"]),
        "2 jobs up to date\nreport.csv is up to date\nfigures/y_vs_x.png is up to date\nfigures/index.html is up to date\n"
    );

    project.jobfile(&jobfile("title = \"y against x\"\n"));
    let text = explain(&project, &["figures/y_vs_x"]);
    assert!(text.contains("figures/y_vs_x.png would be remade: its settings in the Jobfile changed\n"), "{text}");
    assert!(!text.contains("index.html"), "only what the target needs:\n{text}");

    fs::remove_file(project.path().join("report.csv")).unwrap();
    let text = explain(&project, &["report"]);
    assert!(text.contains("report.csv would be remade: its file is missing or was changed by hand\n"), "{text}");

    project.builds(&["--explain"]).ok().says("Because its settings in the Jobfile changed");
}

#[test]
fn a_torn_last_line_of_the_build_log_is_skipped_and_the_next_build_goes_on() {
    let project = Project::new();
    project.jobfile(&sweep("[0.1]", "")).template("train.sh.j2", TRAIN);
    assert_exit(&project.build(&[]), 0);
    let log = project.path().join(".jobman/log");
    let mut file = fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, b"{\"key\":\"0123").unwrap();
    drop(file);

    project.jobfile(&sweep("[0.2]", ""));
    assert!(explain(&project, &[]).contains("param `lr` changed 0.1 → 0.2"));
    assert_exit(&project.build(&[]), 0);
    project.jobfile(&sweep("[0.3]", ""));
    assert!(explain(&project, &[]).contains("param `lr` changed 0.2 → 0.3"), "entries after the torn line are read");
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.lines().skip(1).all(|line| line.starts_with("{\"key\":")), "{text}");
}

#[test]
fn explain_of_a_named_job_says_why_it_is_up_to_date_or_why_it_would_run() {
    let project = Project::new();
    project.jobfile(&sweep("[0.1, 0.2]", "")).template("train.sh.j2", TRAIN);
    assert_exit(&project.build(&[]), 0);
    let record = project.record_of("lr0.1-s0");
    let key = record["key"].as_str().unwrap();
    let text = explain(&project, &[&key[..6]]);
    assert_eq!(
        text,
        format!(
            "lr0.1-s0 ({}) is up to date: its key {key} is what its record says, and the record says done, written {} after a run of {}\n",
            &key[..12],
            record["ended"].as_str().unwrap(),
            "0.0s"
        )
    );

    project.template("train.sh.j2", &TRAIN.replace("epochs=10", "epochs=20"));
    let text = project.redact(&explain(&project, &["lr0.1-s0"]));
    assert!(text.starts_with("lr0.1-s0 ([ID]) would run: template `train.sh` changed"), "{text}");
    assert!(text.contains("+epochs=20"), "{text}");

    let out = project.runs(&["explain", "lr0.2-s7"]).refused();
    assert!(out.stderr().contains("no job is named `lr0.2-s7`"), "{}", out.stderr());
    assert!(out.stderr().contains("did you mean"), "{}", out.stderr());
}
