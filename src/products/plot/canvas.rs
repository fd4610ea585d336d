//! Drawing primitives on a plotters SVG backend, in figure units ([`Size`], `f64`).
//!
//! plotters' backends take integer coordinates, so the SVG is drawn at `K` times the figure
//! size and its `width`/`height` are set to the printed size (the `viewBox` keeps the detail).
//! Text is measured with plotters' ab_glyph engine and the one registered font.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontDesc, FontTransform};

/// The drawing area in figure units. Texts, lines and margins have fixed sizes in these units,
/// so the area follows the printed size over the font size: a figure printed narrow with large
/// labels has fewer units across, and its layout makes room as on a small screen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Size {
    pub w: f64,
    pub h: f64,
}

impl Size {
    /// Size of the SVG plotters draws.
    pub(super) fn internal(self) -> (u32, u32) {
        ((self.w * K).round() as u32, (self.h * K).round() as u32)
    }
}

/// Internal units per figure unit.
const K: f64 = 4.0;
/// plotters writes `font-size = size / 1.24`; this asks for `font-size = px`.
const PLOTTERS_SIZE: f64 = 1.24;
/// plotters' ab_glyph measures with the font's height (ascent − descent, 2384/2048 em for DejaVu
/// Sans) as its pixel scale, where the SVG uses `font-size` as the em: widths come out this much
/// too large.
const MEASURE_SCALE: f64 = 1.24 * 2048.0 / 2384.0;
/// DejaVu Sans, in em: height of capitals and digits, depth of descenders.
pub(super) const CAP: f64 = 0.729;
pub(super) const DESCENT: f64 = 0.236;

pub(super) type Rgb = (u8, u8, u8);
/// Tick labels, legend text, error bars on bars.
pub(super) const INK: Rgb = (34, 34, 34);
/// Frame and tick marks.
pub(super) const AXIS: Rgb = (68, 68, 68);
pub(super) const GRID: Rgb = (229, 229, 229);
/// White: the background, the legend box, marker edges.
pub(super) const PAPER: Rgb = (255, 255, 255);

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing failed: {e:?}")
}

fn k(v: f64) -> i32 {
    (v * K).round() as i32
}

fn kp(points: &[(f64, f64)]) -> Vec<(i32, i32)> {
    points.iter().map(|&(x, y)| (k(x), k(y))).collect()
}

fn rgba((r, g, b): Rgb, alpha: f64) -> RGBAColor {
    RGBAColor(r, g, b, alpha)
}

fn font(size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::SansSerif, size * K * PLOTTERS_SIZE, FontStyle::Normal)
}

/// Width in pixels of `text` set at `size` pixels.
pub(super) fn text_width(text: &str, size: f64) -> f64 {
    match font(size).box_size(text) {
        Ok((w, _)) => w as f64 / K / MEASURE_SCALE,
        // Not reachable once the font is registered; a rough estimate keeps layout going.
        Err(_) => text.chars().count() as f64 * size * 0.6,
    }
}

/// Horizontal anchor of a text.
#[derive(Clone, Copy)]
pub(super) enum Align {
    Left,
    Center,
    Right,
}

/// Marker shapes, cycled per group so that groups differ in print without colour.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    TriangleDown,
    Hexagon,
}

pub(super) const MARKERS: [Marker; 6] =
    [Marker::Circle, Marker::Square, Marker::Triangle, Marker::Diamond, Marker::TriangleDown, Marker::Hexagon];

impl Marker {
    /// Outline of the marker of "radius" `r` around (x, y), with about equal visual weight.
    fn outline(self, x: f64, y: f64, r: f64) -> Vec<(f64, f64)> {
        let regular = |n: usize, r: f64, start: f64| -> Vec<(f64, f64)> {
            (0..n)
                .map(|i| {
                    let a = start + i as f64 * std::f64::consts::TAU / n as f64;
                    (x + r * a.cos(), y + r * a.sin())
                })
                .collect()
        };
        use std::f64::consts::{FRAC_PI_2, FRAC_PI_4};
        match self {
            Marker::Circle => regular(24, r, 0.0),
            Marker::Square => regular(4, r * 1.2, FRAC_PI_4),
            Marker::Diamond => regular(4, r * 1.3, 0.0),
            Marker::Triangle => {
                let mut p = regular(3, r * 1.35, -FRAC_PI_2);
                p.iter_mut().for_each(|q| q.1 += r * 0.2);
                p
            }
            Marker::TriangleDown => {
                let mut p = regular(3, r * 1.35, FRAC_PI_2);
                p.iter_mut().for_each(|q| q.1 -= r * 0.2);
                p
            }
            Marker::Hexagon => regular(6, r * 1.12, 0.0),
        }
    }
}

pub(super) struct Canvas<'a> {
    area: DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
}

impl<'a> Canvas<'a> {
    pub(super) fn new(buf: &'a mut String, size: Size) -> Result<Self, String> {
        let area = SVGBackend::with_string(buf, size.internal()).into_drawing_area();
        area.fill(&WHITE).map_err(err)?;
        Ok(Canvas { area })
    }

    pub(super) fn finish(self) -> Result<(), String> {
        self.area.present().map_err(err)
    }

