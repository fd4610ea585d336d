//! `jobman clean`: removes what a build made from the jobs — the report, the figures jobman drew,
//! the index page — and forgets their keys, so the next build makes them again. With `--jobs`,
//! the folders of the current jobs too, listed first and only with the user's consent.
//!
//! In the figures folder only the files of the Jobfile's figures and the index page are removed;
//! the folder goes only when nothing else is left in it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::commands::gc::{self, Consent, Removal};
use crate::graph::{BuildGraph, Selection};
use crate::jobfile::Jobfile;
use crate::plan::{Job, Workspace};
use crate::products;
use crate::store::lock::WorkspaceLock;
use crate::util::console;
use crate::util::diagnostic::{Diagnostic, Diagnostics};

pub struct CleanOptions {
    pub jobfile: PathBuf,
    /// `report`, `figures`, `figures/NAME`; none: all products.
    pub targets: Vec<String>,
    /// Also remove the current jobs' folders.
    pub jobs: bool,
    pub yes: bool,
}

pub fn clean(options: &CleanOptions) -> anyhow::Result<i32> {
    let workspace = Workspace::open(&options.jobfile)?;
    let jobfile = &workspace.jobfile;
    let selection = products_named(jobfile, &options.targets)?;
    let consent = if options.jobs { Consent::of(options.yes) } else { Consent::Given };
    let lock = match consent {
        Consent::ListOnly => None,
        Consent::Given | Consent::Ask => Some(WorkspaceLock::acquire(&jobfile.workspace.state)?),
    };
    let root = &jobfile.root;

    let mut folders = Vec::new();
    let mut store = None;
    if options.jobs {
        let jobs: Vec<Job> = workspace.plan()?.into_iter().flat_map(|p| p.jobs).collect();
        for job in &jobs {
            // A forced rerun's kept folder belongs to the job as well.
            for dir in [job.slot.dir(), job.slot.dir().with_extension("previous")] {
                if fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                    folders.push(Removal::folder(dir));
                }
            }
        }
        store = Some(&workspace.store);
        if !folders.is_empty() {
            gc::print_list(root, &folders);
            println!("{}", gc::total(&folders));
            if !consent.confirm(&format!("Remove {}?", gc::total(&folders))) {
                if consent == Consent::ListOnly {
                    println!(
                        "nothing was removed: run `{}` to remove these folders and the products",
                        yes_command(options)
                    );
                }
                return Ok(0);
            }
        }
    }

    let mut removed = remove_products(jobfile, &selection)?;
    products::forget(jobfile, &selection)?;
    if !folders.is_empty() {
        gc::remove(root, &folders)?;
        removed += folders.len();
        if let Some(store) = &store {
            let ids = folders.iter().filter_map(|r| r.path.file_name()?.to_str()).collect();
            if let Err(e) = store.forget(&ids) {
                let index = jobfile.workspace.state.join("index");
                console::failure("Warning", &format!("cannot update {}: {e}", console::relative(&index, root)));
            }
        }
    }
    if removed == 0 {
        console::status("Clean", "nothing to remove");
    }
    drop(lock);
    Ok(0)
}

/// The products `targets` name, alone (not what they are made from); none: every product.
fn products_named(jobfile: &Jobfile, targets: &[String]) -> Result<Selection, Diagnostics> {
    let graph = BuildGraph::of(jobfile);
    if let Some(jobs) = targets.iter().find(|t| graph.named(std::slice::from_ref(t)).is_ok_and(|s| s.jobs())) {
        return Err(Diagnostic::new(format!("`{}` is not a product", jobs.trim_end_matches('/')))
            .help("`jobman clean --jobs` removes the current jobs' folders (it lists them and asks first)")
            .into());
    }
    let mut selection = graph.named(targets)?;
    selection.stages.fill(false);
    Ok(selection)
}

/// Removes the selected products' files; returns how many there were.
fn remove_products(jobfile: &Jobfile, selection: &Selection) -> anyhow::Result<usize> {
    let mut files: Vec<PathBuf> = Vec::new();
    if selection.report {
        files.push(jobfile.workspace.report.clone());
    }
    for &i in &selection.figures {
        files.extend(products::figure_files(jobfile, &jobfile.figures[i].get_ref().name));
    }
    if selection.index {
        files.push(products::index_file(jobfile));
    }
    let mut removed = 0;
    for file in &files {
        if remove_file(file, &jobfile.root)? {
            removed += 1;
        }
    }
    if !selection.figures.is_empty() || selection.index {
        // Fails, as it should, when the folder holds anything else.
        if fs::remove_dir(&jobfile.workspace.figures).is_ok() {
            console::status("Removed", &format!("{}/", console::relative(&jobfile.workspace.figures, &jobfile.root)));
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes a file if it is there; says whether it was.
fn remove_file(path: &Path, root: &Path) -> anyhow::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            console::status("Removed", &console::relative(path, root));
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(anyhow::anyhow!("cannot remove {}: {e}", console::relative(path, root))),
    }
}

/// The command that removes what a listing without consent showed.
fn yes_command(options: &CleanOptions) -> String {
    let mut words = vec!["jobman".to_string()];
    if options.jobfile != Path::new("Jobfile.toml") {
        words.push("-f".into());
        words.push(crate::util::text::shell_word(&options.jobfile.to_string_lossy()));
    }
    words.push("clean".into());
    words.extend(options.targets.iter().map(|t| crate::util::text::shell_word(t)));
    words.push("--jobs".into());
    words.push("--yes".into());
    words.join(" ")
}
