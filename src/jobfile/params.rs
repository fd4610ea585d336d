//! `[params]`: each parameter as a list of values, a generated axis (`range`, `linspace`,
//! `logspace`) or a distribution to sample.

use std::ops::Range;

use serde_json::Value;
use toml::de::{DeTable, DeValue};

use crate::util::diagnostic::did_you_mean;

use super::RESERVED_PARAMS;
use super::walker::{Item, Walker, is_identifier, kind};

pub(super) const GENERATORS: &[&str] = &["range", "linspace", "logspace"];
pub(super) const DISTRIBUTIONS: &[&str] = &["uniform", "loguniform", "randint", "choice"];

/// One parameter: a constant (one value, not swept) or a sweep axis.
#[derive(Debug, Clone)]
pub struct Param {
    /// Dotted path for nested tables: `model.width`.
    pub name: String,
    /// The axis's values; empty for a sampled parameter.
    pub values: Vec<Value>,
    pub swept: bool,
    /// Drawn `[sweep] samples` times per grid point instead of taking listed values.
    pub distribution: Option<Distribution>,
    pub span: Range<usize>,
}

/// Where a sampled parameter's values come from (random search).
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// A float from `low` to `high`, evenly.
    Uniform { low: f64, high: f64 },
    /// A float from `low` to `high`, evenly on a log scale: as many draws in 1e-4..1e-3 as in 1e-3..1e-2.
    LogUniform { low: f64, high: f64 },
    /// An integer from `low` to `high`, both included.
    RandInt { low: i64, high: i64 },
    /// One of these values, each as likely.
    Choice(Vec<Value>),
}

