//! From table cells to what gets drawn: numbers, ordered categories and aggregated points.

use super::scale::fmt_sig;
use crate::jobfile::figure::{Aggregate, ErrorBars, FigureSpec};
use crate::jobfile::format::NumberFormat;
use crate::products::table::Table;
use serde_json::Value;

/// One cell, as far as plotting is concerned.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Num(f64),
    Missing,
    Text,
}

fn cell(v: &Value) -> Cell {
    match v {
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()).map_or(Cell::Missing, Cell::Num),
        Value::Null => Cell::Missing,
        Value::String(s) if s.trim().is_empty() => Cell::Missing,
        // Numbers read back from CSV may arrive as text; "nan"/"inf" count as missing.
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Cell::Num(x),
            Ok(_) => Cell::Missing,
            Err(_) => Cell::Text,
        },
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => Cell::Text,
    }
}

/// How a value reads in a legend, a category label or an error message.
pub(super) fn label(v: &Value, format: Option<&NumberFormat>) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            let s = n.to_string();
            match (n.as_f64(), format) {
                (Some(x), Some(format)) => format.apply(x),
                (Some(x), None) if s.len() > 8 && !n.is_i64() && !n.is_u64() => fmt_sig(x, 4),
                _ => s,
            }
        }
        other => other.to_string(),
    }
}

/// Index of column `name`, or an error naming the columns there are.
pub(super) fn column(table: &Table, name: &str) -> Result<usize, String> {
    if let Some(i) = table.column(name) {
        return Ok(i);
    }
    let mut msg = format!("column `{name}` not found");
    // The most similar column name, if similar enough (first of equals).
    let mut best: Option<(f64, &String)> = None;
    for c in &table.columns {
        let score = strsim::jaro_winkler(name, c);
        if score >= 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    if let Some((_, c)) = best {
        msg.push_str(&format!(" (did you mean `{c}`?)"));
    }
    if table.columns.is_empty() {
        msg.push_str("; the table has no columns");
    } else {
        let names: Vec<String> = table.columns.iter().map(|c| format!("`{c}`")).collect();
        msg.push_str(&format!("; columns are: {}", names.join(", ")));
    }
    Err(msg)
}

/// What a numeric column is used for, for error messages.
#[derive(Clone, Copy)]
pub(super) enum Role {
    /// x of line, scatter, curve: categories belong in a bar chart.
    X,
    Y,
    Value,
}

/// The numbers of a column, `None` for empty cells; text is an error.
pub(super) fn numbers(table: &Table, at: usize, role: Role) -> Result<Vec<Option<f64>>, String> {
    let name = &table.columns[at];
    let mut out = Vec::with_capacity(table.rows.len());
    for (r, row) in table.rows.iter().enumerate() {
        let v = row.get(at).unwrap_or(&Value::Null);
        match cell(v) {
            Cell::Num(x) => out.push(Some(x)),
            Cell::Missing => out.push(None),
            Cell::Text => {
                let shown = match v {
                    Value::String(s) => format!("\"{s}\""),
                    other => other.to_string(),
                };
                let hint = match role {
                    Role::X => "; for categories on the x axis use kind = \"bar\"",
                    Role::Y | Role::Value => "",
                };
                return Err(format!("column `{name}` is not numeric: row {} has {shown}{hint}", r + 1));
            }
        }
    }
    if out.iter().all(Option::is_none) {
        return Err(format!("no numeric values of `{name}` to plot"));
    }
    Ok(out)
}

/// The distinct values of a column in display order: sorted when all are numbers, else in
/// order of first appearance (empty cells last).
pub(super) struct Categories {
    pub labels: Vec<String>,
    /// Category of each row (of the rows given to [`categories`]).
    pub of_row: Vec<usize>,
}

pub(super) fn categories<'a>(values: impl Iterator<Item = &'a Value>, format: Option<&NumberFormat>) -> Categories {
    #[derive(PartialEq)]
    enum Key {
        Num(f64),
        Text(String),
        Missing,
    }
    let mut keys: Vec<(Key, String)> = Vec::new();
    let mut of_row = Vec::new();
    for v in values {
        let key = match cell(v) {
            Cell::Num(x) => Key::Num(if x == 0.0 { 0.0 } else { x }),
            Cell::Missing => Key::Missing,
            Cell::Text => Key::Text(label(v, format)),
        };
        let i = match keys.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                keys.push((key, label(v, format)));
                keys.len() - 1
            }
        };
        of_row.push(i);
    }
    let all_numeric = keys.iter().all(|(k, _)| !matches!(k, Key::Text(_)));
    let mut order: Vec<usize> = (0..keys.len()).collect();
    let rank = |k: &Key| match k {
        Key::Num(_) | Key::Text(_) => 0,
        Key::Missing => 1,
    };
    order.sort_by(|&a, &b| {
        let (ka, kb) = (&keys[a].0, &keys[b].0);
        rank(ka).cmp(&rank(kb)).then_with(|| match (ka, kb) {
            (Key::Num(x), Key::Num(y)) if all_numeric => x.total_cmp(y),
            _ => a.cmp(&b),
        })
    });
    let mut new_index = vec![0; keys.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    Categories {
        labels: order.iter().map(|&i| keys[i].1.clone()).collect(),
        of_row: of_row.into_iter().map(|i| new_index[i]).collect(),
    }
}

