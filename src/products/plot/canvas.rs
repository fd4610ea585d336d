//! Drawing primitives on a plotters SVG backend, in figure units ([`Size`], `f64`).
//!
//! plotters' backends take integer coordinates, so the SVG is drawn at `K` times the figure
//! size and its `width`/`height` are set to the printed size (the `viewBox` keeps the detail).
//! Text is measured with plotters' ab_glyph engine and the one registered font.

use base64::prelude::{BASE64_STANDARD, Engine as _};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontDesc, FontTransform};
use resvg::tiny_skia::{FillRule, Paint, PathBuilder, Pixmap, PremultipliedColorU8, Transform};
use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

/// One marker of a scatter or line: its shape, centre and colour.
pub(super) struct MarkerAt {
    pub shape: Marker,
    pub x: f64,
    pub y: f64,
    pub color: Rgb,
}

/// More markers than this in one call are drawn as one image, as matplotlib's `rasterized`:
/// 100,000 markers as vector shapes made a 75 MB SVG that took seconds to draw three times.
const VECTOR_MARKERS_MAX: usize = 5_000;
/// That image's pixels per figure unit: 2,592 across the default 8 in (324 dpi), more on a
/// narrow figure, enough for print.
const RASTER_PX: f64 = 3.0;
/// The colour of the rectangle that holds an image's place until plotters has written the SVG
/// (plotters draws no images with transparency); no palette colour is near it.
const PLACEHOLDER: Rgb = (254, 1, 253);

/// Draws a figure of `size` with `paint` and returns plotters' SVG, its placeholders replaced
/// by the images they stand for.
pub(super) fn draw(size: Size, paint: impl FnOnce(&Canvas) -> Result<(), String>) -> Result<String, String> {
    let mut svg = String::new();
    let images = {
        let area = SVGBackend::with_string(&mut svg, size.internal()).into_drawing_area();
        area.fill(&WHITE).map_err(err)?;
        let canvas = Canvas { area, images: RefCell::new(Vec::new()) };
        paint(&canvas)?;
        canvas.area.present().map_err(err)?;
        canvas.images.into_inner()
    };
    images.iter().try_fold(svg, |svg, href| place_image(svg, href))
}

/// Turns the first placeholder rectangle into an `<image>` of the same place showing `href`.
fn place_image(mut svg: String, href: &str) -> Result<String, String> {
    let (r, g, b) = PLACEHOLDER;
    let attributes = format!(" opacity=\"1\" fill=\"#{r:02X}{g:02X}{b:02X}\" stroke=\"none\"/>");
    let end = svg.find(&attributes).ok_or("drawing failed: an image lost its place")?;
    svg.replace_range(end..end + attributes.len(), &format!(" preserveAspectRatio=\"none\" href=\"{href}\"/>"));
    let start = svg[..end].rfind("<rect ").ok_or("drawing failed: an image lost its place")?;
    svg.replace_range(start..start + "<rect".len(), "<image");
    Ok(svg)
}

pub(super) struct Canvas<'a> {
    area: DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    /// `data:` URLs of the images drawn, in the order of their placeholders.
    images: RefCell<Vec<String>>,
}

