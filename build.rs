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

fn main() {
    let pie = std::env::var_os("JOBMAN_PIE").is_some_and(|v| !v.is_empty() && v != "0");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") && !pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=JOBMAN_PIE");
}
