//! Jobs shared through caches (`[cache] dirs`, `JOBMAN_CACHE`, see `store::cache`): a pending
//! job found in one is restored instead of run (its folder copied and checked file by file, then
//! its record written last, as a run writes its own; a corrupt or half-written entry is a miss
//! with a warning), and a job done here is published to the first.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::jobfile::StageView;
use crate::plan::Job;
use crate::store::cache::{self, Cache, Restored};
use crate::store::verify::Unsynced;
use crate::store::{self, RecordSummary, SlotState};
use crate::util::console;
use crate::util::parallel::parallel_map;
use crate::util::text::plural;

/// Restores what the caches hold of the `pending` jobs (indices into `jobs`); returns the jobs
/// still to run, in order.
pub fn from_caches(view: StageView<'_>, jobs: &mut [Job], pending: Vec<usize>) -> Vec<usize> {
    let caches: Vec<Cache> = cache::dirs(&view.cache).iter().filter_map(|dir| Cache::existing(dir)).collect();
    if caches.is_empty() || pending.is_empty() {
        return pending;
    }
    let state = &view.workspace.state;
    let unsynced = Unsynced::begin(state)
        .inspect_err(|e| console::failure("Warning", &format!("cannot mark the build as unsynced: {e}")))
        .ok();
    let found = parallel_map(pending.iter().map(|&i| (i, &jobs[i])).collect(), |(i, job)| {
        (i, restore(&caches, &job.planned.key.hex(), &job.slot.id, &job.slot.dir))
    });
    let mut still = Vec::new();
    let mut restored: Vec<(usize, &Cache)> = Vec::new();
    for (i, outcome) in found {
        match outcome {
            Some((cache, record, stamp)) => {
                let slot = &mut jobs[i].slot;
                slot.state = SlotState::of(RecordSummary::from(&record));
                (slot.stamp, slot.indexed) = (Some(stamp), false);
                restored.push((i, cache));
            }
            None => still.push(i),
        }
    }
    match unsynced {
        Some(unsynced) => unsynced.end(&view.workspace.jobs),
        None => store::sync_filesystem(&view.workspace.jobs),
    }
    for cache in &caches {
        let n = restored.iter().filter(|(_, from)| *from == cache).count();
        if n > 0 {
            console::status("Restored", &format!("{} from {}", plural(n, "job"), cache.dir.display()));
        }
    }
    still
}

/// The first cache's entry of `key` that checks out, restored into `dir` with its record
/// written: the cache, the record and its stamp.
fn restore<'a>(
    caches: &'a [Cache],
    key: &str,
    id: &str,
    dir: &Path,
) -> Option<(&'a Cache, store::JobRecord, store::FileStamp)> {
    for cache in caches {
        match cache.restore(key, dir) {
            Restored::Hit(record) => {
                let record = store::JobRecord { id: id.to_string(), restored_from: Some(cache.dir.clone()), ..*record };
                match store::write_record(dir, &record) {
                    Ok(stamp) => return Some((cache, record, stamp)),
                    Err(e) => {
                        console::failure("Warning", &format!("cannot write the record in {}: {e}", dir.display()))
                    }
                }
            }
            Restored::Miss => {}
            Restored::Broken(why) => console::failure(
                "Warning",
                &format!("the entry of {key} in {} is left aside: {why}", cache.dir.display()),
            ),
        }
    }
    None
}

/// The cache a done job is published to: the first of the workspace's, when there is one.
pub fn publish_to(view: StageView<'_>) -> Option<std::path::PathBuf> {
    cache::dirs(&view.cache).into_iter().next()
}

/// Publishes the done job in `dir` under `key` to `cache_dir`. A failure is a warning, once per
/// process: the job is done either way.
pub fn publish(cache_dir: &Path, key: &str, dir: &Path) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if let Err(why) = Cache::create(cache_dir).and_then(|cache| cache.publish(key, dir))
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        console::failure("Warning", &format!("jobs are not published to {}: {why}", cache_dir.display()));
    }
}
