//! Draws a [`FigureSpec`] from a [`Table`] at its printed size (8 × 5 in with 10 pt labels
//! unless `[plot]` or the figure says otherwise): a flattened SVG and a PDF of that size, a PNG at
//! 200 dpi, the same picture in all three and the same bytes for the same input.
//!
//! Pipeline (docs CRATES.md §2): plotters draws an SVG (text measured with the embedded DejaVu
//! Sans through ab_glyph) → `usvg` parses it with that one font and no system fonts → the tree is
//! written back with text as paths (SVG), rasterised by resvg (PNG) and converted by krilla (PDF,
//! font subset embedded, text selectable).
//!
//! - `data`: cells → numbers, ordered categories, aggregated points (mean/median/min/max with
//!   ±1 sd or min–max spread).
//! - `scale`: axis ranges, 1-2-5 and decade ticks, number labels.
//! - `layout`: plot area and axes (no clipped or colliding labels), legend where it hides no
//!   data (else outside at the right).
//! - `chart`: the drawing of each kind.
//! - `canvas`: drawing primitives in figure units, palette (Okabe–Ito), viridis.
//! - `output`: SVG/PNG/PDF.
//!
//! `log_x` and `log_y` apply to numeric axes; a bar chart's x and a heatmap's axes are
//! categories, so there they are ignored (a bar chart honours `log_y`).

mod canvas;
mod chart;
mod data;
mod layout;
mod output;
mod scale;

use crate::jobfile::figure::{ErrorBars, FigureKind, FigureSize, FigureSpec};
use crate::products::table::Table;
use chart::XyKind;
use layout::Labels;

/// The drawn figure in the three formats.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawn {
    /// Flattened and font-independent: text is drawn as paths.
    pub svg: String,
    /// 1600 × 1000 pixels (2× the SVG), white background.
    pub png: Vec<u8>,
    pub pdf: Vec<u8>,
}

/// Draws `spec` from `table`; `jobs_in` is (jobs in the table, jobs of the sweep) when some are
/// missing, said in a note at the bottom with how many jobs each aggregated point stands for.
///
/// For kinds line, scatter, bar and heatmap, `table` has one row per job: the job's params and
/// results. For `curve`, one row per (job, step): the job's params plus the series file's columns.
/// Empty cells (`Null`) are skipped. Errors are messages for the user, e.g. "column `acc` not
/// found (did you mean `accuracy`?); columns are: …" or "no numeric values of `accuracy` to plot".
pub fn draw(spec: &FigureSpec, table: &Table, jobs_in: Option<(usize, usize)>) -> Result<Drawn, String> {
    output::init_fonts()?;
    if table.rows.is_empty() {
        return Err(format!("figure `{}` has no rows to plot", spec.name));
    }
    let grouped = spec.group.is_some();
    let spread = spec.error != ErrorBars::None;
    let partial = jobs_in.map(|(done, total)| format!("{done} of {total} jobs"));
    let note = |per_point: Option<String>| {
        let mut labels = labels(spec);
        labels.note = per_point.into_iter().chain(partial.clone()).collect::<Vec<_>>().join(" · ");
        labels
    };
    let (svg, labels) = match spec.kind {
        FigureKind::Line | FigureKind::Curve => {
            let series = data::xy_series(spec, table, true)?;
            let kind = if spec.kind == FigureKind::Line { XyKind::Line } else { XyKind::Curve };
            let labels = note(per_point(series.iter().flat_map(|s| s.points.iter().map(|(_, stat)| stat.n))));
            (chart::xy(&labels, &series, kind, spread, (spec.log_x, spec.log_y), grouped)?, labels)
        }
        FigureKind::Scatter => {
            let series = data::xy_series(spec, table, false)?;
            let labels = note(None);
            (chart::xy(&labels, &series, XyKind::Scatter, false, (spec.log_x, spec.log_y), grouped)?, labels)
        }
        FigureKind::Bar => {
            let bars = data::bars(spec, table)?;
            let labels = note(per_point(bars.values.iter().flatten().flatten().map(|stat| stat.n)));
            (chart::bar(&labels, &bars, spec.log_y, grouped)?, labels)
        }
        FigureKind::Script => return Err("a script figure is drawn by its own command".into()),
        FigureKind::Heatmap => {
            let grid = data::grid(spec, table)?;
            let labels = note(per_point(grid.counts.iter().copied()));
            (chart::heatmap(&labels, &grid)?, labels)
        }
    };
    output::render(&svg, labels.size, &spec.size)
}

/// `n = 3 per point` or `n = 2–3 per point`: how many jobs an aggregated point stands for.
fn per_point(counts: impl Iterator<Item = usize>) -> Option<String> {
    let (lo, hi) = counts.fold((usize::MAX, 0), |(lo, hi), n| (lo.min(n), hi.max(n)));
    match (lo, hi) {
        (_, 0) => None,
        (lo, hi) if lo == hi => Some(format!("n = {lo} per point")),
        (lo, hi) => Some(format!("n = {lo}–{hi} per point")),
    }
}

/// The figure's area in figure units: its printed size in units of the labels' size, the
/// labels being [`layout::FS_LABEL`] units high.
fn area(size: &FigureSize) -> canvas::Size {
    let units_per_pt = layout::FS_LABEL / size.font_pt;
    canvas::Size { w: size.width_pt * units_per_pt, h: size.height_pt * units_per_pt }
}

/// Title: given, else none in a style without titles (`paper`), else the figure's name, else
/// "y vs x". Axis labels: given, else the columns.
fn labels(spec: &FigureSpec) -> Labels {
    let title = match (&spec.title, spec.name.trim()) {
        (Some(t), _) => t.clone(),
        (None, _) if !spec.size.titled => String::new(),
        (None, "") => format!("{} vs {}", spec.y, spec.x),
        (None, name) => name.to_string(),
    };
    Labels {
        title,
        x: spec.x_label.clone().unwrap_or_else(|| spec.x.clone()),
        y: spec.y_label.clone().unwrap_or_else(|| spec.y.clone()),
        note: String::new(),
        size: area(&spec.size),
    }
}

#[cfg(test)]
mod tests;