    /// An open polyline.
    pub(super) fn path(&self, points: &[(f64, f64)], color: Rgb, alpha: f64, width: f64) -> Result<(), String> {
        if points.len() < 2 {
            return Ok(());
        }
        let style = ShapeStyle { color: rgba(color, alpha), filled: false, stroke_width: (width * K).round() as u32 };
        self.area.draw(&PathElement::new(kp(points), style)).map_err(err)
    }

    pub(super) fn line(&self, a: (f64, f64), b: (f64, f64), color: Rgb, width: f64) -> Result<(), String> {
        self.path(&[a, b], color, 1.0, width)
    }

    /// A closed outline (the first two points are repeated so that the corner joins).
    pub(super) fn outline(&self, points: &[(f64, f64)], color: Rgb, width: f64) -> Result<(), String> {
        let mut closed = points.to_vec();
        closed.extend(points.iter().take(2));
        self.path(&closed, color, 1.0, width)
    }

    pub(super) fn polygon(&self, points: &[(f64, f64)], color: Rgb, alpha: f64) -> Result<(), String> {
        let style = ShapeStyle { color: rgba(color, alpha), filled: true, stroke_width: 0 };
        self.area.draw(&Polygon::new(kp(points), style)).map_err(err)
    }

    pub(super) fn rect(&self, x0: f64, y0: f64, x1: f64, y1: f64, color: Rgb) -> Result<(), String> {
        let style = ShapeStyle { color: rgba(color, 1.0), filled: true, stroke_width: 0 };
        let (a, b) = ((k(x0.min(x1)), k(y0.min(y1))), (k(x0.max(x1)), k(y0.max(y1))));
        self.area.draw(&Rectangle::new([a, b], style)).map_err(err)
    }

    pub(super) fn rect_outline(
        &self,
        x0: f64,
        y0: f64,
        x1: f64,
        y1: f64,
        color: Rgb,
        width: f64,
    ) -> Result<(), String> {
        self.outline(&[(x0, y0), (x1, y0), (x1, y1), (x0, y1)], color, width)
    }

    /// A filled marker with a thin white edge that separates it from lines and other markers.
    pub(super) fn marker(&self, m: Marker, x: f64, y: f64, r: f64, color: Rgb, alpha: f64) -> Result<(), String> {
        let shape = m.outline(x, y, r);
        self.polygon(&shape, color, alpha)?;
        self.outline(&shape, PAPER, 0.75)
    }

    /// Text with its baseline at `baseline`.
    pub(super) fn text(
        &self,
        text: &str,
        x: f64,
        baseline: f64,
        size: f64,
        color: Rgb,
        align: Align,
    ) -> Result<(), String> {
        // plotters sets `dy="0.76em"` for a top anchor: the baseline lies 0.76 em below `y`.
        let color = rgba(color, 1.0);
        let style = TextStyle::from(font(size)).color(&color).pos(Pos::new(hpos(align), VPos::Top));
        self.area.draw_text(text, &style, (k(x), k(baseline - 0.76 * size))).map_err(err)
    }

    /// Text read from bottom to top, its baseline at `baseline_x`, centred on `y` (with `Center`).
    pub(super) fn text_up(
        &self,
        text: &str,
        baseline_x: f64,
        y: f64,
        size: f64,
        color: Rgb,
        align: Align,
    ) -> Result<(), String> {
        let color = rgba(color, 1.0);
        let style = TextStyle::from(font(size).transform(FontTransform::Rotate270))
            .color(&color)
            .pos(Pos::new(hpos(align), VPos::Top));
        // Rotated by −90° about the anchor, the 0.76 em drop of the baseline points right.
        self.area.draw_text(text, &style, (k(baseline_x - 0.76 * size), k(y))).map_err(err)
    }
}

fn hpos(align: Align) -> HPos {
    match align {
        Align::Left => HPos::Left,
        Align::Center => HPos::Center,
        Align::Right => HPos::Right,
    }
}

/// Okabe–Ito, reordered so that the first colours are the most distinct on white; yellow last.
pub(super) const PALETTE: [Rgb; 8] = [
    (0, 114, 178),   // blue
    (230, 159, 0),   // orange
    (0, 158, 115),   // bluish green
    (213, 94, 0),    // vermillion
    (204, 121, 167), // reddish purple
    (86, 180, 233),  // sky blue
    (0, 0, 0),       // black
    (240, 228, 66),  // yellow
];

pub(super) fn series_color(i: usize) -> Rgb {
    PALETTE[i % PALETTE.len()]
}

pub(super) fn series_marker(i: usize) -> Marker {
    MARKERS[i % MARKERS.len()]
}

/// Viridis, sampled at 0, 0.1, …, 1 (matplotlib's table), linearly interpolated.
const VIRIDIS: [Rgb; 11] = [
    (68, 1, 84),
    (72, 36, 117),
    (65, 68, 135),
    (53, 95, 141),
    (42, 120, 142),
    (33, 145, 140),
    (34, 168, 132),
    (68, 191, 112),
    (122, 209, 81),
    (189, 223, 38),
    (253, 231, 37),
];

pub(super) fn viridis(t: f64) -> Rgb {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let pos = t * (VIRIDIS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(VIRIDIS.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * f).round() as u8;
    (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Relative luminance (sRGB, WCAG), 0 for black to 1 for white.
pub(super) fn luminance((r, g, b): Rgb) -> f64 {
    let lin = |c: u8| {
        let c = c as f64 / 255.0;
        if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
    };
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}
