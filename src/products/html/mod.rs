//! The index page: one self-contained HTML file beside the figures, showing each figure with its
//! download links and the report as a table that sorts and filters in the browser.
//!
//! A pure function of its inputs: the same figures and report give the same bytes. Inline CSS and
//! JS only (no network, no fonts to fetch). Every string that comes from outside — titles, names,
//! column names, cell values, links — is HTML-escaped, and links are percent-encoded as relative
//! paths so that none can carry a scheme such as `javascript:`. The report's values reach the page
//! only as escaped text and attributes, never inside the script.

use std::fmt::Write as _;

use serde_json::Value;

use std::collections::BTreeMap;

use crate::jobfile::format::NumberFormat;
use crate::products::Coverage;
use crate::products::table::Table;

/// One figure as the page shows it. File names are relative to the page (the figures are beside
/// it), e.g. `accuracy.svg`; an empty one means that format was not drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureEntry {
    pub name: String,
    pub title: String,
    /// `line`, `scatter`, `bar`, … shown as a label.
    pub kind: String,
    pub svg: String,
    pub png: String,
    pub pdf: String,
}

/// The whole page. `report` is the report table; `job_links[i]` is the relative path from the page
/// to row i's job folder (e.g. `../scratch_space/0123abcd4567/`), linked from the row's `id` cell
/// (or its first cell when there is no `id` column); `report_link` is the relative path to the
/// report file, e.g. `../report.csv`. Links are paths, not URLs: they are percent-encoded here.
pub fn index_page(
    title: &str,
    figures: &[FigureEntry],
    report: &Table,
    job_links: &[String],
    report_link: &str,
    coverage: &Coverage,
    formats: &BTreeMap<String, NumberFormat>,
) -> String {
    let mut page = String::with_capacity(16 * 1024 + report.rows.len() * report.columns.len() * 48);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str("<meta name=\"generator\" content=\"jobman\">\n");
    let _ = writeln!(page, "<title>{}</title>", escape(title));
    page.push_str("<style>\n");
    page.push_str(STYLE);
    page.push_str("</style>\n</head>\n<body>\n");
    header(&mut page, title, figures, report, report_link);
    page.push_str("<main>\n");
    banner(&mut page, coverage);
    figures_section(&mut page, figures);
    jobs_section(&mut page, report, job_links, report_link, formats);
    page.push_str("</main>\n<footer>Made by jobman.</footer>\n<script>\n");
    page.push_str(SCRIPT);
    page.push_str("</script>\n</body>\n</html>\n");
    page
}

fn header(page: &mut String, title: &str, figures: &[FigureEntry], report: &Table, report_link: &str) {
    page.push_str("<header class=\"page-header\">\n<div class=\"wrap\">\n");
    let _ = writeln!(page, "<h1>{}</h1>", escape(title));
    page.push_str("<p class=\"summary\">");
    let _ = write!(page, "<span>{}</span>", plural(figures.len(), "figure"));
    let _ = write!(page, "<span>{}</span>", plural(report.rows.len(), "job"));
    for (status, count) in status_counts(report) {
        let _ = write!(
            page,
            "<span class=\"status status-{}\">{} {}</span>",
            class_token(&status),
            count,
            escape(&status.replace('_', " "))
        );
    }
    let _ = write!(page, "<a class=\"report-link\" href=\"{}\">Download report (CSV)</a>", href(report_link));
    page.push_str("</p>\n");
    if !figures.is_empty() {
        page.push_str("<nav class=\"toc\" aria-label=\"Contents\">");
        for (i, figure) in figures.iter().enumerate() {
            let _ = write!(page, "<a href=\"#figure-{}\">{}</a>", i + 1, escape(display_title(figure)));
        }
        page.push_str("<a href=\"#jobs\">Jobs</a></nav>\n");
    }
    page.push_str("</div>\n</header>\n");
}

