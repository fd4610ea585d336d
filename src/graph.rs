//! The dependency graph of a build, and the one place that says what a target means.
//!
//! Each stage's jobs, the report, each figure and the index page are nodes; an edge runs from
//! what is read to what reads it: a stage to the stages that need it, the report's stage to the
//! report (and to each curve figure, which reads its jobs' series), the report to each figure,
//! the report and the figures to the index. A Jobfile without `[stage.NAME]` tables has one
//! stage. Targets select nodes; a build makes the selected nodes and everything they depend on.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};

use crate::jobfile::Jobfile;
use crate::jobfile::figure::FigureKind;
use crate::util::diagnostic::{Diagnostic, Diagnostics, did_you_mean};

/// The targets every Jobfile has, besides its stages and `figures/NAME`.
const FIXED_TARGETS: &[&str] = &["jobs", "report", "figures"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// The jobs of one stage (index into the Jobfile's stages; 0 without stages).
    Stage(usize),
    Report,
    Figure(usize),
    Index,
}

pub struct BuildGraph {
    pub graph: DiGraph<Node, ()>,
    stages: Vec<NodeIndex>,
    /// The stages' names; empty without `[stage.NAME]` tables.
    stage_names: Vec<String>,
    report: NodeIndex,
    figures: Vec<NodeIndex>,
    figure_names: Vec<String>,
    index: NodeIndex,
}

/// What one command acts on, as decided by its targets.
#[derive(Debug, Default, PartialEq)]
pub struct Selection {
    /// Per stage (one without stages): whether its jobs are selected.
    pub stages: Vec<bool>,
    pub report: bool,
    /// Indices into the Jobfile's figures.
    pub figures: Vec<usize>,
    pub index: bool,
}

impl Selection {
    /// Whether any job is selected.
    pub fn jobs(&self) -> bool {
        self.stages.iter().any(|&s| s)
    }

    /// Whether the report, a figure or the index page is selected.
    pub fn products(&self) -> bool {
        self.report || !self.figures.is_empty() || self.index
    }
}

