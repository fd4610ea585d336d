//! `by-name/` in the jobs folder: a link named after each job to its folder, so that
//! `cd scratch_space/by-name/h8-lr0.01-s0` works while the folders keep their key-derived ids
//! (`by-name/STAGE/NAME` in a Jobfile with stages). Builds and `gc` keep the links in step with
//! the Jobfile; only symbolic links inside `by-name/` are ever created or removed.
//!
//! When the links wanted are those the last update made (a hash of them is kept in jobman's
//! state), nothing is read or written: a no-op build costs no file-system call per job.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The folder of the links, inside the jobs folder.
pub const BY_NAME: &str = "by-name";

/// One job with a folder: its stage (in a Jobfile with stages), name and id.
pub struct Named<'a> {
    pub stage: Option<&'a str>,
    pub name: &'a str,
    pub id: &'a str,
}

/// Makes `jobs_dir/by-name/` hold exactly one link per job of `jobs` (the first of a name
/// wins), removing the links of other jobs; `marker` keeps a hash of the links made, and
/// `marker.list` the links themselves, so that the next change makes and removes only what
/// differs (a sweep grown by one job costs one link, not a look at every link).
pub fn update<'a>(jobs_dir: &Path, marker: &Path, jobs: impl Iterator<Item = Named<'a>>) -> io::Result<()> {
    let mut wanted: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    for job in jobs {
        let Some(name) = file_name(job.name) else { continue };
        let (link, target) = match job.stage.and_then(file_name) {
            Some(stage) => (Path::new(&stage).join(name), Path::new("../..").join(job.id)),
            None => (PathBuf::from(name), Path::new("..").join(job.id)),
        };
        wanted.entry(link).or_insert(target);
    }
    let list = list_text(&wanted);
    let hash = blake3::hash(list.as_bytes()).to_hex().to_string();
    let dir = jobs_dir.join(BY_NAME);
    let exists = dir.is_dir();
    if exists && fs::read_to_string(marker).is_ok_and(|kept| kept == hash) {
        return Ok(());
    }
    let list_path = marker.with_extension("list");
    let made = if exists { fs::read_to_string(&list_path).ok().map(|text| read_list(&text)) } else { None };
    let kept = match &made {
        Some(made) => remove_made(&dir, made, &wanted)?,
        None => {
            let mut kept = HashSet::new();
            remove_unwanted(&dir, Path::new(""), &wanted, &mut kept)?;
            kept
        }
    };
    for (link, target) in &wanted {
        // A new job's link costs one call: the links kept are known above.
        if kept.contains(&link) {
            continue;
        }
        let path = dir.join(link);
        let linked = std::os::unix::fs::symlink(target, &path);
        if linked.as_ref().is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
            && let Some(parent) = path.parent()
        {
            fs::create_dir_all(parent)?;
            std::os::unix::fs::symlink(target, &path)?;
        } else {
            linked?;
        }
    }
    crate::store::write_atomic(&list_path, list.as_bytes())?;
    fs::write(marker, hash)
}

/// The links as the list keeps them: `LINK<tab>TARGET` lines.
fn list_text(links: &BTreeMap<PathBuf, PathBuf>) -> String {
    let mut text = String::new();
    for (link, target) in links {
        text.push_str(&link.to_string_lossy());
        text.push('\t');
        text.push_str(&target.to_string_lossy());
        text.push('\n');
    }
    text
}

fn read_list(text: &str) -> BTreeMap<PathBuf, PathBuf> {
    text.lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(link, target)| (PathBuf::from(link), PathBuf::from(target)))
        .collect()
}

/// Removes the links the last update `made` that are not `wanted` as they are (each only if it
/// is still the link made: anything else there is the user's), and stage folders left empty;
/// returns the wanted links already in place.
fn remove_made<'a>(
    dir: &Path,
    made: &BTreeMap<PathBuf, PathBuf>,
    wanted: &'a BTreeMap<PathBuf, PathBuf>,
) -> io::Result<HashSet<&'a PathBuf>> {
    let mut kept = HashSet::new();
    for (link, target) in made {
        match wanted.get_key_value(link) {
            Some((link, wanted_target)) if wanted_target == target => {
                kept.insert(link);
            }
            _ => {
                let path = dir.join(link);
                if fs::read_link(&path).is_ok_and(|found| found == *target) {
                    fs::remove_file(&path)?;
                    if let Some(stage) = path.parent().filter(|parent| *parent != dir) {
                        // Only when empty: a folder of the user's own is kept.
                        let _ = fs::remove_dir(stage);
                    }
                }
            }
        }
    }
    Ok(kept)
}