/// Above everything, when jobs of the sweep are not in the report: how many are, and each failed
/// job with why (the first 50).
fn banner(page: &mut String, coverage: &Coverage) {
    if coverage.done >= coverage.total {
        return;
    }
    page.push_str("<section class=\"wrap\"><div class=\"banner\" role=\"status\">\n");
    let _ = write!(
        page,
        "<p><strong>{} of {} are in this report and its figures.</strong>",
        coverage.done,
        plural(coverage.total, "job")
    );
    if !coverage.failed.is_empty() {
        let _ = write!(page, " {} failed:", coverage.failed.len());
    }
    page.push_str("</p>\n");
    if !coverage.failed.is_empty() {
        page.push_str("<ul>\n");
        for (name, why) in coverage.failed.iter().take(50) {
            let _ = writeln!(page, "<li><code>{}</code>: {}</li>", escape(name), escape(why));
        }
        if coverage.failed.len() > 50 {
            let _ = writeln!(
                page,
                "<li>and {} more (<code>jobman ls --status failed</code>)</li>",
                coverage.failed.len() - 50
            );
        }
        page.push_str("</ul>\n");
    }
    let not_run = coverage.not_run + coverage.waiting;
    if not_run > 0 {
        let _ = writeln!(page, "<p>{} not run yet.</p>", plural(not_run, "job"));
    }
    page.push_str("</div></section>\n");
}

fn figures_section(page: &mut String, figures: &[FigureEntry]) {
    if figures.is_empty() {
        return;
    }
    page.push_str("<section id=\"figures\" class=\"wrap\">\n<h2>Figures</h2>\n<div class=\"figure-grid\">\n");
    for (i, figure) in figures.iter().enumerate() {
        let _ = writeln!(page, "<figure class=\"figure\" id=\"figure-{}\">", i + 1);
        page.push_str("<figcaption>\n");
        let _ = writeln!(page, "<h3>{}</h3>", escape(display_title(figure)));
        page.push_str("<p class=\"figure-meta\">");
        let _ = write!(page, "<code class=\"figure-name\">{}</code>", escape(&figure.name));
        if !figure.kind.is_empty() {
            let _ = write!(page, "<span class=\"kind\">{}</span>", escape(&figure.kind));
        }
        page.push_str("<span class=\"downloads\">");
        for (label, file) in [("PNG", &figure.png), ("PDF", &figure.pdf), ("SVG", &figure.svg)] {
            if !file.is_empty() {
                let _ = write!(
                    page,
                    "<a href=\"{}\" download title=\"Download {} as {}\">{}</a>",
                    href(file),
                    escape(&figure.name),
                    label,
                    label
                );
            }
        }
        page.push_str("</span></p>\n</figcaption>\n");
        let shown = if figure.svg.is_empty() { &figure.png } else { &figure.svg };
        if shown.is_empty() {
            page.push_str("<p class=\"missing\">This figure was not drawn.</p>\n");
        } else {
            let _ = writeln!(page, "<img src=\"{}\" alt=\"{}\">", href(shown), escape(display_title(figure)));
        }
        page.push_str("</figure>\n");
    }
    page.push_str("</div>\n</section>\n");
}

/// The most rows the page's table shows: a browser lays out 5,000 rows in a blink, 100,000 in
/// seconds (and the page would weigh 27 MB); the report file has them all.
pub const TABLE_ROWS_MAX: usize = 5_000;

