//! `[report]`, `[[figure]]` and `[plot]`: what the report and the figures show, and how large.

use serde::Serialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use std::collections::BTreeMap;
use std::path::Path;

use crate::jobfile::figure::{
    Aggregate, ErrorBars, FigureKind, FigureSize, FigureSpec, FigureStyle, ScriptFigure, length_pt,
};
use crate::jobfile::format::NumberFormat;

use super::walker::{Item, Walker, kind, toml_number};

/// Columns every report has before the params: each job's id and name.
pub const ID_COLUMNS: [&str; 2] = ["id", "name"];
/// Columns every report has after the results; a result of the same name gets a prefix.
pub const FIXED_COLUMNS: [&str; 3] = ["status", "duration", "attempts"];
/// Columns of what each job used, after the fixed ones; in the report only when `columns` names
/// them, and always there for figures.
pub const USAGE_COLUMNS: [&str; 2] = ["max_rss_mb", "cpu_secs"];
pub(super) const REPORT_KEYS: &[&str] = &["stage", "columns", "rename", "unfinished"];
pub(super) const FIGURE_KEYS: &[&str] = &[
    "name",
    "kind",
    "x",
    "y",
    "group",
    "value",
    "aggregate",
    "error",
    "log_x",
    "log_y",
    "title",
    "x_label",
    "y_label",
    "value_label",
    "where",
    "width",
    "height",
    "font_size",
    "style",
    "script",
    "command",
    "reads",
];
pub(super) const PLOT_KEYS: &[&str] = &["style", "width", "height", "font_size"];

/// `[report]`: which columns `report.csv` has, under which names, and which jobs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReportSpec {
    /// The stage whose jobs are the rows (a Jobfile with stages; default: the last declared).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<Spanned<String>>,
    /// Chosen and ordered columns; `None`: id, name, params, results, status, duration.
    pub columns: Option<Vec<Spanned<String>>>,
    /// Column → name in the file.
    pub rename: Vec<(String, String)>,
    /// Also list failed and pending jobs, with empty result cells.
    pub unfinished: bool,
}

