//! Work spread over every core.

/// How many threads run at once on this machine, asked once (the answer reads cgroup files).
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `beside()` on a thread of its own while `here()` runs on this one, when `worth_a_thread`
/// (starting a thread costs about a tenth of a millisecond, a no-op build of a few jobs two),
/// else one after the other.
pub fn join<A: Send, B>(worth_a_thread: bool, beside: impl FnOnce() -> A + Send, here: impl FnOnce() -> B) -> (A, B) {
    if !worth_a_thread || cores() < 2 {
        return (beside(), here());
    }
    std::thread::scope(|scope| {
        let beside = scope.spawn(beside);
        let here = here();
        (beside.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), here)
    })
}

/// `f` over `items` on every core, results in input order.
pub fn parallel_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    if items.len() < 64 || cores() < 2 {
        return items.into_iter().map(f).collect();
    }
    let threads = cores();
    let chunk = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut items = items.into_iter();
    loop {
        let part: Vec<T> = items.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        chunks.push(part);
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            chunks.into_iter().map(|part| scope.spawn(move || part.into_iter().map(f).collect::<Vec<R>>())).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}

/// `f` on each of `items` in place (with its index), on every core.
pub fn parallel_for_each<T: Send>(items: &mut [T], f: impl Fn(usize, &mut T) + Sync) {
    if items.len() < 64 || cores() < 2 {
        items.iter_mut().enumerate().for_each(|(i, item)| f(i, item));
        return;
    }
    let (f, chunk) = (&f, items.len().div_ceil(cores()));
    std::thread::scope(|scope| {
        for (n, part) in items.chunks_mut(chunk).enumerate() {
            scope.spawn(move || part.iter_mut().enumerate().for_each(|(i, item)| f(n * chunk + i, item)));
        }
    });
}
