//! The index page in a real browser: headless Chromium driven through chromedriver's WebDriver
//! HTTP API. Skipped (with a message) when Chromium or chromedriver is missing, unless `CI` is set:
//! `scripts/install-test-deps.sh` installs both.

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs};

use serde_json::{Value, json};

use super::{FigureEntry, escape, index_page};
use crate::products::Coverage;
use crate::products::table::Table;

const CHROMIUM: &str = "/usr/bin/chromium";
const SCREENSHOT: &str = "/tmp/index-screenshot.png";
const SCREENSHOT_NARROW: &str = "/tmp/index-screenshot-narrow.png";
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

#[test]
fn the_index_page_sorts_filters_and_shows_figures_in_a_real_browser() {
    let Some(chromedriver) = browser_tools() else { return };
    let dir = tempfile::Builder::new().prefix("jobman-html-").tempdir().expect("a temp dir");
    let page = write_site(dir.path());
    let profile = dir.path().join("chromium-profile");

    let browser = Browser::start(&chromedriver, &profile);
    let url = format!("file://{}", page.display());
    browser.command("POST", "/url", json!({ "url": url }));

    // No dialog opened: the `<script>` in a cell is text. An open alert would also make the
    // commands below fail with "unexpected alert open".
    match browser.try_command("GET", "/alert/text", Value::Null) {
        Err(error) if error.starts_with("no such alert") => {}
        other => panic!("a dialog opened, so a value ran as script: {other:?}"),
    }
    let script_cell: Value = browser.script(
        "const cell = [...document.querySelectorAll('#job-table td')].find(td => td.textContent.includes('alert'));
         return { text: cell.textContent, html: cell.innerHTML, scripts: document.scripts.length };",
    );
    assert_eq!(script_cell["text"], "<script>alert(1)</script>", "{script_cell}");
    assert_eq!(script_cell["scripts"], 1, "only the page's own script element: {script_cell}");

    // Every figure loaded and has a size.
    let images = browser.script(
        "return [...document.querySelectorAll('figure img')]
           .map(img => ({ src: img.getAttribute('src'), complete: img.complete, width: img.naturalWidth }));",
    );
    let images = images.as_array().expect("a list of images");
    assert_eq!(images.len(), 3, "{images:?}");
    for image in images {
        assert!(image["complete"] == true && image["width"].as_u64() > Some(0), "figure did not load: {image}");
    }
    let headings = browser.script("return [...document.querySelectorAll('figure h3')].map(h => h.textContent);");
    assert_eq!(headings, json!(["Accuracy <b>vs</b> learning rate", "Loss per epoch", "Time per job"]));

    // Each id links to its job folder.
    let first_link = browser.script("return document.querySelector('#job-table tbody a').href;");
    let expected = format!("file://{}/scratch_space/{}/", dir.path().display(), JOBS[0].0);
    assert_eq!(first_link, json!(expected));

    // Sorting a numeric column: numerically, ascending then descending, empty cells last.
    let loss = column_index(&browser, "loss");
    let column = |browser: &Browser| {
        browser.script_with(
            "return [...document.querySelectorAll('#job-table tbody tr')]
               .map(tr => tr.cells[arguments[0]].getAttribute('data-value'));",
            json!([loss]),
        )
    };
    let header = browser.find(&format!("#job-table th:nth-child({}) button", loss + 1));
    browser.click(&header);
    assert_eq!(column(&browser), json!(["0.001", "0.75", "2.5", "10.25", "100.0", null]));
    assert_eq!(sort_state(&browser, loss), json!(["ascending", "\"▲\""]));
    browser.click(&header);
    assert_eq!(column(&browser), json!(["100.0", "10.25", "2.5", "0.75", "0.001", null]));
    assert_eq!(sort_state(&browser, loss), json!(["descending", "\"▼\""]));

    // Filtering: case-insensitive substring over the cells, with a count.
    let visible = |browser: &Browser| {
        browser.script(
            "return { rows: [...document.querySelectorAll('#job-table tbody tr')].filter(tr => tr.offsetParent !== null).length,
                      count: document.getElementById('job-count').textContent,
                      none: !document.getElementById('no-match').hidden };",
        )
    };
    assert_eq!(visible(&browser), json!({ "rows": 6, "count": "6 of 6 jobs", "none": false }));
    let filter = browser.find("#job-filter");
    browser.type_into(&filter, "FAIL");
    assert_eq!(visible(&browser), json!({ "rows": 2, "count": "2 of 6 jobs", "none": false }));
    browser.type_into(&filter, "ed-nothing");
    assert_eq!(visible(&browser), json!({ "rows": 0, "count": "0 of 6 jobs", "none": true }));
    browser.command("POST", &format!("/element/{filter}/clear"), json!({}));
    browser.type_into(&filter, "lr0.01");
    assert_eq!(visible(&browser), json!({ "rows": 2, "count": "2 of 6 jobs", "none": false }));
    browser.type_into(&filter, "\u{E003}\u{E003}\u{E003}\u{E003}\u{E003}\u{E003}"); // backspaces
    assert_eq!(visible(&browser), json!({ "rows": 6, "count": "6 of 6 jobs", "none": false }));

    // Screenshots of the whole page, wide and narrow, to look at.
    browser.screenshot(1280, SCREENSHOT);
    browser.screenshot(420, SCREENSHOT_NARROW);

    // Nothing went wrong in the page (script errors, missing files).
    let log = browser.command("POST", "/se/log", json!({ "type": "browser" }));
    let severe: Vec<&Value> = log.as_array().into_iter().flatten().filter(|entry| entry["level"] == "SEVERE").collect();
    assert!(severe.is_empty(), "the browser console has errors: {severe:#?}");
}

