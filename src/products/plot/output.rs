//! plotters SVG → one `usvg` tree with one embedded font → flattened SVG, PNG (resvg), PDF (krilla).
//! See docs CRATES.md §2: no system font is ever looked up.

use super::Drawn;
use super::canvas::Size;
use crate::jobfile::figure::FigureSize;
use krilla_svg::SurfaceExt;
use resvg::usvg;
use std::sync::{Arc, OnceLock};

const FONT_FAMILY: &str = "DejaVu Sans";
/// The PNG's resolution: 1600 × 1000 pixels for the default 8 × 5 in.
pub(super) const PNG_DPI: f32 = 200.0;
const PNG_SCALE: f32 = PNG_DPI / 72.0;

fn font() -> &'static [u8] {
    dejavu::sans::regular()
}

/// Registers the embedded font with plotters (its global font table, used to measure text);
/// once per process.
pub(super) fn init_fonts() -> Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, font()).is_ok()
    });
    if ok { Ok(()) } else { Err("the embedded DejaVu Sans font could not be loaded".into()) }
}

/// usvg options that know exactly one font; system fonts are never loaded.
fn usvg_options() -> usvg::Options<'static> {
    let mut opt = usvg::Options::default();
    let db = opt.fontdb_mut();
    db.load_font_source(usvg::fontdb::Source::Binary(Arc::new(font())));
    db.set_sans_serif_family(FONT_FAMILY);
    db.set_serif_family(FONT_FAMILY);
    db.set_monospace_family(FONT_FAMILY);
    opt.font_family = FONT_FAMILY.to_string();
    opt
}

/// Undoes the internal supersampling (see `canvas`) and turns plotters' element `opacity` into
/// fill/stroke opacity: the same look without a transparency group per element in the PDF.
fn tidy(plotters_svg: &str, internal: (u32, u32), width: f64, height: f64) -> String {
    let mut svg = plotters_svg
        .replace("<line opacity=", "<line stroke-opacity=")
        .replace(
            "<polyline fill=\"none\" opacity=",
            "<polyline fill=\"none\" stroke-linejoin=\"round\" stroke-opacity=",
        )
        .replace("<polygon opacity=", "<polygon fill-opacity=");
    let (iw, ih) = internal;
    svg = svg.replacen(
        &format!("<svg width=\"{iw}\" height=\"{ih}\" "),
        &format!("<svg width=\"{width}\" height=\"{height}\" "),
        1,
    );
    svg
}

/// The SVG drawn on an area of `size` as the three files, printed at `printed`: the SVG and
/// the PDF that size in points, the PNG at [`PNG_DPI`].
pub(super) fn render(plotters_svg: &str, size: Size, printed: &FigureSize) -> Result<Drawn, String> {
    let svg = tidy(plotters_svg, size.internal(), printed.width_pt, printed.height_pt);
    let tree = usvg::Tree::from_str(&svg, &usvg_options()).map_err(|e| format!("internal SVG is invalid: {e}"))?;
    // Text becomes paths: the SVG looks the same without the font.
    let flat = tree.to_string(&usvg::WriteOptions::default());
    let pdf = {
        let size =
            krilla::geom::Size::from_wh(tree.size().width(), tree.size().height()).ok_or("figure has no size")?;
        let mut doc = krilla::Document::new();
        let mut page = doc.start_page_with(krilla::page::PageSettings::new(size));
        let mut surface = page.surface();
        surface.draw_svg(&tree, size, krilla_svg::SvgSettings::default()).ok_or("PDF: the SVG could not be drawn")?;
        surface.finish();
        page.finish();
        doc.finish().map_err(|e| format!("PDF: {e:?}"))?
    };
    let size = tree.size().scale_by(PNG_SCALE).ok_or("figure has no size")?.to_int_size();
    let mut pixmap =
        resvg::tiny_skia::Pixmap::new(size.width(), size.height()).ok_or("PNG: no memory for the image")?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(&tree, resvg::tiny_skia::Transform::from_scale(PNG_SCALE, PNG_SCALE), &mut pixmap.as_mut());
    let png = pixmap.encode_png().map_err(|e| format!("PNG: {e}"))?;
    Ok(Drawn { svg: flat, png, pdf })
}