impl Walker<'_> {
    pub(super) fn report(&mut self, item: Option<&Item<'_>>) -> ReportSpec {
        let Some(table) = self.table(item, "[report]") else { return ReportSpec::default() };
        self.unknown_keys(table, REPORT_KEYS, "a [report] key");
        let columns = table.get("columns").map(|_| self.strings(table, "columns", "a column name"));
        let mut rename = Vec::new();
        if let Some(renames) = self.table(table.get("rename"), "`rename`") {
            for (from, to) in renames.iter() {
                match to.get_ref() {
                    DeValue::String(name) => rename.push((from.get_ref().to_string(), name.to_string())),
                    other => {
                        self.at(to.span(), "a new column name must be a string", format!("found {}", kind(other)));
                    }
                }
            }
        }
        // Two columns of one name would leave the report ambiguous.
        for (i, (from, to)) in rename.iter().enumerate() {
            let taken = rename[..i].iter().any(|(_, other)| other == to)
                || (ID_COLUMNS.iter().chain(&FIXED_COLUMNS).any(|c| c == to) && !rename.iter().any(|(f, _)| f == to));
            if taken
                && let Some((key, _)) = table.get("rename").and_then(|r| match r.get_ref() {
                    DeValue::Table(t) => t.get_key_value(from.as_str()),
                    _ => None,
                })
            {
                self.at(
                    key.span(),
                    format!("`{from}` would be renamed to `{to}`, a name another column has"),
                    "two columns of one name",
                )
                .help = Some("choose a name no other column has".into());
            }
        }
        let unfinished = self.boolean(table, "unfinished").unwrap_or(false);
        let stage = self.string(table, "stage", "the name of a stage");
        ReportSpec { stage, columns, rename, unfinished }
    }

    /// `[format]`: column name → how its numbers are printed.
    pub(super) fn formats(&mut self, item: Option<&Item<'_>>) -> BTreeMap<String, NumberFormat> {
        let Some(table) = self.table(item, "[format]") else { return BTreeMap::new() };
        let mut formats = BTreeMap::new();
        for (name, _) in table.iter() {
            let Some(spec) = self.string(table, name.get_ref(), "a format such as \".3g\"") else { continue };
            match NumberFormat::parse(spec.get_ref()) {
                Ok(format) => {
                    formats.insert(name.get_ref().to_string(), format);
                }
                Err(problem) => {
                    self.at(spec.span(), format!("invalid format of `{}`", name.get_ref()), problem);
                }
            }
        }
        formats
    }

    /// `[plot]`: the size every figure is drawn at, unless it says otherwise.
    pub(super) fn plot(&mut self, item: Option<&Item<'_>>) -> FigureSize {
        let Some(table) = self.table(item, "[plot]") else { return FigureSize::default() };
        self.unknown_keys(table, PLOT_KEYS, "a [plot] key");
        self.figure_size(table, FigureSize::default())
    }

    /// `style`, `width`, `height` and `font_size` of a table, over `defaults` (over the style's
    /// size when it names one).
    fn figure_size(&mut self, table: &DeTable<'_>, defaults: FigureSize) -> FigureSize {
        let defaults = self.choice(table, "style", &FigureStyle::NAMES).map_or(defaults, FigureStyle::size);
        let length = |walker: &mut Self, key: &str, default: f64| {
            walker.string(table, key, "a length such as \"3.3in\"").map_or(default, |text| {
                length_pt(text.get_ref()).unwrap_or_else(|problem| {
                    walker.at(text.span(), format!("invalid `{key}`"), problem);
                    default
                })
            })
        };
        let width_pt = length(self, "width", defaults.width_pt);
        let height_pt = length(self, "height", defaults.height_pt);
        let font_pt = match table.get("font_size") {
            None => defaults.font_pt,
            Some(item) => match toml_number(item.get_ref()).filter(|pt| (4.0..=72.0).contains(pt)) {
                Some(pt) => pt,
                None => {
                    self.at(item.span(), "invalid `font_size`", "expected the axis labels' size in points, 4 to 72")
                        .help = Some("e.g. `font_size = 8` for a figure one column wide".into());
                    defaults.font_pt
                }
            },
        };
        FigureSize { width_pt, height_pt, font_pt, titled: defaults.titled }
    }

    /// `[[figure]]` entries; a script a figure names must be a file of the project at `root`.
    /// `script`, `command` and `reads` of a figure drawn by the user's own command.
    fn script_figure(&mut self, table: &DeTable<'_>, root: &Path) -> Option<ScriptFigure> {
        let path = self.string(table, "script", "a path such as \"plots/curves.py\"")?;
        let command = self.string(table, "command", "a command such as \"python3 plots/curves.py\"");
        let reads = table
            .get("reads")
            .map(|_| self.strings(table, "reads", "a report column").into_iter().map(Spanned::into_inner).collect());
        let relative = Path::new(path.get_ref());
        let inside = relative.is_relative() && !relative.components().any(|c| c == std::path::Component::ParentDir);
        if !inside || !root.join(relative).is_file() {
            let problem = if inside {
                "no such file in the project"
            } else {
                "a script of the project: a relative path, no `..`"
            };
            self.at(path.span(), "the figure's script is not found", problem).help =
                Some("write its path from the Jobfile's folder, e.g. `script = \"plots/curves.py\"`".into());
            return None;
        }
        Some(ScriptFigure {
            command: command.map_or_else(|| ScriptFigure::default_command(path.get_ref()), Spanned::into_inner),
            path: path.into_inner(),
            reads,
        })
    }

    pub(super) fn figures(
        &mut self,
        item: Option<&Item<'_>>,
        defaults: FigureSize,
        root: &Path,
    ) -> Vec<Spanned<FigureSpec>> {
        let Some(item) = item else { return Vec::new() };
        let DeValue::Array(entries) = item.get_ref() else {
            self.at(item.span(), "figures are declared as [[figure]] entries", "expected [[figure]], not [figure]");
            return Vec::new();
        };
        let mut figures: Vec<Spanned<FigureSpec>> = Vec::new();
        for entry in entries.iter() {
            let Some(table) = self.table(Some(entry), "a [[figure]] entry") else { continue };
            self.unknown_keys(table, FIGURE_KEYS, "a [[figure]] key");
            let kinds = [
                ("line", FigureKind::Line),
                ("scatter", FigureKind::Scatter),
                ("bar", FigureKind::Bar),
                ("heatmap", FigureKind::Heatmap),
                ("curve", FigureKind::Curve),
            ];
            let name = self.string(table, "name", "a file name such as \"accuracy_vs_hidden\"");
            let kind = self.choice(table, "kind", &kinds);
            let aggregate = self.choice(
                table,
                "aggregate",
                &[
                    ("mean", Aggregate::Mean),
                    ("median", Aggregate::Median),
                    ("min", Aggregate::Min),
                    ("max", Aggregate::Max),
                ],
            );
            let error = self.choice(
                table,
                "error",
                &[("std", ErrorBars::Std), ("min_max", ErrorBars::MinMax), ("none", ErrorBars::None)],
            );
            let column =
                |walker: &mut Self, key: &str| walker.string(table, key, "a column name").map(Spanned::into_inner);
            let x = column(self, "x");
            let y = column(self, "y");
            let group = column(self, "group");
            let value = column(self, "value");
            let title = column(self, "title");
            let x_label = column(self, "x_label");
            let y_label = column(self, "y_label");
            let value_label = column(self, "value_label");
            let filter = column(self, "where");
            let (log_x, log_y) = (self.boolean(table, "log_x"), self.boolean(table, "log_y"));
            let size = self.figure_size(table, defaults);
            let script = self.script_figure(table, root);
            let Some(name) = name else {
                self.at(entry.span(), "a [[figure]] needs a `name`", "expected `name = \"...\"`");
                continue;
            };
            if !name.get_ref().chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                || name.get_ref().is_empty()
            {
                self.at(name.span(), "a figure name becomes a file name", "use letters, digits, `_` and `-`");
                continue;
            }
            if figures.iter().any(|f| f.get_ref().name == *name.get_ref()) {
                self.at(name.span(), format!("two figures are named `{}`", name.get_ref()), "names must differ");
                continue;
            }
            let kind = match (&script, kind) {
                (Some(_), Some(_)) => {
                    self.at(entry.span(), "a [[figure]] has a `kind` or a `script`, not both", "remove one of them");
                    continue;
                }
                (Some(_), None) => Some(FigureKind::Script),
                (None, kind) => kind,
            };
            let Some(kind) = kind.or_else(|| {
                if table.get("kind").is_none() && table.get("script").is_none() {
                    self.at(
                        entry.span(),
                        "a [[figure]] needs a `kind`",
                        "expected line, scatter, bar, heatmap or curve",
                    );
                }
                None
            }) else {
                continue;
            };
            // A script chooses what to plot: its `x` and `y` are not needed.
            let (x, y) = match (x, y) {
                (Some(x), Some(y)) => (x, y),
                _ if kind == FigureKind::Script => (String::new(), String::new()),
                _ => {
                    self.at(entry.span(), "a [[figure]] needs `x` and `y`", "the columns to plot");
                    continue;
                }
            };
            if kind == FigureKind::Heatmap && value.is_none() {
                self.at(entry.span(), "a heatmap needs a `value`", "the column shown in each cell").help =
                    Some("e.g. x = \"hidden\", y = \"lr\", value = \"accuracy\"".into());
                continue;
            }
            let spec = FigureSpec {
                name: name.get_ref().clone(),
                kind,
                x,
                y,
                group,
                value,
                aggregate: aggregate.unwrap_or(Aggregate::Mean),
                error: error.unwrap_or(ErrorBars::Std),
                log_x: log_x.unwrap_or(false),
                log_y: log_y.unwrap_or(false),
                title,
                x_label,
                y_label,
                value_label,
                filter,
                size,
                script,
                formats: BTreeMap::new(),
            };
            figures.push(Spanned::new(entry.span(), spec));
        }
        figures
    }
}
