//! The user's commands, each a thin layer over the stages below.

pub mod build;
pub mod cache;
pub mod clean;
pub mod completions;
pub mod explain;
pub mod gc;
pub mod graph;
pub mod init;
pub mod lineage;
pub mod logs;
pub mod ls;
pub mod man;
pub mod show;
pub mod status;
pub mod verify;