fn jobs_section(
    page: &mut String,
    report: &Table,
    job_links: &[String],
    report_link: &str,
    formats: &BTreeMap<String, NumberFormat>,
) {
    let shown = report.rows.len().min(TABLE_ROWS_MAX);
    page.push_str("<section id=\"jobs\" class=\"wrap\">\n<h2>Jobs</h2>\n");
    page.push_str("<div class=\"table-tools\">");
    page.push_str(
        "<input type=\"search\" id=\"job-filter\" placeholder=\"Filter jobs\u{2026}\" \
         aria-label=\"Filter jobs\" aria-controls=\"job-table\" autocomplete=\"off\" spellcheck=\"false\">",
    );
    let _ = write!(page, "<span id=\"job-count\" aria-live=\"polite\">{shown} of {}</span>", plural(shown, "job"));
    page.push_str("</div>\n");
    if report.rows.len() > shown {
        let _ = writeln!(
            page,
            "<p class=\"table-cut\">The table shows the first {shown} of {} jobs, and filters and sorts those; \
             <a href=\"{}\">the report (CSV)</a> has every job.</p>",
            report.rows.len(),
            href(report_link)
        );
    }
    page.push_str("<div class=\"table-wrap\">\n<table id=\"job-table\">\n<thead>\n<tr>");
    let kinds: Vec<ColumnKind> = (0..report.columns.len()).map(|c| column_kind(report, c)).collect();
    for (name, kind) in report.columns.iter().zip(&kinds) {
        let _ = write!(
            page,
            "<th scope=\"col\" class=\"{}\" data-type=\"{}\" aria-sort=\"none\"><button type=\"button\">{}<span class=\"arrow\" aria-hidden=\"true\"></span></button></th>",
            kind.class(),
            kind.data_type(),
            escape(name)
        );
    }
    page.push_str("</tr>\n</thead>\n<tbody>\n");
    let link_column = report.column("id").unwrap_or(0);
    let status_column = report.column("status");
    for (r, row) in report.rows.iter().take(TABLE_ROWS_MAX).enumerate() {
        page.push_str("<tr>");
        for c in 0..report.columns.len() {
            let value = row.get(c).unwrap_or(&Value::Null);
            let link = if c == link_column { job_links.get(r) } else { None };
            cell(page, value, link, status_column == Some(c), formats.get(&report.columns[c]));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody>\n</table>\n</div>\n");
    let _ = writeln!(
        page,
        "<p id=\"no-match\" class=\"no-match\"{}>{}</p>",
        if shown == 0 { "" } else { " hidden" },
        if shown == 0 { "No jobs in the report." } else { "No job matches the filter." }
    );
    page.push_str("</section>\n");
}

/// One `<td>`: numbers compact with their full value in `data-value` (what sorting reads) and in
/// the tooltip; empty cells marked so that they sort last.
/// One cell: a number as `format` prints it (else in 4 significant digits), its full value kept
/// for sorting and shown on hover.
fn cell(page: &mut String, value: &Value, link: Option<&String>, is_status: bool, format: Option<&NumberFormat>) {
    let text = match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => {
            let full = n.to_string();
            let short = match (format, n.as_f64()) {
                (Some(format), Some(x)) => format.apply(x),
                _ => compact_number(n),
            };
            let title = if short == full { String::new() } else { format!(" title=\"{}\"", escape(&full)) };
            let _ = write!(page, "<td class=\"num\" data-value=\"{}\"{title}>{}</td>", escape(&full), escape(&short));
            return;
        }
        Value::Array(_) | Value::Object(_) => Some(value.to_string()),
    };
    let Some(text) = text else {
        page.push_str("<td class=\"empty\"></td>");
        return;
    };
    let shown = match link {
        Some(link) => format!("<a href=\"{}\">{}</a>", href(link), escape(&text)),
        None => escape(&text),
    };
    if is_status {
        let _ = write!(page, "<td><span class=\"status status-{}\">{shown}</span></td>", class_token(&text));
    } else if text.chars().count() > LONG_TEXT {
        let _ = write!(page, "<td class=\"long\">{shown}</td>");
    } else {
        let _ = write!(page, "<td>{shown}</td>");
    }
}

/// Cells with more characters than this wrap; shorter ones stay on one line.
const LONG_TEXT: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    /// Every non-empty cell is a JSON number: sorted numerically, right-aligned.
    Number,
    Text,
}

impl ColumnKind {
    fn class(self) -> &'static str {
        match self {
            ColumnKind::Number => "num",
            ColumnKind::Text => "text",
        }
    }

    fn data_type(self) -> &'static str {
        match self {
            ColumnKind::Number => "number",
            ColumnKind::Text => "text",
        }
    }
}

fn column_kind(report: &Table, column: usize) -> ColumnKind {
    let mut numbers = 0;
    for row in &report.rows {
        match row.get(column) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(Value::Number(_)) => numbers += 1,
            Some(_) => return ColumnKind::Text,
        }
    }
    if numbers > 0 { ColumnKind::Number } else { ColumnKind::Text }
}

