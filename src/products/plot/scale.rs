//! Axis ranges, tick positions and number formatting.

/// A numeric axis: its range, where its ticks go and what they say.
#[derive(Debug, Clone)]
pub(super) struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
    pub ticks: Vec<(f64, String)>,
    /// Unlabelled short ticks (log axes: 2…9 × 10^k).
    pub minor: Vec<f64>,
    /// Tick labels count in units of 10^power (very large or small numbers); the axis label
    /// says so, see [`Axis::label`].
    pub power: Option<i32>,
}

impl Axis {
    /// The axis label, with the unit of the tick labels when they are scaled: "reward (×10⁷)".
    pub fn label(&self, text: &str) -> String {
        match self.power {
            Some(p) if !text.is_empty() => format!("{text} (×10{})", superscript(p)),
            Some(p) => format!("×10{}", superscript(p)),
            None => text.to_string(),
        }
    }

    /// Position of `v` along the axis, 0 at `lo` and 1 at `hi`.
    pub fn frac(&self, v: f64) -> f64 {
        if self.log {
            let (a, b) = (self.lo.log10(), self.hi.log10());
            (v.max(self.lo * 1e-3).log10() - a) / (b - a)
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }
}

/// What to put on an axis; [`choose`] turns it into an [`Axis`] that fits the space.
#[derive(Debug, Clone)]
pub(super) enum AxisSpec {
    Numeric {
        lo: f64,
        hi: f64,
        log: bool,
        /// Few distinct data values (a sweep's values): labelled as such when they fit.
        data_ticks: Option<Vec<f64>>,
    },
    /// Categories at 0, 1, …, n − 1.
    Categories(Vec<String>),
}

/// The range of values `min..=max` widened by `pad.0` and `pad.1` of its span below and above
/// (in log space for a log axis); a single value gets a span of its own.
pub(super) fn padded(min: f64, max: f64, log: bool, pad: (f64, f64)) -> (f64, f64) {
    if log {
        let (a, b) = (min.log10(), max.log10());
        let span = if b - a > 1e-9 { b - a } else { 0.5 };
        (10f64.powf(a - pad.0 * span), 10f64.powf(b + pad.1 * span))
    } else {
        let span = if max - min > 1e-12 * max.abs().max(min.abs()).max(1e-300) {
            max - min
        } else if max != 0.0 {
            max.abs() * 0.4
        } else {
            2.0
        };
        (min - pad.0 * span, max + pad.1 * span)
    }
}

/// Picks the densest tick set that `fits` (labels do not collide), trying data values, then
/// 1-2-5 steps (linear) or decades and 1-2-5 (log).
pub(super) fn choose(spec: &AxisSpec, fits: &dyn Fn(&Axis) -> bool) -> Axis {
    match spec {
        AxisSpec::Categories(labels) => Axis {
            lo: -0.5,
            hi: labels.len() as f64 - 0.5,
            log: false,
            ticks: labels.iter().enumerate().map(|(i, l)| (i as f64, l.clone())).collect(),
            minor: vec![],
            power: None,
        },
        AxisSpec::Numeric { lo, hi, log, data_ticks } => {
            let (lo, hi, log) = (*lo, *hi, *log);
            let axis = |ticks: Vec<(f64, String)>, minor: Vec<f64>, power: Option<i32>| Axis {
                lo,
                hi,
                log,
                ticks,
                minor,
                power,
            };
            if let Some(values) = data_ticks {
                let labels = format_values(values);
                let candidate = axis(values.iter().copied().zip(labels).collect(), vec![], None);
                let enough = candidate.ticks.len() >= 2 || (values.len() == 1 && !candidate.ticks.is_empty());
                if enough && fits(&candidate) {
                    return candidate;
                }
            }
            let candidates: Vec<Axis> = if log {
                log_candidates(lo, hi).into_iter().map(|(t, m, p)| axis(t, m, p)).collect()
            } else {
                linear_candidates(lo, hi).into_iter().map(|(t, p)| axis(t, vec![], p)).collect()
            };
            let mut fallback = None;
            for c in candidates {
                if c.ticks.len() >= 2 && fits(&c) {
                    return c;
                }
                if !c.ticks.is_empty() {
                    fallback = Some(c);
                }
            }
            // Nothing fits: the sparsest set (often the ends of a short axis).
            fallback.unwrap_or_else(|| axis(vec![], vec![], None))
        }
    }
}

/// Tick positions with their labels.
type Ticks = Vec<(f64, String)>;

/// Tick sets k·step within [lo, hi] for step = {1, 2, 5} × 10^e, densest first, each with the
/// power of ten its labels count in, if any.
fn linear_candidates(lo: f64, hi: f64) -> Vec<(Ticks, Option<i32>)> {
    let span = hi - lo;
    if span <= 0.0 || !span.is_finite() {
        return vec![];
    }
    let mut out = Vec::new();
    let e0 = (span / 40.0).log10().floor() as i32;
    for e in e0..e0 + 4 {
        for m in [1.0, 2.0, 5.0] {
            let step = m * 10f64.powi(e);
            let (k0, k1) = ((lo / step - 1e-9).ceil() as i64, (hi / step + 1e-9).floor() as i64);
            let n = k1 - k0 + 1;
            if n > 40 {
                continue;
            }
            let values: Vec<f64> = (k0..=k1).map(|k| k as f64 * step).collect();
            let (labels, power) = format_ticks(&values, e);
            out.push((values.into_iter().zip(labels).collect(), power));
            if n <= 2 {
                return out;
            }
        }
    }
    out
}

/// Log-axis tick sets, densest first, each with its minor ticks.
fn log_candidates(lo: f64, hi: f64) -> Vec<(Ticks, Vec<f64>, Option<i32>)> {
    let (a, b) = (lo.log10(), hi.log10());
    let (d0, d1) = ((a - 1e-9).ceil() as i32, (b + 1e-9).floor() as i32);
    let inside = |v: f64| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9);
    let minor: Vec<f64> = (a.floor() as i32..=b.ceil() as i32)
        .flat_map(|e| (2..10).map(move |m| m as f64 * 10f64.powi(e)))
        .filter(|&v| inside(v))
        .collect();
    let decades =
        |every: i32| -> Vec<f64> { (d0..=d1).filter(|e| e.rem_euclid(every) == 0).map(|e| 10f64.powi(e)).collect() };
    let one_two_five: Vec<f64> = (a.floor() as i32..=b.ceil() as i32)
        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
        .filter(|&v| inside(v))
        .collect();
    let labelled = |values: Vec<f64>| {
        let labels = format_log_ticks(&values);
        values.into_iter().zip(labels).collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    let n_decades = (d1 - d0 + 1).max(0);
    if n_decades < 3 && one_two_five.len() >= 2 {
        // Minor ticks at the other integer multiples.
        let unlabelled = minor.iter().copied().filter(|m| !one_two_five.iter().any(|v| (v / m - 1.0).abs() < 1e-9));
        let m = unlabelled.collect();
        out.push((labelled(one_two_five), m, None));
    }
    if n_decades >= 2 {
        for every in 1..=6 {
            let values = decades(every);
            if values.len() >= 2 {
                // Minor ticks only make sense between labelled neighbouring decades.
                let m = if every == 1 { minor.clone() } else { decades(1) };
                out.push((labelled(values), m, None));
            }
        }
    }
    if out.is_empty() {
        // Less than a decade without two 1-2-5 values: plain steps on the log scale.
        for (t, power) in linear_candidates(lo, hi) {
            if t.iter().all(|(v, _)| *v > 0.0) {
                out.push((t, vec![], power));
            }
        }
    }
    out
}

const SUPERSCRIPT: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];

