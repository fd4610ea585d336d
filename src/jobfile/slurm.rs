//! Slurm settings as a Jobfile writes them, checked and turned into what sbatch reads.

use std::time::Duration;

/// The longest wait between two polls of the queue when the Jobfile does not set `poll_interval`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// The shortest `poll_interval` allowed: Slurm's controller serves every user of the cluster.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The sbatch options jobman writes itself, which `extra_args` may not repeat.
const OWN_OPTIONS: &[(&str, &str)] = &[
    ("--array", "-a"),
    ("--output", "-o"),
    ("--error", "-e"),
    ("--open-mode", ""),
    ("--chdir", "-D"),
    ("--parsable", ""),
    ("--wait", "-W"),
    ("--wrap", ""),
];

/// A Slurm time limit, as written when Slurm reads it (`"90"` minutes, `"MM:SS"`, `"HH:MM:SS"`,
/// `"D-HH"`, `"D-HH:MM"`, `"D-HH:MM:SS"`, `"UNLIMITED"`), or a duration such as `"90m"` or
/// `"2h"` (as `[job] timeout` takes), converted to `HH:MM:SS` or `D-HH:MM:SS`.
pub fn time_limit(text: &str) -> Result<String, String> {
    let text = text.trim();
    if is_slurm_time(text) {
        return Ok(text.to_string());
    }
    let expected = "expected a Slurm time limit such as \"00:10:00\" (HH:MM:SS), \"2-00:00:00\" (D-HH:MM:SS) or \"90\" (minutes), or a duration such as \"90m\" or \"2h\"";
    let duration = humantime::parse_duration(text).map_err(|_| expected.to_string())?;
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    if seconds == 0 {
        return Err("a time limit of zero is no time at all; expected e.g. \"00:10:00\"".into());
    }
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let clock = format!("{:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    Ok(if days > 0 { format!("{days}-{clock}") } else { clock })
}

fn is_slurm_time(text: &str) -> bool {
    if text.eq_ignore_ascii_case("UNLIMITED") || text.eq_ignore_ascii_case("INFINITE") {
        return true;
    }
    let number = |part: &str| !part.is_empty() && part.len() <= 9 && part.bytes().all(|b| b.is_ascii_digit());
    let (days, clock) = match text.split_once('-') {
        Some((days, clock)) => (Some(days), clock),
        None => (None, text),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    days.is_none_or(number) && parts.iter().all(|p| number(p)) && parts.len() <= 3
}

/// An amount of memory as `--mem` reads it: megabytes, or a number with K, M, G or T.
pub fn memory(text: &str) -> Result<String, String> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let unit = text[digits..].to_ascii_uppercase();
    if digits > 0 && ["", "K", "M", "G", "T", "KB", "MB", "GB", "TB"].contains(&unit.as_str()) {
        return Ok(text.to_string());
    }
    Err(
        "expected an amount of memory such as \"4G\", \"500M\" or \"16000\" (megabytes): a whole number, then K, M, G or T"
            .into(),
    )
}

/// A partition, account or QoS name (a comma-separated list for partitions).
pub fn slurm_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text.chars().any(|c| c.is_whitespace() || "\"'\\#".contains(c)) {
        return Err("expected a name without spaces or quotes, e.g. \"gpu\"".into());
    }
    Ok(text.to_string())
}

/// One further sbatch option with its value, e.g. `--constraint=a100`; not one jobman writes.
pub fn extra_arg(text: &str) -> Result<String, String> {
    let text = text.trim();
    if !text.starts_with('-') || text.contains('\n') {
        return Err("expected one sbatch option with its value, e.g. \"--constraint=a100\"".into());
    }
    for (long, short) in OWN_OPTIONS {
        let is = |option: &str| {
            !option.is_empty()
                && text.strip_prefix(option).is_some_and(|rest| {
                    rest.is_empty() || rest.starts_with(['=', ' ']) || (option.len() == 2 && !rest.starts_with('-'))
                })
        };
        if is(long) || is(short) {
            return Err(format!(
                "jobman writes `{long}` itself: the array, its logs and its throttle (`max_parallel`)"
            ));
        }
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_limits_are_kept_as_slurm_reads_them_or_converted_from_durations() {
        for kept in ["10", "10:00", "1:00:00", "48:00:00", "1-0", "1-2:3", "1-02:03:04", "UNLIMITED"] {
            assert_eq!(time_limit(kept).as_deref(), Ok(kept));
        }
        assert_eq!(time_limit("90s").as_deref(), Ok("00:01:30"));
        assert_eq!(time_limit("1h 30m").as_deref(), Ok("01:30:00"));
        assert_eq!(time_limit("3days 1s").as_deref(), Ok("3-00:00:01"));
        for wrong in ["", "-", "1:2:3:4", "1-1:2:3:4", "x", "10 parsecs", "0s", "1.5"] {
            assert!(time_limit(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn memory_takes_the_units_sbatch_takes() {
        for right in ["4G", "4g", "4GB", "4000", "4000M", "1T", "0", "512K"] {
            assert_eq!(memory(right).as_deref(), Ok(right));
        }
        for wrong in ["4.5G", "G", "4 GB", "4P", "-1", ""] {
            assert!(memory(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn extra_args_may_not_repeat_what_jobman_writes() {
        for own in ["--array=1-3", "-a 1-3", "-a1-3", "--output=x", "-o x", "--error", "-e", "--wait", "--wrap=ls"] {
            assert!(extra_arg(own).is_err(), "{own}");
        }
        for fine in ["--exclusive", "-A lab", "--export=ALL", "--exclude=node1", "-C a100", "--mail-type=END"] {
            assert_eq!(extra_arg(fine).as_deref(), Ok(fine));
        }
    }
}
