//! Bad input a user could plausibly write: each is refused before anything runs, with exit 2 and
//! the place of the mistake, never a panic and never a write outside the workspace.

use super::*;

/// `build -n` of this Jobfile (and template `t.j2`, when given) is refused with exit 2, its
/// message holds `expected`, and it points at a line and column.
#[track_caller]
fn refused(jobfile: &str, template: Option<&str>, expected: &str) {
    let project = Project::with_jobfile(jobfile);
    if let Some(text) = template {
        project.template("t.j2", text);
    }
    let said = project.builds(&["-n"]).refused().says(expected).stderr();
    assert!(said.contains(":") && said.contains(" --> "), "no file:line:col in:\n{said}");
    assert!(project.job_dirs().is_empty(), "nothing ran");
}

const WITH_TEMPLATE: &str = r#"
[params]
a = [1, 2]

[[template]]
src = "t.j2"

[job]
command = "true"
"#;

#[test]
fn non_ascii_inside_a_template_expression_is_a_located_mistake_not_a_panic() {
    // A non-breaking space (Option+Space on a Mac) before the name, an accented name, an emoji
    // inside a filter's name.
    for template in ["{{\u{a0}a }}\n", "{{ é }}\n", "{{ a | upp😀er }}\n", "x = {{ a }} {{ ü }}\n"] {
        refused(WITH_TEMPLATE, Some(template), "cannot render template `t.j2`");
    }
}

#[test]
fn non_ascii_inside_a_jobfile_string_expression_is_a_located_mistake_not_a_panic() {
    for command in ["echo {{ é }}", "echo {{\u{a0}a }}", "echo {{ a | upp😀er }}"] {
        let jobfile = format!("[params]\na = [1, 2]\n\n[job]\ncommand = \"{command}\"\n");
        refused(&jobfile, None, "cannot render this Jobfile string");
    }
}

/// A project in `base/project` beside a file the Jobfile must never touch: `base/precious.json`.
fn beside_a_precious_file() -> (tempfile::TempDir, PathBuf) {
    let base = tempfile::Builder::new().prefix("jobman-escape-").tempdir().expect("a temp dir");
    fs::create_dir_all(base.path().join("project/templates")).unwrap();
    fs::write(base.path().join("precious.json"), "{\"keep\": true}\n").unwrap();
    let project = base.path().join("project");
    (base, project)
}