/// An aggregated value: `mid` with its spread `lo..=hi` (equal to `mid` without error bars).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Stat {
    pub mid: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

impl Stat {
    pub fn has_spread(&self) -> bool {
        self.n > 1 && self.hi > self.lo
    }
}

/// Aggregates `values` (not empty).
pub(super) fn stat(values: &mut [f64], aggregate: Aggregate, error: ErrorBars) -> Stat {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let mid = match aggregate {
        Aggregate::Mean => mean,
        Aggregate::Median if n % 2 == 1 => values[n / 2],
        Aggregate::Median => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        Aggregate::Min => values[0],
        Aggregate::Max => values[n - 1],
    };
    let (lo, hi) = match error {
        _ if n < 2 => (mid, mid),
        ErrorBars::None => (mid, mid),
        ErrorBars::MinMax => (values[0], values[n - 1]),
        ErrorBars::Std => {
            // Sample standard deviation (n − 1), as is usual for a handful of seeds.
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            let sd = var.sqrt();
            (mid - sd, mid + sd)
        }
    };
    Stat { mid, lo, hi, n }
}

/// One legend entry's worth of points.
pub(super) struct Series {
    /// "lr = 0.01"; `None` without a `group`.
    pub label: Option<String>,
    /// Sorted by x.
    pub points: Vec<(f64, Stat)>,
}

/// The group of each row (`None`: one group) and the group labels, "lr = 0.01".
fn groups(spec: &FigureSpec, table: &Table) -> Result<(Vec<Option<String>>, Vec<usize>), String> {
    match &spec.group {
        None => Ok((vec![None], vec![0; table.rows.len()])),
        Some(g) => {
            let at = column(table, g)?;
            let cats = categories(table.rows.iter().map(|r| r.get(at).unwrap_or(&Value::Null)), spec.formats.get(g));
            Ok((cats.labels.iter().map(|l| Some(format!("{g} = {l}"))).collect(), cats.of_row))
        }
    }
}

fn check_log(log: bool, axis: &str, name: &str, values: impl Iterator<Item = f64>) -> Result<(), String> {
    if !log {
        return Ok(());
    }
    match values.filter(|v| *v <= 0.0).fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v)))) {
        Some(bad) => Err(format!(
            "{axis} is set but `{name}` has the non-positive value {}; a log axis needs values > 0",
            fmt_sig(bad, 6)
        )),
        None => Ok(()),
    }
}

/// Series for line, scatter (`aggregate == false`: every row its own point) and curve.
pub(super) fn xy_series(spec: &FigureSpec, table: &Table, aggregate: bool) -> Result<Vec<Series>, String> {
    let (xi, yi) = (column(table, &spec.x)?, column(table, &spec.y)?);
    let (labels, group_of) = groups(spec, table)?;
    let xs = numbers(table, xi, Role::X)?;
    let ys = numbers(table, yi, Role::Y)?;
    let rows: Vec<usize> = (0..table.rows.len()).filter(|&r| xs[r].is_some() && ys[r].is_some()).collect();
    if rows.is_empty() {
        return Err(format!("no row has numbers in both `{}` and `{}`", spec.x, spec.y));
    }
    check_log(spec.log_x, "log_x", &spec.x, rows.iter().filter_map(|&r| xs[r]))?;
    check_log(spec.log_y, "log_y", &spec.y, rows.iter().filter_map(|&r| ys[r]))?;
    let mut out = Vec::new();
    for (g, label) in labels.into_iter().enumerate() {
        let mut pts: Vec<(f64, f64)> =
            rows.iter().filter(|&&r| group_of[r] == g).filter_map(|&r| Some((xs[r]?, ys[r]?))).collect();
        if pts.is_empty() {
            continue;
        }
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let points = if aggregate {
            let mut points = Vec::new();
            let mut start = 0;
            while start < pts.len() {
                let end = start + pts[start..].iter().take_while(|p| p.0 == pts[start].0).count();
                let mut ys: Vec<f64> = pts[start..end].iter().map(|p| p.1).collect();
                points.push((pts[start].0, stat(&mut ys, spec.aggregate, spec.error)));
                start = end;
            }
            points
        } else {
            pts.into_iter().map(|(x, y)| (x, Stat { mid: y, lo: y, hi: y, n: 1 })).collect()
        };
        out.push(Series { label, points });
    }
    Ok(out)
}