impl BuildGraph {
    pub fn of(jobfile: &Jobfile) -> BuildGraph {
        let stage_names: Vec<String> = jobfile.stage_views().filter_map(|s| s.name().map(String::from)).collect();
        let mut graph = DiGraph::new();
        let stages: Vec<NodeIndex> = (0..jobfile.stages.len()).map(|s| graph.add_node(Node::Stage(s))).collect();
        for (s, stage) in jobfile.stages.iter().enumerate() {
            for need in &stage.needs {
                if let Some(upstream) = jobfile.stage_index(need.stage.get_ref()) {
                    graph.add_edge(stages[upstream], stages[s], ());
                }
            }
        }
        let report_stage = stages[jobfile.stage];
        let report = graph.add_node(Node::Report);
        let index = graph.add_node(Node::Index);
        graph.add_edge(report_stage, report, ());
        graph.add_edge(report, index, ());
        let figures = jobfile
            .figures
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let node = graph.add_node(Node::Figure(i));
                graph.add_edge(report, node, ());
                if spec.get_ref().kind == FigureKind::Curve {
                    graph.add_edge(report_stage, node, ());
                }
                graph.add_edge(node, index, ());
                node
            })
            .collect();
        let figure_names = jobfile.figures.iter().map(|f| f.get_ref().name.clone()).collect();
        BuildGraph { graph, stages, stage_names, report, figures, figure_names, index }
    }

    /// Whether `argument` is a target (`jobs`, a stage, `report`, `figures`, `figures/NAME`),
    /// rather than the name of a job.
    pub fn is_target(&self, argument: &str) -> bool {
        let argument = argument.trim_end_matches('/');
        FIXED_TARGETS.contains(&argument)
            || argument.starts_with("figures/")
            || self.stage_names.iter().any(|s| s == argument)
    }

    /// The nodes named by `targets` (none: all) and everything they depend on: what a build of
    /// them makes.
    pub fn select(&self, targets: &[String]) -> Result<Selection, Diagnostics> {
        let roots = self.roots(targets)?;
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

    /// The nodes named by `targets` alone (none: all), without what they depend on: what
    /// `jobman clean` removes. `figures` names every figure and the index page.
    pub fn named(&self, targets: &[String]) -> Result<Selection, Diagnostics> {
        let roots = self.roots(targets)?;
        Ok(self.selection(|node| roots.contains(&node)))
    }

    /// The nodes `targets` name, each target checked; no targets name every node.
    fn roots(&self, targets: &[String]) -> Result<Vec<NodeIndex>, Diagnostics> {
        let mut roots: Vec<NodeIndex> = Vec::new();
        let mut diagnostics = Diagnostics::default();
        for target in targets {
            let target = target.trim_end_matches('/');
            if let Some(s) = self.stage_names.iter().position(|s| s == target) {
                roots.push(self.stages[s]);
                continue;
            }
            match target {
                "jobs" => roots.extend(&self.stages),
                "report" => roots.push(self.report),
                "figures" => {
                    roots.extend(&self.figures);
                    roots.push(self.index);
                }
                other => match other.strip_prefix("figures/") {
                    Some(name) => match self.figure_names.iter().position(|f| f == name.trim_end_matches(".png")) {
                        Some(i) => roots.push(self.figures[i]),
                        None => diagnostics.push(
                            Diagnostic::new(format!("no figure named `{name}`")).help(
                                did_you_mean(name, self.figure_names.iter().map(String::as_str))
                                    .unwrap_or_else(|| format!("the figures are: {}", self.figure_names.join(", "))),
                            ),
                        ),
                    },
                    None => {
                        let known = FIXED_TARGETS.iter().copied().chain(self.stage_names.iter().map(String::as_str));
                        let stages: String = self.stage_names.iter().map(|s| format!(", {s}")).collect();
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
        let mut selection = Selection { stages: vec![false; self.stages.len()], ..Selection::default() };
        for node in self.graph.node_indices().filter(|&n| chosen(n)) {
            match self.graph[node] {
                Node::Stage(s) => selection.stages[s] = true,
                Node::Report => selection.report = true,
                Node::Figure(i) => selection.figures.push(i),
                Node::Index => selection.index = true,
            }
        }
        selection
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::diagnostic::Source;

    fn graph(text: &str) -> BuildGraph {
        let source = Source { path: "Jobfile.toml".into(), text: text.into() };
        BuildGraph::of(&crate::jobfile::parse(&source, std::path::Path::new("/w")).unwrap())
    }

    const STAGES: &str = r#"
[params]
lr = [1, 2]
[stage.train]
command = "true"
[stage.eval]
needs = ["train"]
command = "true"
[stage.side]
command = "true"
[report]
stage = "eval"
[[figure]]
name = "acc"
kind = "line"
x = "lr"
y = "lr"
"#;

    fn select(graph: &BuildGraph, targets: &[&str]) -> Selection {
        graph.select(&targets.iter().map(|t| t.to_string()).collect::<Vec<_>>()).unwrap()
    }

    /// The names of the stages selected.
    fn stages(graph: &BuildGraph, selection: &Selection) -> Vec<String> {
        let mut names: Vec<String> =
            graph.stage_names.iter().zip(&selection.stages).filter(|(_, s)| **s).map(|(n, _)| n.clone()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_stage_target_builds_it_and_the_stages_it_needs_and_no_product() {
        let graph = graph(STAGES);
        assert_eq!(stages(&graph, &select(&graph, &["eval"])), ["eval", "train"]);
        assert_eq!(stages(&graph, &select(&graph, &["train"])), ["train"]);
        assert!(!select(&graph, &["eval"]).products());
    }

    #[test]
    fn a_product_target_builds_the_report_stage_and_what_it_needs() {
        let graph = graph(STAGES);
        let figure = select(&graph, &["figures/acc"]);
        assert_eq!(stages(&graph, &figure), ["eval", "train"]);
        assert!(figure.report && figure.figures == [0] && !figure.index);
        assert_eq!(stages(&graph, &select(&graph, &[])), ["eval", "side", "train"]);
        assert_eq!(stages(&graph, &select(&graph, &["jobs"])), ["eval", "side", "train"]);
    }

    #[test]
    fn targets_are_told_apart_from_job_names() {
        let graph = graph(STAGES);
        for target in ["jobs", "report", "figures/", "figures/acc", "eval", "side"] {
            assert!(graph.is_target(target), "{target}");
        }
        assert!(!graph.is_target("train-lr1"));
        let unknown = graph.select(&["evla".to_string()]).unwrap_err().to_string();
        assert!(unknown.contains("unknown target `evla`") && unknown.contains("eval"), "{unknown}");
    }
}
