//! Shared caches: finished job folders stored by key, for any workspace to restore instead of
//! running the job again (`[cache] dirs`, `JOBMAN_CACHE`).
//!
//! A cache folder holds:
//!
//! ```text
//! JOBMAN-CACHE          says the folder is a jobman cache: jobman writes nowhere else
//! v1/ab/abcd…/          one entry: a done job's folder (outputs, logs, record) and
//!                       jobman-cache.json, the size and blake3 hash of each of its files
//! v1/tmp/               entries being written
//! ```
//!
//! An entry appears by one `rename` of a whole folder, so a reader never sees half of one; two
//! builds publishing one key each write a folder of their own, and the second rename finds the
//! first's entry in place and leaves it. A restore checks each file's size and hash as it copies
//! it: a truncated or corrupt entry is removed and the job runs, never a result.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{JobRecord, JobStatus, RECORD_FILE, RECORD_FORMAT};

/// The file that makes a folder a jobman cache.
pub const MARKER: &str = "JOBMAN-CACHE";
const LAYOUT: &str = "v1";
/// An entry's list of its files.
pub const MANIFEST: &str = "jobman-cache.json";
const MANIFEST_FORMAT: u32 = 1;

/// What an entry holds: each file (`/`-separated path in the job folder) with its size and hash.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    key: String,
    files: BTreeMap<String, FileHash>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileHash {
    size: u64,
    blake3: String,
}

/// A cache folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    pub dir: PathBuf,
}

/// What restoring one key found.
#[derive(Debug)]
pub enum Restored {
    /// The job's files are in its folder, checked; its record is to be written by the caller.
    Hit(Box<JobRecord>),
    /// No entry of this key.
    Miss,
    /// An entry that cannot be trusted (truncated, changed, unreadable): a miss, with why.
    Broken(String),
}

impl Cache {
    /// The cache in `dir` for reading, when `dir` is one.
    pub fn existing(dir: &Path) -> Option<Cache> {
        dir.join(MARKER).is_file().then(|| Cache { dir: dir.to_path_buf() })
    }

    /// The cache in `dir`, made there if `dir` is new or empty: jobman writes into no folder that
    /// holds anything but a cache.
    pub fn create(dir: &Path) -> Result<Cache, String> {
        if let Some(cache) = Cache::existing(dir) {
            return Ok(cache);
        }
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let empty = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?.next().is_none();
        // Another build (or worker) may have made the cache since the first look.
        if let Some(cache) = Cache::existing(dir) {
            return Ok(cache);
        }
        if !empty {
            return Err(format!(
                "{} is not a jobman cache (it has no {MARKER} file) and is not empty; name a new or empty folder",
                dir.display()
            ));
        }
        let marker = format!("jobman cache, layout {LAYOUT}: entries are written by jobman, one folder per key\n");
        fs::write(dir.join(MARKER), marker).map_err(|e| format!("cannot write to {}: {e}", dir.display()))?;
        Ok(Cache { dir: dir.to_path_buf() })
    }

    /// Whether an entry of `key` is there (not whether it checks out: a restore tells).
    pub fn holds(&self, key: &str) -> bool {
        self.entry(key).join(MANIFEST).is_file()
    }

    fn entry(&self, key: &str) -> PathBuf {
        self.dir.join(LAYOUT).join(&key[..2.min(key.len())]).join(key)
    }

