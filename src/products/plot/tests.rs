use super::*;
use crate::jobfile::figure::{Aggregate, FigureStyle};
use serde_json::{Value, json};

const HIDDEN: [i64; 4] = [4, 8, 16, 32];
const LR: [f64; 3] = [0.01, 0.0316, 0.1];

/// A small deterministic wobble in −1..1, standing in for seed noise.
fn noise(a: f64, b: f64, seed: i64) -> f64 {
    ((a * 12.9898 + b * 78.233 + seed as f64 * 37.719).sin() * 43758.5453).fract()
}

fn accuracy(hidden: i64, lr: f64, seed: i64) -> f64 {
    0.6 + 0.065 * (hidden as f64 / 4.0).log2() + 0.05 * (lr / 0.01).log10() + 0.02 * noise(hidden as f64, lr, seed)
}

/// One row per job, like the report: hidden × lr × seed → accuracy.
fn report() -> Table {
    let mut rows = Vec::new();
    // Rows in job order, lr descending first, to check that groups are sorted numerically.
    for &lr in LR.iter().rev() {
        for hidden in HIDDEN {
            for seed in 0..3 {
                rows.push(vec![json!(hidden), json!(lr), json!(seed), json!(accuracy(hidden, lr, seed))]);
            }
        }
    }
    Table { columns: vec!["hidden".into(), "lr".into(), "seed".into(), "accuracy".into()], rows }
}

/// One row per (job, epoch), like the series files joined with params: test_loss decreasing.
fn series() -> Table {
    let mut rows = Vec::new();
    for hidden in HIDDEN {
        for seed in 0..3 {
            for epoch in 1..=50 {
                let lr = 0.0316;
                let rate = 0.04 * (hidden as f64).sqrt();
                let e = epoch as f64;
                // Each seed is off by its own amount that fades with training, plus a little jitter.
                let offset = 0.25 * noise(hidden as f64, 0.0, seed) / (1.0 + 0.08 * e);
                let loss = 0.25 + 2.0 / (1.0 + rate * e) + offset + 0.01 * noise(hidden as f64, e, seed);
                rows.push(vec![json!(hidden), json!(lr), json!(seed), json!(epoch), json!(loss)]);
            }
        }
    }
    Table { columns: vec!["hidden".into(), "lr".into(), "seed".into(), "epoch".into(), "test_loss".into()], rows }
}

fn spec(name: &str, kind: FigureKind, x: &str, y: &str, group: Option<&str>) -> FigureSpec {
    FigureSpec {
        name: name.into(),
        kind,
        x: x.into(),
        y: y.into(),
        group: group.map(Into::into),
        value: None,
        aggregate: Aggregate::Mean,
        error: ErrorBars::Std,
        log_x: false,
        log_y: false,
        title: None,
        x_label: None,
        y_label: None,
        value_label: None,
        filter: None,
        size: FigureSize::default(),
        script: None,
        formats: Default::default(),
    }
}

/// Every kind, as the figures of a paper would ask for them.
fn gallery() -> Vec<(FigureSpec, Table)> {
    let line = spec("accuracy_vs_hidden", FigureKind::Line, "hidden", "accuracy", Some("lr"));
    let line_log = FigureSpec {
        log_x: true,
        x_label: Some("hidden units".into()),
        title: Some("Accuracy by model width".into()),
        ..spec("accuracy_vs_hidden_log", FigureKind::Line, "hidden", "accuracy", Some("lr"))
    };
    let line_lr = FigureSpec {
        log_x: true,
        error: ErrorBars::MinMax,
        ..spec("accuracy_vs_lr", FigureKind::Line, "lr", "accuracy", Some("hidden"))
    };
    let scatter = spec("scatter", FigureKind::Scatter, "hidden", "accuracy", Some("lr"));
    let bar = spec("bar", FigureKind::Bar, "hidden", "accuracy", Some("lr"));
    let heatmap = FigureSpec {
        value: Some("accuracy".into()),
        ..spec("accuracy_grid", FigureKind::Heatmap, "lr", "hidden", None)
    };
    let curve = spec("loss_curves", FigureKind::Curve, "epoch", "test_loss", Some("hidden"));
    let curve_log = FigureSpec {
        log_y: true,
        error: ErrorBars::MinMax,
        ..spec("loss_curves_log", FigureKind::Curve, "epoch", "test_loss", Some("hidden"))
    };
    vec![
        (line, report()),
        (line_log, report()),
        (line_lr, report()),
        (scatter, report()),
        (bar, report()),
        (heatmap, report()),
        (curve, series()),
        (curve_log, series()),
    ]
}

fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

#[test]
fn every_kind_draws_an_svg_a_png_and_a_pdf() {
    for (spec, table) in gallery() {
        let drawn = draw(&spec, &table, None).unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        assert!(drawn.svg.starts_with("<svg"), "{}", spec.name);
        assert!(drawn.svg.contains("width=\"576\"") && drawn.svg.contains("height=\"360\""), "{}", spec.name);
        assert!(!drawn.svg.contains("<text"), "{}: SVG text must be paths", spec.name);
        assert_eq!(png_size(&drawn.png), (1600, 1000), "8 × 5 in at 200 dpi: {}", spec.name);
        assert!(drawn.pdf.starts_with(b"%PDF-"), "{}", spec.name);
        assert!(pdf_page(&drawn.pdf).contains("576 360"), "8 × 5 in: {}", spec.name);
    }
}

/// The page box of a PDF, as written: `[0 0 W H]`.
fn pdf_page(pdf: &[u8]) -> String {
    let text = String::from_utf8_lossy(pdf);
    let at = text.find("/MediaBox").expect("a MediaBox");
    text[at..].chars().take_while(|&c| c != ']').collect()
}

#[test]
fn a_figure_in_the_paper_style_prints_one_column_wide_with_its_font_size_and_no_title() {
    let (mut spec, table) = gallery().swap_remove(0);
    // Ink in the top twentieth of the picture: the title's, as the plot's frame starts lower.
    let ink_on_top = |png: &[u8]| {
        let image = resvg::tiny_skia::Pixmap::decode_png(png).unwrap();
        let top = image.width() as usize * (image.height() as usize / 20);
        image.pixels()[..top].iter().any(|p| p.red() < 128)
    };
    assert!(ink_on_top(&draw(&spec, &table, None).unwrap().png), "the screen style has a title");
    spec.size = FigureStyle::Paper.size();
    let drawn = draw(&spec, &table, None).unwrap();
    assert!(!ink_on_top(&drawn.png), "the paper style has none: its caption says it");
    assert!(pdf_page(&drawn.pdf).contains("237.6 158.4"), "{}", pdf_page(&drawn.pdf));
    assert_eq!(png_size(&drawn.png), (660, 440), "3.3 × 2.2 in at 200 dpi");
    // The labels are 8 pt in print: the figure is laid out on 237.6 × 15/8 units across.
    assert_eq!(area(&spec.size), canvas::Size { w: 445.5, h: 297.0 });
}

#[test]
fn drawing_twice_gives_the_same_bytes() {
    for (spec, table) in gallery().into_iter().step_by(2) {
        let (a, b) = (draw(&spec, &table, None).unwrap(), draw(&spec, &table, None).unwrap());
        assert!(a.svg == b.svg && a.png == b.png && a.pdf == b.pdf, "{}", spec.name);
    }
}

#[test]
fn a_missing_column_is_named_with_a_suggestion_and_the_columns_there_are() {
    let s = spec("f", FigureKind::Line, "hidden", "acc", Some("lr"));
    assert_eq!(
        draw(&s, &report(), None).unwrap_err(),
        "column `acc` not found (did you mean `accuracy`?); columns are: `hidden`, `lr`, `seed`, `accuracy`"
    );
    let s = spec("f", FigureKind::Line, "hidden", "accuracy", Some("optimizer"));
    assert_eq!(
        draw(&s, &report(), None).unwrap_err(),
        "column `optimizer` not found; columns are: `hidden`, `lr`, `seed`, `accuracy`"
    );
}

#[test]
fn log_axes_refuse_non_positive_values() {
    let mut table = report();
    table.rows[5][3] = json!(-0.25);
    let s = FigureSpec { log_y: true, ..spec("f", FigureKind::Line, "hidden", "accuracy", Some("lr")) };
    assert_eq!(
        draw(&s, &table, None).unwrap_err(),
        "log_y is set but `accuracy` has the non-positive value −0.25; a log axis needs values > 0"
    );
    let s = FigureSpec { log_x: true, ..spec("f", FigureKind::Scatter, "seed", "accuracy", None) };
    assert_eq!(
        draw(&s, &report(), None).unwrap_err(),
        "log_x is set but `seed` has the non-positive value 0; a log axis needs values > 0"
    );
}

