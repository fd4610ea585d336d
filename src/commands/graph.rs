//! `jobman graph`: the build's dependency graph with each node's state, as an indented tree or
//! as DOT for Graphviz. The jobs are one node unless `--jobs` asks for one node each.

use std::fmt::Write as _;
use std::path::PathBuf;

use petgraph::Direction;
use petgraph::graph::NodeIndex;

use crate::graph::{BuildGraph, Node};
use crate::jobfile::Jobfile;
use crate::jobfile::figure::FigureSpec;
use crate::plan::{self, Job};
use crate::products::{self, Freshness};
use crate::store::{SlotState, Store};
use crate::util::console;
use crate::util::text::plural;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// An indented tree from the products down to the jobs, as `cargo tree` prints.
    Text,
    /// Graphviz: `jobman graph --format dot | dot -Tsvg > graph.svg`.
    Dot,
}

pub struct GraphOptions {
    pub jobfile: PathBuf,
    pub format: GraphFormat,
    /// One node per job instead of one for all.
    pub jobs: bool,
}

/// How a node stands, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Fresh,
    Pending,
    Failed,
    Unsure,
}

/// A node as shown: what it is and how it stands.
struct Shown {
    what: String,
    state: String,
    standing: Standing,
}

pub fn show_graph(options: &GraphOptions) -> anyhow::Result<i32> {
    let jobfile = Jobfile::load(&options.jobfile)?;
    let figures: Vec<FigureSpec> = jobfile.figures.iter().map(|f| f.get_ref().clone()).collect();
    let store = Store::open(jobfile.workspace.jobs.clone(), jobfile.workspace.state.join("index"));
    let plans = plan::plan_all(&jobfile, &store)?;
    let report = plans.iter().find(|p| p.view.stage == jobfile.stage);
    let (jobs, waiting) = report.map_or((&[][..], 0), |p| (&p.jobs[..], p.waiting.len()));
    // Collapsed, the one job node stands for all of them.
    let graph = BuildGraph::new(if options.jobs { jobs.len() } else { 1 }, &figures);
    let everything = graph.select(&[], &figures)?;
    let products = products::explain_products(&jobfile, jobs, waiting, &everything);
    let freshness = |node: Node| products.iter().find(|p| p.node == node).map_or(Freshness::Unsure, |p| p.freshness);
    let root = &jobfile.root;
    let figures_dir = console::relative(&jobfile.workspace.figures, root);
    let shown: Vec<Shown> = graph
        .graph
        .node_indices()
        .map(|node| match graph.graph[node] {
            Node::Job(i) if options.jobs => job(&jobs[i]),
            Node::Job(_) => all_jobs(jobs, waiting),
            Node::Report => product(console::relative(&jobfile.workspace.report, root), freshness(Node::Report)),
            Node::Figure(i) => {
                product(format!("{figures_dir}/{}.{{png,pdf,svg}}", figures[i].name), freshness(Node::Figure(i)))
            }
            Node::Index => product(format!("{figures_dir}/index.html"), freshness(Node::Index)),
        })
        .collect();
    let text = match options.format {
        GraphFormat::Text => tree(&graph, &shown),
        GraphFormat::Dot => dot(&graph, &shown),
    };
    print!("{text}");
    Ok(0)
}

fn job(job: &Job) -> Shown {
    let (state, standing) = match &job.slot.state {
        SlotState::Done(_) => ("done", Standing::Fresh),
        SlotState::NotDone(record) => (record.status.as_str(), Standing::Failed),
        SlotState::Incomplete | SlotState::Absent => ("pending", Standing::Pending),
    };
    Shown { what: job.planned.name.clone(), state: state.to_string(), standing }
}