/// chromedriver's path when both it and Chromium are installed. Otherwise `None` after saying how
/// to install them, or a failure when `CI` is set: CI must run this test.
fn browser_tools() -> Option<PathBuf> {
    let chromedriver = find_on_path("chromedriver");
    if Path::new(CHROMIUM).is_file() && chromedriver.is_some() {
        return chromedriver;
    }
    let message = format!(
        "the browser test of the index page needs {CHROMIUM} and chromedriver (Debian's chromium and \
         chromium-driver); run scripts/install-test-deps.sh to install them"
    );
    crate::util::skip::skip(&message);
    None
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?).map(|dir| dir.join(program)).find(|path| path.is_file())
}

/// The six jobs of the test report: id, lr, loss (None: failed before any result), status.
const JOBS: [(&str, f64, Option<f64>, &str); 6] = [
    ("0a1b2c3d4e5f", 0.1, Some(2.5), "done"),
    ("1b2c3d4e5f60", 0.01, Some(10.25), "done"),
    ("2c3d4e5f6071", 0.001, Some(0.75), "done"),
    ("3d4e5f607182", 0.1, Some(100.0), "failed"),
    ("4e5f60718293", 0.01, None, "failed"),
    ("5f60718293a4", 0.001, Some(0.001), "done"),
];

/// A project folder as jobman lays it out: `figures/index.html` beside three SVG figures, job
/// folders under `scratch_space/`, and `report.csv`. Returns the page's path.
fn write_site(root: &Path) -> PathBuf {
    let figures_dir = root.join("figures");
    fs::create_dir_all(&figures_dir).expect("figures folder");
    let figures = [
        ("accuracy", "Accuracy <b>vs</b> learning rate", "scatter"),
        ("loss", "Loss per epoch", "line"),
        ("duration", "Time per job", "bar"),
    ];
    let mut entries = Vec::new();
    for (i, (name, title, kind)) in figures.into_iter().enumerate() {
        fs::write(figures_dir.join(format!("{name}.svg")), plot_svg(title, kind, i)).expect("write svg");
        for ext in ["png", "pdf"] {
            fs::write(figures_dir.join(format!("{name}.{ext}")), b"placeholder").expect("write figure file");
        }
        entries.push(FigureEntry {
            name: name.to_string(),
            title: title.to_string(),
            kind: kind.to_string(),
            svg: format!("{name}.svg"),
            png: format!("{name}.png"),
            pdf: format!("{name}.pdf"),
        });
    }
    let columns = ["id", "name", "lr", "hidden", "note", "loss", "accuracy", "status", "duration"];
    let mut rows = Vec::new();
    let mut links = Vec::new();
    for (i, (id, lr, loss, status)) in JOBS.into_iter().enumerate() {
        fs::create_dir_all(root.join("scratch_space").join(id)).expect("job folder");
        let hidden = [64, 128, 1024][i % 3];
        let note = if i == 1 { "<script>alert(1)</script>" } else { ["baseline", "", "wide", "", "retry"][i % 5] };
        let accuracy = loss.map(|l| 1.0 / (1.0 + l / 3.0) + i as f64 * 0.0123);
        rows.push(vec![
            json!(id),
            json!(format!("h{hidden}-lr{lr}")),
            json!(lr),
            json!(hidden),
            json!(note),
            loss.map_or(Value::Null, |l| json!(l)),
            accuracy.map_or(Value::Null, |a| json!(a)),
            json!(status),
            json!(12.5 + i as f64 * 31.4159),
        ]);
        links.push(format!("../scratch_space/{id}/"));
    }
    let report = Table { columns: columns.map(String::from).to_vec(), rows };
    fs::write(root.join("report.csv"), "id\n").expect("write report");
    let html = index_page(
        "mnist sweep <lr × hidden>",
        &entries,
        &report,
        &links,
        "../report.csv",
        &Coverage::default(),
        &Default::default(),
    );
    let page = figures_dir.join("index.html");
    fs::write(&page, html).expect("write the page");
    page
}