fn superscript(n: i32) -> String {
    let mut s = String::new();
    if n < 0 {
        s.push('⁻');
    }
    for d in n.unsigned_abs().to_string().bytes() {
        s.push(SUPERSCRIPT[(d - b'0') as usize]);
    }
    s
}

/// "2×10⁻⁵" for v = 2e-5, with `sig` significant digits at most; "10⁻⁵" for 1e-5.
fn scientific(v: f64, sig: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let mut e = v.abs().log10().floor() as i32;
    let mut m = v / 10f64.powi(e);
    let m_rounded: f64 = format!("{:.*}", sig.saturating_sub(1), m).parse().unwrap_or(m);
    if m_rounded.abs() >= 10.0 {
        e += 1;
        m = v / 10f64.powi(e);
    } else {
        m = m_rounded;
    }
    let mantissa = trim_zeros(format!("{:.*}", sig.saturating_sub(1), m));
    if mantissa == "1" {
        format!("10{}", superscript(e))
    } else if mantissa == "-1" {
        format!("−10{}", superscript(e))
    } else {
        format!("{}×10{}", mantissa.replace('-', "−"), superscript(e))
    }
}

fn trim_zeros(s: String) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// Uses a typographic minus sign and never prints "-0".
fn minus(s: String) -> String {
    let zero = s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.');
    if zero { s.trim_start_matches('-').to_string() } else { s.replacen('-', "−", 1) }
}

/// Labels for ticks k·(m × 10^e): the same number of decimals on all of them. Beyond 10⁶ and
/// below 10⁻⁴ they count in units of a common power of ten (returned), as matplotlib does.
fn format_ticks(values: &[f64], e: i32) -> (Vec<String>, Option<i32>) {
    let big = values.iter().fold(0f64, |m, v| m.max(v.abs()));
    let power = (big >= 1e6 || (big > 0.0 && big < 1e-4)).then(|| big.log10().floor() as i32);
    let p = power.unwrap_or(0);
    let decimals = (p - e).max(0) as usize;
    let labels = values.iter().map(|v| minus(format!("{:.decimals$}", v / 10f64.powi(p)))).collect();
    (labels, power)
}

