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
