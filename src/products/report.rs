//! Stage 6: the report. One row per job in sweep order: id, name, params (nested ones as `a.b`),
//! the scalar results (nested the same way), status, duration and attempts. Pure: the caller reads the
//! results files.
//!
//! Cells are never coerced: numbers stay as written by the job, booleans are `true`/`false`, a
//! list or table result becomes a JSON string cell, a missing value an empty cell.

use std::sync::Arc;

use serde_json::Value;
use toml::Spanned;

use crate::jobfile::flatten_nested;
use crate::jobfile::{FIXED_COLUMNS, ID_COLUMNS, ReportSpec, USAGE_COLUMNS};
use crate::products::table::Table;
use crate::store::{PROVENANCE_COLUMNS, Usage};
use crate::util::diagnostic::{Diagnostic, Source, did_you_mean};

/// One job as the report sees it.
pub struct ReportRow<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub params: &'a [(Arc<str>, Value)],
    /// The parsed results file; `None` when the job is not done.
    pub results: Option<Value>,
    /// `done`, `failed`, `timed_out`, `interrupted` or `pending`.
    pub status: &'a str,
    pub duration: Option<f64>,
    /// How many times it ran in the build that recorded it (more than 1 when retried).
    pub attempts: Option<u32>,
    /// What it used.
    pub usage: Option<Usage>,
    /// Where it was made ([`PROVENANCE_COLUMNS`]), read from its record only when the report
    /// names one of those columns.
    pub made: Option<[Value; 4]>,
}

/// The full table every figure reads, with all columns under their own names. `params` are the
/// parameter names, so that a report with no row still has its columns.
pub fn data_table(params: &[&str], rows: Vec<ReportRow<'_>>) -> Table {
    let mut columns: Vec<String> = ID_COLUMNS.map(String::from).to_vec();
    columns.extend(params.iter().map(|n| n.to_string()));
    let param_count = columns.len();
    let mut flat_results: Vec<Vec<(String, Value)>> = Vec::with_capacity(rows.len());
    for row in &rows {
        // A results file that is not a table is one column named `result`.
        let flat = row.results.as_ref().map_or_else(Vec::new, |r| flatten_nested(r, "result"));
        for (name, _) in &flat {
            if !columns[param_count..].contains(name) {
                columns.push(name.clone());
            }
        }
        flat_results.push(flat);
    }
    // A result named like a param or a fixed column would be ambiguous: give it a prefix.
    let result_columns: Vec<String> = columns[param_count..].to_vec();
    columns.truncate(param_count);
    for name in &result_columns {
        let clash =
            columns.contains(name) || FIXED_COLUMNS.contains(&name.as_str()) || USAGE_COLUMNS.contains(&name.as_str());
        columns.push(if clash { format!("results.{name}") } else { name.clone() });
    }
    columns.extend(FIXED_COLUMNS.map(String::from));
    columns.extend(USAGE_COLUMNS.map(String::from));
    // Where jobs were made, when asked for; a param or result of the same name keeps its place.
    let made: Vec<usize> = match rows.iter().any(|row| row.made.is_some()) {
        true => {
            (0..PROVENANCE_COLUMNS.len()).filter(|&i| !columns.iter().any(|c| c == PROVENANCE_COLUMNS[i])).collect()
        }
        false => Vec::new(),
    };
    columns.extend(made.iter().map(|&i| PROVENANCE_COLUMNS[i].to_string()));

    let table_rows = rows
        .iter()
        .zip(flat_results)
        .map(|(row, flat)| {
            let mut cells = vec![Value::from(row.id), Value::from(row.name)];
            cells.extend(row.params.iter().map(|(_, v)| v.clone()));
            for name in &result_columns {
                cells.push(flat.iter().find(|(n, _)| n == name).map_or(Value::Null, |(_, v)| v.clone()));
            }
            cells.push(Value::from(row.status));
            cells.push(row.duration.map_or(Value::Null, Value::from));
            cells.push(row.attempts.map_or(Value::Null, Value::from));
            cells.push(row.usage.map_or(Value::Null, |u| Value::from(u.max_rss_mb)));
            cells.push(row.usage.map_or(Value::Null, |u| Value::from((u.cpu_secs() * 1000.0).round() / 1000.0)));
            cells.extend(made.iter().map(|&i| row.made.as_ref().map_or(Value::Null, |values| values[i].clone())));
            cells
        })
        .collect();
    Table { columns, rows: table_rows }
}

