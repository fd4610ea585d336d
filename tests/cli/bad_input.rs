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
    assert_eq!(fs::read_dir(&scratch).unwrap().count(), 2, "two job folders in the scratch folder");
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
}

#[test]
fn a_sweep_too_large_to_build_is_refused_at_once_with_its_count() {
    let axes: String = (0..10).map(|i| format!("a{i} = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n")).collect();
    let project = Project::with_jobfile(&format!("[params]\n{axes}\n[job]\ncommand = \"true\"\n"));
    let started = std::time::Instant::now();
    project
        .builds(&["-n"])
        .refused()
        .says("this sweep makes 10000000000 jobs; the limit is 1000000 per stage")
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