    /// Stores the done job in `job_dir` under `key`. `Ok(false)` when an entry of the key is
    /// there already (published by another build, perhaps at this moment).
    pub fn publish(&self, key: &str, job_dir: &Path) -> Result<bool, String> {
        let entry = self.entry(key);
        if entry.is_dir() {
            return Ok(false);
        }
        let temp = self.temporary(key).map_err(|e| format!("cannot use {}: {e}", self.dir.display()))?;
        let written = (|| {
            if job_dir.join(MANIFEST).exists() {
                return Err(format!("the job wrote a file named {MANIFEST}, the name of the cache's own list"));
            }
            fs::create_dir(&temp).map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
            let mut files = BTreeMap::new();
            copy_tree(job_dir, &temp, "", &mut files)?;
            let manifest = Manifest { format: MANIFEST_FORMAT, key: key.to_string(), files };
            let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
            fs::write(temp.join(MANIFEST), bytes).map_err(|e| format!("cannot write the manifest: {e}"))?;
            let parent = entry.parent().expect("an entry has a parent");
            fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            match fs::rename(&temp, &entry) {
                Ok(()) => Ok(true),
                // Another build's entry of this key came first; it holds the same job.
                Err(_) if entry.is_dir() => Ok(false),
                Err(e) => Err(format!("cannot move the entry into place: {e}")),
            }
        })();
        if !matches!(written, Ok(true)) {
            let _ = fs::remove_dir_all(&temp);
        }
        written
    }

    /// Copies the entry of `key` into `job_dir` (emptied first), checking every file against
    /// the manifest; the record is returned, not written: the caller writes it last.
    pub fn restore(&self, key: &str, job_dir: &Path) -> Restored {
        let entry = self.entry(key);
        let manifest = match fs::read(entry.join(MANIFEST)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Restored::Miss,
            Err(e) => return Restored::Broken(format!("its manifest is unreadable: {e}")),
        };
        match self.restore_entry(key, &entry, &manifest, job_dir) {
            Ok(record) => {
                touch(&entry.join(MANIFEST));
                Restored::Hit(Box::new(record))
            }
            Err(why) => {
                let _ = super::reset_dir(job_dir).and_then(|()| fs::remove_dir(job_dir));
                // Moved out of the way (when this user may), so that the job's new run takes its
                // place; no build could ever have used it.
                let _ = self.remove(key);
                Restored::Broken(why)
            }
        }
    }

    fn restore_entry(&self, key: &str, entry: &Path, manifest: &[u8], job_dir: &Path) -> Result<JobRecord, String> {
        let (manifest, record) = checked_manifest(key, entry, manifest)?;
        super::reset_dir(job_dir).map_err(|e| format!("cannot prepare {}: {e}", job_dir.display()))?;
        check_files(&manifest, entry, Some(job_dir))?;
        Ok(record)
    }

    /// Every entry, with its size and last use. Only real folders named as jobman names them
    /// count: a symbolic link or a stranger's file in the cache is never followed or touched.
    pub fn entries(&self) -> Vec<Entry> {
        let mut entries = Vec::new();
        let layout = self.dir.join(LAYOUT);
        if !real_dir(&layout) {
            return entries;
        }
        for prefix in fs::read_dir(&layout).into_iter().flatten().flatten() {
            let name = prefix.file_name().to_string_lossy().into_owned();
            if !(name.len() == 2 && is_hex(&name) && prefix.file_type().is_ok_and(|t| t.is_dir())) {
                continue;
            }
            for entry in fs::read_dir(prefix.path()).into_iter().flatten().flatten() {
                let key = entry.file_name().to_string_lossy().into_owned();
                if !(key.len() == 64
                    && key.starts_with(&name)
                    && is_hex(&key)
                    && entry.file_type().is_ok_and(|t| t.is_dir()))
                {
                    continue;
                }
                let path = entry.path();
                let manifest = fs::read(path.join(MANIFEST)).ok();
                let manifest: Option<Manifest> = manifest.and_then(|bytes| serde_json::from_slice(&bytes).ok());
                let last_used = fs::metadata(path.join(MANIFEST)).and_then(|m| m.modified()).unwrap_or(UNIX_EPOCH);
                let size = manifest.map_or(0, |m| m.files.values().fold(0u64, |sum, f| sum.saturating_add(f.size)));
                entries.push(Entry { key, path, size, last_used });
            }
        }
        entries
    }

    /// Reads every file of the entry of `key` and checks it against the manifest.
    pub fn check(&self, key: &str) -> Result<(), String> {
        let entry = self.entry(key);
        let manifest = fs::read(entry.join(MANIFEST)).map_err(|e| format!("its manifest is unreadable: {e}"))?;
        let (manifest, _) = checked_manifest(key, &entry, &manifest)?;
        check_files(&manifest, &entry, None)
    }

