//! Links the `jobman` executable at a fixed address on Linux (`-no-pie`).
//!
//! A position-independent executable of jobman's size carries about 19,000 relocations that the
//! loader applies at every start, a third of the 2.7 ms of a no-op build of a few jobs; without
//! them, that build is as fast as ninja's (docs/PERFORMANCE.md, "A no-op build of 6 jobs").
//! Libraries, the stack and the heap are still placed at random.
//!
//! The cost: the executable's own code sits at a fixed address, which address-space layout
//! randomisation no longer moves. `JOBMAN_PIE=1 cargo install --path .` (or `cargo build`)
//! keeps it position-independent, for packagers whose rules require it.
//!
//! It also sets `JOBMAN_CODE`, a hash of jobman's code (every file under `src/` and
//! `Cargo.lock`): figures, the index page and the plan cache are keyed on it, so a jobman built
//! from other code redraws them and plans afresh even when its version number is the same.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

fn main() {
    let pie = std::env::var_os("JOBMAN_PIE").is_some_and(|v| !v.is_empty() && v != "0");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") && !pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rustc-env=JOBMAN_CODE={:016x}", code_hash());
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=JOBMAN_PIE");
}

/// Every file under `src/` and `Cargo.lock`, names and bytes, in a fixed order. SipHash with
/// `DefaultHasher::new()`'s fixed keys: the same code gives the same hash in every build by one
/// Rust release (another release may give another hash, which only redraws figures once).
fn code_hash() -> u64 {
    fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() { collect(&path, files) } else { files.push(path) }
        }
    }
    let mut files = vec![PathBuf::from("Cargo.lock")];
    collect(Path::new("src"), &mut files);
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in files {
        file.hash(&mut hasher);
        std::fs::read(&file).unwrap_or_default().hash(&mut hasher);
    }
    hasher.finish()
}
