//! `jobman completions SHELL`: a completion script for the shell, generated from the command
//! line's own definition so that it never lags behind it.

use std::io::Write as _;

pub use clap_complete::Shell;

/// Prints the completion script of `command` for `shell`.
pub fn completions(command: &clap::Command, shell: Shell) -> anyhow::Result<i32> {
    // Generated whole first: the generator panics on a write error, such as a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut without_hidden_commands(command), env!("CARGO_PKG_NAME"), &mut script);
    std::io::stdout().write_all(&script).map_err(|e| anyhow::anyhow!("cannot write the completion script: {e}"))?;
    Ok(0)
}

/// The command line minus its hidden commands: clap_complete offers every command, and an
/// internal one (`__watchdog`) has no place beside `build` at a user's Tab. clap cannot remove a
/// command, so the root is assembled again from the original's options and visible commands.
fn without_hidden_commands(command: &clap::Command) -> clap::Command {
    clap::Command::new(env!("CARGO_PKG_NAME"))
        .version(env!("CARGO_PKG_VERSION"))
        .args(command.get_arguments().cloned())
        .subcommands(command.get_subcommands().filter(|sub| !sub.is_hide_set()).cloned())
}