/// The `status` column's values and how many rows have each, in order of first appearance.
fn status_counts(report: &Table) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    let Some(values) = report.values("status") else { return counts };
    for value in values {
        let Value::String(status) = value else { continue };
        if status.is_empty() {
            continue;
        }
        match counts.iter_mut().find(|(s, _)| s == status) {
            Some((_, n)) => *n += 1,
            None => counts.push((status.clone(), 1)),
        }
    }
    counts
}

fn display_title(figure: &FigureEntry) -> &str {
    if figure.title.is_empty() { &figure.name } else { &figure.title }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("{n} {noun}") } else { format!("{n} {noun}s") }
}

/// A number with at most 4 significant digits after the point: `0.93671` → `0.9367`, `1e-5` →
/// `1e-5`, `12345.678` → `12346`. Integers are shown whole below a million; beyond that, and
/// below 0.0001, in scientific notation (`1.235e7`).
pub fn compact_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
        && i.abs() < 1_000_000
    {
        return i.to_string();
    }
    let Some(x) = n.as_f64() else { return n.to_string() };
    if x == 0.0 {
        return "0".to_string();
    }
    // The exponent after rounding to 4 significant digits (9.99996 rounds to 1.000e1).
    let scientific = format!("{x:.3e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        let decimals = (3 - exponent).max(0) as usize;
        trim_zeros(&format!("{x:.decimals$}")).to_string()
    } else {
        format!("{}e{exponent}", trim_zeros(mantissa))
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

/// Text and attribute values alike (attributes are always double-quoted).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// A relative path as an `href`/`src` value: percent-encoded (so `:` cannot start a scheme such
/// as `javascript:`, and `#`, `?`, `%`, `\` and spaces stay part of the path), then escaped.
pub fn href(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=@".contains(&byte);
        if keep {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    escape(&out)
}

/// A CSS class suffix made of `[a-z0-9_-]` only.
fn class_token(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect()
}

const STYLE: &str = r#":root {
  color-scheme: light;
  --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --card: #fff;
  --accent: #0969da; --accent-soft: #ddf4ff;
  --ok: #1a7f37; --ok-soft: #dafbe1; --bad: #cf222e; --bad-soft: #ffebe9;
  --warn: #9a6700; --warn-soft: #fff8c5;
  --mono: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--soft); color: var(--ink); line-height: 1.5;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code { font-family: var(--mono); font-size: .88em; }
.wrap { max-width: 1280px; margin: 0 auto; padding: 0 24px; }
.page-header { background: var(--card); border-bottom: 1px solid var(--line); padding: 20px 0 14px; }
h1 { margin: 0 0 6px; font-size: 1.6rem; font-weight: 650; letter-spacing: -.01em; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; font-weight: 650; margin: 28px 0 12px; }
h3 { font-size: 1rem; font-weight: 600; margin: 0; overflow-wrap: anywhere; }
.summary { margin: 0; display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: center; color: var(--muted); }
.summary .report-link { margin-left: auto; }
.toc { margin-top: 10px; display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: .9rem; }
.banner { margin: 20px 0 0; background: var(--warn-soft); border: 1px solid #d4a72c; border-radius: 8px; padding: 10px 16px; }
.banner p { margin: 4px 0; }
.banner ul { margin: 4px 0; padding-left: 22px; max-height: 16em; overflow: auto; }
.figure-grid { display: grid; gap: 16px; grid-template-columns: repeat(auto-fill, minmax(min(100%, 440px), 1fr)); }
.figure { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px 16px;
  display: flex; flex-direction: column; gap: 10px; break-inside: avoid; }
.figure img { display: block; width: 100%; height: auto; }
.figure-meta { margin: 4px 0 0; display: flex; flex-wrap: wrap; gap: 6px 10px; align-items: center; font-size: .85rem; color: var(--muted); }
.figure-name { color: var(--muted); overflow-wrap: anywhere; }
.kind { background: var(--accent-soft); color: var(--accent); border-radius: 999px; padding: 0 8px; font-size: .78rem; font-weight: 600; }
.downloads { margin-left: auto; display: flex; gap: 6px; }
.downloads a { border: 1px solid var(--line); border-radius: 6px; padding: 1px 8px; font-size: .78rem; font-weight: 600; background: var(--soft); }
.downloads a:hover { background: var(--accent-soft); text-decoration: none; }
.missing { color: var(--muted); font-style: italic; margin: 24px 0; text-align: center; }
.table-tools { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 14px; margin-bottom: 10px; }
#job-filter { font: inherit; padding: 6px 10px; min-width: min(100%, 320px); border: 1px solid var(--line); border-radius: 6px; background: var(--card); }
#job-filter:focus { outline: 2px solid var(--accent); outline-offset: -1px; border-color: var(--accent); }
#job-count { color: var(--muted); font-size: .9rem; }
.table-wrap { overflow: auto; max-height: 80vh; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: separate; border-spacing: 0; width: 100%; font-size: .88rem; }
th, td { padding: 6px 12px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
td { white-space: nowrap; }
td.long { white-space: normal; min-width: 18em; max-width: 36em; overflow-wrap: anywhere; }
tbody tr:last-child td { border-bottom: 0; }
tbody tr:hover td { background: #f3f7fc; }
th { position: sticky; top: 0; z-index: 1; background: var(--soft); padding: 0; white-space: nowrap; }
th button { all: unset; box-sizing: border-box; display: flex; width: 100%; gap: 6px; align-items: center;
  padding: 8px 12px; cursor: pointer; font-weight: 600; color: var(--ink); }
th.num button { justify-content: flex-end; }
th button:focus-visible { outline: 2px solid var(--accent); outline-offset: -2px; }
.arrow { display: inline-block; width: 1em; text-align: center; color: var(--accent); font-size: .8em; }
th[aria-sort="none"] .arrow::after { content: "\2195"; color: var(--muted); opacity: .45; }
th[aria-sort="ascending"] .arrow::after { content: "\25B2"; }
th[aria-sort="descending"] .arrow::after { content: "\25BC"; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; font-family: var(--mono); font-size: .84rem; }
td a { font-family: var(--mono); font-size: .84rem; }
.status { display: inline-block; border-radius: 999px; padding: 0 8px; font-size: .8rem; font-weight: 600; background: var(--soft); color: var(--muted); }
.summary .status { font-size: .82rem; }
.status-done, .status-ok, .status-success, .status-cached { background: var(--ok-soft); color: var(--ok); }
.status-failed, .status-error { background: var(--bad-soft); color: var(--bad); }
.status-timed_out, .status-interrupted { background: var(--warn-soft); color: var(--warn); }
.no-match { color: var(--muted); font-style: italic; }
.table-cut { color: var(--muted); margin: 0 0 .75rem; }
footer { max-width: 1280px; margin: 32px auto 24px; padding: 0 24px; color: var(--muted); font-size: .8rem; }
@media (max-width: 640px) {
  .wrap, footer { padding: 0 12px; }
  .summary .report-link, .downloads { margin-left: 0; }
}
@media print {
  @page { margin: 1.5cm; }
  body { background: #fff; font-size: 10pt; }
  .wrap, footer { max-width: none; padding: 0; }
  .page-header { border: 0; padding: 0 0 8px; }
  .toc, .table-tools input, .downloads, .report-link, th[aria-sort="none"] .arrow, footer { display: none; }
  .figure-grid { grid-template-columns: repeat(2, 1fr); gap: 12px; }
  .figure { border-color: #ccc; page-break-inside: avoid; }
  .table-wrap { overflow: visible; max-height: none; border: 0; }
  th { position: static; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
  a { color: inherit; }
  .status, .kind { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

const SCRIPT: &str = r#"(function () {
  "use strict";
  var table = document.getElementById("job-table");
  var filter = document.getElementById("job-filter");
  var count = document.getElementById("job-count");
  var noMatch = document.getElementById("no-match");
  if (!table || !table.tBodies[0]) return;
  var body = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var rows = Array.prototype.slice.call(body.rows);
  var collator = new Intl.Collator("en", { numeric: true, sensitivity: "base" });
  var searchText = rows.map(function (row) {
    return Array.prototype.map.call(row.cells, function (cell) {
      return cell.textContent + (cell.hasAttribute("data-value") ? "\n" + cell.getAttribute("data-value") : "");
    }).join("\n").toLowerCase();
  });
  var sorted = { column: -1, direction: 1 };

  function sortBy(column) {
    var direction = sorted.column === column ? -sorted.direction : 1;
    sorted = { column: column, direction: direction };
    var numeric = headers[column].getAttribute("data-type") === "number";
    var keyed = rows.map(function (row, index) {
      var cell = row.cells[column];
      var empty = !cell || cell.classList.contains("empty");
      var key = empty ? null : cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent;
      if (numeric && !empty) key = Number(key);
      return { row: row, index: index, empty: empty, key: key };
    });
    keyed.sort(function (a, b) {
      if (a.empty !== b.empty) return a.empty ? 1 : -1;
      if (!a.empty) {
        var order = numeric ? (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) : collator.compare(a.key, b.key);
        if (order !== 0) return order * direction;
      }
      return a.index - b.index;
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (k) { fragment.appendChild(k.row); });
    body.appendChild(fragment);
    headers.forEach(function (th, i) {
      th.setAttribute("aria-sort", i !== column ? "none" : direction > 0 ? "ascending" : "descending");
    });
  }

  function applyFilter() {
    var query = filter.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (row, i) {
      var match = query === "" || searchText[i].indexOf(query) !== -1;
      row.hidden = !match;
      if (match) shown += 1;
    });
    count.textContent = shown + " of " + rows.length + (rows.length === 1 ? " job" : " jobs");
    noMatch.hidden = rows.length > 0 && shown > 0;
  }

  headers.forEach(function (th, i) {
    th.addEventListener("click", function () { sortBy(i); });
  });
  filter.addEventListener("input", applyFilter);
  applyFilter();
})();
"#;

#[cfg(test)]
mod browser_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn figure(name: &str, title: &str) -> FigureEntry {
        FigureEntry {
            name: name.to_string(),
            title: title.to_string(),
            kind: "line".to_string(),
            svg: format!("{name}.svg"),
            png: format!("{name}.png"),
            pdf: format!("{name}.pdf"),
        }
    }

    fn report() -> Table {
        Table {
            columns: vec!["id".into(), "name".into(), "lr".into(), "note".into(), "accuracy".into(), "status".into()],
            rows: vec![
                vec![
                    json!("0123abcd4567"),
                    json!("a"),
                    json!(0.01),
                    json!("<script>alert(1)</script>"),
                    json!(0.93671),
                    json!("done"),
                ],
                vec![json!("89abcdef0123"), json!("b"), json!(0.1), Value::Null, Value::Null, json!("failed")],
            ],
        }
    }

    fn links() -> Vec<String> {
        vec!["../scratch_space/0123abcd4567/".into(), "../scratch_space/89abcdef0123/".into()]
    }

    #[test]
    fn escape_covers_text_and_attribute_metacharacters() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(escape("plain text, é ✓"), "plain text, é ✓");
    }

    #[test]
    fn a_script_in_a_cell_is_shown_as_text() {
        let page =
            index_page("Sweep", &[], &report(), &links(), "../report.csv", &Coverage::default(), &BTreeMap::new());
        assert!(page.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"), "{page}");
        assert!(!page.contains("<script>alert"));
        assert_eq!(page.matches("<script>").count(), 1, "only the page's own script");
    }

    #[test]
    fn every_outside_string_is_escaped() {
        let evil = r#""><img src=x onerror=alert(1)>"#;
        let figures = [FigureEntry {
            name: evil.into(),
            title: evil.into(),
            kind: evil.into(),
            svg: format!("{evil}.svg"),
            png: format!("{evil}.png"),
            pdf: format!("{evil}.pdf"),
        }];
        let report = Table { columns: vec![evil.into(), "id".into()], rows: vec![vec![json!(evil), json!(evil)]] };
        let page =
            index_page(evil, &figures, &report, &[evil.to_string()], evil, &Coverage::default(), &BTreeMap::new());
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(!page.contains("\"><img"), "a value closed an attribute: {page}");
        assert!(page.contains("<title>&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</title>"));
        assert!(page.contains("<h1>&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</h1>"));
    }

    #[test]
    fn links_cannot_carry_a_scheme() {
        assert_eq!(href("javascript:alert(1)"), "javascript%3Aalert(1)");
        assert_eq!(href(" JavaScript:x"), "%20JavaScript%3Ax");
        assert_eq!(href("../scratch_space/0123abcd4567/"), "../scratch_space/0123abcd4567/");
        assert_eq!(href("a b#c?d%e\\f\"g<h"), "a%20b%23c%3Fd%25e%5Cf%22g%3Ch");
        assert_eq!(href("it's & more"), "it&#39;s%20&amp;%20more");
        assert_eq!(href("ü.svg"), "%C3%BC.svg");
        let page = index_page(
            "t",
            &[],
            &report(),
            &["javascript:alert(1)".into()],
            "javascript:alert(2)",
            &Coverage::default(),
            &BTreeMap::new(),
        );
        assert!(!page.to_lowercase().contains("href=\"javascript:"), "{page}");
    }

    #[test]
    fn numbers_show_four_significant_digits_and_keep_full_precision_for_sorting() {
        let n = |v: Value| compact_number(v.as_number().unwrap());
        assert_eq!(n(json!(0.93671)), "0.9367");
        assert_eq!(n(json!(0.01)), "0.01");
        assert_eq!(n(json!(1e-5)), "1e-5");
        assert_eq!(n(json!(0.000123456)), "0.0001235");
        assert_eq!(n(json!(2.5e-7)), "2.5e-7");
        assert_eq!(n(json!(9.99996)), "10");
        assert_eq!(n(json!(12345.678)), "12346");
        assert_eq!(n(json!(100.0)), "100");
        assert_eq!(n(json!(-1.23456)), "-1.235");
        assert_eq!(n(json!(0.0)), "0");
        assert_eq!(n(json!(1024)), "1024");
        assert_eq!(n(json!(-42)), "-42");
        assert_eq!(n(json!(123456789)), "1.235e8");
        assert_eq!(n(json!(1.5e300)), "1.5e300");
        let page = index_page("t", &[], &report(), &links(), "r.csv", &Coverage::default(), &BTreeMap::new());
        assert!(page.contains("<td class=\"num\" data-value=\"0.93671\" title=\"0.93671\">0.9367</td>"), "{page}");
        assert!(page.contains("<td class=\"num\" data-value=\"0.01\">0.01</td>"));
    }

    #[test]
    fn columns_of_numbers_are_numeric_and_empty_cells_are_marked() {
        let page = index_page("t", &[], &report(), &links(), "r.csv", &Coverage::default(), &BTreeMap::new());
        let th = |name: &str, kind: &str| {
            format!(
                "<th scope=\"col\" class=\"{}\" data-type=\"{kind}\" aria-sort=\"none\"><button type=\"button\">{name}<span",
                if kind == "number" { "num" } else { "text" }
            )
        };
        assert!(page.contains(&th("lr", "number")), "{page}");
        assert!(page.contains(&th("accuracy", "number")));
        assert!(page.contains(&th("id", "text")));
        assert!(page.contains(&th("note", "text")));
        assert_eq!(page.matches("<td class=\"empty\"></td>").count(), 2);
    }

    #[test]
    fn each_id_links_to_its_job_folder() {
        let page = index_page("t", &[], &report(), &links(), "../report.csv", &Coverage::default(), &BTreeMap::new());
        assert!(page.contains("<td><a href=\"../scratch_space/0123abcd4567/\">0123abcd4567</a></td>"), "{page}");
        assert!(page.contains("<td><a href=\"../scratch_space/89abcdef0123/\">89abcdef0123</a></td>"));
        assert!(page.contains("href=\"../report.csv\""));
        // Fewer links than rows: the rest are plain text.
        let page = index_page("t", &[], &report(), &links()[..1], "r.csv", &Coverage::default(), &BTreeMap::new());
        assert!(page.contains("<td>89abcdef0123</td>"));
    }

    #[test]
    fn figures_are_shown_as_svg_with_three_downloads() {
        let page = index_page(
            "t",
            &[figure("accuracy", "Accuracy vs lr"), figure("loss", "")],
            &report(),
            &links(),
            "r.csv",
            &Coverage::default(),
            &BTreeMap::new(),
        );
        assert!(page.contains("<img src=\"accuracy.svg\" alt=\"Accuracy vs lr\">"), "{page}");
        assert!(page.contains("<img src=\"loss.svg\" alt=\"loss\">"), "an untitled figure shows its name");
        for file in ["accuracy.png", "accuracy.pdf", "accuracy.svg", "loss.png", "loss.pdf", "loss.svg"] {
            assert!(page.contains(&format!("<a href=\"{file}\" download")), "{file}");
        }
        assert_eq!(page.matches("<figure ").count(), 2);
        assert!(page.contains("<h3>Accuracy vs lr</h3>"));
        assert!(page.contains("<code class=\"figure-name\">accuracy</code>"));
    }

    #[test]
    fn a_figure_without_svg_falls_back_to_png() {
        let mut f = figure("acc", "Acc");
        f.svg.clear();
        f.pdf.clear();
        let page = index_page("t", &[f], &report(), &links(), "r.csv", &Coverage::default(), &BTreeMap::new());
        assert!(page.contains("<img src=\"acc.png\""));
        assert!(!page.contains("acc.pdf"));
    }

    #[test]
    fn the_page_is_one_self_contained_document() {
        let page = index_page(
            "Sweep",
            &[figure("a", "A")],
            &report(),
            &links(),
            "r.csv",
            &Coverage::default(),
            &BTreeMap::new(),
        );
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(page.ends_with("</html>\n"));
        for external in ["http://", "https://", "<link", "@import", "url(", "<script src"] {
            assert!(!page.contains(external), "{external}");
        }
        assert!(page.contains("<input type=\"search\" id=\"job-filter\""));
        assert!(page.contains("<span id=\"job-count\" aria-live=\"polite\">2 of 2 jobs</span>"));
        assert_eq!(page.matches("<tr>").count(), 3, "a header row and one per job");
        assert!(page.contains("<span class=\"status status-failed\">failed</span>"));
        assert!(page.contains("<span class=\"status status-done\">1 done</span>"));
    }

    #[test]
    fn a_long_report_shows_its_first_rows_and_links_the_whole_report() {
        let row = report().rows.remove(0);
        let long = Table { columns: report().columns, rows: vec![row; TABLE_ROWS_MAX + 1] };
        let page = index_page("t", &[], &long, &links(), "../report.csv", &Coverage::default(), &BTreeMap::new());
        assert_eq!(page.matches("<tr>").count(), TABLE_ROWS_MAX + 1, "a header row and the first rows");
        assert!(page.contains(&format!(
            "The table shows the first {TABLE_ROWS_MAX} of {} jobs, and filters and sorts those; \
             <a href=\"../report.csv\">the report (CSV)</a> has every job.",
            TABLE_ROWS_MAX + 1
        )));
        let short = index_page("t", &[], &report(), &links(), "../report.csv", &Coverage::default(), &BTreeMap::new());
        assert!(!short.contains("table-cut\""));
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes() {
        let a =
            index_page("t", &[figure("a", "A")], &report(), &links(), "r.csv", &Coverage::default(), &BTreeMap::new());
        let b =
            index_page("t", &[figure("a", "A")], &report(), &links(), "r.csv", &Coverage::default(), &BTreeMap::new());
        assert_eq!(a, b);
    }

    #[test]
    fn an_empty_report_says_so() {
        let page = index_page("t", &[], &Table::default(), &[], "r.csv", &Coverage::default(), &BTreeMap::new());
        assert!(page.contains("0 of 0 jobs"));
        assert!(page.contains("<p id=\"no-match\" class=\"no-match\">No jobs in the report.</p>"));
        assert!(!page.contains("<section id=\"figures\""));
    }

    #[test]
    fn short_rows_are_padded_and_long_rows_cut() {
        let report = Table {
            columns: vec!["a".into(), "b".into()],
            rows: vec![vec![json!(1)], vec![json!(1), json!(2), json!(3)]],
        };
        let page = index_page("t", &[], &report, &[], "r.csv", &Coverage::default(), &BTreeMap::new());
        assert_eq!(page.matches("<td").count(), 4);
    }

    #[test]
    fn class_tokens_are_safe() {
        assert_eq!(class_token("timed_out"), "timed_out");
        assert_eq!(class_token("a\" onclick=\"x"), "a--onclick--x");
    }
}
