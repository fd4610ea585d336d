//! The drawing of each kind of figure, on the layout of [`super::layout`].

use super::canvas::{
    self, AXIS, Align, CAP, Canvas, DESCENT, INK, MarkerAt, PAPER, luminance, series_color, series_marker, text_width,
    viridis,
};
use super::data::{Bars, Grid, Series, Stat};
use super::layout::{
    Entry, FS_LABEL, FS_TICK, LINE_WIDTH, Labels, Layout, MARGIN, MARKER_R, TICK, TICK_GAP, draw_axes, draw_grid,
    draw_legend, fit, layout, max_width, sample, with_legend,
};
use super::scale::{Axis, AxisSpec, choose, fmt_fixed_sig, padded};

const FS_CELL: f64 = 13.5;
const BAND_ALPHA: f64 = 0.2;
const ERROR_WIDTH: f64 = 1.3;

#[derive(Clone, Copy, PartialEq)]
pub(super) enum XyKind {
    Line,
    Scatter,
    Curve,
}

/// What an x–y figure shows besides its points.
struct XyStyle {
    markers: bool,
    lines: bool,
    error_bars: bool,
    band: bool,
}

/// y range of the drawn points (with their spread when shown).
fn y_range<'a>(stats: impl Iterator<Item = &'a Stat>, spread: bool, log: bool) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for s in stats {
        let (a, b) = if spread { (s.lo, s.hi) } else { (s.mid, s.mid) };
        // On a log axis a lower end ≤ 0 (mean − sd) is cut off at the axis instead.
        let a = if log && a <= 0.0 { s.mid } else { a };
        lo = lo.min(a);
        hi = hi.max(b);
    }
    (lo, hi)
}

/// Horizontal pixel offsets of the series, so that error bars of groups at the same x sit side
/// by side instead of on top of each other (a "dodge"); zero when there is nothing to separate.
fn dodges(lay: &Layout, series: &[Series], style: &XyStyle) -> Vec<f64> {
    let n = series.len();
    let none = vec![0.0; n];
    if !style.error_bars || n < 2 {
        return none;
    }
    let mut xs: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    xs.sort_by(f64::total_cmp);
    let shared = xs.windows(2).any(|w| w[0] == w[1]);
    xs.dedup();
    let step = 5f64.min(24.0 / (n - 1) as f64);
    let spread = step * (n - 1) as f64;
    let min_gap = xs.windows(2).map(|w| lay.px(w[1]) - lay.px(w[0])).fold(f64::INFINITY, f64::min);
    if !shared || min_gap < 4.0 * spread {
        return none;
    }
    (0..n).map(|i| (i as f64 - (n - 1) as f64 / 2.0) * step).collect()
}

/// Pixels covered by the data of an x–y figure, for placing the legend.
fn xy_obstacles(lay: &Layout, series: &[Series], style: &XyStyle) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let dodge = dodges(lay, series, style);
    for (s, d) in series.iter().zip(dodge) {
        let pts: Vec<(f64, f64)> = s.points.iter().map(|(x, st)| (lay.px(*x) + d, lay.py(st.mid))).collect();
        for &(x, y) in &pts {
            let r = MARKER_R;
            out.extend([(x, y), (x - r, y - r), (x + r, y + r), (x - r, y + r), (x + r, y - r)]);
        }
        if style.lines {
            for w in pts.windows(2) {
                sample(&mut out, w[0], w[1]);
            }
        }
        if style.error_bars || style.band {
            for (x, st) in &s.points {
                let x = lay.px(*x) + d;
                sample(&mut out, (x, lay.py_clamped(st.lo)), (x, lay.py(st.hi)));
            }
        }
        if style.band {
            // The band's inside, column by column.
            for w in s.points.windows(2) {
                let ((xa, a), (xb, b)) = (w[0], w[1]);
                let n = ((lay.px(xb) - lay.px(xa)) / 3.0).ceil().max(1.0) as usize;
                for i in 0..=n {
                    let t = i as f64 / n as f64;
                    let (lo, hi) = (a.lo + t * (b.lo - a.lo), a.hi + t * (b.hi - a.hi));
                    let x = lay.px(xa + t * (xb - xa));
                    sample(&mut out, (x, lay.py_clamped(lo)), (x, lay.py(hi)));
                }
            }
        }
    }
    out
}

