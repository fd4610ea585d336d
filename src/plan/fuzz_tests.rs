//! Mutated Jobfiles and templates, as a user's typos and stray characters would make them:
//! reading, expanding and rendering never panic and end within a bounded time, whatever the
//! input. A few thousand cases in `cargo test`; `PROPTEST_CASES=100000 cargo test fuzz` for more.

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::jobfile::Jobfile;
use crate::plan::render::Renderer;
use crate::plan::sweep;
use crate::util::diagnostic::Source;

/// Valid inputs to start from: a sweep with a template, stages with fan-in, random search.
const SEEDS: &[&str] = &[
    r#"
[params]
hidden = [4, 8]
lr = { logspace = [-3, -1, 3] }
seed = { range = [0, 2] }
[sweep]
where = "hidden > 4 or lr < 0.01"
include = [{ hidden = 16, lr = 0.5, seed = 0 }]
[[template]]
src = "t.j2"
target = "cfg-{{ hidden }}.txt"
[job]
name = "h{{hidden}}-lr{{lr}}-s{{seed}}"
command = "python3 train.py --lr {{ lr }} > out.txt"
results = "results.json"
timeout = "10m"
env = ["HOME"]
[report]
columns = ["hidden", "lr", "acc"]
[[figure]]
name = "acc"
kind = "line"
x = "lr"
y = "acc"
group = "hidden"
"#,
    r#"
[params]
lr = [1, 2]
seed = [0, 1]
[stage.train]
name = "train-lr{{lr}}-s{{seed}}"
command = "echo {{ job.name }}"
outputs = ["w.txt"]
[stage.eval]
needs = ["train"]
command = "cat {{ needs.train.dir }}/w.txt"
[stage.eval.params]
noise = [0, 5]
[stage.ensemble]
needs = [{ stage = "train", group_by = ["lr"] }]
command = "echo {% for t in needs.train %}{{ t.name }} {% endfor %}"
[report]
stage = "eval"
"#,
    r#"
[params]
lr = { loguniform = [1e-4, 1e-1] }
drop = { uniform = [0, 0.5] }
width = { choice = [64, 128] }
[sweep]
samples = 4
seed = 7
[job]
command = "run --lr {{ lr }} --drop {{ drop }} --width {{ width }}"
gpus = "{{ 1 if width > 64 else 0 }}"
[executor.slurm]
time = "{{ '01:00:00' if width > 64 else '00:10:00' }}"
mem = "4G"
"#,
];

const TEMPLATE: &str =
    "hidden = {{ hidden }}\n{% if lr < 0.01 %}slow{% else %}fast{% endif %}\n{{ job.id }} {{ job.name | upper }}\n";

/// Tokens a user could type by mistake, ASCII or not.
const TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'",
    "=",
    ",",
    ".",
    "..",
    "/",
    "\n",
    "#",
    "\\",
    "|",
    "\u{a0}",
    "é",
    "😀",
    "ü",
    "\u{200b}",
    "\t",
    "-1",
    "1e308",
    "nan",
    "true",
    "[[figure]]",
    "[stage.x]",
    "needs",
    "job",
    "where",
    "range",
    "logspace",
    "samples",
    "../",
    "/tmp/x",
    "{{ é }}",
    "{% for %}",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Flip a byte to another (the text may stop being UTF-8: read lossily, as a file would be).
    Byte(usize, u8),
    Insert(usize, usize),
    DeleteLine(usize),
    DuplicateLine(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Byte(at, b)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, t)| Mutation::Insert(at, t)),
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Byte(at, b) => {
                if !bytes.is_empty() {
                    bytes[at % len] = b;
                }
            }
            Mutation::Insert(at, t) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, TOKENS[t].bytes());
            }
            Mutation::DeleteLine(n) | Mutation::DuplicateLine(n) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = text.lines().collect();
                if !lines.is_empty() {
                    let i = n % lines.len();
                    if matches!(m, Mutation::DeleteLine(_)) {
                        lines.remove(i);
                    } else {
                        lines.insert(i, lines[i]);
                    }
                }
                bytes = lines.join("\n").into_bytes();
            }
            Mutation::Truncate(at) => bytes.truncate(at % len),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Reads, expands and renders (a few jobs of each stage), as `build -n` would before running.
fn read_expand_render(root: &Path, jobfile: &str) {
    let source = Source { path: "Jobfile.toml".into(), text: jobfile.into() };
    let Ok(jobfile) = crate::jobfile::parse(&source, root) else { return };
    let _ = crate::plan::needs::check_matches(&jobfile);
    for view in Jobfile::stage_views(&jobfile) {
        let Ok(points) = sweep::expand(view) else { continue };
        let Ok(renderer) = Renderer::new(view) else { continue };
        for (index, params) in points.into_iter().enumerate().take(3) {
            let _ = renderer.plan(index, params, None);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_mutated_jobfiles_and_templates_never_panic_and_end_quickly(
        seed in 0..SEEDS.len(),
        jobfile_mutations in prop::collection::vec(mutation(), 0..4),
        template_mutations in prop::collection::vec(mutation(), 0..3),
    ) {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::create_dir_all(dir.path().join("templates")).expect("templates folder");
        std::fs::write(dir.path().join("templates/t.j2"), mutate(TEMPLATE, &template_mutations)).expect("template");
        let jobfile = mutate(SEEDS[seed], &jobfile_mutations);
        let started = Instant::now();
        read_expand_render(dir.path(), &jobfile);
        prop_assert!(started.elapsed() < Duration::from_secs(20), "took {:?} on:\n{jobfile}", started.elapsed());
    }
}
