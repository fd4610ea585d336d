//! The house as drawn in docs/ARCHITECTURE.md: every `crate::` path in `src/` points down the
//! layer order, never up or sideways into another stage, so data flows one way.

use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first: a module may use the modules of lower layers and its own.
const LAYERS: &[&str] =
    &["util", "key", "store", "jobfile", "graph", "plan", "exec", "products", "explain", "commands", "cli", "lib"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src/").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/exec/slurm/queue.rs` → `exec`).
fn layer_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("a file of src/");
    let first = relative.components().next().expect("a path").as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Each `crate::NAME` a line of code (not a comment) names.
fn crate_paths(line: &str) -> impl Iterator<Item = &str> {
    let code = if line.trim_start().starts_with("//") { "" } else { line };
    code.match_indices("crate::").filter_map(move |(at, _)| {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return None; // `jobman_crate::…`, not ours
        }
        let rest = &code[at + "crate::".len()..];
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
        Some(&rest[..end])
    })
}

#[test]
fn every_import_points_down_the_documented_layer_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let rank = |name: &str| LAYERS.iter().position(|l| *l == name);
    let mut wrong = Vec::new();
    for file in &files {
        let me = layer_of(&src, file);
        if me == "main" {
            continue; // the binary, above everything
        }
        let Some(my_rank) = rank(&me) else {
            wrong.push(format!("{}: module `{me}` has no place in the layer order", file.display()));
            continue;
        };
        let text = fs::read_to_string(file).expect("read a source file");
        for (n, line) in text.lines().enumerate() {
            for target in crate_paths(line) {
                match rank(target) {
                    Some(rank) if rank < my_rank || target == me => {}
                    Some(_) => wrong.push(format!(
                        "{}:{}: `{me}` uses `crate::{target}`, a layer above it: {}",
                        file.strip_prefix(root).unwrap_or(file).display(),
                        n + 1,
                        line.trim()
                    )),
                    None => wrong.push(format!("{}:{}: unknown module crate::{target}", file.display(), n + 1)),
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layer order:\n{}", wrong.join("\n"));
    assert!(files.len() > 40, "src/ was not read (found {} files)", files.len());
}

#[test]
fn the_layer_order_is_the_one_docs_architecture_documents() {
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURE.md"))
        .expect("read docs/ARCHITECTURE.md");
    let documented = doc
        .lines()
        .find_map(|line| line.strip_prefix("Layers, lowest first: "))
        .expect("docs/ARCHITECTURE.md has a line `Layers, lowest first: …`");
    let documented: Vec<&str> = documented.trim_end_matches('.').split(" < ").map(|l| l.trim_matches('`')).collect();
    assert_eq!(documented, LAYERS);
}

#[test]
fn an_import_that_points_up_is_caught() {
    let paths: Vec<&str> = crate_paths("use crate::commands::build::Finished;").collect();
    assert_eq!(paths, ["commands"]);
    assert_eq!(crate_paths("    // see crate::exec").count(), 0);
    assert_eq!(crate_paths("let x = crate::plan::parallel_map(y);").collect::<Vec<_>>(), ["plan"]);
}
