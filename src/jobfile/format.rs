//! `[format]`: how a column's numbers are printed where people read them (figure legends and
//! category labels, the index page, `jobman ls`), as Python's format specs write it: `".3g"`
//! three significant digits, `".2f"` two decimals, `".1e"` scientific, `".1%"` a percentage.
//! The report keeps every digit: it is data.

use std::fmt;

use serde::{Serialize, Serializer};

/// A number format: kind and digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberFormat {
    kind: Kind,
    digits: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Significant,
    Fixed,
    Scientific,
    Percent,
}

impl NumberFormat {
    pub fn parse(spec: &str) -> Result<NumberFormat, String> {
        let expected = || {
            format!(
                "expected a format such as \".3g\" (3 significant digits), \".2f\" (2 decimals), \".1e\" (scientific) or \".1%\" (percent), found `{spec}`"
            )
        };
        let rest = spec.strip_prefix('.').ok_or_else(expected)?;
        let kind = match rest.chars().last() {
            Some('g') => Kind::Significant,
            Some('f') => Kind::Fixed,
            Some('e') => Kind::Scientific,
            Some('%') => Kind::Percent,
            _ => return Err(expected()),
        };
        let digits: usize = rest[..rest.len() - 1].parse().map_err(|_| expected())?;
        if digits > 17 || (kind == Kind::Significant && digits == 0) {
            return Err(expected());
        }
        Ok(NumberFormat { kind, digits })
    }

    /// `x` as this format prints it.
    pub fn apply(&self, x: f64) -> String {
        let digits = self.digits;
        match self.kind {
            Kind::Fixed => format!("{x:.digits$}"),
            Kind::Percent => format!("{:.digits$}%", x * 100.0),
            Kind::Scientific => format!("{x:.digits$e}"),
            Kind::Significant => {
                if x == 0.0 || !x.is_finite() {
                    return x.to_string();
                }
                let exponent = x.abs().log10().floor() as i32;
                if !(-4..digits as i32).contains(&exponent) {
                    return format!("{x:.prec$e}", prec = digits - 1);
                }
                let decimals = (digits as i32 - 1 - exponent).max(0) as usize;
                let text = format!("{x:.decimals$}");
                // As Python's `g`: no trailing zeros.
                if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
            }
        }
    }
}

impl fmt::Display for NumberFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Significant => 'g',
            Kind::Fixed => 'f',
            Kind::Scientific => 'e',
            Kind::Percent => '%',
        };
        write!(f, ".{}{kind}", self.digits)
    }
}

/// A value as people read it: a number in its column's `format`, anything else as always.
pub fn display(value: &serde_json::Value, format: Option<&NumberFormat>) -> String {
    match (value.as_f64(), format) {
        (Some(x), Some(format)) => format.apply(x),
        _ => super::display_value(value),
    }
}

/// As it is written, so that a figure's key changes with it.
impl Serialize for NumberFormat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::NumberFormat;

    fn show(spec: &str, x: f64) -> String {
        NumberFormat::parse(spec).unwrap().apply(x)
    }

    #[test]
    fn formats_print_as_python_prints_them() {
        assert_eq!(show(".3g", 0.0316227766017), "0.0316");
        assert_eq!(show(".3g", 0.1), "0.1");
        assert_eq!(show(".3g", 1234.5), "1.23e3");
        assert_eq!(show(".3g", 0.00001234), "1.23e-5");
        assert_eq!(show(".2f", 0.0316227766017), "0.03");
        assert_eq!(show(".1e", 31622.7), "3.2e4");
        assert_eq!(show(".1%", 0.9361), "93.6%");
        assert_eq!(NumberFormat::parse(".3g").unwrap().to_string(), ".3g");
        for wrong in ["3g", ".g", ".0g", ".3x", "", ".99f"] {
            assert!(NumberFormat::parse(wrong).is_err(), "{wrong}");
        }
    }
}