/// `12 jobs` with `10 done, 1 failed, 1 pending`.
/// The jobs as one node; `waiting`: more jobs, waiting for upstream jobs (pending, unkeyed).
fn all_jobs(jobs: &[Job], waiting: usize) -> Shown {
    let count = |f: &dyn Fn(&SlotState) -> bool| jobs.iter().filter(|j| f(&j.slot.state)).count();
    let done = count(&|s| matches!(s, SlotState::Done(_)));
    let not_done = count(&|s| matches!(s, SlotState::NotDone(_)));
    let pending = jobs.len() + waiting - done - not_done;
    let mut parts = vec![format!("{done} done")];
    if not_done > 0 {
        parts.push(format!("{not_done} failed"));
    }
    parts.push(format!("{pending} pending"));
    let standing = if not_done > 0 {
        Standing::Failed
    } else if pending > 0 {
        Standing::Pending
    } else {
        Standing::Fresh
    };
    Shown { what: plural(jobs.len() + waiting, "job"), state: parts.join(", "), standing }
}

fn product(what: String, freshness: Freshness) -> Shown {
    let (state, standing) = match freshness {
        Freshness::UpToDate => ("up to date", Standing::Fresh),
        Freshness::Stale => ("would rebuild", Standing::Pending),
        Freshness::Unsure => ("may rebuild", Standing::Unsure),
    };
    Shown { what, state: state.into(), standing }
}

/// What `node` reads, in graph order.
fn inputs(graph: &BuildGraph, node: NodeIndex) -> Vec<NodeIndex> {
    let mut inputs: Vec<NodeIndex> = graph.graph.neighbors_directed(node, Direction::Incoming).collect();
    inputs.sort();
    inputs
}

/// From each final product down to the jobs; a node already shown is marked `(*)` and not
/// expanded again, as `cargo tree` does.
fn tree(graph: &BuildGraph, shown: &[Shown]) -> String {
    fn walk(graph: &BuildGraph, shown: &[Shown], node: NodeIndex, prefix: &str, seen: &mut [bool], out: &mut String) {
        let inputs = inputs(graph, node);
        for (i, &input) in inputs.iter().enumerate() {
            let last = i + 1 == inputs.len();
            let Shown { what, state, .. } = &shown[input.index()];
            // Only a node with inputs of its own has something left out.
            let repeat =
                if seen[input.index()] && graph.graph.neighbors_directed(input, Direction::Incoming).next().is_some() {
                    " (*)"
                } else {
                    ""
                };
            let _ = writeln!(out, "{prefix}{}{what} ({state}){repeat}", if last { "└── " } else { "├── " });
            if !seen[input.index()] {
                seen[input.index()] = true;
                walk(graph, shown, input, &format!("{prefix}{}", if last { "    " } else { "│   " }), seen, out);
            }
        }
    }
    let mut out = String::new();
    let mut seen = vec![false; shown.len()];
    let finals = graph.graph.node_indices().filter(|&n| graph.graph.neighbors(n).next().is_none());
    for node in finals {
        let Shown { what, state, .. } = &shown[node.index()];
        let _ = writeln!(out, "{what} ({state})");
        seen[node.index()] = true;
        walk(graph, shown, node, "", &mut seen, &mut out);
    }
    out
}

/// Graphviz DOT: an edge from what is read to what reads it, coloured by state.
fn dot(graph: &BuildGraph, shown: &[Shown]) -> String {
    let mut out = String::from(
        "digraph jobman {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n",
    );
    for node in graph.graph.node_indices() {
        let Shown { what, state, standing } = &shown[node.index()];
        let colour = match standing {
            Standing::Fresh => "#d4edda",
            Standing::Pending => "#fff3cd",
            Standing::Failed => "#f8d7da",
            Standing::Unsure => "#e9ecef",
        };
        let label = format!("{}\\n{}", dot_escape(what), dot_escape(state));
        let _ = writeln!(out, "  n{} [label=\"{label}\", fillcolor=\"{colour}\"];", node.index());
    }
    for edge in graph.graph.raw_edges() {
        let _ = writeln!(out, "  n{} -> n{};", edge.source().index(), edge.target().index());
    }
    out.push_str("}\n");
    out
}

/// Text inside a DOT double-quoted string, shown as written.
fn dot_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            '\r' => {}
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_labels_keep_quotes_and_backslashes_literal() {
        assert_eq!(dot_escape(r#"lr="0.1"\n"#), r#"lr=\"0.1\"\\n"#);
        assert_eq!(dot_escape("a\nb"), "a\\nb");
    }
}
