//! Expressions over a job's parameters (`where = "lr < 0.1 and hidden > 8"`), in minijinja's
//! expression language, checked against the declared parameter names before they run.

use std::ops::Range;
use std::sync::LazyLock;

use minijinja::{Environment, Expression, UndefinedBehavior, Value};

use crate::util::diagnostic::{Diagnostic, Source, did_you_mean};

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_debug(true);
    env
});

/// A compiled filter over parameters.
pub struct ParamFilter {
    expression: Expression<'static, 'static>,
    text: String,
}

/// Where an expression came from, for diagnostics: the file and the span of its text.
pub struct Origin<'a> {
    pub source: &'a Source,
    pub span: Range<usize>,
}

impl ParamFilter {
    /// Compiles `text`, refusing names that are not parameters (with a "did you mean").
    pub fn compile(text: &str, param_names: &[&str], origin: &Origin<'_>) -> Result<ParamFilter, Diagnostic> {
        let expression = ENVIRONMENT.compile_expression_owned(text.to_string()).map_err(|e| {
            Diagnostic::new(format!("invalid expression `{text}`"))
                .at(origin.source, origin.span.clone(), e.detail().unwrap_or("syntax error").to_string())
                .help("write a Jinja expression such as `lr < 0.1 and not (hidden == 64)`")
        })?;
        known_params(expression.undeclared_variables(true), text, param_names, origin)?;
        Ok(ParamFilter { expression, text: text.to_string() })
    }

    /// The top-level names the expression reads.
    pub fn names(&self) -> std::collections::HashSet<String> {
        self.expression.undeclared_variables(false)
    }

    /// Whether a job with these parameters (a nested object) passes the filter.
    pub fn matches(&self, params: &serde_json::Value) -> Result<bool, String> {
        self.expression
            .eval(Value::from(minijinja::value::Serde(params)))
            .map(|v| v.is_true())
            .map_err(|e| format!("`{}` failed: {e}", self.text))
    }
}

/// Checks that a template string of the Jobfile (a per-job setting such as `time = "{{ hours }}:00:00"`)
/// compiles and uses only declared parameters.
pub fn check_template(text: &str, param_names: &[&str], origin: &Origin<'_>) -> Result<(), Diagnostic> {
    let template = ENVIRONMENT.template_from_str(text).map_err(|e| {
        Diagnostic::new(format!("invalid template `{text}`"))
            .at(origin.source, origin.span.clone(), e.detail().unwrap_or("syntax error").to_string())
            .help("a per-job setting is a Jinja template over params, e.g. \"{{ 2 if model == 'large' else 1 }}\"")
    })?;
    known_params(template.undeclared_variables(true), text, param_names, origin)
}

/// Refuses the first used name that is not a parameter, with a "did you mean".
fn known_params(
    used: std::collections::HashSet<String>,
    text: &str,
    param_names: &[&str],
    origin: &Origin<'_>,
) -> Result<(), Diagnostic> {
    let mut used: Vec<String> = used.into_iter().collect();
    used.sort();
    for name in used {
        let known = param_names
            .iter()
            .any(|p| *p == name || p.starts_with(&format!("{name}.")) || name.starts_with(&format!("{p}.")));
        if !known {
            let top = name.split('.').next().unwrap_or(&name);
            let help = did_you_mean(&name, param_names.iter().copied())
                .or_else(|| did_you_mean(top, param_names.iter().copied()))
                .unwrap_or_else(|| format!("the parameters are: {}", param_names.join(", ")));
            return Err(Diagnostic::new(format!("unknown parameter `{name}` in `{text}`"))
                .at(origin.source, origin.span.clone(), "not a parameter of this Jobfile")
                .help(help));
        }
    }
    Ok(())
}

/// A filter over a table's rows (a figure's `where`), whose names are the table's columns.
pub struct RowFilter {
    expression: Expression<'static, 'static>,
    text: String,
}

impl RowFilter {
    pub fn compile(text: &str) -> Result<RowFilter, String> {
        let expression = ENVIRONMENT
            .compile_expression_owned(text.to_string())
            .map_err(|e| format!("invalid `where` expression `{text}`: {}", e.detail().unwrap_or("syntax error")))?;
        Ok(RowFilter { expression, text: text.to_string() })
    }

    /// Whether the row passes; dotted column names are nested as in templates.
    pub fn matches(&self, columns: &[String], row: &[serde_json::Value]) -> Result<bool, String> {
        let flat =
            crate::jobfile::ParamSet(columns.iter().map(|c| c.as_str().into()).zip(row.iter().cloned()).collect());
        self.expression
            .eval(Value::from(minijinja::value::Serde(flat.nested())))
            .map(|v| v.is_true())
            .map_err(|e| format!("`{}` failed: {e}; the columns are: {}", self.text, columns.join(", ")))
    }
}