/// Line, scatter and curve: `spread` shows error bars (line) or a band (curve).
pub(super) fn xy(
    labels: &Labels,
    series: &[Series],
    kind: XyKind,
    spread: bool,
    log: (bool, bool),
    grouped: bool,
) -> Result<String, String> {
    let max_points = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
    let style = XyStyle {
        // A long curve reads better without markers.
        markers: kind != XyKind::Curve || max_points <= 12,
        lines: kind != XyKind::Scatter,
        error_bars: spread && kind == XyKind::Line,
        band: spread && kind == XyKind::Curve,
    };

    let mut xs: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let (x_lo, x_hi) = padded(xs[0], xs[xs.len() - 1], log.0, (0.04, 0.04));
    // A sweep's few x values make the best ticks, when their labels fit.
    let data_ticks = (xs.len() <= 8).then_some(xs);
    let xspec = AxisSpec::Numeric { lo: x_lo, hi: x_hi, log: log.0, data_ticks };
    let (y_min, y_max) = y_range(series.iter().flat_map(|s| s.points.iter().map(|p| &p.1)), spread, log.1);
    let (y_lo, y_hi) = padded(y_min, y_max, log.1, (0.06, 0.06));
    let yspec = AxisSpec::Numeric { lo: y_lo, hi: y_hi, log: log.1, data_ticks: None };

    let entries: Vec<Entry> = match grouped {
        false => vec![],
        true => series
            .iter()
            .enumerate()
            .map(|(i, s)| Entry {
                label: s.label.clone().unwrap_or_default(),
                color: series_color(i),
                marker: style.markers.then_some(series_marker(i)),
                line: style.lines,
                patch: false,
            })
            .collect(),
    };
    let (lay, legend) = with_legend(labels, &xspec, &yspec, &entries, |lay| xy_obstacles(lay, series, &style));

    canvas::draw(labels.size, |c| {
        draw_grid(c, &lay, (true, true))?;
        if style.band {
            for (i, s) in series.iter().enumerate().filter(|(_, s)| s.points.len() >= 2) {
                let mut poly: Vec<(f64, f64)> = s.points.iter().map(|(x, st)| (lay.px(*x), lay.py(st.hi))).collect();
                poly.extend(s.points.iter().rev().map(|(x, st)| (lay.px(*x), lay.py_clamped(st.lo))));
                c.polygon(&poly, series_color(i), BAND_ALPHA)?;
            }
        }
        let dodge = dodges(&lay, series, &style);
        let mut markers = Vec::new();
        for (i, s) in series.iter().enumerate() {
            let color = series_color(i);
            let px = |x: f64| lay.px(x) + dodge[i];
            if style.error_bars {
                for (x, st) in s.points.iter().filter(|p| p.1.has_spread()) {
                    error_bar(c, px(*x), lay.py_clamped(st.lo), lay.py(st.hi), 3.5, color)?;
                }
            }
            let pts: Vec<(f64, f64)> = s.points.iter().map(|(x, st)| (px(*x), lay.py(st.mid))).collect();
            if style.lines {
                c.path(&pts, color, 1.0, LINE_WIDTH)?;
            }
            if style.markers {
                let shape = series_marker(i);
                markers.extend(pts.iter().map(|&(x, y)| MarkerAt { shape, x, y, color }));
                // A line's markers lie over it and under the next series' line; a scatter's
                // markers are drawn at once (as one image when there are many).
                if kind != XyKind::Scatter {
                    c.markers(&std::mem::take(&mut markers), MARKER_R, 1.0)?;
                }
            }
        }
        c.markers(&markers, MARKER_R, 0.85)?;
        draw_axes(c, &lay, labels, true)?;
        if let Some(legend) = &legend {
            draw_legend(c, &entries, legend)?;
        }
        Ok(())
    })
}

fn error_bar(c: &Canvas, x: f64, lo: f64, hi: f64, cap: f64, color: super::canvas::Rgb) -> Result<(), String> {
    c.line((x, lo), (x, hi), color, ERROR_WIDTH)?;
    c.line((x - cap, lo), (x + cap, lo), color, ERROR_WIDTH)?;
    c.line((x - cap, hi), (x + cap, hi), color, ERROR_WIDTH)
}

