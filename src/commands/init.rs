//! `jobman init`: a small project that builds as it is — a Jobfile, a job template, a
//! `.gitignore` and a README section — written into a folder without overwriting the user's files.
//!
//! The files are in `src/init/`, embedded into the binary.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::util::console;

pub struct InitOptions {
    /// The project folder; created when missing.
    pub dir: PathBuf,
    /// Replace jobman's own files (the Jobfile and the template) when they exist.
    pub force: bool,
}

/// One file of the scaffold: where it goes in the project and what it holds.
struct ScaffoldFile {
    path: &'static str,
    text: &'static str,
    when_present: WhenPresent,
}

/// What `init` does with a file of that name already in the project.
enum WhenPresent {
    /// The file is the sweep itself: an existing one is a conflict, replaced only with `--force`.
    Conflict,
    /// The file is shared with the rest of the project: the scaffold's text is appended to it,
    /// unless `covered` finds it already says what the scaffold would add.
    Append { covered: fn(existing: &str, addition: &str) -> bool },
}

const FILES: &[ScaffoldFile] = &[
    ScaffoldFile { path: "Jobfile.toml", text: include_str!("init/Jobfile.toml"), when_present: WhenPresent::Conflict },
    ScaffoldFile {
        path: "templates/train.py.j2",
        text: include_str!("init/train.py.j2"),
        when_present: WhenPresent::Conflict,
    },
    ScaffoldFile {
        path: ".gitignore",
        text: include_str!("init/gitignore"),
        when_present: WhenPresent::Append { covered: ignores_every_pattern },
    },
    ScaffoldFile {
        path: "README.md",
        text: include_str!("init/README.md"),
        when_present: WhenPresent::Append { covered: has_first_line },
    },
];

/// A `.gitignore` already holding every pattern line of the addition (comments aside).
fn ignores_every_pattern(existing: &str, addition: &str) -> bool {
    let patterns = |text: &str| -> Vec<String> {
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect()
    };
    let existing = patterns(existing);
    patterns(addition).iter().all(|pattern| existing.contains(pattern))
}

/// A README already holding the section's heading.
fn has_first_line(existing: &str, addition: &str) -> bool {
    addition.lines().next().is_some_and(|heading| existing.lines().any(|line| line.trim_end() == heading))
}

/// What became of one file, for the summary.
enum FileAction {
    Created,
    Replaced,
    Appended,
    Kept,
}

pub fn init(options: &InitOptions) -> anyhow::Result<i32> {
    let dir = &options.dir;
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!(
            "{} is a file, not a folder\n  help: name a new or existing folder: jobman init DIR",
            dir.display()
        );
    }
    let conflicts: Vec<&str> = FILES
        .iter()
        .filter(|file| matches!(file.when_present, WhenPresent::Conflict))
        .filter(|file| fs::symlink_metadata(dir.join(file.path)).is_ok())
        .map(|file| file.path)
        .collect();
    if !conflicts.is_empty() && !options.force {
        let place = if is_current(dir) { "this folder".to_string() } else { dir.display().to_string() };
        anyhow::bail!(
            "{place} already has {}; jobman init overwrites nothing\n  help: `{}` replaces {} with the \
             scaffold's (.gitignore and README.md are only ever appended to)",
            conflicts.join(" and "),
            if is_current(dir) {
                "jobman init --force".to_string()
            } else {
                shell_words(&["jobman", "init", &dir.display().to_string(), "--force"])
            },
            if conflicts.len() == 1 { "it" } else { "them" },
        );
    }

    for file in FILES {
        let path = dir.join(file.path);
        let outcome = place(&path, file).with_context(|| format!("cannot write {}", path.display()))?;
        let shown = if is_current(dir) { PathBuf::from(file.path) } else { path };
        let shown = shown.display();
        match outcome {
            FileAction::Created => console::status("Created", &shown.to_string()),
            FileAction::Replaced => console::status("Replaced", &shown.to_string()),
            FileAction::Appended => console::status("Appended", &format!("to {shown}")),
            FileAction::Kept => console::status("Kept", &format!("{shown} (it already has what jobman adds)")),
        }
    }
    let next = if is_current(dir) {
        "jobman build".to_string()
    } else {
        format!("cd {} && jobman build", shell_words(&[&dir.display().to_string()]))
    };
    console::status("Next", &format!("{next}   (runs the sweep, then writes report.csv and figures/)"));
    Ok(0)
}

/// Writes one scaffold file; an existing file is a conflict only `--force` got past.
fn place(path: &Path, file: &ScaffoldFile) -> std::io::Result<FileAction> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let existing = match fs::read(path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    match (existing, &file.when_present) {
        (None, _) => {
            // `create_new`: a file that appeared since the check above is not clobbered.
            fs::OpenOptions::new().write(true).create_new(true).open(path)?.write_all(file.text.as_bytes())?;
            Ok(FileAction::Created)
        }
        (Some(_), WhenPresent::Conflict) => {
            fs::write(path, file.text)?;
            Ok(FileAction::Replaced)
        }
        (Some(existing), WhenPresent::Append { covered }) => {
            if covered(&existing, file.text) {
                return Ok(FileAction::Kept);
            }
            let separator = match existing.as_str() {
                "" => "",
                text if text.ends_with('\n') => "\n",
                _ => "\n\n",
            };
            fs::OpenOptions::new()
                .append(true)
                .open(path)?
                .write_all(format!("{separator}{}", file.text).as_bytes())?;
            Ok(FileAction::Appended)
        }
    }
}

fn is_current(dir: &Path) -> bool {
    dir.components().all(|part| part == std::path::Component::CurDir)
}

/// Words joined for a shell, each quoted only when it needs it.
fn shell_words(words: &[&str]) -> String {
    let quote = |word: &&str| {
        let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,".contains(c));
        if plain { word.to_string() } else { format!("'{}'", word.replace('\'', r"'\''")) }
    };
    words.iter().map(quote).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gitignore_lacking_one_pattern_is_not_covered() {
        let addition = "# state\nscratch_space/\n.jobman/\n# report.csv\n";
        assert!(ignores_every_pattern("target/\nscratch_space/\n.jobman/\n", addition));
        assert!(!ignores_every_pattern("target/\nscratch_space/\n", addition));
    }

    #[test]
    fn a_readme_with_the_heading_is_covered() {
        let addition = "## Running the experiments\n\ntext\n";
        assert!(has_first_line("# Project\n\n## Running the experiments\nmine\n", addition));
        assert!(!has_first_line("# Project\n\nRunning the experiments\n", addition));
    }

    #[test]
    fn shell_words_quote_only_what_needs_it() {
        assert_eq!(shell_words(&["jobman", "init", "my sweep", "--force"]), "jobman init 'my sweep' --force");
        assert_eq!(shell_words(&["it's"]), r"'it'\''s'");
    }
}