/// Removes the links under `dir` (and its stage folders) that are not `wanted` as they are, and
/// stage folders left empty; anything that is not a link is left alone. The links left are
/// added to `kept`.
fn remove_unwanted<'a>(
    dir: &Path,
    prefix: &Path,
    wanted: &'a BTreeMap<PathBuf, PathBuf>,
    kept: &mut HashSet<&'a PathBuf>,
) -> io::Result<()> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    for entry in entries.flatten() {
        let path = entry.path();
        let relative = prefix.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            match wanted.get_key_value(&relative) {
                Some((link, target)) if fs::read_link(&path).is_ok_and(|found| found == *target) => {
                    kept.insert(link);
                }
                _ => fs::remove_file(&path)?,
            }
        } else if kind.is_dir() && prefix.as_os_str().is_empty() {
            remove_unwanted(&path, &relative, wanted, kept)?;
            // Only when empty: a folder of the user's own is kept.
            let _ = fs::remove_dir(&path);
        }
    }
    Ok(())
}

/// A job or stage name as one file name: `/` becomes `_`; none for `.`, `..` or an empty name.
fn file_name(name: &str) -> Option<String> {
    let name = name.replace(['/', '\0'], "_");
    (!name.is_empty() && name != "." && name != "..").then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named<'a>(stage: Option<&'a str>, name: &'a str, id: &'a str) -> Named<'a> {
        Named { stage, name, id }
    }

    #[test]
    fn links_follow_the_jobs_and_leave_everything_else_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (jobs, marker) = (dir.path().join("jobs"), dir.path().join("marker"));
        fs::create_dir_all(jobs.join("aaa")).unwrap();
        fs::create_dir_all(jobs.join("bbb")).unwrap();
        update(&jobs, &marker, [named(None, "x1", "aaa"), named(None, "a/b", "bbb")].into_iter()).unwrap();
        assert_eq!(fs::read_link(jobs.join("by-name/x1")).unwrap(), Path::new("../aaa"));
        assert!(jobs.join("by-name/a_b").join(".").is_dir(), "the link leads to the folder");
        // A folder of the user's own in by-name/ is kept; a job gone loses its link.
        fs::create_dir_all(jobs.join("by-name/mine")).unwrap();
        fs::write(jobs.join("by-name/mine/notes"), "").unwrap();
        update(&jobs, &marker, [named(Some("train"), "x1", "aaa")].into_iter()).unwrap();
        assert!(fs::symlink_metadata(jobs.join("by-name/x1")).is_err());
        assert!(fs::symlink_metadata(jobs.join("by-name/a_b")).is_err());
        assert_eq!(fs::read_link(jobs.join("by-name/train/x1")).unwrap(), Path::new("../../aaa"));
        assert!(jobs.join("by-name/mine/notes").exists());
        assert!(jobs.join("aaa").is_dir() && jobs.join("bbb").is_dir(), "job folders are never touched");
    }

    #[test]
    fn unchanged_links_are_not_looked_at_again() {
        let dir = tempfile::tempdir().unwrap();
        let (jobs, marker) = (dir.path().join("jobs"), dir.path().join("marker"));
        update(&jobs, &marker, [named(None, "x1", "aaa"), named(None, "x2", "bbb")].into_iter()).unwrap();
        // Removed by hand: the links made last time are trusted from the list, even when others
        // change (a sweep grown by one job makes one link)…
        fs::remove_file(jobs.join("by-name/x1")).unwrap();
        update(&jobs, &marker, [named(None, "x1", "aaa"), named(None, "x2", "bbb")].into_iter()).unwrap();
        update(&jobs, &marker, [named(None, "x1", "aaa"), named(None, "x3", "ccc")].into_iter()).unwrap();
        assert!(fs::symlink_metadata(jobs.join("by-name/x1")).is_err());
        assert_eq!(fs::read_link(jobs.join("by-name/x3")).unwrap(), Path::new("../ccc"));
        assert!(fs::symlink_metadata(jobs.join("by-name/x2")).is_err(), "a job gone loses its link");
        // …until by-name/ itself is removed: then every link is made again.
        fs::remove_dir_all(jobs.join("by-name")).unwrap();
        update(&jobs, &marker, [named(None, "x1", "aaa"), named(None, "x3", "ccc")].into_iter()).unwrap();
        assert!(fs::symlink_metadata(jobs.join("by-name/x1")).is_ok());
    }
}
