//! `jobman cache status|gc|verify`: the shared caches a workspace reads (`[cache] dirs`, then
//! `JOBMAN_CACHE`), what they hold, trimming them and checking them. Builds publish to the first.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::jobfile::Jobfile;
use crate::store::cache::{self, Cache, Entry};
use crate::util::console;
use crate::util::text::plural;

pub enum CacheAction {
    Status,
    Gc { max_size: Option<u64>, older_than: Option<Duration> },
    Verify { remove: bool },
}

pub struct CacheOptions {
    pub jobfile: PathBuf,
    pub action: CacheAction,
}

/// A publish cut off this long ago is not coming back: its temporary folder goes.
const STALE_TEMPORARY: Duration = Duration::from_secs(24 * 3600);

pub fn cache(options: &CacheOptions) -> anyhow::Result<i32> {
    let jobfile = Jobfile::load(&options.jobfile)?;
    let dirs = cache::dirs(&jobfile.cache);
    if dirs.is_empty() {
        println!("no cache: name one in the Jobfile (`[cache] dirs = [\"/shared/jobman-cache\"]`) or in JOBMAN_CACHE");
        return Ok(0);
    }
    let mut broken = 0;
    for (n, dir) in dirs.iter().enumerate() {
        let role = if n == 0 { "published to and read" } else { "read" };
        let Some(cache) = Cache::existing(dir) else {
            println!("{}: not a cache yet ({role}; made when a build publishes to it)", dir.display());
            continue;
        };
        let mut entries = cache.entries();
        match options.action {
            CacheAction::Status => {
                let size = entries.iter().fold(0u64, |sum, e| sum.saturating_add(e.size));
                println!("{}: {}, {} ({role})", dir.display(), plural(entries.len(), "job"), bytes(size));
            }
            CacheAction::Gc { max_size, older_than } => {
                cache.remove_stale_temporaries(STALE_TEMPORARY);
                let doomed = to_remove(&mut entries, max_size, older_than);
                let freed = doomed.iter().fold(0u64, |sum, e| sum.saturating_add(e.size));
                let mut removed = 0;
                for entry in &doomed {
                    match cache.remove(&entry.key) {
                        Ok(()) => removed += 1,
                        Err(e) => console::failure("Warning", &format!("cannot remove {}: {e}", entry.path.display())),
                    }
                }
                let kept = entries.len() + doomed.len() - removed;
                println!(
                    "{}: removed {} ({}), kept {}",
                    dir.display(),
                    plural(removed, "job"),
                    bytes(freed),
                    plural(kept, "job")
                );
            }
            CacheAction::Verify { remove } => {
                for entry in &entries {
                    if let Err(why) = cache.check(&entry.key) {
                        let removed = remove && cache.remove(&entry.key).is_ok();
                        broken += usize::from(!removed);
                        let what = if removed { "removed" } else { "broken" };
                        println!("{}: {what}: {why}", entry.path.display());
                    }
                }
                println!("{}: {} checked", dir.display(), plural(entries.len(), "job"));
            }
        }
    }
    Ok(if broken > 0 { 1 } else { 0 })
}

/// The entries to remove: those not used within `older_than`, then the least recently used
/// while the rest is over `max_size` (every entry older than the first that does not fit goes
/// too). `entries` keeps the others.
fn to_remove(entries: &mut Vec<Entry>, max_size: Option<u64>, older_than: Option<Duration>) -> Vec<Entry> {
    let now = SystemTime::now();
    entries.sort_by_key(|e| std::cmp::Reverse(e.last_used));
    let (mut kept_size, mut full) = (0u64, false);
    let (mut kept, mut doomed) = (Vec::new(), Vec::new());
    for entry in entries.drain(..) {
        let unused_for = now.duration_since(entry.last_used).unwrap_or_default();
        let too_old = older_than.is_some_and(|age| unused_for > age);
        full = full || max_size.is_some_and(|max| kept_size.saturating_add(entry.size) > max);
        if too_old || full {
            doomed.push(entry);
        } else {
            kept_size = kept_size.saturating_add(entry.size);
            kept.push(entry);
        }
    }
    *entries = kept;
    doomed
}

/// `50G`, `512M`, `1.5T`, `2048` (bytes; K, M, G, T are powers of 1024; a trailing `B` or `iB`
/// is allowed).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim().trim_end_matches("iB").trim_end_matches('B');
    let (number, unit) = match trimmed.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => trimmed.split_at(at),
        None => (trimmed, ""),
    };
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("`{text}` is not a size: write e.g. `50G`, `512M` or `1.5T`")),
    };
    let number: f64 = number.trim().parse().map_err(|_| format!("`{text}` is not a size: write e.g. `50G`, `512M`"))?;
    if number.is_nan() || number < 0.0 {
        return Err(format!("`{text}` is not a size: it must not be negative"));
    }
    Ok((number * scale as f64) as u64)
}

/// `1.4 GiB`, `812 KiB`, `12 B`.
fn bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", units[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(parse_size("50G"), Ok(50 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5T"), Ok((1.5 * (1u64 << 40) as f64) as u64));
        assert_eq!(parse_size("2048"), Ok(2048));
        assert!(parse_size("50X").is_err() && parse_size("lots").is_err() && parse_size("-1G").is_err());
    }

    #[test]
    fn gc_removes_the_stale_then_the_least_recently_used_beyond_the_size() {
        let day = Duration::from_secs(86_400);
        let entry = |key: &str, size: u64, days_ago: u32| Entry {
            key: key.into(),
            path: PathBuf::from(key),
            size,
            last_used: SystemTime::now() - day * days_ago,
        };
        let mut entries =
            vec![entry("old", 1, 100), entry("a", 10, 1), entry("b", 10, 2), entry("c", 10, 3), entry("d", 1, 4)];
        let doomed = to_remove(&mut entries, Some(25), Some(day * 90));
        let names = |list: &[Entry]| list.iter().map(|e| e.key.clone()).collect::<Vec<_>>();
        assert_eq!(names(&doomed), ["c", "d", "old"], "the newest two fit in 25 bytes; older ones go, small or not");
        assert_eq!(names(&entries), ["a", "b"]);
    }
}