#[test]
fn no_path_of_a_jobfile_reaches_outside_its_workspace() {
    let (base, root) = beside_a_precious_file();
    let precious = base.path().join("precious.json");
    let absolute = precious.display().to_string();
    let job = "command = \"echo {} > out.json\"\n";
    let cases: Vec<(String, &str)> = vec![
        (format!("[job]\n{job}params_file = \"../../precious.json\"\n"), "`params_file` is refused"),
        (format!("[job]\n{job}params_file = \"{absolute}\"\n"), "`params_file` is refused"),
        (format!("[job]\n{job}results = \"../../precious.json\"\nretries = 1\n"), "`results` is refused"),
        (format!("[job]\n{job}series = \"../../precious.json\"\n"), "`series` is refused"),
        (format!("[job]\n{job}results = \".\"\n"), "`results` is refused"),
        (format!("[workspace]\nreport = \"Jobfile.toml\"\n[job]\n{job}"), "this path is refused"),
        (format!("[workspace]\nreport = \"templates/run.csv\"\n[job]\n{job}"), "this path is refused"),
        (format!("[workspace]\nreport = \"../precious.csv\"\n[job]\n{job}"), "this path is refused"),
        (
            format!("[workspace]\nreport = \"{}\"\n[job]\n{job}", base.path().join("r.csv").display()),
            "this path is refused",
        ),
        (format!("[workspace]\nfigures = \"..\"\n[job]\n{job}"), "this path is refused"),
        (format!("[workspace]\nfigures = \".\"\n[job]\n{job}"), "this path is refused"),
        (format!("[workspace]\nfigures = \"scratch_space/figs\"\n[job]\n{job}"), "this path is refused"),
        (format!("[workspace]\njobs = \".\"\n[job]\n{job}"), "this path is refused"),
        (format!("[workspace]\njobs = \"..\"\n[job]\n{job}"), "this path is refused"),
        (format!("[workspace]\njobs = \"templates\"\n[job]\n{job}"), "this path is refused"),
    ];
    for (text, expected) in cases {
        let jobfile = format!("[params]\nx = [1, 2]\n\n{text}");
        fs::write(root.join("Jobfile.toml"), &jobfile).unwrap();
        for args in [&["build", "-n"][..], &["build"][..]] {
            let out =
                Command::new(cargo_bin("jobman")).current_dir(&root).args(args).env("NO_COLOR", "1").output().unwrap();
            assert_exit(&out, 2);
            let said = stderr(&out);
            assert!(said.contains(expected) && said.contains("Jobfile.toml:"), "{jobfile}\n{said}");
        }
        assert_eq!(fs::read_to_string(&precious).unwrap(), "{\"keep\": true}\n", "{jobfile}");
        assert_eq!(fs::read_dir(base.path()).unwrap().count(), 2, "nothing new beside the project: {jobfile}");
        assert_eq!(fs::read_to_string(root.join("Jobfile.toml")).unwrap(), jobfile);
    }

    // The job folders may live elsewhere, as on a cluster's scratch file system.
    let scratch = base.path().join("scratch");
    fs::write(
        root.join("Jobfile.toml"),
        format!("[params]\nx = [1, 2]\n\n[workspace]\njobs = \"{}\"\n\n[job]\n{job}", scratch.display()),
    )
    .unwrap();
    let out = Command::new(cargo_bin("jobman")).current_dir(&root).arg("build").env("NO_COLOR", "1").output().unwrap();
    assert_exit(&out, 0);
    let entries: Vec<String> =
        fs::read_dir(&scratch).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(entries.len(), 3, "two job folders and by-name/ in the scratch folder: {entries:?}");
    assert!(entries.contains(&"by-name".to_string()), "{entries:?}");
}

#[test]
fn a_product_never_overwrites_a_declared_input() {
    let project = Project::with_jobfile(
        r#"
[params]
x = [1, 2]

[job]
command = "true"
inputs = ["*.csv"]
"#,
    );
    project.file("data.csv", "a,b\n1,2\n");
    project.builds(&[]).refused().says("this input is a product of the build");
    assert_eq!(project.read("data.csv").as_deref(), Some("a,b\n1,2\n"));
    assert!(project.read("report.csv").is_none());

    // A figure's files are products too.
    project.jobfile(
        "[params]\nx = [1, 2]\n[job]\ncommand = \"true\"\ninputs = [\"figures/*.png\"]\n[[figure]]\nname = \"acc\"\nkind = \"line\"\nx = \"x\"\ny = \"x\"\n",
    );
    project.file("figures/acc.png", "mine");
    project.builds(&[]).refused().says("figures/acc.png would overwrite it");
    assert_eq!(project.read("figures/acc.png").as_deref(), Some("mine"));
}