#[test]
fn text_on_a_numeric_axis_suggests_a_bar_chart() {
    let mut table = report();
    table.columns.push("act".into());
    for (i, row) in table.rows.iter_mut().enumerate() {
        row.push(json!(if i % 2 == 0 { "relu" } else { "gelu" }));
    }
    let s = spec("f", FigureKind::Line, "act", "accuracy", None);
    assert_eq!(
        draw(&s, &table, None).unwrap_err(),
        "column `act` is not numeric: row 1 has \"relu\"; for categories on the x axis use kind = \"bar\""
    );
    let s = spec("f", FigureKind::Bar, "act", "accuracy", Some("hidden"));
    assert!(draw(&s, &table, None).is_ok());
}

#[test]
fn columns_without_numbers_and_heatmaps_without_value_are_errors() {
    let mut table = report();
    table.rows.iter_mut().for_each(|r| r[3] = Value::Null);
    let s = spec("f", FigureKind::Line, "hidden", "accuracy", Some("lr"));
    assert_eq!(draw(&s, &table, None).unwrap_err(), "no numeric values of `accuracy` to plot");
    let s = spec("grid", FigureKind::Heatmap, "lr", "hidden", None);
    assert_eq!(
        draw(&s, &report(), None).unwrap_err(),
        "heatmap `grid` needs `value`: the column whose numbers colour the cells"
    );
    let empty = Table { columns: report().columns, rows: vec![] };
    assert_eq!(draw(&s, &empty, None).unwrap_err(), "figure `grid` has no rows to plot");
}