impl Canvas<'_> {
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

    /// Markers of "radius" `r` with fill opacity `alpha`, each over the ones before it: as
    /// shapes, or past [`VECTOR_MARKERS_MAX`] as one image, without their white edges.
    pub(super) fn markers(&self, markers: &[MarkerAt], r: f64, alpha: f64) -> Result<(), String> {
        if markers.len() <= VECTOR_MARKERS_MAX {
            return markers.iter().try_for_each(|m| self.marker(m.shape, m.x, m.y, r, m.color, alpha));
        }
        // The image covers the markers' extent in whole units, so that its place is exact.
        let reach = r * 1.35 + 1.0;
        let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
        for m in markers {
            (x0, y0, x1, y1) = (x0.min(m.x), y0.min(m.y), x1.max(m.x), y1.max(m.y));
        }
        let (x0, y0, x1, y1) = ((x0 - reach).floor(), (y0 - reach).floor(), (x1 + reach).ceil(), (y1 + reach).ceil());
        let png = raster_markers(markers, r, alpha, (x0, y0), ((x1 - x0) * RASTER_PX, (y1 - y0) * RASTER_PX))?;
        self.images.borrow_mut().push(format!("data:image/png;base64,{}", BASE64_STANDARD.encode(png)));
        self.rect(x0, y0, x1, y1, PLACEHOLDER)
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

/// The markers drawn on a transparent image of `pixels` whose top left is `origin` (in units),
/// as PNG. Each marker is stamped from a picture of its shape and colour drawn once.
fn raster_markers(
    markers: &[MarkerAt],
    r: f64,
    alpha: f64,
    origin: (f64, f64),
    pixels: (f64, f64),
) -> Result<Vec<u8>, String> {
    let no_memory = || "drawing failed: no memory for the markers' image".to_string();
    let mut image = Pixmap::new(pixels.0 as u32, pixels.1 as u32).ok_or_else(no_memory)?;
    let half = ((r * 1.35 + 1.0) * RASTER_PX).ceil();
    let mut stamps: HashMap<(Marker, Rgb), Pixmap> = HashMap::new();
    for m in markers {
        let stamp = match stamps.entry((m.shape, m.color)) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(stamp(m.shape, m.color, r, alpha, half).ok_or_else(no_memory)?),
        };
        let x = ((m.x - origin.0) * RASTER_PX - half).round() as i64;
        let y = ((m.y - origin.1) * RASTER_PX - half).round() as i64;
        stamp_at(&mut image, stamp, x, y);
    }
    image.encode_png().map_err(|e| format!("drawing failed: {e}"))
}

/// `stamp` drawn over `image` with its top left at pixel (x, y), the parts outside cut off.
/// tiny-skia's `draw_pixmap` does the same through its general pipeline, five times slower for
/// 100,000 small stamps.
fn stamp_at(image: &mut Pixmap, stamp: &Pixmap, x: i64, y: i64) {
    let (width, height) = (i64::from(image.width()), i64::from(image.height()));
    let side = i64::from(stamp.width());
    let columns = x.max(0)..(x + side).min(width);
    if columns.is_empty() {
        return;
    }
    let (below, above) = (image.pixels_mut(), stamp.pixels());
    for row in y.max(0)..(y + side).min(height) {
        let under = &mut below[(row * width + columns.start) as usize..(row * width + columns.end) as usize];
        let over = &above[((row - y) * side + columns.start - x) as usize..][..under.len()];
        for (dst, src) in under.iter_mut().zip(over) {
            // Source over, premultiplied: what shows through is dst × (1 − src alpha).
            let through = 255 - u16::from(src.alpha());
            if through == 255 {
                continue;
            }
            let mix = |s: u8, d: u8| s + ((u16::from(d) * through + 127) / 255) as u8;
            *dst = PremultipliedColorU8::from_rgba(
                mix(src.red(), dst.red()),
                mix(src.green(), dst.green()),
                mix(src.blue(), dst.blue()),
                mix(src.alpha(), dst.alpha()),
            )
            .unwrap_or(*dst);
        }
    }
}

/// One marker, centred on a transparent square of side `2 × half` pixels. It has no white edge:
/// among thousands of markers the edges of the later ones would hide the earlier ones, and a
/// dense row of points would show as white.
fn stamp(shape: Marker, color: Rgb, r: f64, alpha: f64, half: f64) -> Option<Pixmap> {
    let side = (2.0 * half) as u32;
    let mut pixmap = Pixmap::new(side, side)?;
    let mut path = PathBuilder::new();
    for (i, (x, y)) in shape.outline(half, half, r * RASTER_PX).into_iter().enumerate() {
        if i == 0 { path.move_to(x as f32, y as f32) } else { path.line_to(x as f32, y as f32) }
    }
    path.close();
    let path = path.finish()?;
    let mut paint = Paint::default();
    paint.set_color_rgba8(color.0, color.1, color.2, (alpha * 255.0).round() as u8);
    paint.anti_alias = true;
    pixmap.fill_path(&path, &paint, FillRule::Winding, Transform::identity(), None);
    Some(pixmap)
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
