//! What a `[[figure]]` entry asks for. Parsed by `jobfile`, drawn by `plot`.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FigureKind {
    /// `y` against `x`, one line per `group` value, aggregated over the other params.
    Line,
    /// One point per job, coloured by `group`.
    Scatter,
    /// `y` per `x` category, one bar per `group` value side by side, aggregated.
    Bar,
    /// `value` over the `x` × `y` grid, annotated cells, aggregated.
    Heatmap,
    /// Per-step series of each job (`[job] series`): `y` against the series column `x`, one
    /// line per `group` value, aggregated over the other params with a band.
    Curve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Mean,
    Median,
    Min,
    Max,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorBars {
    /// ± one standard deviation (the default with `mean`).
    Std,
    /// From the smallest to the largest value.
    MinMax,
    None,
}

/// One figure. Column names refer to the report's columns (params, results), or, for `curve`,
/// `x` and `y` to the series file's columns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FigureSpec {
    pub name: String,
    pub kind: FigureKind,
    pub x: String,
    pub y: String,
    pub group: Option<String>,
    /// Heatmap only: the value shown in each cell.
    pub value: Option<String>,
    pub aggregate: Aggregate,
    pub error: ErrorBars,
    pub log_x: bool,
    pub log_y: bool,
    pub title: Option<String>,
    pub x_label: Option<String>,
    pub y_label: Option<String>,
    /// Applied by the caller before drawing; kept here because it is part of the figure's key.
    #[serde(rename = "where")]
    pub filter: Option<String>,
}