/// Grouped bars from zero (or from the bottom of a log axis) with error bars.
pub(super) fn bar(labels: &Labels, data: &Bars, log_y: bool, grouped: bool) -> Result<String, String> {
    let (lo, hi) = y_range(data.values.iter().flatten().flatten(), true, log_y);
    let yspec = if log_y {
        let (a, b) = padded(lo, hi, true, (0.08, 0.06));
        AxisSpec::Numeric { lo: a, hi: b, log: true, data_ticks: None }
    } else {
        // Bars start at zero: keep it on the axis, with no padding beyond it.
        let pad = (if lo < 0.0 { 0.06 } else { 0.0 }, if hi > 0.0 { 0.06 } else { 0.0 });
        let (a, b) = padded(lo.min(0.0), hi.max(0.0), false, pad);
        AxisSpec::Numeric { lo: a, hi: b, log: false, data_ticks: None }
    };
    let xspec = AxisSpec::Categories(data.categories.clone());
    let entries: Vec<Entry> = match grouped {
        false => vec![],
        true => data
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| Entry {
                label: g.clone().unwrap_or_default(),
                color: series_color(i),
                marker: None,
                line: false,
                patch: true,
            })
            .collect(),
    };
    let ng = data.groups.len().max(1) as f64;
    let slot = 0.8 / ng;
    // Bar j of category i spans [i − 0.4 + j·slot, i − 0.4 + (j + 1)·slot], from `base` up.
    let geometry = |lay: &Layout, i: usize, j: usize| {
        let x0 = lay.px(i as f64 - 0.4 + j as f64 * slot);
        let x1 = lay.px(i as f64 - 0.4 + (j as f64 + 1.0) * slot);
        let base = if log_y { lay.plot.y1 } else { lay.py(0.0) };
        (x0, x1, base)
    };
    let bars = || {
        data.values
            .iter()
            .enumerate()
            .flat_map(|(j, row)| row.iter().enumerate().filter_map(move |(i, st)| Some((i, j, (*st)?))))
    };
    let (lay, legend) = with_legend(labels, &xspec, &yspec, &entries, |lay| {
        let mut out = Vec::new();
        for (i, j, st) in bars() {
            let (x0, x1, base) = geometry(lay, i, j);
            let top = lay.py(st.mid).min(lay.py(st.hi));
            let mut x = x0;
            while x <= x1 {
                sample(&mut out, (x, base), (x, top));
                x += 3.0;
            }
        }
        out
    });
    canvas::draw(labels.size, |c| {
        draw_grid(c, &lay, (false, true))?;
        // A hairline of white between the bars of one category.
        let gap = if ng > 1.0 { 0.75 } else { 0.0 };
        for (i, j, st) in bars() {
            let (x0, x1, base) = geometry(&lay, i, j);
            c.rect(x0 + gap, base, x1 - gap, lay.py(st.mid), series_color(j))?;
        }
        for (i, j, st) in bars().filter(|b| b.2.has_spread()) {
            let (x0, x1, _) = geometry(&lay, i, j);
            let cap = ((x1 - x0) * 0.22).clamp(2.0, 6.0);
            error_bar(c, (x0 + x1) / 2.0, lay.py_clamped(st.lo), lay.py(st.hi), cap, INK)?;
        }
        draw_axes(c, &lay, labels, true)?;
        if let Some(legend) = &legend {
            draw_legend(c, &entries, legend)?;
        }
        Ok(())
    })
}

const COLOR_BAR_GAP: f64 = 18.0;
const COLOR_BAR_W: f64 = 16.0;

