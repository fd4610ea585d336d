//! What jobman prints: cargo-style status lines on stderr (verb right-aligned, coloured on a
//! terminal unless NO_COLOR is set), a progress bar on a terminal, plain lines when piped.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

pub fn color_enabled_stderr() -> bool {
    static COLOR: OnceLock<bool> = OnceLock::new();
    *COLOR.get_or_init(|| std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal())
}

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

#[derive(Clone, Copy)]
pub enum Tone {
    Good,
    Bad,
    Note,
}

/// `    Finished 24 jobs …`: a verb right-aligned in 12 columns, then the message.
pub fn line(tone: Tone, verb: &str, message: &str) -> String {
    if color_enabled_stderr() {
        let code = match tone {
            Tone::Good => "1;32",
            Tone::Bad => "1;31",
            Tone::Note => "1;36",
        };
        format!("\x1b[{code}m{verb:>12}\x1b[0m {message}")
    } else {
        format!("{verb:>12} {message}")
    }
}

pub fn status(verb: &str, message: &str) {
    if !QUIET.load(Ordering::Relaxed) {
        eprintln!("{}", line(Tone::Good, verb, message));
    }
}

pub fn failure(verb: &str, message: &str) {
    eprintln!("{}", line(Tone::Bad, verb, message));
}

/// A remark beside the output (on stderr, so that it never mixes into what a script reads).
pub fn note(verb: &str, message: &str) {
    if !QUIET.load(Ordering::Relaxed) {
        eprintln!("{}", line(Tone::Note, verb, message));
    }
}

/// Runs `write` on a buffered stdout. A reader that stops early (`jobman ls | head`) ends the
/// output quietly instead of as an error.
pub fn to_stdout(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> anyhow::Result<()> {
    use std::io::Write as _;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.map_err(|e| anyhow::anyhow!("cannot write to stdout: {e}")),
    }
}

/// Progress of a build: a bar on a terminal, nothing extra when piped (the per-job lines are the
/// progress there).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        let bar = (stderr_is_terminal() && !QUIET.load(Ordering::Relaxed) && total > 0).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{prefix:>12.cyan.bold} [{bar:30}] {pos}/{len} {wide_msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix("Building");
            bar
        });
        Progress { bar }
    }

    /// Prints a finished job's line above the bar and advances it.
    pub fn finished(&self, text: String, show: bool) {
        match &self.bar {
            Some(bar) => {
                if show {
                    bar.println(text);
                }
                bar.inc(1);
            }
            None if show && !QUIET.load(Ordering::Relaxed) => eprintln!("{text}"),
            None => {}
        }
    }

    /// Prints a line above the bar without advancing it (a job that is tried again).
    pub fn note(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None if !QUIET.load(Ordering::Relaxed) => eprintln!("{text}"),
            None => {}
        }
    }

    pub fn message(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_string());
        }
    }

    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `1.2s`, `3m05s`: durations as a person reads them.
pub fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else if seconds < 3600.0 {
        format!("{}m{:02}s", (seconds / 60.0) as u64, (seconds % 60.0) as u64)
    } else {
        format!("{}h{:02}m", (seconds / 3600.0) as u64, ((seconds % 3600.0) / 60.0) as u64)
    }
}

