//! A table of named columns: the report's rows, or the per-step rows of jobs' series files.
//! What the report writes and what figures read.

use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    /// Each row has one cell per column; `Value::Null` is an empty cell.
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The cells of one column, top to bottom.
    pub fn values<'a>(&'a self, name: &str) -> Option<impl Iterator<Item = &'a Value> + 'a> {
        let at = self.column(name)?;
        Some(self.rows.iter().map(move |row| &row[at]))
    }
}
