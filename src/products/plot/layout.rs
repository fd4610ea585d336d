//! Where things go: the plot area, axes with labels that neither collide nor get clipped, and a
//! legend that hides no data.

use super::canvas::{AXIS, Align, CAP, Canvas, DESCENT, GRID, INK, Marker, PAPER, Rgb, Size, text_width};
use super::scale::{Axis, AxisSpec, choose};

pub(super) const MARGIN: f64 = 12.0;
pub(super) const FS_TITLE: f64 = 17.0;
pub(super) const FS_LABEL: f64 = 15.0;
pub(super) const FS_TICK: f64 = 13.5;
pub(super) const FS_LEGEND: f64 = 13.5;
const FS_NOTE: f64 = 11.5;
pub(super) const TICK: f64 = 5.0;
const MINOR_TICK: f64 = 3.0;
/// Between a tick mark and its label.
pub(super) const TICK_GAP: f64 = 4.0;
pub(super) const LINE_WIDTH: f64 = 1.8;
pub(super) const MARKER_R: f64 = 4.0;
const TEXT: Rgb = (0, 0, 0);

/// The texts around the plot.
/// What frames a plot: its texts and the area they are laid out in.
pub(super) struct Labels {
    pub title: String,
    pub x: String,
    pub y: String,
    /// A small line at the bottom right (`n = 3 per point · 4 of 6 jobs`); empty for none.
    pub note: String,
    pub size: Size,
}