/// `path` as shown to a user: relative to the project folder when it is inside it.
pub fn relative(path: &std::path::Path, root: &std::path::Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

/// Writes `value` as JSON for people and scripts alike: the two outer levels indented, anything
/// deeper on one line. A listing then has one job per line: quick to write at 100,000 jobs,
/// and easy to `grep`.
pub fn write_json(out: &mut dyn std::io::Write, value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(&mut *out, OuterLevelsFormatter::default());
    value.serialize(&mut serializer).map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}

/// What [`write_json`] writes for `head` (an object with at least one field) with one more
/// field, `name`, holding a list of `entry(item)` for each item, one per line. The entries are
/// made and serialized on all cores: at 100,000 jobs, a listing written on one core took a third
/// of `jobman ls --format json`.
pub fn write_json_with_list<I: Send, T: serde::Serialize>(
    out: &mut dyn std::io::Write,
    head: &impl serde::Serialize,
    name: &str,
    items: Vec<I>,
    entry: impl Fn(I) -> T + Sync,
) -> std::io::Result<()> {
    let mut text = Vec::new();
    write_json(&mut text, head)?;
    let Some(open) = text.strip_suffix(b"\n}\n") else {
        return Err(std::io::Error::other("the head of a JSON listing must be an object with fields"));
    };
    out.write_all(open)?;
    write!(out, ",\n  {}: [", serde_json::Value::from(name))?;
    // Chunks of items, each serialized into one buffer as `,\n    {entry}` per item.
    let mut chunks: Vec<Vec<I>> = Vec::new();
    for item in items {
        match chunks.last_mut() {
            Some(chunk) if chunk.len() < 256 => chunk.push(item),
            _ => chunks.push(vec![item]),
        }
    }
    let count = chunks.len();
    let texts = crate::util::parallel::parallel_map(chunks, |chunk| {
        let mut text = Vec::with_capacity(chunk.len() * 192);
        for item in chunk {
            text.extend_from_slice(b",\n    ");
            // Starting below the pretty levels: the entry on one line.
            let formatter = OuterLevelsFormatter { depth: PRETTY_LEVELS, has_value: false };
            entry(item).serialize(&mut serde_json::Serializer::with_formatter(&mut text, formatter))?;
        }
        Ok::<_, serde_json::Error>(text)
    });
    for (i, text) in texts.into_iter().enumerate() {
        let text = text?;
        // The first entry has no comma before it.
        out.write_all(if i == 0 { &text[1..] } else { &text })?;
    }
    out.write_all(if count == 0 { b"]\n}\n" } else { b"\n  ]\n}\n" })
}

/// serde_json's pretty formatter down to [`PRETTY_LEVELS`], compact with spaces below.
#[derive(Default)]
struct OuterLevelsFormatter {
    /// How many arrays and objects are open.
    depth: usize,
    has_value: bool,
}

const PRETTY_LEVELS: usize = 2;

impl OuterLevelsFormatter {
    fn open<W: ?Sized + std::io::Write>(&mut self, out: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        out.write_all(bracket)
    }

    fn close<W: ?Sized + std::io::Write>(&mut self, out: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        if self.depth <= PRETTY_LEVELS && self.has_value {
            self.newline(out, self.depth - 1)?;
        }
        self.depth -= 1;
        out.write_all(bracket)
    }

    fn item<W: ?Sized + std::io::Write>(&mut self, out: &mut W, first: bool) -> std::io::Result<()> {
        if self.depth <= PRETTY_LEVELS {
            if !first {
                out.write_all(b",")?;
            }
            self.newline(out, self.depth)
        } else if first {
            Ok(())
        } else {
            out.write_all(b", ")
        }
    }

    fn newline<W: ?Sized + std::io::Write>(&self, out: &mut W, depth: usize) -> std::io::Result<()> {
        out.write_all(b"\n")?;
        (0..depth).try_for_each(|_| out.write_all(b"  "))
    }
}

impl serde_json::ser::Formatter for OuterLevelsFormatter {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.open(out, b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.close(out, b"]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, out: &mut W, first: bool) -> std::io::Result<()> {
        self.item(out, first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _out: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.open(out, b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.close(out, b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, out: &mut W, first: bool) -> std::io::Result<()> {
        self.item(out, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        out.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _out: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// `512 B`, `1.5 KiB`, `12.0 MiB`: sizes as a person reads them.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `40s`, `12m`, `5h`, `3d`: how long ago, to the largest whole unit.
pub fn age(elapsed: std::time::Duration) -> String {
    let seconds = elapsed.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86400),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_is_indented_two_levels_deep_and_on_one_line_below() {
        let value =
            serde_json::json!({"format": 1, "jobs": [{"id": "a", "params": {"x": [1, 2]}}, {"id": "b"}], "none": []});
        let mut out = Vec::new();
        super::write_json(&mut out, &value).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n  \"format\": 1,\n  \"jobs\": [\n    {\"id\": \"a\", \"params\": {\"x\": [1, 2]}},\n    {\"id\": \"b\"}\n  ],\n  \"none\": []\n}\n"
        );
    }

    #[test]
    fn a_listing_written_on_all_cores_is_what_write_json_writes() {
        let items: Vec<serde_json::Value> = (0..1000).map(|i| serde_json::json!({"id": i, "p": {"x": [i]}})).collect();
        for items in [items.clone(), Vec::new()] {
            let mut whole = Vec::new();
            // json! sorts the fields: the list comes last, as it does in a listing.
            super::write_json(&mut whole, &serde_json::json!({"count": 2, "format": 1, "jobs": items})).unwrap();
            let mut listed = Vec::new();
            let head = serde_json::json!({"count": 2, "format": 1});
            super::write_json_with_list(&mut listed, &head, "jobs", items.iter().collect(), |item| item).unwrap();
            assert_eq!(String::from_utf8(listed).unwrap(), String::from_utf8(whole).unwrap());
        }
    }

    #[test]
    fn sizes_and_ages_read_like_a_person_writes_them() {
        use super::{age, size};
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(age(std::time::Duration::from_secs(59)), "59s");
        assert_eq!(age(std::time::Duration::from_secs(3 * 86400 + 5)), "3d");
    }
}