#[test]
fn a_sweep_too_large_to_build_is_refused_at_once_with_its_count() {
    let axes: String = (0..10).map(|i| format!("a{i} = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n")).collect();
    let project = Project::with_jobfile(&format!("[params]\n{axes}\n[job]\ncommand = \"true\"\n"));
    let started = std::time::Instant::now();
    project
        .builds(&["-n"])
        .refused()
        .says("this sweep makes 10000000000 jobs, more than `[workspace] max_jobs` allows (100000 per stage)")
        .says("if you mean it, raise `max_jobs` in [workspace]")
        .says("Jobfile.toml:2:6")
        .says("the axes have 10 × 10 × 10 × 10 × 10 × 10 × 10 × 10 × 10 × 10 values");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "counted, not built: {:?}", started.elapsed());

    // A generated axis and random samples count too.
    project.jobfile("[params]\nlr = { logspace = [-3, -1, 100000] }\nseed = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n[job]\ncommand = \"true\"\n");
    project.builds(&["-n"]).refused().says("this sweep makes 1100000 jobs");
    project.jobfile(
        "[params]\nlr = { uniform = [0, 1] }\nseed = [0, 1]\n[sweep]\nsamples = 1000000\n[job]\ncommand = \"true\"\n",
    );
    project.builds(&["-n"]).refused().says("this sweep makes 2000000 jobs").says("each point drawn 1000000 times");

    // The Jobfile says how large its sweep may be.
    let four = "[params]\nx = [1, 2, 3, 4]\n[job]\ncommand = \"true\"\n";
    project.jobfile(&format!("[workspace]\nmax_jobs = 3\n\n{four}"));
    project
        .builds(&["-n"])
        .refused()
        .says("this sweep makes 4 jobs, more than `[workspace] max_jobs` allows (3 per stage)");
    project.jobfile(&format!("[workspace]\nmax_jobs = 4\n\n{four}"));
    project.builds(&["-n"]).ok();
    project.jobfile(&format!("[workspace]\nmax_jobs = 0\n\n{four}"));
    project.builds(&["-n"]).refused().says("invalid `max_jobs`");
}

#[test]
fn mistakes_are_shown_where_they_are_written() {
    // A repeated value, at its axis.
    let project = Project::with_jobfile("[params]\na = [1, 1]\n[job]\ncommand = \"true\"\n");
    project
        .builds(&["-n"])
        .refused()
        .says("jobs 0 and 1 have the same parameters: a=1")
        .says("Jobfile.toml:2:5")
        .says("`1` is listed twice");
    // A repeated include point, at the point.
    project.jobfile("[params]\na = [1, 2]\n[sweep]\ninclude = [{ a = 2 }]\n[job]\ncommand = \"true\"\n");
    project.builds(&["-n"]).refused().says("Jobfile.toml:4:12").says("this point is already a job of the sweep");
    // An empty table declares nothing.
    project.jobfile("[params]\na = {}\nb = [1, 2]\n[job]\ncommand = \"true\"\n");
    project.builds(&["-n"]).refused().says("parameter `a` is an empty table").says("Jobfile.toml:2:5");
    // A folder named as the Jobfile, in the usual `error:` form.
    project.file("templates/t.j2", "x\n");
    let said = project.runs(&["-f", "templates", "build", "-n"]).refused().stderr();
    assert!(said.starts_with("error: templates is a folder, not a Jobfile"), "{said}");
}

#[test]
fn mistakes_that_would_fail_every_job_later_are_refused_before_anything_runs() {
    let cases = [
        (
            "[[template]]\nsrc = \"t.j2\"\ntarget = \".\"\n[job]\ncommand = \"true\"\n",
            "expected a file inside the job folder",
        ),
        (
            "[[template]]\nsrc = \"t.j2\"\ntarget = \"./\"\n[job]\ncommand = \"true\"\n",
            "expected a file inside the job folder",
        ),
        ("[job]\ncommand = \"\"\n", "the command is empty"),
        ("[job]\ncommand = \"  \"\n", "the command is empty"),
        ("[job]\ncommand = \"true\"\ntimeout = \"0s\"\n", "a duration of 0 would stop everything at once"),
        ("[job]\ncommand = \"true\"\nenv = [\"A=B\"]\n", "`A=B` is not a variable name"),
        ("[job]\ncommand = \"true\"\nname = \"{% if a > 5 %}big{% endif %}\"\n", "it renders empty"),
        ("[job]\ncommand = \"true\"\nname = \"..\"\n", "which reads as a folder"),
        ("[job]\ncommand = \"true\"\nname = \"a{{a}}\\nb\"\n", "with a line break"),
        (
            "[job]\ncommand = \"true\"\n[report]\nrename = { a = \"id\" }\n",
            "`a` would be renamed to `id`, a name another column has",
        ),
        ("[job]\ncommand = \"true\"\n[report]\nrename = { a = \"x\", acc = \"x\" }\n", "`acc` would be renamed to `x`"),
    ];
    for (rest, expected) in cases {
        let project = Project::with_jobfile(&format!("[params]\na = [1, 2]\n\n{rest}"));
        project.template("t.j2", "x\n");
        let said = project.builds(&["-n"]).refused().says(expected).stderr();
        assert!(said.contains("Jobfile.toml:"), "no location in:\n{said}");
        assert!(project.job_dirs().is_empty());
    }
}

