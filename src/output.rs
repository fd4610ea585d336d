//! What jobman prints: cargo-style status lines on stderr (verb right-aligned, coloured on a
//! terminal unless NO_COLOR is set), a progress bar on a terminal, plain lines when piped.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
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