impl Walker<'_> {
    pub(super) fn params(&mut self, table: &DeTable<'_>, prefix: &str, out: &mut Vec<Param>) {
        for (key, item) in table.iter() {
            let name = format!("{prefix}{}", key.get_ref());
            if !is_identifier(key.get_ref()) {
                self.at(
                    key.span(),
                    format!("parameter name `{name}` is not usable in templates"),
                    "expected letters, digits and `_`, not starting with a digit",
                )
                .help = Some("rename it, e.g. `learning_rate` instead of `learning-rate`".into());
                continue;
            }
            if prefix.is_empty() && RESERVED_PARAMS.contains(&name.as_str()) {
                self.at(
                    key.span(),
                    format!("`{name}` is reserved"),
                    "templates see jobman's own `job.id`, `job.dir`, … and `needs.STAGE` under these names",
                )
                .help = Some("rename the parameter".into());
                continue;
            }
            let span = item.span();
            match item.get_ref() {
                DeValue::Table(inner) if inner.keys().any(|k| DISTRIBUTIONS.contains(&k.get_ref().as_ref())) => {
                    if let Some(distribution) = self.distribution(inner, span.clone()) {
                        out.push(Param {
                            name,
                            values: Vec::new(),
                            swept: true,
                            distribution: Some(distribution),
                            span,
                        });
                    }
                }
                DeValue::Table(inner) if inner.keys().any(|k| GENERATORS.contains(&k.get_ref().as_ref())) => {
                    if let Some(values) = self.generator(inner, span.clone()) {
                        out.push(Param { name, values, swept: true, distribution: None, span });
                    }
                }
                DeValue::Table(inner) if self.misspelt_generator(&name, inner) => {}
                DeValue::Table(inner) if inner.is_empty() => {
                    self.at(span, format!("parameter `{name}` is an empty table"), "declares no parameter").help = Some(
                        format!("give it values, e.g. `{name} = [1, 2]`, or nested ones: `{name} = {{ width = 3 }}`"),
                    );
                }
                DeValue::Table(inner) => self.params(inner, &format!("{name}."), out),
                DeValue::Array(items) if items.is_empty() => {
                    self.at(span, format!("parameter `{name}` has no values"), "an axis needs at least one value");
                }
                DeValue::Array(items) => {
                    let values = items.iter().filter_map(|v| self.value(v)).collect::<Vec<_>>();
                    if values.len() == items.len() {
                        out.push(Param { name, values, swept: true, distribution: None, span });
                    }
                }
                _ => {
                    if let Some(value) = self.value(item) {
                        out.push(Param { name, values: vec![value], swept: false, distribution: None, span });
                    }
                }
            }
        }
    }

    /// Whether `{ unifrom = [0, 1] }` is a misspelt distribution or generated axis (reported)
    /// rather than a nested param: a table of one key close to one of their names, holding a list.
    pub(super) fn misspelt_generator(&mut self, name: &str, table: &DeTable<'_>) -> bool {
        let mut keys = table.iter();
        let (Some((key, value)), None) = (keys.next(), keys.next()) else { return false };
        if !matches!(value.get_ref(), DeValue::Array(_)) {
            return false;
        }
        let known = DISTRIBUTIONS.iter().chain(GENERATORS).copied();
        let Some(help) = did_you_mean(key.get_ref(), known) else { return false };
        self.at(
            key.span(),
            format!("unknown generator or distribution `{}` for `{name}`", key.get_ref()),
            format!("expected one of: {}, {}", GENERATORS.join(", "), DISTRIBUTIONS.join(", ")),
        )
        .help = Some(format!("{help} (a param nested under `{name}` would need another name)"));
        // `samples` is then wanted, not a second mistake.
        self.saw_distribution = true;
        true
    }

    /// `{ range = [a, b, step] }`, `{ linspace = [a, b, n] }`, `{ logspace = [a, b, n] }`.
    pub(super) fn generator(&mut self, table: &DeTable<'_>, span: Range<usize>) -> Option<Vec<Value>> {
        if table.len() != 1 {
            self.at(
                span,
                "a generated axis takes exactly one key",
                "expected `{ range = [..] }`, `{ linspace = [..] }` or `{ logspace = [..] }`",
            );
            return None;
        }
        let (key, item) = table.iter().next()?;
        let numbers: Vec<Value> = match item.get_ref() {
            DeValue::Array(items) => items.iter().filter_map(|v| self.value(v)).collect(),
            _ => Vec::new(),
        };
        let floats: Option<Vec<f64>> = numbers.iter().map(Value::as_f64).collect();
        let result = match (key.get_ref().as_ref(), floats.as_deref()) {
            ("range", Some([start, stop])) => generate_range(*start, *stop, 1.0, all_integers(&numbers)),
            ("range", Some([start, stop, step])) => generate_range(*start, *stop, *step, all_integers(&numbers)),
            ("linspace", Some([start, stop, n])) => {
                generate_linspace(*start, *stop, *n).map(|v| v.into_iter().map(number).collect())
            }
            ("logspace", Some([start, stop, n])) => generate_linspace(*start, *stop, *n)
                .map(|v| v.into_iter().map(|exponent| number(tidy(10f64.powf(exponent)))).collect()),
            _ => Err(match key.get_ref().as_ref() {
                "range" => "expected `range = [start, stop, step]` (stop excluded) or `[start, stop]`".to_string(),
                name => format!("expected `{name} = [start, stop, count]` with numbers"),
            }),
        };
        match result {
            Ok(values) if values.is_empty() => {
                self.at(item.span(), "this axis has no values", "the range is empty");
                None
            }
            Ok(values) => Some(values),
            Err(expected) => {
                self.at(item.span(), format!("invalid `{}` axis", key.get_ref()), expected);
                None
            }
        }
    }

    /// `{ uniform = [low, high] }`, `{ loguniform = [low, high] }`, `{ randint = [low, high] }`,
    /// `{ choice = [..] }`.
    pub(super) fn distribution(&mut self, table: &DeTable<'_>, span: Range<usize>) -> Option<Distribution> {
        self.saw_distribution = true;
        if table.len() != 1 {
            self.at(
                span,
                "a sampled parameter takes exactly one key",
                "expected e.g. `{ uniform = [0, 1] }` or `{ choice = [\"a\", \"b\"] }`",
            );
            return None;
        }
        let (key, item) = table.iter().next()?;
        let name = key.get_ref().as_ref();
        let DeValue::Array(items) = item.get_ref() else {
            let expected = if name == "choice" {
                "expected `choice = [..]`, the values to choose from".to_string()
            } else {
                format!("expected `{name} = [low, high]`")
            };
            self.at(
                item.span(),
                format!("invalid `{name}` distribution"),
                format!("{expected}, found {}", kind(item.get_ref())),
            );
            return None;
        };
        if name == "choice" {
            if items.is_empty() {
                self.at(item.span(), "`choice` has no values", "expected at least one value to choose from");
                return None;
            }
            let values: Vec<Value> = items.iter().filter_map(|v| self.value(v)).collect();
            return (values.len() == items.len()).then_some(Distribution::Choice(values));
        }
        let bounds: Vec<Value> = items.iter().filter_map(|v| self.value(v)).collect();
        if bounds.len() != items.len() {
            return None;
        }
        let distribution = match (name, &bounds[..]) {
            ("randint", [low, high]) if low.is_i64() && high.is_i64() => {
                let (low, high) = (low.as_i64()?, high.as_i64()?);
                (low < high).then_some(Distribution::RandInt { low, high })
            }
            ("randint", _) => {
                self.at(
                    item.span(),
                    "invalid `randint` distribution",
                    "expected `randint = [low, high]` with integers, both included",
                );
                return None;
            }
            (_, [low, high]) if low.is_number() && high.is_number() => {
                let (low, high) = (low.as_f64()?, high.as_f64()?);
                if name == "loguniform" && low <= 0.0 {
                    self.at(item.span(), "invalid `loguniform` distribution", "expected bounds above 0").help =
                        Some(format!(
                            "a log scale has no 0 nor negative numbers; try `loguniform = [{}, {high}]`",
                            high / 1000.0
                        ));
                    return None;
                }
                match name {
                    "uniform" => (low < high).then_some(Distribution::Uniform { low, high }),
                    _ => (low < high).then_some(Distribution::LogUniform { low, high }),
                }
            }
            _ => {
                self.at(
                    item.span(),
                    format!("invalid `{name}` distribution"),
                    format!("expected `{name} = [low, high]` with numbers"),
                );
                return None;
            }
        };
        if distribution.is_none() {
            self.at(
                item.span(),
                format!("invalid `{name}` distribution"),
                "expected the low bound below the high bound",
            )
            .help = Some("for a parameter with one value, write the value: `epochs = 30`".into());
        }
        distribution
    }

    /// A TOML value as a JSON value; NaN and infinity are refused because no report can hold them.
    pub(super) fn value(&mut self, item: &Item<'_>) -> Option<Value> {
        Some(match item.get_ref() {
            DeValue::String(s) => Value::String(s.to_string()),
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(i) => Value::from(i),
                Err(_) => {
                    self.at(item.span(), "integer out of range", "expected a 64-bit integer");
                    return None;
                }
            },
            DeValue::Float(f) => {
                match f.as_str().replace('_', "").parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                    Some(n) => Value::Number(n),
                    None => {
                        self.at(
                            item.span(),
                            "this float cannot be a parameter",
                            "expected a finite number (not nan or inf)",
                        );
                        return None;
                    }
                }
            }
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::String(d.to_string()),
            DeValue::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect::<Option<_>>()?),
            DeValue::Table(table) => {
                let mut map = serde_json::Map::new();
                for (k, v) in table.iter() {
                    map.insert(k.get_ref().to_string(), self.value(v)?);
                }
                Value::Object(map)
            }
        })
    }
}