    /// Removes the entry of `key`: first moved aside whole (into `tmp/`, never through a link),
    /// so that no reader finds half of it in place.
    pub fn remove(&self, key: &str) -> io::Result<()> {
        let aside = self.temporary(&format!("{key}.removed"))?;
        fs::rename(self.entry(key), &aside)?;
        fs::remove_dir_all(&aside)
    }

    /// A new name in `v1/tmp` (made if need be) for `name`, unique to this process and moment;
    /// an error when `tmp` is anything but a folder (a link, say).
    fn temporary(&self, name: &str) -> io::Result<PathBuf> {
        let tmp = self.temporaries()?;
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Ok(tmp.join(format!("{name}.{}.{stamp}", std::process::id())))
    }

    /// `v1/tmp`, made if need be; an error when it is anything but a folder (a link, say).
    fn temporaries(&self) -> io::Result<PathBuf> {
        let tmp = self.dir.join(LAYOUT).join("tmp");
        fs::create_dir_all(&tmp)?;
        if !real_dir(&self.dir.join(LAYOUT)) || !real_dir(&tmp) {
            return Err(io::Error::other(format!("{} is not a folder of jobman's", tmp.display())));
        }
        Ok(tmp)
    }

    /// Removes what cut-off publishes left in `tmp/` longer than `age` ago: only folders named
    /// by a key, as jobman names them.
    pub fn remove_stale_temporaries(&self, age: std::time::Duration) {
        let Ok(tmp) = self.temporaries() else { return };
        for entry in fs::read_dir(tmp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name.len() > 65 && is_hex(&name[..64]) && name.as_bytes()[64] == b'.';
            let folder = entry.file_type().is_ok_and(|t| t.is_dir());
            let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|e| e > age));
            if ours && folder && old {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Whether `path` is a folder itself, not a link to one.
fn real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

fn is_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One entry as `jobman cache` lists it.
#[derive(Debug)]
pub struct Entry {
    pub key: String,
    pub path: PathBuf,
    /// The bytes of its files, as its manifest says.
    pub size: u64,
    /// When it was published or last restored.
    pub last_used: SystemTime,
}

/// The manifest of the entry of `key`, and its record, both checked: of this key, done, every
/// path inside the job folder, the record's bytes those the manifest lists.
fn checked_manifest(key: &str, entry: &Path, manifest: &[u8]) -> Result<(Manifest, JobRecord), String> {
    let manifest: Manifest =
        serde_json::from_slice(manifest).map_err(|e| format!("its manifest does not parse: {e}"))?;
    if manifest.format != MANIFEST_FORMAT || manifest.key != key {
        return Err("its manifest is of another key or format".into());
    }
    let outside = |path: &&String| path.split('/').any(|part| part.is_empty() || part == "." || part == "..");
    if let Some(path) = manifest.files.keys().find(outside) {
        return Err(format!("its manifest names `{path}`, outside the job folder"));
    }
    let record_hash = manifest.files.get(RECORD_FILE).ok_or("it has no record")?;
    let record_bytes = fs::read(entry.join(RECORD_FILE)).map_err(|e| format!("its record is unreadable: {e}"))?;
    differs(RECORD_FILE, &hash_of(&record_bytes), record_hash)?;
    let record: JobRecord =
        serde_json::from_slice(&record_bytes).map_err(|e| format!("its record does not parse: {e}"))?;
    if record.format != RECORD_FORMAT || record.key != key || record.status != JobStatus::Done {
        return Err("its record is not of this key, or not done".into());
    }
    Ok((manifest, record))
}

/// Reads every file of the entry but its record (which [`checked_manifest`] checked) and
/// compares it with the manifest; copies each into `into` as it reads it, when given.
fn check_files(manifest: &Manifest, entry: &Path, into: Option<&Path>) -> Result<(), String> {
    for (path, expected) in manifest.files.iter().filter(|(path, _)| *path != RECORD_FILE) {
        let target = into.map(|dir| dir.join(path));
        if let Some(parent) = target.as_deref().and_then(Path::parent) {
            fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let found = copy_hashing(&entry.join(path), target.as_deref()).map_err(|e| format!("`{path}`: {e}"))?;
        differs(path, &found, expected)?;
    }
    Ok(())
}

fn differs(path: &str, found: &FileHash, expected: &FileHash) -> Result<(), String> {
    if found == expected {
        return Ok(());
    }
    Err(format!("`{path}` differs from the manifest ({} bytes, {} expected)", found.size, expected.size))
}

/// The caches among [`dirs`] that exist: those a build restores from.
pub fn readable(jobfile_dirs: &[PathBuf]) -> Vec<Cache> {
    dirs(jobfile_dirs).iter().filter_map(|dir| Cache::existing(dir)).collect()
}

/// The caches a workspace reads: the Jobfile's `[cache] dirs`, then those of `JOBMAN_CACHE`
/// (`:`-separated), each once. The first is the one jobs are published to.
pub fn dirs(jobfile_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let from_env = std::env::var_os("JOBMAN_CACHE").map(|v| std::env::split_paths(&v).collect::<Vec<_>>());
    let mut dirs: Vec<PathBuf> = Vec::new();
    for dir in jobfile_dirs.iter().cloned().chain(from_env.into_iter().flatten()) {
        // Absolute, so that a Slurm task (which runs in another folder) and `jobman cache` name
        // the same cache as the build.
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        if !dir.as_os_str().is_empty() && !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// Copies the files under `from` into `to`, noting each one's size and hash under its path.
fn copy_tree(from: &Path, to: &Path, prefix: &str, files: &mut BTreeMap<String, FileHash>) -> Result<(), String> {
    let entries = fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        if kind.is_dir() {
            fs::create_dir(to.join(&name)).map_err(|e| e.to_string())?;
            copy_tree(&entry.path(), &to.join(&name), &path, files)?;
        } else if kind.is_file() {
            let copied = copy_hashing(&entry.path(), Some(&to.join(&name))).map_err(|e| format!("`{path}`: {e}"))?;
            files.insert(path, copied);
        } else {
            return Err(format!("it holds `{path}`, which is neither a file nor a folder"));
        }
    }
    Ok(())
}

/// Copies `from` to a new file `to` (or only reads it), hashing the bytes as they pass: one
/// read of each byte.
fn copy_hashing(from: &Path, to: Option<&Path>) -> io::Result<FileHash> {
    let mut source = fs::File::open(from)?;
    let mut target = to.map(fs::File::create_new).transpose()?;
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = source.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        if let Some(target) = &mut target {
            target.write_all(&buffer[..n])?;
        }
        size += n as u64;
    }
    if let Some(target) = &target {
        keep_executable(&source, target)?;
    }
    Ok(FileHash { size, blake3: hasher.finalize().to_hex().to_string() })
}

/// A program the job wrote stays runnable: its execute bits follow the read bits the new file
/// got from the umask.
fn keep_executable(source: &fs::File, target: &fs::File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if source.metadata()?.permissions().mode() & 0o111 == 0 {
        return Ok(());
    }
    let mode = target.metadata()?.permissions().mode();
    target.set_permissions(fs::Permissions::from_mode(mode | (mode & 0o444) >> 2))
}

fn hash_of(bytes: &[u8]) -> FileHash {
    FileHash { size: bytes.len() as u64, blake3: blake3::hash(bytes).to_hex().to_string() }
}

/// Sets the file's modification time to now: an entry's last use, which `jobman cache gc`
/// reads. Any user who may write the file may do this (setting another time needs its owner);
/// in a read-only cache the date stays.
fn touch(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
        // SAFETY: a valid C string; null times mean "now".
        unsafe {
            libc::utimensat(libc::AT_FDCWD, path.as_ptr(), std::ptr::null(), 0);
        }
    }
}
