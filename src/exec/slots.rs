//! GPUs and named resources on the local executor: a job holds the GPUs and amounts it asks for
//! while it runs, so that the jobs running at once never share a GPU nor hold more of a
//! resource than the machine is declared to have. A worker whose job does not fit waits.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::exec::request::LocalRequest;
use crate::jobfile::GpuPool;

/// The GPU ids of a pool: a list as given, or those `nvidia-smi -L` prints (none without it).
pub fn gpu_ids(pool: &GpuPool) -> Vec<u32> {
    match pool {
        GpuPool::Ids(ids) => ids.clone(),
        GpuPool::Auto => std::process::Command::new("nvidia-smi")
            .arg("-L")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| parse_nvidia_smi(&String::from_utf8_lossy(&o.stdout)))
            .unwrap_or_default(),
    }
}

/// `GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-…)` lines → their indices.
fn parse_nvidia_smi(text: &str) -> Vec<u32> {
    text.lines().filter_map(|line| line.strip_prefix("GPU ")?.split(':').next()?.trim().parse().ok()).collect()
}

#[derive(Debug)]
struct Free {
    gpus: Vec<u32>,
    resources: HashMap<String, f64>,
}

pub struct Slots {
    free: Mutex<Free>,
    freed: Condvar,
    /// Whether any GPU exists: only then does a job that asks for none get an empty
    /// `CUDA_VISIBLE_DEVICES`, so that it cannot take one by accident.
    has_gpus: bool,
}

/// What one running job holds; given back when dropped.
pub struct Held<'a> {
    slots: &'a Slots,
    pub gpus: Vec<u32>,
    resources: Vec<(String, f64)>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut free = self.slots.lock();
        free.gpus.append(&mut self.gpus);
        free.gpus.sort_unstable();
        for (name, amount) in &self.resources {
            *free.resources.entry(name.clone()).or_default() += amount;
        }
        self.slots.freed.notify_all();
    }
}

impl Held<'_> {
    /// `CUDA_VISIBLE_DEVICES` for the job, when the machine has GPUs.
    pub fn cuda_visible_devices(&self) -> Option<String> {
        self.slots.has_gpus.then(|| self.gpus.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
    }
}

impl Slots {
    pub fn new(gpus: Vec<u32>, capacities: impl IntoIterator<Item = (String, f64)>) -> Slots {
        let has_gpus = !gpus.is_empty();
        Slots {
            free: Mutex::new(Free { gpus, resources: capacities.into_iter().collect() }),
            freed: Condvar::new(),
            has_gpus,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Free> {
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why a request could never be met on this machine, if so.
    pub fn impossible(&self, request: &LocalRequest, total_gpus: usize) -> Option<String> {
        (request.gpus as usize > total_gpus).then(|| {
            format!(
                "it asks for {} GPU{}, and this machine has {total_gpus} ([executor.local] gpus: a list of ids, or \"auto\" for those `nvidia-smi -L` lists)",
                request.gpus,
                if request.gpus == 1 { "" } else { "s" }
            )
        })
    }

    /// Waits until `request` fits, then holds it. `None` when `keep_waiting` turns false first
    /// (Ctrl-C).
    pub fn acquire(&self, request: &LocalRequest, keep_waiting: impl Fn() -> bool) -> Option<Held<'_>> {
        let mut free = self.lock();
        loop {
            let fits = free.gpus.len() >= request.gpus as usize
                && request.resources.iter().all(|(name, amount)| free.resources.get(name).is_none_or(|f| f >= amount));
            if fits {
                let gpus: Vec<u32> = free.gpus.drain(..request.gpus as usize).collect();
                let mut resources = Vec::new();
                for (name, amount) in &request.resources {
                    if let Some(left) = free.resources.get_mut(name) {
                        *left -= amount;
                        resources.push((name.clone(), *amount));
                    }
                }
                return Some(Held { slots: self, gpus, resources });
            }
            if !keep_waiting() {
                return None;
            }
            free = self.freed.wait_timeout(free, Duration::from_millis(100)).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(gpus: u32, resources: &[(&str, f64)]) -> LocalRequest {
        LocalRequest { gpus, resources: resources.iter().map(|(n, a)| (n.to_string(), *a)).collect() }
    }

    #[test]
    fn nvidia_smi_lines_give_gpu_indices() {
        let text = "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-1)\nGPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-2)\n";
        assert_eq!(parse_nvidia_smi(text), [0, 1]);
        assert!(parse_nvidia_smi("No devices were found\n").is_empty());
    }

    #[test]
    fn held_gpus_and_resources_are_not_given_twice_until_released() {
        let slots = Slots::new(vec![0, 1, 2], [("mem_gb".to_string(), 16.0)]);
        let a = slots.acquire(&request(2, &[("mem_gb", 8.0)]), || false).expect("fits");
        assert_eq!(a.gpus, [0, 1]);
        assert_eq!(a.cuda_visible_devices().as_deref(), Some("0,1"));
        assert!(slots.acquire(&request(2, &[]), || false).is_none(), "one GPU left");
        let b = slots.acquire(&request(1, &[("mem_gb", 8.0)]), || false).expect("fits");
        assert_eq!(b.gpus, [2]);
        assert!(slots.acquire(&request(0, &[("mem_gb", 1.0)]), || false).is_none(), "no memory left");
        drop(a);
        let c = slots.acquire(&request(2, &[("mem_gb", 8.0)]), || false).expect("released");
        assert_eq!(c.gpus, [0, 1]);
        let none = slots.acquire(&request(0, &[]), || false).expect("nothing asked");
        assert_eq!(none.cuda_visible_devices().as_deref(), Some(""), "a job without GPUs sees none");
    }
}
