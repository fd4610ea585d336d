//! Jobs shared through caches (`[cache] dirs`, `JOBMAN_CACHE`, see `store::cache`): a pending
//! job found in one is restored instead of run (its folder copied and checked file by file, then
//! its record written last, as a run writes its own; a corrupt or half-written entry is a
//! warning and a run), and a job done here, or restored from another cache, is published to the
//! first.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

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
    let caches = cache::readable(&view.cache);
    if caches.is_empty() {
        return pending;
    }
    // One lookup per pending job and cache, on every core: on a shared file system each is a
    // round trip.
    let looked_up = parallel_map(pending, |i| {
        let key = jobs[i].planned.key.hex();
        (i, caches.iter().any(|cache| cache.holds(&key)))
    });
    let (held, still): (Vec<_>, Vec<_>) = looked_up.into_iter().partition(|&(_, held)| held);
    let held: Vec<usize> = held.into_iter().map(|(i, _)| i).collect();
    let mut still: Vec<usize> = still.into_iter().map(|(i, _)| i).collect();
    if held.is_empty() {
        return still;
    }
    // Records are written as a run writes them: marked unsynced until the one sync at the end.
    let unsynced = Unsynced::begin(&view.workspace.state)
        .inspect_err(|e| console::failure("Warning", &format!("cannot mark the build as unsynced: {e}")))
        .ok();
    let first = publish_to(view);
    let found = parallel_map(held.iter().map(|&i| (i, &jobs[i])).collect(), |(i, job)| {
        (i, restore(&caches, job, first.as_deref()))
    });
    let mut restored: Vec<&Cache> = Vec::new();
    for (i, outcome) in found {
        match outcome {
            Some((cache, record, stamp)) => {
                let slot = &mut jobs[i].slot;
                slot.state = SlotState::of(RecordSummary::from(&record));
                (slot.stamp, slot.indexed) = (Some(stamp), false);
                restored.push(cache);
            }
            None => still.push(i),
        }
    }
    still.sort_unstable();
    match unsynced {
        Some(unsynced) => unsynced.end(&view.workspace.jobs),
        None => store::sync_filesystem(&view.workspace.jobs),
    }
    for cache in &caches {
        let n = restored.iter().filter(|from| **from == cache).count();
        if n > 0 {
            console::status("Restored", &format!("{} from {}", plural(n, "job"), cache.dir.display()));
        }
    }
    still
}

/// The first cache's entry of the job's key that checks out, restored into its folder with its
/// record written: the cache, the record and its stamp. Restored from a cache other than the
/// one builds publish to (`first`), it is published there too, as a local cache fills from a
/// remote one: the next workspace finds it in the nearer cache.
fn restore<'a>(
    caches: &'a [Cache],
    job: &Job,
    first: Option<&Path>,
) -> Option<(&'a Cache, store::JobRecord, store::FileStamp)> {
    let (key, dir) = (job.planned.key.hex(), &job.slot.dir());
    for cache in caches {
        match cache.restore(&key, dir) {
            Restored::Hit(record) => {
                let id = job.slot.id.clone();
                let record = store::JobRecord { id, restored_from: Some(cache.dir.clone()), ..*record };
                match store::write_record(dir, &record) {
                    Ok(stamp) => {
                        if let Some(first) = first.filter(|first| *first != cache.dir) {
                            publish(first, &key, dir);
                        }
                        return Some((cache, record, stamp));
                    }
                    Err(e) => {
                        console::failure("Warning", &format!("cannot write the record in {}: {e}", dir.display()))
                    }
                }
            }
            Restored::Miss => {}
            Restored::Broken(why) => console::failure(
                "Warning",
                &format!(
                    "{}: its entry in {} does not check out, so the job runs: {why}",
                    job.planned.name,
                    cache.dir.display()
                ),
            ),
        }
    }
    None
}

/// The cache a done job is published to: the first of the workspace's, when there is one.
pub fn publish_to(view: StageView<'_>) -> Option<PathBuf> {
    cache::dirs(&view.cache).into_iter().next()
}

/// Publishes done jobs to a cache on a thread of its own: a job's worker, GPUs and resources are
/// free for the next job while its folder is copied (on a shared file system, a checkpoint of
/// gigabytes takes minutes). Dropped, it waits for the jobs still queued; once `interrupted` is
/// set it publishes no more of them.
pub struct Publisher {
    queue: Option<mpsc::Sender<(String, PathBuf)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Publisher {
    /// The publisher to `cache_dir`; without a cache, one that publishes nothing.
    pub fn start(cache_dir: Option<PathBuf>, interrupted: Arc<AtomicBool>) -> Publisher {
        let Some(cache_dir) = cache_dir else { return Publisher { queue: None, thread: None } };
        let (queue, jobs) = mpsc::channel::<(String, PathBuf)>();
        let thread = std::thread::spawn(move || {
            for (key, dir) in jobs {
                if interrupted.load(Ordering::SeqCst) {
                    break;
                }
                publish(&cache_dir, &key, &dir);
            }
        });
        Publisher { queue: Some(queue), thread: Some(thread) }
    }

    /// Queues the done job in `dir`, of key `key`.
    pub fn publish(&self, key: String, dir: PathBuf) {
        if let Some(queue) = &self.queue {
            // The thread ends only after the queue closes: sending cannot fail before.
            let _ = queue.send((key, dir));
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Publishes the done job in `dir` under `key` to `cache_dir`. A failure is a warning, once per
/// process: the job is done either way.
fn publish(cache_dir: &Path, key: &str, dir: &Path) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if let Err(why) = Cache::create(cache_dir).and_then(|cache| cache.publish(key, dir))
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        console::failure("Warning", &format!("jobs are not published to {}: {why}", cache_dir.display()));
    }
}
