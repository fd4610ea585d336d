//! `[sweep]`: how the params combine (`zip`, `where`, `include`) and random search (`samples`,
//! `seed`).

use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::util::diagnostic::did_you_mean;

use super::params::Param;
use super::walker::{Item, Walker, kind};

pub(super) const SWEEP_KEYS: &[&str] = &["zip", "where", "include", "samples", "seed"];
/// More samples than this is a mistake, not a search.
pub(super) const MAX_SAMPLES: i64 = 1_000_000;

#[derive(Debug, Clone, Default)]
pub struct Sweep {
    pub zip: Vec<Spanned<Vec<String>>>,
    pub filter: Option<Spanned<String>>,
    /// Extra points: flat parameter name → value.
    pub include: Vec<Spanned<Vec<(String, Value)>>>,
    /// Random search: `samples` draws of the sampled parameters per grid point.
    pub sampling: Option<Sampling>,
}

/// `[sweep] samples` and `seed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampling {
    pub samples: usize,
    pub seed: i64,
}

impl Walker<'_> {
    pub(super) fn sweep(&mut self, item: Option<&Item<'_>>, params: &[Param]) -> Sweep {
        let mut sweep = Sweep::default();
        let Some(table) = self.table(item, "[sweep]") else {
            self.sampling(None, params);
            return sweep;
        };
        self.unknown_keys(table, SWEEP_KEYS, "a [sweep] key");
        let param_names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        if let Some(zip) = table.get("zip") {
            let groups = match zip.get_ref() {
                DeValue::Array(groups) => &groups[..],
                _ => &[],
            };
            if groups.is_empty() {
                self.at(
                    zip.span(),
                    "`zip` must be a list of groups",
                    "expected e.g. `zip = [[\"hidden\", \"batch\"]]`",
                );
            }
            for group in groups {
                let names = match group.get_ref() {
                    DeValue::Array(names) => names
                        .iter()
                        .filter_map(|n| match n.get_ref() {
                            DeValue::String(s) => Some(Spanned::new(n.span(), s.to_string())),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                    _ => Vec::new(),
                };
                if names.len() < 2 {
                    self.at(
                        group.span(),
                        "a zip group names two or more parameters",
                        "expected e.g. [\"hidden\", \"batch\"]",
                    );
                    continue;
                }
                for name in &names {
                    self.known_param(name, &param_names);
                }
                sweep.zip.push(Spanned::new(group.span(), names.into_iter().map(Spanned::into_inner).collect()));
            }
        }
        sweep.filter = self.string(table, "where", "an expression such as \"lr < 0.1\"");
        sweep.sampling = self.sampling(Some(table), params);
        if let Some(include) = table.get("include") {
            let points = match include.get_ref() {
                DeValue::Array(points) => &points[..],
                other => {
                    self.at(include.span(), "`include` must be a list of tables", format!("found {}", kind(other)));
                    &[]
                }
            };
            for point in points {
                let DeValue::Table(fields) = point.get_ref() else {
                    self.at(
                        point.span(),
                        "an `include` point must be a table",
                        "expected e.g. { hidden = 128, lr = 0.01 }",
                    );
                    continue;
                };
                let mut values = Vec::new();
                self.include_point(fields, "", &param_names, &mut values);
                sweep.include.push(Spanned::new(point.span(), values));
            }
        }
        sweep
    }

    /// `[sweep] samples` and `seed`, which random search needs and nothing else may have.
    pub(super) fn sampling(&mut self, table: Option<&DeTable<'_>>, params: &[Param]) -> Option<Sampling> {
        let sampled = params.iter().find(|p| p.distribution.is_some());
        let samples = table.and_then(|t| t.get("samples"));
        let seed = table.and_then(|t| t.get("seed"));
        let integer = |item: &Item<'_>| match item.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        let count = samples.and_then(|item| match integer(item) {
            Some(n) if (1..=MAX_SAMPLES).contains(&n) => Some(n as usize),
            _ => {
                self.at(
                    item.span(),
                    "invalid `samples`",
                    format!("expected a whole number from 1 to 1,000,000, found {}", kind(item.get_ref())),
                );
                None
            }
        });
        let seed = match seed {
            None => Some(0),
            Some(item) => integer(item).or_else(|| {
                self.at(item.span(), "invalid `seed`", format!("expected an integer, found {}", kind(item.get_ref())));
                None
            }),
        };
        match (sampled, samples) {
            (Some(param), None) => {
                self.at(
                    param.span.clone(),
                    format!("`{}` is sampled, but [sweep] has no `samples`", param.name),
                    "a distribution is drawn `samples` times per grid point",
                )
                .help = Some("say how many draws to make:\n[sweep]\nsamples = 20\nseed = 0".into());
                None
            }
            (None, Some(_)) if self.saw_distribution => None,
            (None, Some(item)) => {
                self.at(item.span(), "`samples` without a sampled parameter", "no parameter has a distribution").help =
                    Some(
                        "declare one in [params], e.g. `lr = { loguniform = [1e-4, 1e-1] }`, or remove `samples`"
                            .into(),
                    );
                None
            }
            (None, None) => {
                if let Some(item) = table.and_then(|t| t.get("seed")) {
                    self.at(item.span(), "`seed` without `samples`", "seeds the draws of a random search").help =
                        Some("declare a sampled parameter and `samples`, or remove `seed`".into());
                }
                None
            }
            (Some(_), Some(_)) => Some(Sampling { samples: count?, seed: seed? }),
        }
    }

    pub(super) fn include_point(
        &mut self,
        fields: &DeTable<'_>,
        prefix: &str,
        names: &[&str],
        out: &mut Vec<(String, Value)>,
    ) {
        for (key, item) in fields.iter() {
            let name = format!("{prefix}{}", key.get_ref());
            if let DeValue::Table(inner) = item.get_ref()
                && !names.contains(&name.as_str())
            {
                self.include_point(inner, &format!("{name}."), names, out);
                continue;
            }
            if self.known_param(&Spanned::new(key.span(), name.clone()), names)
                && let Some(value) = self.value(item)
            {
                out.push((name, value));
            }
        }
    }

    pub(super) fn known_param(&mut self, name: &Spanned<String>, names: &[&str]) -> bool {
        if names.contains(&name.get_ref().as_str()) {
            return true;
        }
        let help = did_you_mean(name.get_ref(), names.iter().copied());
        self.at(name.span(), format!("unknown parameter `{}`", name.get_ref()), "not declared in [params]").help = help;
        false
    }
}
