//! Walking the spanned TOML: each value read with its location, each mistake collected.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::util::diagnostic::{Diagnostic, Diagnostics, Source, did_you_mean};

pub(super) type Item<'i> = Spanned<DeValue<'i>>;

pub(super) struct Walker<'s> {
    pub(super) source: &'s Source,
    pub(super) diagnostics: Diagnostics,
    /// Whether a parameter was written as a distribution, even one refused: `samples` is then wanted.
    pub(super) saw_distribution: bool,
}

impl Walker<'_> {
    pub(super) fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    pub(super) fn at(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> &mut Diagnostic {
        let diagnostic = Diagnostic::new(message).at(self.source, span, label);
        self.diagnostics.push(diagnostic);
        self.diagnostics.0.last_mut().expect("just pushed")
    }

    pub(super) fn unknown_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], what: &str) {
        for key in table.keys() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                let help = did_you_mean(key.get_ref(), allowed.iter().copied())
                    .unwrap_or_else(|| format!("expected one of: {}", allowed.join(", ")));
                self.at(key.span(), format!("unknown key `{}`", key.get_ref()), format!("not {what}")).help =
                    Some(help);
            }
        }
    }

    pub(super) fn table<'a, 'i>(&mut self, item: Option<&'a Item<'i>>, what: &str) -> Option<&'a DeTable<'i>> {
        match item.map(|i| (i, i.get_ref())) {
            None => None,
            Some((_, DeValue::Table(table))) => Some(table),
            Some((item, other)) => {
                self.at(item.span(), format!("{what} must be a table"), format!("found {}", kind(other)));
                None
            }
        }
    }

    pub(super) fn string(&mut self, table: &DeTable<'_>, key: &str, what: &str) -> Option<Spanned<String>> {
        let item = table.get(key)?;
        match item.get_ref() {
            DeValue::String(s) => Some(Spanned::new(item.span(), s.to_string())),
            other => {
                self.at(
                    item.span(),
                    format!("`{key}` must be a string"),
                    format!("expected {what}, found {}", kind(other)),
                );
                None
            }
        }
    }

    pub(super) fn strings(&mut self, table: &DeTable<'_>, key: &str, what: &str) -> Vec<Spanned<String>> {
        let Some(item) = table.get(key) else { return Vec::new() };
        match item.get_ref() {
            DeValue::String(s) => vec![Spanned::new(item.span(), s.to_string())],
            DeValue::Array(items) => items
                .iter()
                .filter_map(|element| match element.get_ref() {
                    DeValue::String(s) => Some(Spanned::new(element.span(), s.to_string())),
                    other => {
                        self.at(
                            element.span(),
                            format!("`{key}` must list strings"),
                            format!("expected {what}, found {}", kind(other)),
                        );
                        None
                    }
                })
                .collect(),
            other => {
                self.at(
                    item.span(),
                    format!("`{key}` must be a list of strings"),
                    format!("expected {what}, found {}", kind(other)),
                );
                Vec::new()
            }
        }
    }

    pub(super) fn boolean(&mut self, table: &DeTable<'_>, key: &str) -> Option<bool> {
        let item = table.get(key)?;
        match item.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.at(item.span(), format!("`{key}` must be true or false"), format!("found {}", kind(other)));
                None
            }
        }
    }

    /// One of `choices` (the string's text), with a suggestion when misspelt.
    pub(super) fn choice<T: Copy>(&mut self, table: &DeTable<'_>, key: &str, choices: &[(&str, T)]) -> Option<T> {
        let text = self.string(table, key, "a name")?;
        let found = choices.iter().find(|(name, _)| *name == text.get_ref().as_str()).map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            let help = did_you_mean(text.get_ref(), names.iter().copied())
                .unwrap_or_else(|| format!("expected one of: {}", names.join(", ")));
            self.at(text.span(), format!("unknown {key} `{}`", text.get_ref()), format!("not a {key}")).help =
                Some(help);
        }
        found
    }
}

/// A TOML integer or float as a number.
pub(super) fn toml_number(value: &DeValue<'_>) -> Option<f64> {
    match value {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64),
        DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
        _ => None,
    }
}

pub(super) fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

pub(super) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether a Jobfile string is a template to render per job.
pub(super) fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}