#[test]
fn points_are_aggregated_over_seeds_and_groups_sorted_numerically() {
    let s = spec("f", FigureKind::Line, "hidden", "accuracy", Some("lr"));
    let series = data::xy_series(&s, &report(), true).unwrap();
    let labels: Vec<_> = series.iter().map(|s| s.label.clone().unwrap()).collect();
    assert_eq!(labels, ["lr = 0.01", "lr = 0.0316", "lr = 0.1"]);
    let first = series[0].points[0];
    assert_eq!(first.0, 4.0);
    let seeds: Vec<f64> = (0..3).map(|seed| accuracy(4, 0.01, seed)).collect();
    let mean = seeds.iter().sum::<f64>() / 3.0;
    let sd = (seeds.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert_eq!(first.1.n, 3);
    assert!((first.1.mid - mean).abs() < 1e-12 && (first.1.hi - first.1.mid - sd).abs() < 1e-12);
    let xs: Vec<f64> = series[0].points.iter().map(|p| p.0).collect();
    assert_eq!(xs, [4.0, 8.0, 16.0, 32.0]);
}

#[test]
fn measured_text_width_matches_the_rendered_text() {
    output::init_fonts().unwrap();
    let text = "accuracy (mean ± sd) 0.0316";
    // One figure unit per point.
    let printed = FigureSize { width_pt: 800.0, height_pt: 500.0, font_pt: layout::FS_LABEL, titled: true };
    let svg =
        canvas::draw(area(&printed), |c| c.text(text, 100.0, 100.0, 20.0, (0, 0, 0), canvas::Align::Left)).unwrap();
    let drawn = output::render(&svg, area(&printed), &printed).unwrap();
    let tree = resvg::usvg::Tree::from_str(&drawn.svg, &resvg::usvg::Options::default()).unwrap();
    // One group scales the figure; its last node is the text (as paths).
    let Some(resvg::usvg::Node::Group(figure)) = tree.root().children().first() else { panic!("no group") };
    let text_node = figure.children().last().unwrap();
    let rendered = text_node.abs_bounding_box().width() as f64;
    let measured = canvas::text_width(text, 20.0);
    assert!((measured / rendered - 1.0).abs() < 0.03, "measured {measured}, rendered {rendered}");
}

/// Writes every figure of the gallery to `$TMPDIR/plots` to look at:
/// `cargo test --lib plot::tests::write_gallery -- --ignored`.
#[test]
#[ignore]
fn write_gallery() {
    let dir = std::env::temp_dir().join("plots");
    std::fs::create_dir_all(&dir).unwrap();
    for (spec, table) in gallery() {
        let start = std::time::Instant::now();
        let drawn = draw(&spec, &table, None).unwrap();
        eprintln!("{}: {:?}", spec.name, start.elapsed());
        std::fs::write(dir.join(format!("{}.png", spec.name)), &drawn.png).unwrap();
        std::fs::write(dir.join(format!("{}.svg", spec.name)), &drawn.svg).unwrap();
        std::fs::write(dir.join(format!("{}.pdf", spec.name)), &drawn.pdf).unwrap();
    }
}

fn table(columns: &[&str], rows: Vec<Vec<Value>>) -> Table {
    Table { columns: columns.iter().map(|c| c.to_string()).collect(), rows }
}

/// Harder inputs: many groups, wide ranges, long labels, missing cells, constant values.
fn edge_gallery() -> Vec<(FigureSpec, Table)> {
    let mut out = Vec::new();
    // 10 groups: palette and markers cycle, the legend is tall.
    let rows = (0..10)
        .flat_map(|g| {
            (1..=6).map(move |x| vec![json!(format!("model-{g}")), json!(x), json!(x as f64 * (g as f64 + 1.0))])
        })
        .collect();
    out.push((
        spec("edge_many_groups", FigureKind::Line, "step", "score", Some("model")),
        table(&["model", "step", "score"], rows),
    ));
    // 24 groups: the legend needs two columns; long group labels do not fit outside.
    let rows: Vec<Vec<Value>> =
        (0..24).flat_map(|g| (0..5).map(move |x| vec![json!(g), json!(x), json!(x as f64 + g as f64 * 0.5)])).collect();
    out.push((
        spec("edge_tall_legend", FigureKind::Scatter, "x", "y", Some("g")),
        table(&["g", "x", "y"], rows.clone()),
    ));
    let rows = rows.into_iter().map(|mut r| {
        r[0] = json!(format!("a rather long configuration name number {}", r[0]));
        r
    });
    let rows = rows.filter(|r| r[0].as_str().is_some_and(|s| s.ends_with(" 1") || s.ends_with(" 2"))).collect();
    out.push((
        spec("edge_wide_legend", FigureKind::Line, "x", "y", Some("configuration")),
        table(&["configuration", "x", "y"], rows),
    ));
    // lr over five decades, loss over four: decade ticks with minor ticks.
    let rows = (0..=10)
        .map(|i| {
            let lr = 10f64.powf(-5.0 + i as f64 * 0.5);
            vec![json!(lr), json!(1e-3 * 10f64.powf((i as f64 - 5.0).abs() * 0.8)), json!(0)]
        })
        .collect();
    out.push((
        FigureSpec { log_x: true, log_y: true, ..spec("edge_decades", FigureKind::Scatter, "lr", "loss", None) },
        table(&["lr", "loss", "seed"], rows),
    ));
    // Large numbers with negative values; no group.
    let rows = (0..30).map(|i| vec![json!(i as f64 * 25_000.0), json!((i as f64 - 12.0) * 1.3e6)]).collect();
    out.push((
        spec("edge_large_numbers", FigureKind::Scatter, "tokens", "reward", None),
        table(&["tokens", "reward"], rows),
    ));
    // Long category names, negative bars, a missing bar, and a long title.
    let names = [
        "baseline",
        "dropout-0.1-with-warmup",
        "layernorm-everywhere",
        "no-residual",
        "wide-and-shallow",
        "deep-and-narrow",
    ];
    let mut rows = Vec::new();
    for (i, n) in names.iter().enumerate() {
        for seed in 0..3 {
            for opt in ["adam", "sgd"] {
                if i == 3 && opt == "sgd" {
                    continue;
                }
                let v = (i as f64 - 2.0) * 0.4 + seed as f64 * 0.1 + if opt == "sgd" { 0.3 } else { 0.0 };
                rows.push(vec![json!(n), json!(opt), json!(seed), json!(v)]);
            }
        }
    }
    out.push((
        FigureSpec {
            title: Some("Change in validation score relative to the baseline, by architecture variant".into()),
            error: ErrorBars::MinMax,
            ..spec("edge_long_labels", FigureKind::Bar, "variant", "delta", Some("optimizer"))
        },
        table(&["variant", "optimizer", "seed", "delta"], rows),
    ));
    // A 10 × 8 heatmap with a missing cell and small values.
    let mut rows = Vec::new();
    for a in 0..10 {
        for b in 0..8 {
            if (a, b) != (3, 5) {
                rows.push(vec![json!(a * 16), json!(1e-4 * 2f64.powi(b)), json!(0.001 * (a * b) as f64 + 0.0004)]);
            }
        }
    }
    out.push((
        FigureSpec { value: Some("err".into()), ..spec("edge_big_heatmap", FigureKind::Heatmap, "width", "lr", None) },
        table(&["width", "lr", "err"], rows),
    ));
    // A short curve (markers), one group with a constant value, and a null group value.
    let mut rows = Vec::new();
    for e in 1..=8 {
        rows.push(vec![json!("a"), json!(e), json!(1.0 / e as f64)]);
        rows.push(vec![json!("b"), json!(e), json!(0.5)]);
        rows.push(vec![Value::Null, json!(e), json!(0.3 + 0.01 * e as f64)]);
    }
    out.push((
        spec("edge_short_curve", FigureKind::Curve, "epoch", "loss", Some("run")),
        table(&["run", "epoch", "loss"], rows),
    ));
    // Everything equal; a single x.
    let rows = (0..3).map(|s| vec![json!(8), json!(s), json!(0.5)]).collect();
    out.push((spec("edge_constant", FigureKind::Line, "hidden", "acc", None), table(&["hidden", "seed", "acc"], rows)));
    out
}

/// `cargo test --release --lib plot::tests::write_edge_gallery -- --ignored`
#[test]
#[ignore]
fn write_edge_gallery() {
    let dir = std::env::temp_dir().join("plots");
    std::fs::create_dir_all(&dir).unwrap();
    for (spec, table) in edge_gallery() {
        let drawn = draw(&spec, &table, None).unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        std::fs::write(dir.join(format!("{}.png", spec.name)), &drawn.png).unwrap();
    }
}

#[test]
fn thousands_of_markers_are_one_image_in_the_place_of_the_shapes() {
    let scatter = spec("many", FigureKind::Scatter, "x", "y", None);
    let table = |rows: Vec<(f64, f64)>| Table {
        columns: vec!["x".into(), "y".into()],
        rows: rows.into_iter().map(|(x, y)| vec![json!(x), json!(y)]).collect(),
    };
    // The box around the pixels of the first series' colour.
    let ink = |png: &[u8]| {
        let image = resvg::tiny_skia::Pixmap::decode_png(png).unwrap();
        let (mut lo, mut hi) = ((u32::MAX, u32::MAX), (0, 0));
        for (i, p) in image.pixels().iter().enumerate() {
            if p.blue() > 120 && p.red() < 60 {
                let (x, y) = (i as u32 % image.width(), i as u32 / image.width());
                (lo, hi) = ((lo.0.min(x), lo.1.min(y)), (hi.0.max(x), hi.1.max(y)));
            }
        }
        (lo, hi)
    };
    let few = draw(&scatter, &table(vec![(0.0, 0.0), (1.0, 1.0)]), None).unwrap();
    let mut points = vec![(0.0, 0.0); 5_999];
    points.push((1.0, 1.0));
    let many = draw(&scatter, &table(points), None).unwrap();
    assert_eq!(few.svg.matches("<image").count(), 0);
    assert_eq!(many.svg.matches("<image").count(), 1, "the 6,000 markers are one image");
    assert!(many.svg.len() < 200_000, "no shape per marker: {} bytes", many.svg.len());
    assert!(String::from_utf8_lossy(&many.pdf).contains("/SMask"), "the PDF keeps the image's transparency");
    let (a, b) = (ink(&few.png), ink(&many.png));
    let off = |p: (u32, u32), q: (u32, u32)| p.0.abs_diff(q.0).max(p.1.abs_diff(q.1));
    assert!(off(a.0, b.0) <= 2 && off(a.1, b.1) <= 2, "markers as shapes {a:?}, as an image {b:?}");
}