impl Labels {
    /// The room below the x axis label: the margin, and the note's line.
    fn bottom(&self) -> f64 {
        MARGIN + if self.note.is_empty() { 0.0 } else { line(FS_NOTE) + 6.0 }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Rect {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

/// The plot area and its two axes, ready to map data to pixels.
pub(super) struct Layout {
    pub plot: Rect,
    pub x: Axis,
    pub y: Axis,
    /// Category labels under the x axis set vertically because they do not fit side by side.
    pub x_rotated: bool,
}

impl Layout {
    pub fn px(&self, v: f64) -> f64 {
        self.plot.x0 + self.x.frac(v) * (self.plot.x1 - self.plot.x0)
    }

    pub fn py(&self, v: f64) -> f64 {
        self.plot.y1 - self.y.frac(v) * (self.plot.y1 - self.plot.y0)
    }

    /// `py`, with values below the axis (a log axis' mean − sd ≤ 0) at its bottom.
    pub fn py_clamped(&self, v: f64) -> f64 {
        self.py(v.max(self.y.lo))
    }
}

pub(super) fn max_width<'a>(texts: impl Iterator<Item = &'a str>, size: f64) -> f64 {
    texts.map(|t| text_width(t, size)).fold(0.0, f64::max)
}

/// `size`, or smaller so that `text` is at most `room` pixels wide.
pub(super) fn fit(text: &str, size: f64, room: f64) -> f64 {
    let w = text_width(text, size);
    if w > room && w > 0.0 { size * room / w } else { size }
}

/// Height of a line of text from the top of its capitals to the bottom of its descenders.
fn line(size: f64) -> f64 {
    size * (CAP + DESCENT)
}

/// Lays out title, axes and tick labels around the largest plot area that leaves `reserve_right`
/// pixels free at the right (for a legend or a colour bar).
pub(super) fn layout(labels: &Labels, xs: &AxisSpec, ys: &AxisSpec, reserve_right: f64) -> Layout {
    let top = if labels.title.is_empty() { MARGIN + 8.0 } else { MARGIN + line(FS_TITLE) + 14.0 };
    let categories = matches!(xs, AxisSpec::Categories(_));
    // An empty axis label still shows the scale of its ticks ("×10⁷") when they have one.
    let mut x_label = !labels.x.is_empty();
    let mut rotated = false;
    loop {
        let x_label_h = if x_label { line(FS_LABEL) + 8.0 } else { 0.0 };
        let tick_h = match xs {
            AxisSpec::Categories(cats) if rotated => max_width(cats.iter().map(String::as_str), FS_TICK),
            _ => line(FS_TICK),
        };
        let bottom = labels.size.h - labels.bottom() - x_label_h - tick_h - TICK - TICK_GAP;
        // Numbers: about 2.5 label heights apart at least, and at most ~8 ticks.
        let min_gap =
            if matches!(ys, AxisSpec::Categories(_)) { FS_TICK * 1.2 } else { 34f64.max((bottom - top) / 8.0) };
        let y = choose(ys, &|a: &Axis| {
            let px: Vec<f64> = a.ticks.iter().map(|(v, _)| a.frac(*v) * (bottom - top)).collect();
            px.windows(2).all(|w| (w[1] - w[0]).abs() >= min_gap)
        });
        let y_tick_w = max_width(y.ticks.iter().map(|(_, l)| l.as_str()), FS_TICK);
        let y_label_w = if y.label(&labels.y).is_empty() { 0.0 } else { line(FS_LABEL) + 10.0 };
        let left = MARGIN + y_label_w + y_tick_w + TICK + TICK_GAP;
        let mut right = labels.size.w - MARGIN - 8.0 - reserve_right;
        // The last x tick label may reach into the margin, or a little into the reserved space.
        let limit = labels.size.w - 4.0 - reserve_right + if reserve_right > 0.0 { 12.0 } else { 0.0 };
        let min_spacing = if categories { 0.0 } else { 50.0 };
        let mut x = choose(xs, &|a: &Axis| x_fits(a, right - left, rotated, min_spacing));
        for _ in 0..3 {
            let overhang = x
                .ticks
                .iter()
                .map(|(v, l)| left + x.frac(*v) * (right - left) + text_width(l, FS_TICK) / 2.0 - limit)
                .fold(0.0, f64::max);
            if rotated || overhang <= 0.5 {
                break;
            }
            right -= overhang;
            x = choose(xs, &|a: &Axis| x_fits(a, right - left, rotated, min_spacing));
        }
        if categories && !rotated && !x_fits(&x, right - left, false, 0.0) {
            rotated = true;
            continue;
        }
        if !x_label && x.power.is_some() {
            x_label = true;
            continue;
        }
        return Layout { plot: Rect { x0: left, y0: top, x1: right, y1: bottom }, x, y, x_rotated: rotated };
    }
}

/// Whether tick labels along an x axis of `len` pixels stay apart (and ticks `min_spacing` apart).
fn x_fits(a: &Axis, len: f64, rotated: bool, min_spacing: f64) -> bool {
    let at: Vec<(f64, f64)> = a
        .ticks
        .iter()
        .map(|(v, l)| (a.frac(*v) * len, if rotated { FS_TICK * 1.2 } else { text_width(l, FS_TICK) }))
        .collect();
    at.windows(2).all(|w| {
        let gap = w[1].0 - w[0].0;
        gap >= (w[0].1 + w[1].1) / 2.0 + 12.0 && (rotated || gap >= min_spacing)
    })
}

/// Light grid lines at the major ticks of x (`grid.0`) and y (`grid.1`), drawn under the data.
pub(super) fn draw_grid(c: &Canvas, lay: &Layout, grid: (bool, bool)) -> Result<(), String> {
    let p = lay.plot;
    if grid.0 {
        for (v, _) in &lay.x.ticks {
            let x = lay.px(*v);
            c.line((x, p.y0), (x, p.y1), GRID, 0.8)?;
        }
    }
    if grid.1 {
        for (v, _) in &lay.y.ticks {
            let y = lay.py(*v);
            c.line((p.x0, y), (p.x1, y), GRID, 0.8)?;
        }
    }
    Ok(())
}

/// Frame, ticks, tick labels, axis labels and title, drawn over the data.
pub(super) fn draw_axes(c: &Canvas, lay: &Layout, labels: &Labels, frame: bool) -> Result<(), String> {
    let p = lay.plot;
    if frame {
        c.rect_outline(p.x0, p.y0, p.x1, p.y1, AXIS, 1.0)?;
    }
    for v in &lay.x.minor {
        let x = lay.px(*v);
        c.line((x, p.y1), (x, p.y1 + MINOR_TICK), AXIS, 0.8)?;
    }
    for v in &lay.y.minor {
        let y = lay.py(*v);
        c.line((p.x0 - MINOR_TICK, y), (p.x0, y), AXIS, 0.8)?;
    }
    for (v, label) in &lay.x.ticks {
        let x = lay.px(*v);
        c.line((x, p.y1), (x, p.y1 + TICK), AXIS, 1.0)?;
        if lay.x_rotated {
            c.text_up(label, x + CAP * FS_TICK / 2.0, p.y1 + TICK + TICK_GAP, FS_TICK, INK, Align::Right)?;
        } else {
            c.text(label, x, p.y1 + TICK + TICK_GAP + CAP * FS_TICK, FS_TICK, INK, Align::Center)?;
        }
    }
    for (v, label) in &lay.y.ticks {
        let y = lay.py(*v);
        c.line((p.x0 - TICK, y), (p.x0, y), AXIS, 1.0)?;
        c.text(label, p.x0 - TICK - TICK_GAP, y + CAP * FS_TICK / 2.0, FS_TICK, INK, Align::Right)?;
    }
    let mid_x = (p.x0 + p.x1) / 2.0;
    // Texts too long for their room get smaller rather than clipped.
    if !labels.title.is_empty() {
        // Centred over the plot, but kept inside the figure when long.
        let size = fit(&labels.title, FS_TITLE, labels.size.w - 2.0 * MARGIN);
        let half = text_width(&labels.title, size) / 2.0;
        let x = mid_x.min(labels.size.w - MARGIN - half).max(MARGIN + half);
        c.text(&labels.title, x, MARGIN + CAP * FS_TITLE, size, TEXT, Align::Center)?;
    }
    let (x_label, y_label) = (lay.x.label(&labels.x), lay.y.label(&labels.y));
    if !x_label.is_empty() {
        let size = fit(&x_label, FS_LABEL, labels.size.w - 2.0 * MARGIN);
        let half = text_width(&x_label, size) / 2.0;
        let x = mid_x.min(labels.size.w - MARGIN - half).max(MARGIN + half);
        c.text(&x_label, x, labels.size.h - labels.bottom() - DESCENT * FS_LABEL, size, TEXT, Align::Center)?;
    }
    if !labels.note.is_empty() {
        let size = fit(&labels.note, FS_NOTE, labels.size.w - 2.0 * MARGIN);
        c.text(&labels.note, labels.size.w - MARGIN, labels.size.h - MARGIN - DESCENT * size, size, INK, Align::Right)?;
    }
    if !y_label.is_empty() {
        let size = fit(&y_label, FS_LABEL, labels.size.h - 2.0 * MARGIN);
        let half = text_width(&y_label, size) / 2.0;
        let y = ((p.y0 + p.y1) / 2.0).min(labels.size.h - MARGIN - half).max(MARGIN + half);
        c.text_up(&y_label, MARGIN + CAP * FS_LABEL, y, size, TEXT, Align::Center)?;
    }
    Ok(())
}

/// One row of a legend.
pub(super) struct Entry {
    pub label: String,
    pub color: Rgb,
    pub marker: Option<Marker>,
    pub line: bool,
    /// A filled square (bars).
    pub patch: bool,
}

const LEGEND_PAD: f64 = 8.0;
const LEGEND_ROW: f64 = FS_LEGEND * 1.55;
const SWATCH: f64 = 28.0;
/// Between the columns of a legend too tall for one.
const LEGEND_COL_GAP: f64 = 14.0;

/// A placed legend: its top-left corner, rows per column and size.
pub(super) struct Legend {
    at: (f64, f64),
    rows: usize,
    size: (f64, f64),
}

fn legend_column_width(entries: &[Entry]) -> f64 {
    SWATCH + 8.0 + max_width(entries.iter().map(|e| e.label.as_str()), FS_LEGEND)
}

/// Rows per column so that the legend is at most `max_h` tall, and the legend's size.
fn legend_size(entries: &[Entry], max_h: f64) -> (usize, (f64, f64)) {
    let fit = ((max_h - 2.0 * LEGEND_PAD + 4.0) / LEGEND_ROW).floor().max(1.0) as usize;
    let rows = entries.len().min(fit).max(1);
    let cols = entries.len().div_ceil(rows);
    let w = 2.0 * LEGEND_PAD + cols as f64 * legend_column_width(entries) + (cols - 1) as f64 * LEGEND_COL_GAP;
    (rows, (w, 2.0 * LEGEND_PAD - 4.0 + rows as f64 * LEGEND_ROW))
}

pub(super) fn draw_legend(c: &Canvas, entries: &[Entry], legend: &Legend) -> Result<(), String> {
    let ((x, y), (w, h)) = (legend.at, legend.size);
    c.rect(x, y, x + w, y + h, PAPER)?;
    c.rect_outline(x, y, x + w, y + h, (160, 160, 160), 0.8)?;
    let col_w = legend_column_width(entries) + LEGEND_COL_GAP;
    for (i, e) in entries.iter().enumerate() {
        let (col, row) = (i / legend.rows, i % legend.rows);
        let cy = y + LEGEND_PAD - 2.0 + (row as f64 + 0.5) * LEGEND_ROW;
        let sx0 = x + LEGEND_PAD + col as f64 * col_w;
        let sx1 = sx0 + SWATCH;
        let mid = (sx0 + sx1) / 2.0;
        if e.patch {
            let s = FS_LEGEND * 0.5;
            c.rect(mid - s - 3.0, cy - s, mid + s + 3.0, cy + s, e.color)?;
        }
        if e.line {
            c.line((sx0, cy), (sx1, cy), e.color, LINE_WIDTH)?;
        }
        if let Some(m) = e.marker {
            c.marker(m, mid, cy, MARKER_R, e.color, 1.0)?;
        }
        c.text(&e.label, sx1 + 8.0, cy + CAP * FS_LEGEND / 2.0, FS_LEGEND, INK, Align::Left)?;
    }
    Ok(())
}

/// The legend's top-left corner inside the plot that covers the fewest `obstacles` (sampled
/// pixels of the data), with that number; the first of equals in matplotlib's order of
/// preference. `None` when the legend does not fit inside at all.
fn best_corner(plot: &Rect, (w, h): (f64, f64), obstacles: &[(f64, f64)]) -> Option<((f64, f64), usize)> {
    let inset = 8.0;
    if w + 2.0 * inset > plot.x1 - plot.x0 || h + 2.0 * inset > plot.y1 - plot.y0 {
        return None;
    }
    let (l, r) = (plot.x0 + inset, plot.x1 - inset - w);
    let (t, b) = (plot.y0 + inset, plot.y1 - inset - h);
    let (cx, cy) = ((plot.x0 + plot.x1 - w) / 2.0, (plot.y0 + plot.y1 - h) / 2.0);
    let candidates = [(r, t), (l, t), (r, b), (l, b), (cx, t), (cx, b), (r, cy), (l, cy)];
    let clear = 5.0;
    let covered = |(x, y): (f64, f64)| {
        obstacles
            .iter()
            .filter(|&&(px, py)| px >= x - clear && px <= x + w + clear && py >= y - clear && py <= y + h + clear)
            .count()
    };
    let mut best: Option<((f64, f64), usize)> = None;
    for at in candidates {
        let n = covered(at);
        if best.is_none_or(|(_, m)| n < m) {
            best = Some((at, n));
        }
        if n == 0 {
            break;
        }
    }
    best
}

/// Points at most 2 pixels apart along a segment, from `a` to `b`.
pub(super) fn sample(out: &mut Vec<(f64, f64)>, a: (f64, f64), b: (f64, f64)) {
    let n = ((b.0 - a.0).hypot(b.1 - a.1) / 2.0).ceil().max(1.0) as usize;
    for i in 0..=n {
        let t = i as f64 / n as f64;
        out.push((a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)));
    }
}

/// Lays out the figure and places the legend: inside the plot where it hides no data, else
/// outside at the right (the plot narrows to make room), else (too wide to go outside) inside
/// where it hides the least. `obstacles` samples the drawn data in pixels.
pub(super) fn with_legend(
    labels: &Labels,
    xs: &AxisSpec,
    ys: &AxisSpec,
    entries: &[Entry],
    obstacles: impl Fn(&Layout) -> Vec<(f64, f64)>,
) -> (Layout, Option<Legend>) {
    let lay = layout(labels, xs, ys, 0.0);
    if entries.is_empty() {
        return (lay, None);
    }
    let plot_h = lay.plot.y1 - lay.plot.y0;
    let (rows, size) = legend_size(entries, plot_h - 16.0);
    let inside = best_corner(&lay.plot, size, &obstacles(&lay));
    if let Some((at, 0)) = inside {
        return (lay, Some(Legend { at, rows, size }));
    }
    let gap = 14.0;
    let (rows_out, size_out) = legend_size(entries, plot_h);
    if size_out.0 + gap <= labels.size.w * 0.45 {
        let lay = layout(labels, xs, ys, size_out.0 + gap);
        let at = (lay.plot.x1 + gap, lay.plot.y0);
        return (lay, Some(Legend { at, rows: rows_out, size: size_out }));
    }
    let at = inside.map_or((lay.plot.x0 + 8.0, lay.plot.y0 + 8.0), |(at, _)| at);
    (lay, Some(Legend { at, rows, size }))
}
