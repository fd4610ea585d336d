//! Stage 2: expand the Jobfile's parameters into one [`ParamSet`] per job, in a documented,
//! deterministic order.
//!
//! Order: the Cartesian product of the axes in declaration order, the first axis varying slowest
//! (as nested `for` loops written top to bottom). A `zip` group is one axis placed where its first
//! member is declared. Then the `include` points in the order written.
//!
//! Random search: with `[sweep] samples = N`, every grid point (of the product, and each `include`
//! point) becomes N points, samples inner: grid point 0 with samples 0..N, then grid point 1, …
//! Sample k draws each sampled parameter from a hash of (seed, k, name) alone, so growing N keeps
//! the first points, and every grid point gets the same draws (a paired comparison). Samples of
//! one grid point that drew the same values are one point, kept at the first.
//!
//! The `where` filter applies to every point except the `include` ones.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use crate::jobfile::expr::{Origin, ParamFilter};
use crate::jobfile::{Distribution, ParamSet, StageView, display_value};
use crate::util::diagnostic::{Diagnostic, Diagnostics};
/// A point's values, hashed and compared as JSON values (`0.0` and `-0.0` are the same value)
/// without copying them: at 100,000 points, writing each point out as a string key was a tenth
/// of `jobman status`.
struct PointValues<'a>(&'a ParamSet);

impl std::hash::Hash for PointValues<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.0.iter().for_each(|(_, value)| value.hash(state));
    }
}

impl PartialEq for PointValues<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.0.iter().map(|(_, v)| v).eq(other.0.0.iter().map(|(_, v)| v))
    }
}

impl Eq for PointValues<'_> {}

/// The grid's size (the product of the axes' lengths), after checking that the stage's jobs
/// (grid and `include` points, each drawn `samples` times) are at most `[workspace] max_jobs`:
/// counted before a single point is built, so that a grid of ten axes of ten values is a
/// mistake shown at once, by every command, not memory exhausted.
fn count_points(stage: StageView<'_>, ordered: &[Vec<usize>], lengths: &[usize]) -> Result<usize, Diagnostics> {
    let grid: u128 = lengths.iter().fold(1u128, |n, &len| n.saturating_mul(len as u128));
    let jobs = jobs_of_grid(stage, grid);
    let samples = stage.sweep.sampling.map_or(1, |s| s.samples as u128);
    let limit = stage.workspace.max_jobs;
    if jobs <= u128::from(limit) {
        return Ok(grid as usize);
    }
    // The first of the widest axes.
    let widest = ordered.iter().zip(lengths).rev().max_by_key(|(_, len)| **len).map(|(d, _)| &stage.params[d[0]]);
    let axes: Vec<String> = lengths.iter().map(usize::to_string).collect();
    let count = if jobs == u128::MAX { "more than 10^38".to_string() } else { jobs.to_string() };
    let drawn = if samples > 1 { format!(", each point drawn {samples} times") } else { String::new() };
    let mut diagnostic = Diagnostic::new(format!(
        "this sweep makes {count} jobs, more than `[workspace] max_jobs` allows ({limit} per stage)"
    ))
    .help(format!(
        "the axes have {} values{drawn}; use fewer values, `zip` axes that go together, or `[sweep] samples` for a random search; if you mean it, raise `max_jobs` in [workspace]",
        axes.join(" × ")
    ));
    if let Some(param) = widest {
        diagnostic = diagnostic.at(&stage.source, param.span.clone(), format!("{} values", param.values.len()));
    }
    Err(diagnostic.into())
}

/// The stage's jobs when its grid has `grid` points: each grid and `include` point drawn
/// `samples` times.
fn jobs_of_grid(stage: StageView<'_>, grid: u128) -> u128 {
    let samples = stage.sweep.sampling.map_or(1, |s| s.samples as u128);
    grid.saturating_add(stage.sweep.include.len() as u128).saturating_mul(samples)
}

/// At most how many jobs the stage has, from its axes' lengths alone (zipped axes and `where`
/// make fewer): cheap enough to decide whether a sweep is worth a second thread.
pub fn jobs_at_most(stage: StageView<'_>) -> u128 {
    let axes = stage.params.iter().filter(|p| p.swept && p.distribution.is_none());
    jobs_of_grid(stage, axes.fold(1u128, |n, p| n.saturating_mul(p.values.len() as u128)))
}

