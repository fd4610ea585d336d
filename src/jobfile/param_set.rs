//! One job's parameters: a point of the space the Jobfile's params declare.

use std::sync::Arc;

use serde_json::{Map, Value};

/// The parameters of one job: flat dotted names in declaration order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamSet(pub Vec<(Arc<str>, Value)>);

impl ParamSet {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| **n == *name).map(|(_, v)| v)
    }

    /// Nested object (`model.width` becomes `{"model": {"width": …}}`): what templates and the
    /// params file see.
    pub fn nested(&self) -> Value {
        let mut root = Map::new();
        for (name, value) in &self.0 {
            let mut table = &mut root;
            let mut parts = name.split('.').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    table.insert(part.to_string(), value.clone());
                } else {
                    let entry = table.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
                    if !entry.is_object() {
                        *entry = Value::Object(Map::new());
                    }
                    table = entry.as_object_mut().expect("made an object above");
                }
            }
        }
        Value::Object(root)
    }

    /// The inverse of [`ParamSet::nested`]: nested objects become dotted names. A value that is
    /// not an object is one entry named `root_name`.
    pub fn from_nested(value: &Value, root_name: &str) -> ParamSet {
        ParamSet(flatten_nested(value, root_name).into_iter().map(|(name, value)| (Arc::from(name), value)).collect())
    }

    /// `hidden=8 lr=0.01`, for messages.
    pub fn describe(&self) -> String {
        self.0.iter().map(|(n, v)| format!("{n}={}", display_value(v))).collect::<Vec<_>>().join(" ")
    }
}

/// A value as a user would write it in a message: strings without quotes.
pub fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A job's params as its default name shows them: `lr=0.1,seed=0`.
pub fn display_params(params: &ParamSet) -> String {
    params.0.iter().map(|(n, v)| format!("{n}={}", display_value(v))).collect::<Vec<_>>().join(",")
}

/// Nested objects as dotted names, as in [`ParamSet::from_nested`]: for tables of results,
/// whose names are not shared between rows.
pub fn flatten_nested(value: &Value, root_name: &str) -> Vec<(String, Value)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&name, v, out);
                }
            }
            other => out.push((prefix.to_string(), other.clone())),
        }
    }
    let mut out = Vec::new();
    match value {
        Value::Object(_) => walk("", value, &mut out),
        other => out.push((root_name.to_string(), other.clone())),
    }
    out
}