fn format_log_ticks(values: &[f64]) -> Vec<String> {
    let plain = values.iter().all(|v| (1e-3..1e5).contains(&v.abs()));
    values.iter().map(|&v| if plain { fmt_sig(v, 3) } else { scientific(v, 3) }).collect()
}

/// Data values (a sweep's values) as short labels: at most 4 significant digits.
pub(super) fn format_values(values: &[f64]) -> Vec<String> {
    values.iter().map(|&v| fmt_sig(v, 4)).collect()
}

/// `v` rounded to `sig` significant digits, without trailing zeros; scientific when very large
/// or very small.
pub(super) fn fmt_sig(v: f64, sig: usize) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { v.to_string() };
    }
    let e = v.abs().log10().floor() as i32;
    if !(-3..6).contains(&e) {
        return scientific(v, sig);
    }
    let decimals = (sig as i32 - 1 - e).max(0) as usize;
    let s = format!("{v:.decimals$}");
    // Rounding may carry into a new digit (9.996 → "10.00"); that only adds a trailing zero.
    minus(trim_zeros(s))
}

/// A cell annotation: exactly `sig` significant digits (trailing zeros kept, e.g. "0.910").
pub(super) fn fmt_fixed_sig(v: f64, sig: usize) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { v.to_string() };
    }
    let e = v.abs().log10().floor() as i32;
    let rounded: f64 = format!("{:.*e}", sig - 1, v).parse().unwrap_or(v);
    let e = if rounded == 0.0 { e } else { rounded.abs().log10().floor() as i32 };
    if !(-4..5).contains(&e) {
        let mantissa = minus(format!("{:.*}", sig - 1, rounded / 10f64.powi(e)));
        return format!("{mantissa}×10{}", superscript(e));
    }
    let decimals = (sig as i32 - 1 - e).max(0) as usize;
    minus(format!("{rounded:.decimals$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(axis: &Axis) -> Vec<&str> {
        axis.ticks.iter().map(|(_, l)| l.as_str()).collect()
    }

    #[test]
    fn linear_ticks_are_1_2_5_steps_with_equal_decimals() {
        let spec = AxisSpec::Numeric { lo: 0.58, hi: 0.97, log: false, data_ticks: None };
        let axis = choose(&spec, &|a: &Axis| a.ticks.len() <= 8);
        assert_eq!(labels(&axis), ["0.60", "0.65", "0.70", "0.75", "0.80", "0.85", "0.90", "0.95"]);
    }

    #[test]
    fn log_ticks_span_decades_or_1_2_5() {
        let spec = AxisSpec::Numeric { lo: 0.008, hi: 0.12, log: true, data_ticks: None };
        let axis = choose(&spec, &|_: &Axis| true);
        assert_eq!(labels(&axis), ["0.01", "0.02", "0.05", "0.1"]);
        let spec = AxisSpec::Numeric { lo: 3e-6, hi: 2.0, log: true, data_ticks: None };
        let axis = choose(&spec, &|a: &Axis| a.ticks.len() <= 4);
        assert_eq!(labels(&axis), ["10⁻⁴", "10⁻²", "10⁰"]);
    }

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(fmt_fixed_sig(0.91, 3), "0.910");
        assert_eq!(fmt_fixed_sig(1234.0, 3), "1230");
        assert_eq!(fmt_fixed_sig(0.99996, 3), "1.00");
        assert_eq!(fmt_fixed_sig(-0.0123456, 3), "−0.0123");
        assert_eq!(fmt_sig(0.031622776, 4), "0.03162");
        assert_eq!(fmt_sig(32.0, 4), "32");
        assert_eq!(fmt_sig(2e-5, 3), "2×10⁻⁵");
        assert_eq!(fmt_sig(1e-5, 4), "10⁻⁵");
        assert_eq!(fmt_fixed_sig(4e-4, 3), "0.000400");
        assert_eq!(fmt_fixed_sig(4e-5, 3), "4.00×10⁻⁵");
        assert_eq!(fmt_fixed_sig(123456.0, 3), "1.23×10⁵");
        assert_eq!(format_ticks(&[-0.0, 0.5], -1).0, ["0.0", "0.5"]);
        assert_eq!(
            format_ticks(&[-5e6, 0.0, 5e6, 1e7], 6),
            (vec!["−0.5".into(), "0.0".into(), "0.5".into(), "1.0".into()], Some(7))
        );
    }
}
