//! Running jobs: a prepared folder, one run of its command, the local pool, Slurm.

pub mod request;
pub mod slots;
pub mod slurm;
pub mod supervisor;
pub mod task;
