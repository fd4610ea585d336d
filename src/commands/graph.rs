//! `jobman graph`: the build's dependency graph with each node's state, as an indented tree or
//! as DOT for Graphviz: each stage's jobs (one node per stage, or one per job with `--jobs`,
//! each joined to the upstream jobs it needs), the report, each figure and the index page.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::graph::{BuildGraph, Node};
use crate::plan::Job;
use crate::plan::Workspace;
use crate::products::{self, Freshness};
use crate::store::SlotState;
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
    let (Workspace { jobfile, .. }, plans) = Workspace::open_planned(&options.jobfile)?;
    let build = BuildGraph::of(&jobfile);
    let report = plans.iter().find(|p| p.stage == jobfile.stage);
    let (jobs, waiting) = report.map_or((&[][..], 0), |p| (&p.jobs[..], p.waiting.len()));
    let mode = products::Mode::Predict { jobs_first: products::unfinished(jobs, waiting) };
    let products = products::decide(jobfile.report_stage(), jobs, waiting, &build.select(&[])?, mode)?;
    let freshness = |node: Node| products.iter().find(|p| p.node == node).map_or(Freshness::Unsure, |p| p.freshness);
    let root = &jobfile.root;
    let figures_dir = console::relative(&jobfile.workspace.figures, root);

    // The build graph as shown: with `--jobs`, each stage node becomes its jobs.
    let mut shown: DiGraph<Shown, ()> = DiGraph::new();
    let mut shown_as: Vec<Vec<NodeIndex>> = Vec::new();
    for node in build.graph.node_indices() {
        let nodes = match build.graph[node] {
            Node::Stage(s) => {
                let plan = plans.iter().find(|p| p.stage == s);
                let (jobs, waiting) = plan.map_or((&[][..], 0), |p| (&p.jobs[..], p.waiting.len()));
                if options.jobs {
                    let mut nodes: Vec<NodeIndex> = jobs.iter().map(|j| shown.add_node(job(j))).collect();
                    if waiting > 0 {
                        nodes.push(shown.add_node(waiting_jobs(waiting)));
                    }
                    nodes
                } else {
                    vec![shown.add_node(stage(jobfile.stage(s).name(), jobs, waiting))]
                }
            }
            Node::Report => {
                vec![
                    shown
                        .add_node(product(console::relative(&jobfile.workspace.report, root), freshness(Node::Report))),
                ]
            }
            Node::Figure(i) => vec![shown.add_node(product(
                format!("{figures_dir}/{}.{{png,pdf,svg}}", jobfile.figures[i].get_ref().name),
                freshness(Node::Figure(i)),
            ))],
            Node::Index => vec![shown.add_node(product(format!("{figures_dir}/index.html"), freshness(Node::Index)))],
        };
        shown_as.push(nodes);
    }
    for edge in build.graph.raw_edges() {
        let (from, to) = (edge.source(), edge.target());
        if let (Node::Stage(upstream), Node::Stage(downstream), true) =
            (build.graph[from], build.graph[to], options.jobs)
        {
            // Job to job: each downstream job from the upstream jobs it needs; the downstream jobs
            // still waiting (one node, after the jobs) from every upstream job.
            let (from, to) = (&shown_as[from.index()], &shown_as[to.index()]);
            let upstream = plans.iter().find(|p| p.stage == upstream).map_or(&[][..], |p| &p.jobs[..]);
            let node_of: HashMap<&str, NodeIndex> =
                upstream.iter().zip(from).map(|(job, &node)| (job.slot.id.as_str(), node)).collect();
            let jobs = plans.iter().find(|p| p.stage == downstream).map_or(&[][..], |p| &p.jobs[..]);
            for (job, &node) in jobs.iter().zip(to) {
                for id in job.planned.needs.iter().flat_map(|needs| needs.upstream_ids()) {
                    if let Some(&upstream_node) = node_of.get(id) {
                        shown.add_edge(upstream_node, node, ());
                    }
                }
            }
            if let Some(&waiting) = to.get(jobs.len()) {
                for &upstream_node in &from[..upstream.len()] {
                    shown.add_edge(upstream_node, waiting, ());
                }
            }
            continue;
        }
        for &a in &shown_as[from.index()] {
            for &b in &shown_as[to.index()] {
                shown.add_edge(a, b, ());
            }
        }
    }
    let text = match options.format {
        GraphFormat::Text => tree(&shown),
        GraphFormat::Dot => dot(&shown),
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

/// A stage's jobs as one node, `12 jobs` (`train: 12 jobs` with stages) with `10 done, 1 failed,
/// 1 pending`; `waiting`: more jobs, waiting for upstream jobs (pending, unkeyed).
fn stage(name: Option<&str>, jobs: &[Job], waiting: usize) -> Shown {
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
    let count = plural(jobs.len() + waiting, "job");
    Shown {
        what: name.map_or_else(|| count.clone(), |name| format!("{name}: {count}")),
        state: parts.join(", "),
        standing,
    }
}

/// Jobs waiting for upstream jobs, as one node among a stage's jobs.
fn waiting_jobs(waiting: usize) -> Shown {
    Shown {
        what: format!("{} waiting for upstream jobs", plural(waiting, "job")),
        state: "pending".into(),
        standing: Standing::Pending,
    }
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
fn inputs(graph: &DiGraph<Shown, ()>, node: NodeIndex) -> Vec<NodeIndex> {
    let mut inputs: Vec<NodeIndex> = graph.neighbors_directed(node, Direction::Incoming).collect();
    inputs.sort();
    inputs
}

/// From each final product down to the jobs; a node already shown is marked `(*)` and not
/// expanded again, as `cargo tree` does.
fn tree(graph: &DiGraph<Shown, ()>) -> String {
    fn walk(graph: &DiGraph<Shown, ()>, node: NodeIndex, prefix: &str, seen: &mut [bool], out: &mut String) {
        let inputs = inputs(graph, node);
        for (i, &input) in inputs.iter().enumerate() {
            let last = i + 1 == inputs.len();
            let Shown { what, state, .. } = &graph[input];
            // Only a node with inputs of its own has something left out.
            let repeat = if seen[input.index()] && graph.neighbors_directed(input, Direction::Incoming).next().is_some()
            {
                " (*)"
            } else {
                ""
            };
            let _ = writeln!(out, "{prefix}{}{what} ({state}){repeat}", if last { "└── " } else { "├── " });
            if !seen[input.index()] {
                seen[input.index()] = true;
                walk(graph, input, &format!("{prefix}{}", if last { "    " } else { "│   " }), seen, out);
            }
        }
    }
    let mut out = String::new();
    let mut seen = vec![false; graph.node_count()];
    let finals = graph.node_indices().filter(|&n| graph.neighbors(n).next().is_none());
    for node in finals {
        let Shown { what, state, .. } = &graph[node];
        let _ = writeln!(out, "{what} ({state})");
        seen[node.index()] = true;
        walk(graph, node, "", &mut seen, &mut out);
    }
    out
}

/// Graphviz DOT: an edge from what is read to what reads it, coloured by state.
fn dot(graph: &DiGraph<Shown, ()>) -> String {
    let mut out = String::from(
        "digraph jobman {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n",
    );
    for node in graph.node_indices() {
        let Shown { what, state, standing } = &graph[node];
        let colour = match standing {
            Standing::Fresh => "#d4edda",
            Standing::Pending => "#fff3cd",
            Standing::Failed => "#f8d7da",
            Standing::Unsure => "#e9ecef",
        };
        let label = format!("{}\\n{}", dot_escape(what), dot_escape(state));
        let _ = writeln!(out, "  n{} [label=\"{label}\", fillcolor=\"{colour}\"];", node.index());
    }
    for edge in graph.raw_edges() {
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
