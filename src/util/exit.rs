//! Every exit code jobman ends with, as ripgrep and just use them.

/// Everything asked for is done.
pub const OK: i32 = 0;
/// A job failed: recorded, the others went on. Not an error of jobman.
pub const JOB_FAILED: i32 = 1;
/// A mistake in the user's input, or jobman unable to proceed.
pub const ERROR: i32 = 2;
/// Ctrl-C or SIGTERM.
pub const INTERRUPTED: i32 = 130;

/// Prints an error that ends a command: a Jobfile's diagnostics as they are, anything else as
/// `error: …`.
pub fn print_error(error: &anyhow::Error) {
    match error.downcast_ref::<super::diagnostic::Diagnostics>() {
        Some(diagnostics) => eprintln!("{diagnostics}"),
        None => eprintln!(
            "{}",
            super::console::line(super::console::Tone::Bad, "error:", &format!("{error:#}")).trim_start()
        ),
    }
}
