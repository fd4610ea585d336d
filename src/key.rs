//! A job's identity: a blake3 hash over exactly what determines its output.
//!
//! | ingredient   | what is hashed                                               |
//! |--------------|--------------------------------------------------------------|
//! | format       | [`KEY_FORMAT`], bumped when this table changes               |
//! | params       | every parameter, canonical JSON (sorted keys)                |
//! | command      | the rendered command                                         |
//! | templates    | each rendered template: target path and blake3 of its bytes  |
//! | params_file  | the params file's name (its bytes follow from the params)    |
//! | inputs       | each declared input file: path and blake3 of its content     |
//! | env          | each declared variable: name and blake3 of its value (or unset) |
//! | stage        | the stage's name (a Jobfile with stages)                     |
//! | needs        | each upstream job needed: its key and the blake3 of each file its stage declares in `outputs` |
//!
//! Not in the key: the sweep order, other jobs, the time, the executor and its settings (Slurm's,
//! GPUs, resources), the timeout, retries, the results file name, `job.dir` (so moving the
//! project reruns nothing). `job.id` is derived from the key itself, so templates that print it
//! are hashed with a placeholder in its place.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bump when the ingredients or their encoding change: old jobs then rerun, they never crash.
pub const KEY_FORMAT: u32 = 1;

/// Length of the job id (the folder name) in hex characters; longer only on a collision.
pub const ID_LEN: usize = 12;

/// The full 256-bit key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey(pub [u8; 32]);

impl JobKey {
    pub fn hex(&self) -> String {
        self.hex_digits().to_string()
    }

    /// The same 64 digits without allocating: once per job in every command.
    pub fn hex_digits(&self) -> impl std::ops::Deref<Target = str> {
        blake3::Hash::from_bytes(self.0).to_hex()
    }

    pub fn from_hex(text: &str) -> Option<JobKey> {
        blake3::Hash::from_hex(text).ok().map(|h| JobKey(*h.as_bytes()))
    }
}

impl fmt::Debug for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobKey({})", &self.hex()[..ID_LEN])
    }
}

/// Everything a key is made of, kept in the job's record so that a later build can say which
/// ingredient changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyIngredients {
    pub format: u32,
    pub params: Value,
    pub command: String,
    /// Target path → blake3 of the rendered bytes.
    pub templates: BTreeMap<String, String>,
    pub params_file: Option<String>,
    /// Input path (relative to the Jobfile) → blake3 of its content.
    pub inputs: BTreeMap<String, String>,
    /// Variable name → blake3 of its value; `None` when unset.
    pub env: BTreeMap<String, Option<String>>,
    /// Absent without stages, so that the keys of a Jobfile of one stage stay as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Upstream stage → the jobs needed. The upstream key is there because a job may read any
    /// file of an upstream folder; the output hashes because an upstream job run again (forced,
    /// or after a failure) may write other outputs under the same key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub needs: BTreeMap<String, Vec<NeededKey>>,
}

/// An upstream job as a downstream key covers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeededKey {
    pub key: String,
    /// Declared output → blake3 of its content.
    pub outputs: BTreeMap<String, String>,
}

impl KeyIngredients {
    /// The ingredients of a job that runs `command` with these params and nothing else, for tests.
    #[cfg(test)]
    pub fn of_command(command: &str, params: Value) -> KeyIngredients {
        KeyIngredients {
            format: KEY_FORMAT,
            params,
            command: command.into(),
            templates: BTreeMap::new(),
            params_file: None,
            inputs: BTreeMap::new(),
            env: BTreeMap::new(),
            stage: None,
            needs: BTreeMap::new(),
        }
    }

    pub fn key(&self) -> JobKey {
        let mut hasher = blake3::Hasher::new_derive_key("jobman job key");
        let mut text = String::new();
        write_canonical(&serde_json::to_value(self).unwrap_or(Value::Null), &mut text);
        hasher.update(text.as_bytes());
        JobKey(*hasher.finalize().as_bytes())
    }
}

/// blake3 of some bytes, as hex: the form every content hash takes in records.
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// JSON with object keys sorted at every level, whatever order the map kept them in.
pub fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingredients() -> KeyIngredients {
        KeyIngredients {
            format: KEY_FORMAT,
            params: serde_json::json!({"lr": 0.1, "hidden": 8}),
            command: "python3 train.py".into(),
            templates: BTreeMap::from([("train.py".into(), content_hash(b"x"))]),
            params_file: Some("params.json".into()),
            inputs: BTreeMap::new(),
            env: BTreeMap::new(),
            stage: None,
            needs: BTreeMap::new(),
        }
    }

    #[test]
    fn the_key_ignores_the_order_params_were_written_in() {
        let mut other = ingredients();
        other.params = serde_json::from_str(r#"{"hidden": 8, "lr": 0.1}"#).unwrap();
        assert_eq!(ingredients().key(), other.key());
    }

    #[test]
    fn every_ingredient_changes_the_key() {
        let base = ingredients().key();
        let changes: Vec<fn(&mut KeyIngredients)> = vec![
            |i| i.format += 1,
            |i| i.params["lr"] = serde_json::json!(0.2),
            |i| i.command.push(' '),
            |i| *i.templates.get_mut("train.py").unwrap() = content_hash(b"y"),
            |i| i.params_file = None,
            |i| _ = i.inputs.insert("data.csv".into(), content_hash(b"")),
            |i| _ = i.env.insert("SEED".into(), None),
        ];
        for change in changes {
            let mut changed = ingredients();
            change(&mut changed);
            assert_ne!(changed.key(), base, "{changed:?}");
        }
    }

    #[test]
    fn hex_round_trips() {
        let key = ingredients().key();
        assert_eq!(JobKey::from_hex(&key.hex()), Some(key));
    }
}
