//! `jobman man`: the manual page in roff, generated from the command line's own definition.
//! To stdout by default; `--dir` writes `jobman.1` and one `jobman-COMMAND.1` per command, the
//! form packagers install under `share/man/man1/`.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::util::console;

pub fn man(command: clap::Command, dir: Option<&Path>) -> anyhow::Result<i32> {
    // The pages document the commands themselves; `jobman help` would only be a page about pages.
    let command = command.disable_help_subcommand(true);
    match dir {
        None => {
            let page = render(&page_of(command))?;
            std::io::stdout()
                .write_all(page.as_bytes())
                .map_err(|e| anyhow::anyhow!("cannot write the man page: {e}"))?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let mut command = command;
            command.build();
            write_pages(&command, dir)?;
        }
    }
    Ok(0)
}

/// The page of `command` and of each visible command below it.
fn write_pages(command: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    let page = page_of(command.clone());
    let path = dir.join(page.get_filename());
    std::fs::write(&path, render(&page)?).with_context(|| format!("cannot write {}", path.display()))?;
    console::status("Wrote", &path.display().to_string());
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_pages(sub, dir)?;
    }
    Ok(())
}

/// A page titled in capitals, as man pages are (`JOBMAN-BUILD(1)`), its footer naming jobman's
/// version on every page (a command's own version is empty).
fn page_of(command: clap::Command) -> clap_mangen::Man {
    let title = command.get_display_name().unwrap_or(command.get_name()).to_uppercase();
    clap_mangen::Man::new(command).title(title).source(format!("jobman {}", env!("CARGO_PKG_VERSION")))
}

/// The page's roff text, ASCII only: every other character as a `\[uXXXX]` escape, which groff
/// and mandoc read without being told the input encoding (clap_mangen writes UTF-8 as is).
fn render(page: &clap_mangen::Man) -> anyhow::Result<String> {
    let mut roff = Vec::new();
    page.render(&mut roff)?;
    Ok(String::from_utf8_lossy(&roff)
        .chars()
        .map(|c| if c.is_ascii() { c.to_string() } else { format!("\\[u{:04X}]", u32::from(c)) })
        .collect())
}
