//! `[[template]] where`: a template instantiated only in the jobs its expression is true for.

use super::*;

fn jobfile(filter: &str) -> String {
    format!(
        "[params]\nmodel = [\"cnn\", \"mlp\"]\nseed = [0, 1]\n\n\
         [[template]]\nsrc = \"common.txt.j2\"\n\n\
         [[template]]\nsrc = \"cnn.py.j2\"\nwhere = \"{filter}\"\n\n\
         [job]\nname = \"{{{{model}}}}-s{{{{seed}}}}\"\ncommand = \"{RECORD_RUN}\"\n"
    )
}

/// The folder of the current job of this name.
fn folder_of(project: &Project, name: &str) -> PathBuf {
    let (model, seed) = name.split_once("-s").unwrap();
    let filter = format!("model == '{model}' and seed == {seed}");
    let out = project.runs(&["ls", "--where", &filter, "--format", "paths"]).ok();
    PathBuf::from(out.stdout().trim())
}

#[test]
fn a_conditional_template_is_rendered_only_where_its_expression_is_true() {
    let project = Project::new();
    project
        .jobfile(&jobfile("model == 'cnn'"))
        .template("common.txt.j2", "model = {{ model }}\n")
        .template("cnn.py.j2", "layers = 3  # {{ model }}\n");
    project.builds(&[]).ok().ran(["cnn-s0", "cnn-s1", "mlp-s0", "mlp-s1"]);
    assert_eq!(fs::read_to_string(folder_of(&project, "cnn-s0").join("cnn.py")).unwrap(), "layers = 3  # cnn\n");
    assert!(!folder_of(&project, "mlp-s0").join("cnn.py").exists(), "an mlp job has no cnn.py");
    assert!(folder_of(&project, "mlp-s0").join("common.txt").exists());
    let record: Value =
        serde_json::from_slice(&fs::read(folder_of(&project, "mlp-s1").join("jobman-record.json")).unwrap()).unwrap();
    assert_eq!(record["ingredients"]["templates"].as_object().unwrap().len(), 1, "{record:#}");

    // Which templates a job has is part of its key: widening the expression reruns the jobs that
    // gain the file, and only them.
    project.jobfile(&jobfile("model == 'cnn' or seed == 1"));
    project.builds(&[]).ok().ran(["mlp-s1"]);
    assert!(folder_of(&project, "mlp-s1").join("cnn.py").exists());

    // An edit of the conditional template reruns only the jobs that have it.
    project.template("cnn.py.j2", "layers = 4  # {{ model }}\n");
    project.builds(&[]).ok().ran(["cnn-s0", "cnn-s1", "mlp-s1"]);
}

#[test]
fn a_template_where_with_an_unknown_param_is_a_clear_error() {
    let project = Project::new();
    project.jobfile(&jobfile("modle == 'cnn'")).template("common.txt.j2", "x\n").template("cnn.py.j2", "y\n");
    let out = project.builds(&[]).refused();
    let text = out.stderr();
    assert!(text.contains("Jobfile.toml:10:"), "{text}");
    assert!(text.contains("did you mean `model`?"), "{text}");
    assert_eq!(project.ran(), Vec::<String>::new());
}