/// Cells coloured by viridis and annotated with their value; a colour bar at the right.
pub(super) fn heatmap(labels: &Labels, grid: &Grid) -> Result<String, String> {
    let values: Vec<f64> = grid.cells.iter().flatten().flatten().copied().collect();
    let (v_min, v_max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let (v_lo, v_hi) = if v_max > v_min { (v_min, v_max) } else { padded(v_min, v_max, false, (0.5, 0.5)) };
    let cspec = AxisSpec::Numeric { lo: v_lo, hi: v_hi, log: false, data_ticks: None };
    let color_axis = |height: f64| {
        choose(&cspec, &|a: &Axis| {
            let px: Vec<f64> = a.ticks.iter().map(|(v, _)| a.frac(*v) * height).collect();
            px.windows(2).all(|w| w[1] - w[0] >= 40.0)
        })
    };
    // Room for the colour bar, its tick labels and its label.
    let reserve = |axis: &Axis| {
        let tick_w = max_width(axis.ticks.iter().map(|(_, l)| l.as_str()), FS_TICK);
        COLOR_BAR_GAP + COLOR_BAR_W + TICK + TICK_GAP + tick_w + 10.0 + FS_LABEL * (CAP + DESCENT)
    };
    let xspec = AxisSpec::Categories(grid.x.clone());
    let yspec = AxisSpec::Categories(grid.y.clone());
    let mut caxis = color_axis(labels.size.h - 120.0);
    let mut lay = layout(labels, &xspec, &yspec, reserve(&caxis));
    for _ in 0..2 {
        let next = color_axis(lay.plot.y1 - lay.plot.y0);
        let settled = (reserve(&next) - reserve(&caxis)).abs() < 0.5;
        caxis = next;
        if settled {
            break;
        }
        lay = layout(labels, &xspec, &yspec, reserve(&caxis));
    }
    let t = |v: f64| (v - v_lo) / (v_hi - v_lo);

    canvas::draw(labels.size, |c| {
        let p = lay.plot;
        let (cw, ch) = ((p.x1 - p.x0) / grid.x.len() as f64, (p.y1 - p.y0) / grid.y.len() as f64);
        // One annotation size for all cells: at most FS_CELL, small enough for the widest text;
        // none when that would be below 7 px.
        let texts: Vec<String> = values.iter().map(|&v| fmt_fixed_sig(v, 3)).collect();
        let widest = max_width(texts.iter().map(String::as_str), FS_CELL);
        let size = FS_CELL.min(FS_CELL * (cw - 10.0) / widest).min((ch - 4.0) / (CAP + 0.3));
        for (r, row) in grid.cells.iter().enumerate() {
            for (col, v) in row.iter().enumerate() {
                let (x0, y1) = (p.x0 + col as f64 * cw, p.y1 - r as f64 * ch);
                let (x1, y0) = (x0 + cw, y1 - ch);
                let fill = v.map_or((238, 238, 238), |v| viridis(t(v)));
                c.rect(x0 + 0.5, y0 + 0.5, x1 - 0.5, y1 - 0.5, fill)?;
                if size >= 7.0 {
                    let (text, ink) = match v {
                        Some(v) => (fmt_fixed_sig(*v, 3), if luminance(fill) < 0.4 { PAPER } else { (0, 0, 0) }),
                        None => ("n/a".to_string(), (120, 120, 120)),
                    };
                    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
                    c.text(&text, cx, cy + CAP * size / 2.0, size, ink, Align::Center)?;
                }
            }
        }
        draw_axes(c, &lay, labels, false)?;
        // Colour bar: thin slices, each overlapping the next so that no seams show.
        let (bx0, bx1) = (p.x1 + COLOR_BAR_GAP, p.x1 + COLOR_BAR_GAP + COLOR_BAR_W);
        let n = 120;
        for i in 0..n {
            let (f0, f1) = (i as f64 / n as f64, (i + 1) as f64 / n as f64);
            let (ya, yb) = (p.y1 - f0 * (p.y1 - p.y0), p.y1 - f1 * (p.y1 - p.y0));
            let top = if i + 1 < n { yb - 0.6 } else { yb };
            c.rect(bx0, ya, bx1, top, viridis((f0 + f1) / 2.0))?;
        }
        c.rect_outline(bx0, p.y0, bx1, p.y1, AXIS, 0.8)?;
        for (v, label) in &caxis.ticks {
            let y = p.y1 - caxis.frac(*v) * (p.y1 - p.y0);
            c.line((bx1, y), (bx1 + TICK, y), AXIS, 1.0)?;
            c.text(label, bx1 + TICK + TICK_GAP, y + CAP * FS_TICK / 2.0, FS_TICK, INK, Align::Left)?;
        }
        let (label, label_x) = (caxis.label(&grid.value), labels.size.w - MARGIN - DESCENT * FS_LABEL);
        let size = fit(&label, FS_LABEL, labels.size.h - 2.0 * MARGIN);
        let y = ((p.y0 + p.y1) / 2.0).min(labels.size.h - MARGIN - text_width(&label, size) / 2.0);
        c.text_up(&label, label_x, y, size, (0, 0, 0), Align::Center)?;
        Ok(())
    })
}