/// A small chart, as plotters would draw one: axes, a grid, a title and some data.
fn plot_svg(title: &str, kind: &str, seed: usize) -> String {
    let (w, h, left, top, right, bottom) = (640.0, 400.0, 60.0, 40.0, 620.0, 350.0);
    let color = ["#1f77b4", "#ff7f0e", "#2ca02c"][seed % 3];
    let mut marks = String::new();
    let points: Vec<(f64, f64)> = (0..8)
        .map(|i| {
            let x = left + (right - left) * (i as f64 + 0.5) / 8.0;
            let y = bottom - (bottom - top) * (0.15 + 0.7 * (((i * 7 + seed * 3) % 10) as f64 / 10.0));
            (x, y)
        })
        .collect();
    match kind {
        "bar" => {
            for (x, y) in &points {
                marks +=
                    &format!(r#"<rect x="{}" y="{y}" width="40" height="{}" fill="{color}"/>"#, x - 20.0, bottom - y);
            }
        }
        "line" => {
            let path: Vec<String> = points.iter().map(|(x, y)| format!("{x},{y}")).collect();
            marks +=
                &format!(r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2.5"/>"#, path.join(" "));
        }
        _ => {
            for (x, y) in &points {
                marks += &format!(r#"<circle cx="{x}" cy="{y}" r="6" fill="{color}"/>"#);
            }
        }
    }
    let mut grid = String::new();
    for i in 0..=5 {
        let y = bottom - (bottom - top) * i as f64 / 5.0;
        grid += &format!(r##"<line x1="{left}" y1="{y}" x2="{right}" y2="{y}" stroke="#e5e5e5"/>"##);
        grid += &format!(
            r#"<text x="{}" y="{}" text-anchor="end" font-size="12">{:.1}</text>"#,
            left - 8.0,
            y + 4.0,
            i as f64 / 5.0
        );
    }
    for (i, (x, _)) in points.iter().enumerate() {
        grid += &format!(r#"<text x="{x}" y="{}" text-anchor="middle" font-size="12">{}</text>"#, bottom + 18.0, i + 1);
    }
    grid +=
        &format!(r#"<text x="{}" y="{}" text-anchor="middle" font-size="13">{kind} x</text>"#, w / 2.0, bottom + 40.0);
    let title = escape(title);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif">
<rect width="{w}" height="{h}" fill="white"/>{grid}
<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="black"/>
{marks}<text x="{}" y="24" text-anchor="middle" font-size="16">{title}</text></svg>
"##,
        w / 2.0
    )
}

fn column_index(browser: &Browser, name: &str) -> usize {
    let names = browser.script("return [...document.querySelectorAll('#job-table th')].map(th => th.textContent);");
    let names = names.as_array().expect("column names");
    names.iter().position(|n| n == name).unwrap_or_else(|| panic!("no column {name} in {names:?}"))
}

/// The column's `aria-sort` and the arrow that its header shows.
fn sort_state(browser: &Browser, column: usize) -> Value {
    browser.script_with(
        "const th = document.querySelectorAll('#job-table th')[arguments[0]];
         return [th.getAttribute('aria-sort'), getComputedStyle(th.querySelector('.arrow'), '::after').content];",
        json!([column]),
    )
}

/// A chromedriver process with one headless Chromium session. Dropping it ends the session and
/// kills chromedriver's process group, whether the test passed or panicked.
struct Browser {
    chromedriver: Child,
    agent: ureq::Agent,
    base: String,
    session: String,
}

impl Browser {
    fn start(chromedriver: &Path, profile: &Path) -> Browser {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        let mut browser =
            Browser { chromedriver: child, agent, base: format!("http://127.0.0.1:{port}"), session: String::new() };

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = browser
                .agent
                .get(format!("{}/status", browser.base))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok().map(|v| v["value"]["ready"] == true));
            if ready == Some(true) {
                break;
            }
            if let Ok(Some(status)) = browser.chromedriver.try_wait() {
                panic!("chromedriver exited with {status} before it was ready");
            }
            assert!(Instant::now() < deadline, "chromedriver not ready on port {port} within 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }

        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--window-size=1280,900", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let created = browser.send("POST", &format!("{}/session", browser.base), capabilities).expect("a session");
        browser.session = created["sessionId"].as_str().expect("a session id").to_string();
        browser
    }

    /// A command of the session (`path` is after `/session/{id}`); fails the test on an error.
    #[track_caller]
    fn command(&self, method: &str, path: &str, body: Value) -> Value {
        self.try_command(method, path, body).unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    /// The value, or the WebDriver error as "error: message".
    fn try_command(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        self.send(method, &format!("{}/session/{}{path}", self.base, self.session), body)
    }

    fn send(&self, method: &str, url: &str, body: Value) -> Result<Value, String> {
        let response = match method {
            "GET" => self.agent.get(url).call(),
            "DELETE" => self.agent.delete(url).call(),
            _ => self.agent.post(url).send_json(body),
        };
        let mut response = response.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status();
        let json: Value = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_json()
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let value = json["value"].clone();
        match value["error"].as_str() {
            Some(error) if !status.is_success() => Err(format!("{error}: {}", value["message"].as_str().unwrap_or(""))),
            _ => Ok(value),
        }
    }

    #[track_caller]
    fn script(&self, script: &str) -> Value {
        self.script_with(script, json!([]))
    }

    #[track_caller]
    fn script_with(&self, script: &str, args: Value) -> Value {
        self.command("POST", "/execute/sync", json!({ "script": script, "args": args }))
    }

    /// The whole page at this width, top to bottom (at most 4000 pixels), as a PNG file.
    #[track_caller]
    fn screenshot(&self, width: u32, path: &str) {
        self.script("document.activeElement.blur(); window.scrollTo(0, 0);");
        // The window's height includes the browser's frame, and the table's box grows with the
        // window (up to 80% of its height): resize until the page fits.
        let mut height = json!(900);
        for _ in 0..4 {
            self.command("POST", "/window/rect", json!({ "width": width, "height": height }));
            let needed = self.script(
                "const e = document.documentElement;
                 return Math.min(4000, e.scrollHeight + window.outerHeight - window.innerHeight);",
            );
            if needed == height {
                break;
            }
            height = needed;
        }
        let png = base64_decode(self.command("GET", "/screenshot", Value::Null).as_str().expect("base64 PNG"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        fs::write(path, &png).unwrap_or_else(|e| panic!("write {path}: {e}"));
    }

    #[track_caller]
    fn find(&self, css: &str) -> String {
        let element = self.command("POST", "/element", json!({ "using": "css selector", "value": css }));
        element[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {element}")).to_string()
    }

    #[track_caller]
    fn click(&self, element: &str) {
        self.command("POST", &format!("/element/{element}/click"), json!({}));
    }

    #[track_caller]
    fn type_into(&self, element: &str, text: &str) {
        self.command("POST", &format!("/element/{element}/value"), json!({ "text": text }));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.send("DELETE", &format!("{}/session/{}", self.base, self.session), Value::Null);
        }
        // chromedriver leads its own process group, which holds any browser it left behind.
        if let Ok(pid) = i32::try_from(self.chromedriver.id()) {
            // SAFETY: kill(2) has no memory effects; the group is the one this test started.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let sextet = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {:?}", c as char),
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        bits = bits << 6 | u32::from(sextet(c));
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}