pub(super) fn all_integers(values: &[Value]) -> bool {
    values.iter().all(|v| v.is_i64())
}

pub(super) fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// Rounds away floating-point noise (`0.1 * 3 = 0.30000000000000004`) to 12 significant digits, so
/// generated values print and hash as the numbers a user would write.
pub(super) fn tidy(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{x:.11e}").parse().unwrap_or(x)
}

/// Values from `start` up to, not including, `stop`, as Python's `range` and numpy's `arange`.
pub(super) fn generate_range(start: f64, stop: f64, step: f64, integers: bool) -> Result<Vec<Value>, String> {
    if step == 0.0 || !step.is_finite() {
        return Err("the step must be a non-zero number".into());
    }
    // The tolerance keeps float noise from adding the excluded stop: [0.1, 0.4, 0.1] has 3 values.
    let count = ((stop - start) / step - 1e-9).ceil();
    if count > 1_000_000.0 {
        return Err(format!("this range has {count} values; the limit is 1,000,000"));
    }
    let count = count.max(0.0) as usize;
    Ok((0..count)
        .map(|i| {
            let x = start + step * i as f64;
            if integers { Value::from(x as i64) } else { number(tidy(x)) }
        })
        .collect())
}

/// `n` evenly spaced values from `start` to `stop`, both included, as numpy's `linspace`.
pub(super) fn generate_linspace(start: f64, stop: f64, n: f64) -> Result<Vec<f64>, String> {
    if n < 1.0 || n.fract() != 0.0 || n > 1_000_000.0 {
        return Err("the count must be a whole number from 1 to 1,000,000".into());
    }
    let n = n as usize;
    if n == 1 {
        return Ok(vec![tidy(start)]);
    }
    let step = (stop - start) / (n - 1) as f64;
    Ok((0..n).map(|i| tidy(start + step * i as f64)).collect())
}