/// The report view of the data: the chosen columns, renamed. `source` is the Jobfile, for
/// pointing at a column that does not exist.
pub fn select_columns(data: &Table, spec: &ReportSpec, source: &Source) -> Result<Table, Diagnostic> {
    let columns: Vec<Spanned<String>> = match &spec.columns {
        Some(columns) => columns.clone(),
        None => data
            .columns
            .iter()
            .filter(|c| !USAGE_COLUMNS.contains(&c.as_str()))
            .map(|c| Spanned::new(0..0, c.clone()))
            .collect(),
    };
    // Before any job is done, no result is known yet: a results column is empty, not a mistake.
    let results_known = data.column("status").is_none_or(|s| data.rows.iter().any(|row| row[s] == "done"));
    let mut at = Vec::with_capacity(columns.len());
    for column in &columns {
        let name = column.get_ref();
        match data.column(name) {
            Some(i) => at.push(Some(i)),
            None if !results_known => at.push(None),
            None => {
                return Err(Diagnostic::new(format!("[report] columns: no column `{name}`"))
                    .at(source, column.span(), "not a param or a result of any done job")
                    .help(
                        did_you_mean(name, data.columns.iter().map(String::as_str))
                            .unwrap_or_else(|| format!("the columns are: {}", data.columns.join(", "))),
                    ));
            }
        }
    }
    let header = columns
        .iter()
        .map(|c| {
            let c = c.get_ref();
            spec.rename.iter().find(|(from, _)| from == c).map_or_else(|| c.clone(), |(_, to)| to.clone())
        })
        .collect();
    let rows =
        data.rows.iter().map(|row| at.iter().map(|&i| i.map_or(Value::Null, |i| row[i].clone())).collect()).collect();
    Ok(Table { columns: header, rows })
}

/// CSV bytes of a table.
pub fn to_csv(table: &Table) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(&table.columns);
    for row in &table.rows {
        let _ = writer.write_record(row.iter().map(cell_text));
    }
    writer.into_inner().unwrap_or_default()
}

/// A cell as text: strings as they are, numbers as JSON writes them, lists and tables as JSON.
pub fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row<'a>(id: &'a str, params: &'a [(Arc<str>, Value)], results: Option<Value>) -> ReportRow<'a> {
        let (status, duration) = if results.is_some() { ("done", Some(1.5)) } else { ("failed", None) };
        let usage = duration.map(|_| Usage { max_rss_mb: 20.5, user_cpu_secs: 1.25, system_cpu_secs: 0.5 });
        ReportRow { id, name: id, params, results, status, duration, attempts: duration.map(|_| 1), usage, made: None }
    }

    #[test]
    fn nested_results_flatten_and_lists_become_json_cells() {
        let params = [(Arc::from("lr"), json!(0.1))];
        let table = data_table(
            &["lr"],
            vec![
                row("a", &params, Some(json!({"acc": 0.9, "loss": {"train": 0.1}, "curve": [1, 2], "ok": true}))),
                row("b", &params, None),
            ],
        );
        let csv = String::from_utf8(to_csv(&table)).unwrap();
        assert_eq!(
            csv,
            "id,name,lr,acc,curve,loss.train,ok,status,duration,attempts,max_rss_mb,cpu_secs\na,a,0.1,0.9,\"[1,2]\",0.1,true,done,1.5,1,20.5,1.75\nb,b,0.1,,,,,failed,,,,\n"
        );
    }

    #[test]
    fn a_report_without_rows_still_has_the_param_columns() {
        let table = data_table(&["lr", "seed"], Vec::new());
        assert_eq!(
            table.columns,
            ["id", "name", "lr", "seed", "status", "duration", "attempts", "max_rss_mb", "cpu_secs"]
        );
    }

    #[test]
    fn a_result_named_like_a_param_gets_a_prefix() {
        let params = [(Arc::from("lr"), json!(0.1))];
        let results = json!({"lr": 0.2, "attempts": 3, "cpu_secs": 9});
        let table = data_table(&["lr"], vec![row("a", &params, Some(results))]);
        assert_eq!(
            table.columns,
            [
                "id",
                "name",
                "lr",
                "results.attempts",
                "results.cpu_secs",
                "results.lr",
                "status",
                "duration",
                "attempts",
                "max_rss_mb",
                "cpu_secs"
            ]
        );
    }

    #[test]
    fn columns_are_chosen_ordered_and_renamed() {
        let params = [(Arc::from("lr"), json!(0.1))];
        let table = data_table(&["lr"], vec![row("a", &params, Some(json!({"acc": 0.9})))]);
        let spec = ReportSpec {
            stage: None,
            columns: Some(vec![Spanned::new(0..0, "acc".into()), Spanned::new(0..0, "lr".into())]),
            rename: vec![("acc".into(), "accuracy".into())],
            unfinished: false,
        };
        let source = Source { path: "Jobfile.toml".into(), text: "".into() };
        let view = select_columns(&table, &spec, &source).unwrap();
        assert_eq!(String::from_utf8(to_csv(&view)).unwrap(), "accuracy,lr\n0.9,0.1\n");
        let bad = ReportSpec { columns: Some(vec![Spanned::new(0..0, "ac".into())]), ..spec };
        assert_eq!(select_columns(&table, &bad, &source).unwrap_err().help.as_deref(), Some("did you mean `acc`?"));
    }

    #[test]
    fn a_param_named_like_a_record_column_keeps_its_place() {
        let params = vec![(Arc::from("host"), json!("gpu1"))];
        let mut made = row("a", &params, Some(json!({"acc": 0.9})));
        made.made = Some([json!("3f2a"), json!(false), json!("node7"), json!("ada")]);
        let table = data_table(&["host"], vec![made]);
        assert_eq!(table.columns.iter().filter(|c| *c == "host").count(), 1, "{:?}", table.columns);
        assert_eq!(table.rows[0][table.column("host").unwrap()], json!("gpu1"));
        assert_eq!(table.rows[0][table.column("user").unwrap()], json!("ada"));
        assert_eq!(table.rows[0].len(), table.columns.len());
    }
}
