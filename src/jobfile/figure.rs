//! What a `[[figure]]` entry asks for. Parsed by `jobfile`, drawn by `plot`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::jobfile::format::NumberFormat;

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
    /// Drawn by the user's own command ([`ScriptFigure`]).
    Script,
}

/// A figure drawn by the user's own command, `script = "plots/curves.py"`: it reads the rows as
/// CSV from `$JOBMAN_REPORT` and writes `$JOBMAN_OUTPUT.png` (and `.pdf`, `.svg` if it likes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptFigure {
    /// The script, relative to the project folder; its bytes are part of the figure's key.
    pub path: String,
    /// What runs it, in the project folder (`python3 plots/curves.py` for a `.py` by default).
    pub command: String,
    /// The report columns it reads: only they are part of its key; every column when `None`.
    pub reads: Option<Vec<String>>,
}

impl ScriptFigure {
    /// The command that runs `path` when the Jobfile gives none: by its extension.
    pub fn default_command(path: &str) -> String {
        let word = crate::util::text::shell_word(path);
        match path.rsplit_once('.').map(|(_, ext)| ext) {
            Some("py") => format!("python3 {word}"),
            Some("R" | "r") => format!("Rscript {word}"),
            Some("jl") => format!("julia {word}"),
            Some("sh") => format!("sh {word}"),
            _ => format!("./{word}"),
        }
    }
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

/// How large a figure is printed: width and height in points (1/72 in), the size of its axis
/// labels in points (the title, ticks and legend follow them), and whether it has a title when
/// none is given (a paper's figure has its caption instead).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FigureSize {
    pub width_pt: f64,
    pub height_pt: f64,
    pub font_pt: f64,
    pub titled: bool,
}

impl Default for FigureSize {
    /// The `screen` style; `[plot]` or the figure changes it.
    fn default() -> Self {
        FigureStyle::Screen.size()
    }
}

/// A named starting point for a figure's size, `style = "paper"`; `width`, `height` and
/// `font_size` set beside it win.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FigureStyle {
    /// 8 × 5 in with 10 pt labels and a title: a slide, a page, the index page.
    Screen,
    /// One column of a two-column paper: 3.3 × 2.2 in, 8 pt labels, no title unless given.
    Paper,
    /// Both columns of a two-column paper: 6.9 × 2.6 in, 8 pt labels, no title unless given.
    PaperWide,
}

impl FigureStyle {
    pub const NAMES: [(&str, FigureStyle); 3] =
        [("screen", FigureStyle::Screen), ("paper", FigureStyle::Paper), ("paper-wide", FigureStyle::PaperWide)];

    pub fn size(self) -> FigureSize {
        let (width_in, height_in, font_pt, titled) = match self {
            FigureStyle::Screen => (8.0, 5.0, 10.0, true),
            FigureStyle::Paper => (3.3, 2.2, 8.0, false),
            FigureStyle::PaperWide => (6.9, 2.6, 8.0, false),
        };
        FigureSize { width_pt: width_in * 72.0, height_pt: height_in * 72.0, font_pt, titled }
    }
}

/// A length as written in a Jobfile, in points: `"3.3in"`, `"8.4cm"`, `"84mm"`, `"240pt"`.
pub fn length_pt(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let expected = || format!("expected a length such as \"3.3in\", \"8.4cm\", \"84mm\" or \"240pt\", found `{text}`");
    let at = text.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(expected)?;
    let number: f64 = text[..at].trim().parse().map_err(|_| expected())?;
    let per_unit = match &text[at..] {
        "in" => 72.0,
        "cm" => 72.0 / 2.54,
        "mm" => 72.0 / 25.4,
        "pt" => 1.0,
        _ => return Err(expected()),
    };
    let points = number * per_unit;
    if !(36.0..=2880.0).contains(&points) {
        return Err(format!("`{text}` is not a figure's size: between 0.5in and 40in"));
    }
    Ok(points)
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
    /// Heatmap only: the colour bar's label; default the `value` column.
    pub value_label: Option<String>,
    /// Applied by the caller before drawing; kept here because it is part of the figure's key.
    #[serde(rename = "where")]
    pub filter: Option<String>,
    pub size: FigureSize,
    /// The user's own command, for kind `script`.
    pub script: Option<ScriptFigure>,
    /// How the numbers of the columns it shows are printed (`[format]`).
    pub formats: BTreeMap<String, NumberFormat>,
}

#[cfg(test)]
mod tests {
    use super::length_pt;

    #[test]
    fn lengths_read_in_inches_centimetres_millimetres_and_points() {
        assert_eq!(length_pt("3.3in"), Ok(237.6));
        assert!((length_pt("8.4cm").unwrap() - 238.11).abs() < 0.01);
        assert!((length_pt("84 mm").unwrap() - 238.11).abs() < 0.01);
        assert_eq!(length_pt("240pt"), Ok(240.0));
        for wrong in ["3.3", "3.3 inches", "in", "-2in", "100in", "0.1in"] {
            assert!(length_pt(wrong).is_err(), "{wrong}");
        }
    }
}