/// Grouped bars: `values[group][category]`.
pub(super) struct Bars {
    pub categories: Vec<String>,
    pub groups: Vec<Option<String>>,
    pub values: Vec<Vec<Option<Stat>>>,
}

pub(super) fn bars(spec: &FigureSpec, table: &Table) -> Result<Bars, String> {
    let (xi, yi) = (column(table, &spec.x)?, column(table, &spec.y)?);
    let (labels, group_of) = groups(spec, table)?;
    let ys = numbers(table, yi, Role::Y)?;
    let rows: Vec<usize> = (0..table.rows.len()).filter(|&r| ys[r].is_some()).collect();
    check_log(spec.log_y, "log_y", &spec.y, rows.iter().filter_map(|&r| ys[r]))?;
    let cats =
        categories(rows.iter().map(|&r| table.rows[r].get(xi).unwrap_or(&Value::Null)), spec.formats.get(&spec.x));
    let mut values = Vec::new();
    let mut groups = Vec::new();
    for (g, label) in labels.into_iter().enumerate() {
        let mut per_cat: Vec<Vec<f64>> = vec![Vec::new(); cats.labels.len()];
        for (i, &r) in rows.iter().enumerate() {
            if group_of[r] == g {
                per_cat[cats.of_row[i]].extend(ys[r]);
            }
        }
        if per_cat.iter().all(Vec::is_empty) {
            continue;
        }
        groups.push(label);
        values.push(
            per_cat
                .into_iter()
                .map(|mut v| (!v.is_empty()).then(|| stat(&mut v, spec.aggregate, spec.error)))
                .collect(),
        );
    }
    Ok(Bars { categories: cats.labels, groups, values })
}

/// A heatmap's grid: `cells[row][column]`, rows along y (bottom to top), columns along x.
pub(super) struct Grid {
    pub x: Vec<String>,
    pub y: Vec<String>,
    pub cells: Vec<Vec<Option<f64>>>,
    /// How many rows each filled cell aggregates.
    pub counts: Vec<usize>,
    /// The colour bar's label: `value_label`, else the `value` column.
    pub value: String,
}

pub(super) fn grid(spec: &FigureSpec, table: &Table) -> Result<Grid, String> {
    let value = spec
        .value
        .as_deref()
        .ok_or_else(|| format!("heatmap `{}` needs `value`: the column whose numbers colour the cells", spec.name))?;
    let (xi, yi, vi) = (column(table, &spec.x)?, column(table, &spec.y)?, column(table, value)?);
    let vs = numbers(table, vi, Role::Value)?;
    let rows: Vec<usize> = (0..table.rows.len()).filter(|&r| vs[r].is_some()).collect();
    let cell_of = |at: usize, name: &String| {
        categories(rows.iter().map(|&r| table.rows[r].get(at).unwrap_or(&Value::Null)), spec.formats.get(name))
    };
    let (cx, cy) = (cell_of(xi, &spec.x), cell_of(yi, &spec.y));
    let mut acc: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); cx.labels.len()]; cy.labels.len()];
    for (i, &r) in rows.iter().enumerate() {
        acc[cy.of_row[i]][cx.of_row[i]].extend(vs[r]);
    }
    let counts = acc.iter().flatten().map(Vec::len).filter(|&n| n > 0).collect();
    let cells = acc
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|mut v| (!v.is_empty()).then(|| stat(&mut v, spec.aggregate, ErrorBars::None).mid))
                .collect()
        })
        .collect();
    let value = spec.value_label.clone().unwrap_or_else(|| value.to_string());
    Ok(Grid { x: cx.labels, y: cy.labels, cells, counts, value })
}
