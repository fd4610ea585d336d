//! The dependency graph of a build: every job, the report, each figure and the index page are
//! nodes; an edge runs from what is read to what reads it. Targets select nodes; a build makes
//! the selected nodes and everything they depend on, in dependency order.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};

use crate::jobfile::figure::{FigureKind, FigureSpec};
use crate::util::diagnostic::{Diagnostic, Diagnostics, did_you_mean};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Job(usize),
    Report,
    Figure(usize),
    Index,
}

pub struct BuildGraph {
    pub graph: DiGraph<Node, ()>,
    report: NodeIndex,
    figures: Vec<NodeIndex>,
    index: NodeIndex,
    /// Stage names: each a target that selects jobs (which of them, the caller decides).
    stages: Vec<String>,
}

/// What one build makes, as decided by its targets.
#[derive(Debug, Default, PartialEq)]
pub struct Selection {
    pub jobs: bool,
    pub report: bool,
    /// Indices into the Jobfile's figures.
    pub figures: Vec<usize>,
    pub index: bool,
}

impl BuildGraph {
    pub fn new(job_count: usize, figures: &[FigureSpec]) -> BuildGraph {
        let mut graph = DiGraph::with_capacity(job_count + figures.len() + 2, 2 * job_count + 2 * figures.len());
        let jobs: Vec<NodeIndex> = (0..job_count).map(|i| graph.add_node(Node::Job(i))).collect();
        let report = graph.add_node(Node::Report);
        let index = graph.add_node(Node::Index);
        for &job in &jobs {
            graph.add_edge(job, report, ());
        }
        graph.add_edge(report, index, ());
        let figure_nodes: Vec<NodeIndex> = figures
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let node = graph.add_node(Node::Figure(i));
                graph.add_edge(report, node, ());
                // A curve also reads each job's series file.
                if spec.kind == FigureKind::Curve {
                    for &job in &jobs {
                        graph.add_edge(job, node, ());
                    }
                }
                graph.add_edge(node, index, ());
                node
            })
            .collect();
        BuildGraph { graph, report, figures: figure_nodes, index, stages: Vec::new() }
    }

    /// The graph of a Jobfile with stages: their names are targets too.
    pub fn with_stages(mut self, stages: Vec<String>) -> BuildGraph {
        self.stages = stages;
        self
    }

    /// The nodes named by `targets` (`jobs`, `report`, `figures`, `figures/NAME`; none: all) and
    /// everything they depend on.
    pub fn select(&self, targets: &[String], figures: &[FigureSpec]) -> Result<Selection, Diagnostics> {
        let roots = self.roots(targets, figures)?;
        let mut selected = vec![false; self.graph.node_count()];
        let reversed = Reversed(&self.graph);
        for root in roots {
            if selected[root.index()] {
                continue;
            }
            let mut dfs = Dfs::new(reversed, root);
            while let Some(node) = dfs.next(reversed) {
                selected[node.index()] = true;
            }
        }
        Ok(self.selection(|node| selected[node.index()]))
    }

    /// The nodes named by `targets` alone, without what they depend on: what `jobman clean`
    /// removes. `figures` names every figure and the index page.
    pub fn named(&self, targets: &[String], figures: &[FigureSpec]) -> Result<Selection, Diagnostics> {
        let roots = self.roots(targets, figures)?;
        Ok(self.selection(|node| roots.contains(&node)))
    }

    /// The nodes `targets` name, each target checked; no targets name every node.
    fn roots(&self, targets: &[String], figures: &[FigureSpec]) -> Result<Vec<NodeIndex>, Diagnostics> {
        let mut roots: Vec<NodeIndex> = Vec::new();
        let mut diagnostics = Diagnostics::default();
        for target in targets {
            match target.trim_end_matches('/') {
                stage if self.stages.iter().any(|s| s == stage) => {
                    roots.extend(self.graph.node_indices().filter(|&n| matches!(self.graph[n], Node::Job(_))))
                }
                "jobs" => roots.extend(self.graph.node_indices().filter(|&n| matches!(self.graph[n], Node::Job(_)))),
                "report" => roots.push(self.report),
                "figures" => {
                    roots.extend(&self.figures);
                    roots.push(self.index);
                }
                other => match other.strip_prefix("figures/") {
                    Some(name) => match figures.iter().position(|f| f.name == name.trim_end_matches(".png")) {
                        Some(i) => roots.push(self.figures[i]),
                        None => diagnostics.push(
                            Diagnostic::new(format!("no figure named `{name}`")).help(
                                did_you_mean(name, figures.iter().map(|f| f.name.as_str()))
                                    .unwrap_or_else(|| format!("the figures are: {}", names(figures))),
                            ),
                        ),
                    },
                    None => {
                        let mut known = vec!["jobs", "report", "figures"];
                        known.extend(self.stages.iter().map(String::as_str));
                        let stages: String = self.stages.iter().map(|s| format!(", {s}")).collect();
                        diagnostics.push(Diagnostic::new(format!("unknown target `{other}`")).help(
                            did_you_mean(other, known).unwrap_or_else(|| {
                                format!("the targets are: jobs, report, figures, figures/NAME{stages}")
                            }),
                        ));
                    }
                },
            }
        }
        if targets.is_empty() {
            roots.extend(self.graph.node_indices());
        }
        diagnostics.into_result(roots)
    }

    fn selection(&self, chosen: impl Fn(NodeIndex) -> bool) -> Selection {
        let mut selection = Selection::default();
        for node in self.graph.node_indices().filter(|&n| chosen(n)) {
            match self.graph[node] {
                Node::Job(_) => selection.jobs = true,
                Node::Report => selection.report = true,
                Node::Figure(i) => selection.figures.push(i),
                Node::Index => selection.index = true,
            }
        }
        selection
    }
}

fn names(figures: &[FigureSpec]) -> String {
    figures.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
}
