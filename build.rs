//! Links the `jobman` executable at a fixed address on Linux (`-no-pie`).
//!
//! A position-independent executable of jobman's size carries about 19,000 relocations that the
//! loader applies at every start, a third of the 2.7 ms of a no-op build of a few jobs; without
//! them, that build is as fast as ninja's (docs/PERFORMANCE.md, "A no-op build of 6 jobs").
//! Libraries, the stack and the heap are still placed at random.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