/// Expands the sweep. Fails with diagnostics on zip length mismatches, filter errors,
/// incomplete include points and duplicate points.
pub fn expand(stage: StageView<'_>) -> Result<Vec<ParamSet>, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let source = &stage.source;
    let swept: Vec<usize> = (0..stage.params.len()).filter(|&i| stage.params[i].swept).collect();

    // Dimensions of the product: lists of parameter indices that advance together.
    let mut dimensions: Vec<Vec<usize>> = Vec::new();
    let mut zipped: HashMap<usize, usize> = HashMap::new();
    for group in &stage.sweep.zip {
        let members: Vec<usize> =
            group.get_ref().iter().filter_map(|name| stage.params.iter().position(|p| &p.name == name)).collect();
        if let Some(&i) = members.iter().find(|&&i| stage.params[i].distribution.is_some()) {
            diagnostics.push(
                Diagnostic::new(format!("`{}` is sampled and cannot be zipped", stage.params[i].name))
                    .at(source, group.span(), "zip groups advance listed values together")
                    .help("each sample already draws all sampled parameters together; remove it from the group"),
            );
            continue;
        }
        let lengths: Vec<usize> = members.iter().map(|&i| stage.params[i].values.len()).collect();
        if lengths.windows(2).any(|w| w[0] != w[1]) {
            let detail = members
                .iter()
                .map(|&i| format!("{} has {}", stage.params[i].name, stage.params[i].values.len()))
                .collect::<Vec<_>>()
                .join(", ");
            diagnostics.push(
                Diagnostic::new("zipped parameters must have the same number of values")
                    .at(source, group.span(), detail)
                    .help("give each parameter of a zip group as many values as the others"),
            );
        }
        for &member in &members {
            if let Some(previous) = zipped.insert(member, dimensions.len())
                && previous != dimensions.len()
            {
                diagnostics.push(Diagnostic::new(format!("`{}` is in two zip groups", stage.params[member].name)).at(
                    source,
                    group.span(),
                    "a parameter may be zipped with one group only",
                ));
            }
        }
        dimensions.push(members);
    }
    // Place each dimension at its first declared member; unzipped axes are dimensions of their own.
    let mut ordered: Vec<Vec<usize>> = Vec::new();
    for &i in swept.iter().filter(|&&i| stage.params[i].distribution.is_none()) {
        match zipped.get(&i) {
            Some(&d) => {
                if dimensions[d].iter().min() == Some(&i) {
                    ordered.push(dimensions[d].clone());
                }
            }
            None => ordered.push(vec![i]),
        }
    }
    for &i in zipped.keys() {
        if !stage.params[i].swept {
            diagnostics.push(
                Diagnostic::new(format!("`{}` is a constant and cannot be zipped", stage.params[i].name)).at(
                    source,
                    stage.params[i].span.clone(),
                    "expected a list of values",
                ),
            );
        }
    }

    let names: Vec<&str> = stage.params.iter().map(|p| p.name.as_str()).collect();
    let filter = stage.sweep.filter.as_ref().and_then(|text| {
        let origin = Origin { source, span: text.span() };
        ParamFilter::compile(text.get_ref(), &names, &origin).map_err(|d| diagnostics.push(d)).ok()
    });
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }

    // Grid points, each with the names of the sampled parameters it fixes itself (an `include`
    // point may give them); the others are drawn for it.
    let mut grid: Vec<(ParamSet, Vec<&str>)> = Vec::new();
    // One allocation per name, shared by every point: at 10⁶ points, a copy each was a tenth of
    // the memory of a plan.
    let shared: Vec<Arc<str>> = stage.params.iter().map(|p| Arc::from(p.name.as_str())).collect();
    let lengths: Vec<usize> = ordered.iter().map(|d| stage.params[d[0]].values.len()).collect();
    let total = count_points(stage, &ordered, &lengths)?;
    let mut position = vec![0usize; ordered.len()];
    let mut chosen: Vec<usize> = vec![0; stage.params.len()];
    for _ in 0..total {
        for (dimension, &at) in ordered.iter().zip(&position) {
            for &param in dimension {
                chosen[param] = at;
            }
        }
        let set = ParamSet(
            stage
                .params
                .iter()
                .zip(&shared)
                .zip(&chosen)
                .map(|((p, name), &at)| (name.clone(), p.values.get(at).cloned().unwrap_or(Value::Null)))
                .collect(),
        );
        grid.push((set, Vec::new()));
        // The odometer: the last dimension turns fastest.
        for d in (0..position.len()).rev() {
            position[d] += 1;
            if position[d] < lengths[d] {
                break;
            }
            position[d] = 0;
        }
    }
    let from_product = grid.len();

    for include in &stage.sweep.include {
        let given = include.get_ref();
        let missing: Vec<&str> = swept
            .iter()
            .filter(|&&i| stage.params[i].distribution.is_none())
            .map(|&i| stage.params[i].name.as_str())
            .filter(|name| !given.iter().any(|(n, _)| n == name))
            .collect();
        if !missing.is_empty() {
            diagnostics.push(
                Diagnostic::new("an `include` point must give every swept parameter")
                    .at(source, include.span(), format!("missing {}", missing.join(", ")))
                    .help(
                        "constants may be left out; they take their declared value, and sampled parameters are drawn",
                    ),
            );
            continue;
        }
        let set = ParamSet(
            stage
                .params
                .iter()
                .zip(&shared)
                .map(|(p, name)| {
                    let value = given
                        .iter()
                        .find(|(n, _)| *n == p.name)
                        .map_or_else(|| p.values.first().cloned().unwrap_or(Value::Null), |(_, v)| v.clone());
                    (name.clone(), value)
                })
                .collect(),
        );
        let fixed = given.iter().map(|(n, _)| n.as_str()).collect();
        grid.push((set, fixed));
    }

    let sampled: Vec<usize> = swept.iter().copied().filter(|&i| stage.params[i].distribution.is_some()).collect();
    // Sample k's draws, the same for every grid point.
    let draws: Vec<Vec<Value>> = match stage.sweep.sampling {
        Some(sampling) => (0..sampling.samples)
            .map(|k| {
                sampled
                    .iter()
                    .map(|&i| {
                        let param = &stage.params[i];
                        let distribution = param.distribution.as_ref().expect("sampled params have a distribution");
                        draw(distribution, sampling.seed, k, &param.name)
                    })
                    .collect()
            })
            .collect(),
        None => vec![Vec::new()],
    };

    let mut points = Vec::with_capacity(grid.len() * draws.len());
    for (at, (grid_point, fixed)) in grid.into_iter().enumerate() {
        // Samples of one grid point that drew the same values are one job (likely with `choice`
        // and `randint`): the first sample keeps it, so growing `samples` never changes it.
        let mut drawn: HashSet<Vec<Value>> = HashSet::new();
        let mut grid_point = grid_point;
        for (k, values) in draws.iter().enumerate() {
            let mut set = if k + 1 < draws.len() { grid_point.clone() } else { std::mem::take(&mut grid_point) };
            for (&i, value) in sampled.iter().zip(values) {
                if !fixed.contains(&stage.params[i].name.as_str()) {
                    set.0[i].1 = value.clone();
                }
            }
            if !sampled.is_empty() && !drawn.insert(sampled.iter().map(|&i| set.0[i].1.clone()).collect()) {
                continue;
            }
            // `include` points are added as written: the filter does not apply to them.
            let keep = match &filter {
                Some(filter) if at < from_product => filter.matches(&set.nested()).map_err(|message| {
                    let text = stage.sweep.filter.as_ref().expect("a filter has its text");
                    Diagnostic::new(format!("the `where` filter failed for {}", set.describe())).at(
                        source,
                        text.span(),
                        message,
                    )
                })?,
                _ => true,
            };
            if keep {
                points.push(set);
            }
        }
    }

    // A filter over params that keeps no job is a mistake (a number compared with a string,
    // say); one that reads no param (`where = "false"`) says what it means.
    if points.is_empty()
        && from_product > 0
        && let (Some(filter), Some(text)) = (&filter, &stage.sweep.filter)
        && !filter.names().is_empty()
    {
        let numeric: Vec<&str> = stage
            .params
            .iter()
            .filter(|p| filter.names().contains(p.name.split('.').next().unwrap_or_default()))
            .filter(|p| !p.values.is_empty() && p.values.iter().all(Value::is_number))
            .map(|p| p.name.as_str())
            .collect();
        let help = match numeric.first() {
            Some(name) => format!(
                "`{name}` is a number in every job: compare it with a number (`{name} == 1`), not a string (`{name} == '1'`)"
            ),
            None => "check the names and values it compares".into(),
        };
        return Err(Diagnostic::new(format!(
            "the `where` filter keeps no job: it rejects all {from_product} points of the grid"
        ))
        .at(source, text.span(), "no job passes")
        .help(help)
        .into());
    }

    // Every point has the same names in the same order: comparing the values is enough.
    let mut seen: HashMap<PointValues<'_>, usize> = HashMap::with_capacity(points.len());
    for (index, set) in points.iter().enumerate() {
        if let Some(first) = seen.insert(PointValues(set), index) {
            let message = format!("jobs {first} and {index} have the same parameters: {}", set.describe());
            diagnostics.push(repeated_point(stage, set, message));
            break;
        }
    }
    diagnostics.into_result(points)
}