/// Mistakes a user could plausibly write, each with a piece of what jobman answers: refused by
/// `build -n` with exit 2 and the mistake's file:line:col, nothing run.
const CORPUS: &[(&str, &str)] = &[
    ("[params]\nlr = [0.1, 0.01\n[job]\ncommand = \"true\"\n", "invalid TOML"),
    ("[params]\nlr = [1]\n[job]\ncommand = python3 train.py\n", "invalid TOML"),
    ("[params]\nlr = [1]\n[jobs]\ncommand = \"true\"\n", "did you mean `job`?"),
    ("[params]\nlr = [1]\n[job]\ncomand = \"true\"\n", "did you mean `command`?"),
    ("[params]\n1lr = [1]\n[job]\ncommand = \"true\"\n", "is not usable in templates"),
    ("[params]\nlearning-rate = [1]\n[job]\ncommand = \"true\"\n", "is not usable in templates"),
    ("[params]\njob = [1]\n[job]\ncommand = \"true\"\n", "`job` is reserved"),
    ("[params]\nlr = []\n[job]\ncommand = \"true\"\n", "has no values"),
    ("[params]\nlr = { range = [0] }\n[job]\ncommand = \"true\"\n", "range"),
    ("[params]\nlr = { range = [0, 10, 0] }\n[job]\ncommand = \"true\"\n", "step"),
    ("[params]\nlr = { linspace = [0, 1, 0] }\n[job]\ncommand = \"true\"\n", "count"),
    ("[params]\nlr = { logspace = [-3, -1] }\n[job]\ncommand = \"true\"\n", "logspace"),
    ("[params]\nlr = { ragne = [0, 1] }\n[job]\ncommand = \"true\"\n", "did you mean `range`?"),
    ("[params]\nlr = { uniform = [1, 0] }\n[sweep]\nsamples = 2\n[job]\ncommand = \"true\"\n", "uniform"),
    ("[params]\nlr = { uniform = [0, 1] }\n[job]\ncommand = \"true\"\n", "samples"),
    ("[params]\nlr = nan\n[job]\ncommand = \"true\"\n", "expected a finite number"),
    ("[params]\na = [1]\n[sweep]\nzip = [[\"a\", \"zz\"]]\n[job]\ncommand = \"true\"\n", "zz"),
    ("[params]\na = [1]\n[sweep]\nwhere = \"a >\"\n[job]\ncommand = \"true\"\n", "where"),
    ("[params]\nlr = [1]\n[sweep]\nwhere = \"lrr < 1\"\n[job]\ncommand = \"true\"\n", "did you mean `lr`?"),
    ("[params]\na = [1]\n[sweep]\ninclude = [{ a = 2, zz = 2 }]\n[job]\ncommand = \"true\"\n", "zz"),
    ("[params]\nlr = { uniform = [0, 1] }\n[sweep]\nsamples = 0\n[job]\ncommand = \"true\"\n", "samples"),
    ("[params]\nlr = { uniform = [0, 1] }\n[sweep]\nsamples = -1\n[job]\ncommand = \"true\"\n", "samples"),
    ("[params]\na = [1]\n[[template]]\nsrc = \"missing.j2\"\n[job]\ncommand = \"true\"\n", "missing.j2"),
    ("[params]\na = [1]\n[[template]]\ntarget = \"x\"\n[job]\ncommand = \"true\"\n", "src"),
    (
        "[params]\na = [1]\n[[template]]\nsrc = \"t.j2\"\ntarget = \"jobman-record.json\"\n[job]\ncommand = \"true\"\n",
        "written by jobman itself",
    ),
    ("[params]\nlr = [1]\n[job]\ncommand = \"x {{ lrr }}\"\n", "did you mean `lr`?"),
    ("[params]\nlr = [1]\n[job]\ncommand = \"x {{ lr \"\n", "cannot"),
    ("[params]\nlr = [1, 2]\n[job]\nname = \"x\"\ncommand = \"true\"\n", "are both named `x`"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\ntimeout = \"ten minutes\"\n", "invalid timeout"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\ntimeout = -5\n", "invalid timeout"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\nretries = -1\n", "retries"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\nretries = 1.5\n", "retries"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\nparams_file = \"params.yaml\"\n", "unsupported params file format"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\nresults = 3\n", "results"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\noutputs = [\"../w.txt\"]\n", "output `../w.txt` is refused"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\ngpus = -1\n", "gpus"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\n[executor]\nkind = \"slrum\"\n", "did you mean `slurm`?"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\n[executor.slurm]\ntime = \"forever\"\n", "time"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\n[executor.slurm]\nmem = \"lots\"\n", "mem"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\n[executor.slurm]\nextra_args = [\"--array=1-3\"]\n", "array"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\n[executor.slurm]\npoll_interval = \"10ms\"\n", "poll_interval"),
    (
        "[params]\na = [1]\n[job]\ncommand = \"true\"\n[[figure]]\nname = \"a b\"\nkind = \"line\"\nx = \"a\"\ny = \"a\"\n",
        "name",
    ),
    (
        "[params]\na = [1]\n[job]\ncommand = \"true\"\n[[figure]]\nname = \"f\"\nkind = \"pie\"\nx = \"a\"\ny = \"a\"\n",
        "pie",
    ),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\n[[figure]]\nname = \"f\"\nkind = \"line\"\ny = \"a\"\n", "`x`"),
    (
        "[params]\na = [1]\n[job]\ncommand = \"true\"\n[[figure]]\nname = \"f\"\nkind = \"curve\"\nx = \"step\"\ny = \"loss\"\n",
        "series",
    ),
    (
        "[params]\na = [1]\n[job]\ncommand = \"true\"\n[[figure]]\nname = \"f\"\nkind = \"line\"\nx = \"a\"\ny = \"a\"\naggregate = \"avg\"\n",
        "avg",
    ),
    (
        "[params]\na = [1]\n[job]\ncommand = \"true\"\n[[figure]]\nname = \"f\"\nkind = \"line\"\nx = \"a\"\ny = \"a\"\n[[figure]]\nname = \"f\"\nkind = \"bar\"\nx = \"a\"\ny = \"a\"\n",
        "`f`",
    ),
    (
        "[params]\na = [1]\n[stage.train]\ncommand = \"true\"\n[stage.eval]\nneeds = [\"trian\"]\ncommand = \"true\"\n",
        "did you mean `train`?",
    ),
    (
        "[params]\na = [1]\n[stage.x]\nneeds = [\"y\"]\ncommand = \"true\"\n[stage.y]\nneeds = [\"x\"]\ncommand = \"true\"\n",
        "needs itself",
    ),
    ("[params]\na = [1]\n[stage.jobs]\ncommand = \"true\"\n", "jobs"),
    ("[params]\na = [1]\n[stage.train]\ncommand = \"true\"\n[report]\nstage = \"trian\"\n", "did you mean `train`?"),
    ("[params]\na = [1]\n[workspace]\njbs = \"x\"\n[job]\ncommand = \"true\"\n", "did you mean `jobs`?"),
    ("[params]\na = [1]\n[workspace]\nreport = \"out.txt\"\n[job]\ncommand = \"true\"\n", "`.csv` file"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\nenv = [\"PATH\", \"1BAD\"]\n", "`1BAD` is not a variable name"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\n[report]\nunfinished = \"yes\"\n", "unfinished"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\n[report]\nrename = { a = 3 }\n", "string"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\n[executor.local]\ngpus = [0, 0]\n", "gpus"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\nresources = { mem_gb = 8 }\n", "mem_gb"),
    (
        "[params]\na = [1]\n[[template]]\nsrc = \"t.j2\"\nwhere = \"aa > 1\"\n[job]\ncommand = \"true\"\n",
        "did you mean `a`?",
    ),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\ninputs = \"*.csv\"\n", "inputs"),
    ("[params]\na = [1]\n[job]\ncommand = \"true\"\n[stage]\n", "[stage"),
];

#[test]
fn a_corpus_of_plausible_mistakes_is_refused_with_the_place_of_each() {
    let mut wrong = Vec::new();
    for (jobfile, expected) in CORPUS {
        let project = Project::with_jobfile(jobfile);
        project.template("t.j2", "x\n");
        let out = project.build(&["-n"]);
        let said = stderr(&out);
        let located = said.contains(" --> Jobfile.toml:");
        if out.status.code() != Some(2) || !said.contains(expected) || !located || said.contains("panicked") {
            wrong.push(format!(
                "--- {jobfile}--- exit {:?}, expected {expected:?} and a location:\n{said}",
                out.status.code()
            ));
        }
        if !project.job_dirs().is_empty() {
            wrong.push(format!("--- {jobfile}--- made job folders"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} mistakes not refused as they should be:\n{}",
        wrong.len(),
        CORPUS.len(),
        wrong.join("\n")
    );
    assert!(CORPUS.len() >= 60, "a corpus of at least 60 mistakes");
}

#[test]
fn a_where_that_keeps_no_job_is_refused_with_what_it_compares() {
    let project =
        Project::with_jobfile("[params]\nx = [1, 2]\n[sweep]\nwhere = \"x == '1'\"\n[job]\ncommand = \"true\"\n");
    project
        .builds(&["-n"])
        .refused()
        .says("the `where` filter keeps no job: it rejects all 2 points of the grid")
        .says("Jobfile.toml:4:9")
        .says("`x` is a number in every job: compare it with a number");
    // A filter that reads no param means what it says: an empty sweep.
    project.jobfile("[params]\nx = [1, 2]\n[sweep]\nwhere = \"false\"\n[job]\ncommand = \"true\"\n");
    project.builds(&[]).ok().ran_nothing();
}

#[test]
fn more_gpus_than_the_machine_has_is_shown_at_gpus() {
    let project = Project::with_jobfile("[params]\nx = [1, 2]\n[job]\ncommand = \"true\"\ngpus = 4\n");
    let out = project.build_with(&[], &[("CUDA_VISIBLE_DEVICES", "")]);
    assert_exit(&out, 2);
    let said = stderr(&out);
    assert!(said.contains("can never start") && said.contains("Jobfile.toml:5:8") && said.contains("4 GPUs"), "{said}");
    assert!(project.job_dirs().is_empty(), "nothing ran");
}

/// A `SLURM_CONF` that names no file: said at once (each Slurm command would wait a minute for it
/// and then fail with its own words), and a dry run still prints its plan.
#[test]
fn a_slurm_conf_that_does_not_exist_is_said_at_once() {
    let project =
        Project::with_jobfile("[params]\nx = [1, 2]\n[job]\ncommand = \"true\"\n[executor]\nkind = \"slurm\"\n");
    let missing = project.path().join("no-slurm.conf");
    let env = [("SLURM_CONF", missing.to_str().unwrap())];
    let output = project.build_with(&[], &env);
    assert_exit(&output, 2);
    let said = stderr(&output);
    assert!(said.contains(&format!("SLURM_CONF names {}, which does not exist", missing.display())), "{said}");
    let dry = project.build_with(&["-n"], &env);
    assert_exit(&dry, 0);
    assert!(stdout(&dry).contains("would run 2 of 2 jobs"), "{}", stdout(&dry));
}