/// Two jobs with the same params, shown where the repetition is written: an axis that lists a
/// value twice, or an `include` point that repeats a job.
fn repeated_point(stage: StageView<'_>, set: &ParamSet, message: String) -> Diagnostic {
    let diagnostic = Diagnostic::new(message);
    for param in stage.params.iter().filter(|p| p.swept) {
        let values = &param.values;
        if let Some(repeated) = values.iter().enumerate().find(|&(i, v)| values[..i].contains(v)).map(|(_, v)| v) {
            return diagnostic
                .at(&stage.source, param.span.clone(), format!("`{}` is listed twice", display_value(repeated)))
                .help("remove the repeated value");
        }
    }
    let repeats = |point: &Vec<(String, Value)>| point.iter().all(|(name, value)| set.get(name) == Some(value));
    match stage.sweep.include.iter().find(|point| repeats(point.get_ref())) {
        Some(point) => diagnostic
            .at(&stage.source, point.span(), "this point is already a job of the sweep")
            .help("remove the repeated `include` point"),
        None => diagnostic.help("remove the repeated value from its axis or the repeated `include` point"),
    }
}

/// Sample `k` of the parameter `name`: a function of the seed, `k` and the name alone, so a
/// sample never depends on how many there are, on the other parameters or on the grid point.
/// Only integer arithmetic, IEEE-exact `+`/`*` and libm's portable `log`/`exp` are used, so every
/// platform draws the same numbers and so computes the same job keys.
pub fn draw(distribution: &Distribution, seed: i64, k: usize, name: &str) -> Value {
    let mut hasher = blake3::Hasher::new_derive_key("jobman random search 2025 sample");
    hasher.update(&seed.to_le_bytes());
    hasher.update(&(k as u64).to_le_bytes());
    hasher.update(name.as_bytes());
    let bits = u64::from_le_bytes(hasher.finalize().as_bytes()[..8].try_into().expect("a hash has 8 bytes"));
    // 53 random bits: an f64 in [0, 1) with every value equally likely.
    let unit = (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    // An index below `n` from the 64 bits, by multiplying rather than by `%`: the bias is at most n / 2^64.
    let below = |n: u128| ((bits as u128 * n) >> 64) as u64;
    match distribution {
        // Clamped: rounding may carry a draw just past a bound.
        Distribution::Uniform { low, high } => float((low + (high - low) * unit).clamp(*low, *high)),
        Distribution::LogUniform { low, high } => {
            let (log_low, log_high) = (libm::log(*low), libm::log(*high));
            float(libm::exp(log_low + (log_high - log_low) * unit).clamp(*low, *high))
        }
        Distribution::RandInt { low, high } => {
            let count = (*high as i128 - *low as i128 + 1) as u128;
            Value::from((*low as i128 + below(count) as i128) as i64)
        }
        Distribution::Choice(values) => values[below(values.len() as u128) as usize].clone(),
    }
}

/// A drawn float; finite, since its bounds are.
fn float(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::util::diagnostic::Source;

    fn sweep(text: &str) -> Result<Vec<String>, Diagnostics> {
        let source =
            Source { path: "Jobfile.toml".into(), text: format!("{text}\n[job]\ncommand = \"true\"\n").into() };
        let jobfile = crate::jobfile::parse(&source, Path::new("/w"))?;
        Ok(expand(jobfile.stage(0))?.iter().map(ParamSet::describe).collect())
    }

    #[test]
    fn the_product_follows_declaration_order_first_axis_slowest() {
        let points = sweep("[params]\nb = [1, 2]\na = [\"x\", \"y\"]\nc = 0").unwrap();
        assert_eq!(points, ["b=1 a=x c=0", "b=1 a=y c=0", "b=2 a=x c=0", "b=2 a=y c=0"]);
    }

    #[test]
    fn zip_groups_advance_together_filter_and_include_apply() {
        let points = sweep(
            "[params]\nh = [1, 2, 3]\ns = [0, 1]\nb = [10, 20, 30]\n[sweep]\nzip = [[\"h\", \"b\"]]\nwhere = \"not (h == 2 and s == 1)\"\ninclude = [{ h = 9, s = 9, b = 9 }]",
        )
        .unwrap();
        assert_eq!(
            points,
            ["h=1 s=0 b=10", "h=1 s=1 b=10", "h=2 s=0 b=20", "h=3 s=0 b=30", "h=3 s=1 b=30", "h=9 s=9 b=9"]
        );
    }

    #[test]
    fn duplicate_points_name_both_jobs() {
        let error = sweep("[params]\nh = [1, 1]").unwrap_err().to_string();
        assert!(error.contains("jobs 0 and 1 have the same parameters: h=1"), "{error}");
    }

    #[test]
    fn unknown_names_in_the_filter_get_a_suggestion() {
        let error = sweep("[params]\nhidden = [1, 2]\n[sweep]\nwhere = \"hiden > 1\"").unwrap_err().to_string();
        assert!(error.contains("unknown parameter `hiden`"), "{error}");
        assert!(error.contains("did you mean `hidden`?"), "{error}");
    }

    fn values(points: &[String], name: &str) -> Vec<String> {
        let prefix = format!("{name}=");
        points
            .iter()
            .map(|p| p.split(' ').find_map(|kv| kv.strip_prefix(prefix.as_str())).unwrap_or_default().to_string())
            .collect()
    }

    fn numbers(points: &[String], name: &str) -> Vec<f64> {
        values(points, name).iter().map(|v| v.parse().unwrap()).collect()
    }

    const SEARCH: &str =
        "[params]\nlr = { loguniform = [1e-4, 1e-1] }\ndrop = { uniform = [0, 0.5] }\n[sweep]\nseed = 7\nsamples =";

    #[test]
    fn growing_samples_keeps_the_first_points() {
        let twenty = sweep(&format!("{SEARCH} 20")).unwrap();
        let forty = sweep(&format!("{SEARCH} 40")).unwrap();
        assert_eq!((twenty.len(), forty.len()), (20, 40));
        assert_eq!(twenty, forty[..20]);
    }

    #[test]
    fn the_same_seed_draws_the_same_points_and_another_seed_others() {
        assert_eq!(sweep(&format!("{SEARCH} 5")).unwrap(), sweep(&format!("{SEARCH} 5")).unwrap());
        let other = sweep(&format!("{}8\nsamples = 5", SEARCH.trim_end_matches("7\nsamples ="))).unwrap();
        let first = sweep(&format!("{SEARCH} 5")).unwrap();
        assert!(other.iter().all(|p| !first.contains(p)), "{other:?} {first:?}");
    }

    #[test]
    fn draws_do_not_change_across_platforms() {
        // Pinned: a different number here changes every sampled job's key.
        let uniform = Distribution::Uniform { low: 0.0, high: 1.0 };
        let log = Distribution::LogUniform { low: 1e-4, high: 1e-1 };
        let pinned = [draw(&uniform, 0, 0, "x"), draw(&log, 0, 0, "x"), draw(&log, 1, 3, "lr")];
        assert_eq!(
            serde_json::to_string(&pinned).unwrap(),
            "[0.9396331234520577,0.06590211768636674,0.009015621157104053]"
        );
    }

    #[test]
    fn a_sample_does_not_depend_on_the_other_parameters() {
        let alone = sweep("[params]\nlr = { uniform = [0, 1] }\n[sweep]\nsamples = 4").unwrap();
        let with_other =
            sweep("[params]\nlr = { uniform = [0, 1] }\nb = { randint = [0, 9] }\n[sweep]\nsamples = 4").unwrap();
        assert_eq!(values(&alone, "lr"), values(&with_other, "lr"));
    }

    #[test]
    fn uniform_draws_stay_within_their_bounds_and_fill_them() {
        let points = sweep("[params]\nx = { uniform = [-2, 3] }\n[sweep]\nsamples = 2000").unwrap();
        let xs = numbers(&points, "x");
        assert!(xs.iter().all(|x| (-2.0..=3.0).contains(x)), "{xs:?}");
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.15, "mean {mean}");
        // Draws are floats even when the bounds are integers.
        assert!(values(&points, "x").iter().all(|v| v.contains('.') || v.contains('e')), "{points:?}");
    }

    #[test]
    fn loguniform_draws_spread_evenly_over_the_decades() {
        let points = sweep("[params]\nlr = { loguniform = [1e-4, 1e-1] }\n[sweep]\nsamples = 3000").unwrap();
        let lrs = numbers(&points, "lr");
        assert!(lrs.iter().all(|x| (1e-4..=1e-1).contains(x)), "{lrs:?}");
        for decade in [1e-4, 1e-3, 1e-2] {
            let share = lrs.iter().filter(|&&x| x >= decade && x < decade * 10.0).count() as f64 / lrs.len() as f64;
            assert!((share - 1.0 / 3.0).abs() < 0.05, "{decade}: {share}");
        }
    }

    #[test]
    fn randint_includes_both_bounds_and_gives_integers() {
        let points =
            sweep("[params]\nn = { randint = [1, 3] }\nx = { uniform = [0, 1] }\n[sweep]\nsamples = 200").unwrap();
        let mut seen: Vec<String> = values(&points, "n");
        seen.sort();
        seen.dedup();
        assert_eq!(seen, ["1", "2", "3"]);
    }

    #[test]
    fn choice_draws_only_the_listed_values() {
        let points =
            sweep("[params]\nopt = { choice = [\"adam\", \"sgd\", [1, 2]] }\nx = { uniform = [0, 1] }\n[sweep]\nsamples = 100")
                .unwrap();
        let mut seen = values(&points, "opt");
        seen.sort();
        seen.dedup();
        assert_eq!(seen, ["[1,2]", "adam", "sgd"]);
    }

    #[test]
    fn every_grid_point_gets_the_same_samples_samples_inner() {
        let points =
            sweep("[params]\nmodel = [\"a\", \"b\"]\nlr = { uniform = [0, 1] }\n[sweep]\nsamples = 3").unwrap();
        assert_eq!(values(&points, "model"), ["a", "a", "a", "b", "b", "b"]);
        let lrs = values(&points, "lr");
        assert_eq!(lrs[..3], lrs[3..]);
        let alone = sweep("[params]\nlr = { uniform = [0, 1] }\n[sweep]\nsamples = 3").unwrap();
        assert_eq!(values(&alone, "lr"), lrs[..3]);
    }

    #[test]
    fn samples_that_draw_the_same_values_are_one_point() {
        let points = sweep("[params]\nopt = { choice = [\"adam\", \"sgd\"] }\n[sweep]\nsamples = 10").unwrap();
        // In the order first drawn; 8 later samples repeated one of them.
        assert_eq!(points, ["opt=adam", "opt=sgd"]);
    }

    #[test]
    fn the_filter_applies_to_sampled_points_and_include_points_get_the_samples() {
        let points = sweep(
            "[params]\nh = [1, 2]\nx = { uniform = [0, 1] }\n[sweep]\nsamples = 50\nwhere = \"x < 0.5\"\ninclude = [{ h = 9 }, { h = 10, x = 0.75 }]",
        )
        .unwrap();
        let grid: Vec<&String> = points.iter().filter(|p| p.starts_with("h=1 ") || p.starts_with("h=2 ")).collect();
        assert!(!grid.is_empty() && grid.len() < 100, "{grid:?}");
        assert!(numbers(&grid.iter().map(|p| p.to_string()).collect::<Vec<_>>(), "x").iter().all(|&x| x < 0.5));
        assert_eq!(points.iter().filter(|p| p.starts_with("h=9 ")).count(), 50);
        assert_eq!(points.iter().filter(|p| p.starts_with("h=10 ")).collect::<Vec<_>>(), ["h=10 x=0.75"]);
    }

    #[test]
    fn a_sampled_parameter_cannot_be_zipped() {
        let error =
            sweep("[params]\nh = [1, 2]\nx = { uniform = [0, 1] }\n[sweep]\nsamples = 2\nzip = [[\"h\", \"x\"]]")
                .unwrap_err()
                .to_string();
        assert!(error.contains("`x` is sampled and cannot be zipped"), "{error}");
    }
}
