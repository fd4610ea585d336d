//! `[executor]`: where jobs run (the local pool or Slurm), and what each job asks of it.

use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::util::diagnostic::did_you_mean;

use super::job::{JobSpec, PerJob};
use super::params::Param;
use super::walker::{Item, Walker, is_template, kind, toml_number};

pub(super) const EXECUTOR_KEYS: &[&str] = &["kind", "local", "slurm"];
pub(super) const LOCAL_KEYS: &[&str] = &["gpus", "resources"];
pub(super) const SLURM_KEYS: &[&str] = &[
    "partition",
    "account",
    "qos",
    "time",
    "cpus",
    "mem",
    "gpus",
    "extra_args",
    "setup",
    "max_parallel",
    "jobs_per_task",
    "poll_interval",
    "requeue",
];

/// `[executor]`: where and how jobs run. None of it is part of a job's key.
#[derive(Debug, Clone, Default)]
pub struct ExecutorSpec {
    pub kind: ExecutorKind,
    pub local: LocalSpec,
    pub slurm: SlurmSpec,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExecutorKind {
    #[default]
    Local,
    Slurm,
}

impl ExecutorKind {
    /// As `--executor` and `[executor] kind` name it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Local => "local",
            ExecutorKind::Slurm => "slurm",
        }
    }
}

/// `jobs_per_task`: a number, or `"auto"` (the default): chosen from how long the stage's jobs took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JobsPerTask {
    #[default]
    Auto,
    Fixed(u32),
}

/// `[executor.local]`: what the machine offers jobs besides cores.
#[derive(Debug, Clone, Default)]
pub struct LocalSpec {
    pub gpus: GpuPool,
    /// Named resource → capacity, in declaration order: the jobs running at once hold at most this much.
    pub resources: Vec<(Spanned<String>, f64)>,
}

/// The GPUs the local executor hands out, one job at a time each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum GpuPool {
    /// Those `nvidia-smi -L` lists; none without it.
    #[default]
    Auto,
    /// These ids, as `CUDA_VISIBLE_DEVICES` names them.
    Ids(Vec<u32>),
}

/// `[executor.slurm]`: sbatch settings. Strings and counts may be templates over params; jobs
/// whose rendered settings differ go into different arrays.
#[derive(Debug, Clone)]
pub struct SlurmSpec {
    pub partition: Option<PerJob<String>>,
    pub account: Option<PerJob<String>>,
    pub qos: Option<PerJob<String>>,
    pub time: Option<PerJob<String>>,
    pub cpus: Option<PerJob<u32>>,
    pub mem: Option<PerJob<String>>,
    /// `--gres=gpu:N`; default: `[job] gpus`.
    pub gpus: Option<PerJob<u32>>,
    pub extra_args: Vec<PerJob<String>>,
    pub setup: Option<PerJob<String>>,
    /// At most this many tasks of one array run at once (`--array=…%N`).
    pub max_parallel: Option<u32>,
    /// How many jobs one array task runs, one after the other: Slurm's cost of starting a task is
    /// paid once for them all (for short jobs).
    pub jobs_per_task: JobsPerTask,
    /// The longest wait between two looks at the queue.
    pub poll_interval: Duration,
    /// Whether Slurm may requeue a task after preemption or a node failure (`--requeue`,
    /// `--no-requeue`); `None`: as the cluster's `JobRequeue` says.
    pub requeue: Option<bool>,
}

impl Default for SlurmSpec {
    fn default() -> Self {
        SlurmSpec {
            partition: None,
            account: None,
            qos: None,
            time: None,
            cpus: None,
            mem: None,
            gpus: None,
            extra_args: Vec::new(),
            setup: None,
            max_parallel: None,
            jobs_per_task: JobsPerTask::Auto,
            poll_interval: crate::jobfile::slurm::DEFAULT_POLL_INTERVAL,
            requeue: None,
        }
    }
}

/// `[executor]`, `[executor.local]`, `[executor.slurm]`, and the per-job `gpus` and `resources`.
impl Walker<'_> {
    pub(super) fn executor(&mut self, item: Option<&Item<'_>>) -> ExecutorSpec {
        let Some(table) = self.table(item, "[executor]") else { return ExecutorSpec::default() };
        self.unknown_keys(table, EXECUTOR_KEYS, "an [executor] key");
        let kind = self.choice(table, "kind", &[("local", ExecutorKind::Local), ("slurm", ExecutorKind::Slurm)]);
        ExecutorSpec {
            kind: kind.unwrap_or_default(),
            local: self.local(table.get("local")),
            slurm: self.slurm(table.get("slurm")),
        }
    }

    pub(super) fn local(&mut self, item: Option<&Item<'_>>) -> LocalSpec {
        let Some(table) = self.table(item, "[executor.local]") else { return LocalSpec::default() };
        self.unknown_keys(table, LOCAL_KEYS, "an [executor.local] key");
        let expected = "expected \"auto\" or a list of GPU ids such as [0, 1]";
        let gpus = match table.get("gpus").map(|item| (item, item.get_ref())) {
            None => GpuPool::Auto,
            Some((_, DeValue::String(text))) if text.as_ref() == "auto" => GpuPool::Auto,
            Some((item, DeValue::Array(items))) => {
                let mut ids: Vec<u32> = Vec::new();
                for element in items.iter() {
                    match element.get_ref() {
                        DeValue::Integer(i) if i.radix() == 10 => match i.as_str().parse::<u32>() {
                            Ok(id) if ids.contains(&id) => {
                                self.at(element.span(), format!("GPU {id} is listed twice"), "each id once");
                            }
                            Ok(id) => ids.push(id),
                            Err(_) => {
                                self.at(element.span(), "invalid GPU id", "expected a number from 0");
                            }
                        },
                        other => {
                            self.at(
                                element.span(),
                                "invalid GPU id",
                                format!("expected a number from 0, found {}", kind(other)),
                            );
                        }
                    }
                }
                if ids.is_empty() && items.is_empty() {
                    self.at(item.span(), "an empty GPU list", expected).help =
                        Some("leave `gpus` out when jobs need no GPU".into());
                }
                GpuPool::Ids(ids)
            }
            Some((item, other)) => {
                let found = match other {
                    DeValue::String(text) => format!("found \"{text}\""),
                    other => format!("found {}", kind(other)),
                };
                self.at(item.span(), "invalid `gpus`", format!("{expected}, {found}"));
                GpuPool::Auto
            }
        };
        let mut resources = Vec::new();
        if let Some(capacities) = self.table(table.get("resources"), "`resources`") {
            for (name, item) in capacities.iter() {
                match toml_number(item.get_ref()) {
                    Some(capacity) if capacity > 0.0 && capacity.is_finite() => {
                        resources.push((Spanned::new(name.span(), name.get_ref().to_string()), capacity));
                    }
                    _ => {
                        self.at(
                            item.span(),
                            format!("invalid capacity of `{}`", name.get_ref()),
                            "expected a positive number",
                        )
                        .help = Some("e.g. `resources = { mem_gb = 64, licenses = 4 }`".into());
                    }
                }
            }
        }
        LocalSpec { gpus, resources }
    }

    pub(super) fn slurm(&mut self, item: Option<&Item<'_>>) -> SlurmSpec {
        let Some(table) = self.table(item, "[executor.slurm]") else { return SlurmSpec::default() };
        self.unknown_keys(table, SLURM_KEYS, "an [executor.slurm] key");
        use crate::jobfile::slurm::{extra_arg, memory, slurm_name, time_limit};
        let extra_args = self
            .strings(table, "extra_args", "an sbatch option such as \"--constraint=a100\"")
            .into_iter()
            .filter_map(|arg| self.checked("extra_args", arg, extra_arg))
            .collect();
        let max_parallel = table.get("max_parallel").and_then(|item| match item.get_ref() {
            DeValue::Integer(i) if i.radix() == 10 => i.as_str().parse::<u32>().ok().filter(|&n| n > 0),
            _ => None,
        });
        if let (Some(item), None) = (table.get("max_parallel"), max_parallel) {
            self.at(
                item.span(),
                "invalid `max_parallel`",
                "expected a whole number from 1: how many tasks of an array run at once",
            );
        }
        let jobs_per_task = table.get("jobs_per_task").map_or(Some(JobsPerTask::Auto), |item| match item.get_ref() {
            DeValue::Integer(i) if i.radix() == 10 => {
                i.as_str().parse::<u32>().ok().filter(|&n| n > 0).map(JobsPerTask::Fixed)
            }
            DeValue::String(text) if text == "auto" => Some(JobsPerTask::Auto),
            _ => None,
        });
        if let (Some(item), None) = (table.get("jobs_per_task"), jobs_per_task) {
            self.at(
                item.span(),
                "invalid `jobs_per_task`",
                "expected \"auto\" or a whole number from 1: how many jobs one array task runs in turn",
            )
            .help = Some(
                "\"auto\" (the default) packs short jobs into tasks of a few minutes, from their recorded durations"
                    .into(),
            );
        }
        let poll_interval =
            self.duration(table, "poll_interval").unwrap_or(crate::jobfile::slurm::DEFAULT_POLL_INTERVAL);
        if let Some(item) = table.get("poll_interval")
            && poll_interval < crate::jobfile::slurm::MIN_POLL_INTERVAL
        {
            self.at(item.span(), "`poll_interval` is too short", "expected at least 1 s").help = Some(
                "every look at the queue is a request to the cluster's controller, which all its users share".into(),
            );
        }
        SlurmSpec {
            partition: self.slurm_string(table, "partition", "a partition name such as \"gpu\"", slurm_name),
            account: self.slurm_string(table, "account", "an account name", slurm_name),
            qos: self.slurm_string(table, "qos", "a QoS name", slurm_name),
            time: self.slurm_string(table, "time", "a time limit such as \"00:10:00\"", time_limit),
            cpus: self.count(table, "cpus", "a number of CPUs per task"),
            mem: self.slurm_string(table, "mem", "an amount of memory such as \"4G\"", memory),
            gpus: self.count(table, "gpus", "a number of GPUs per task"),
            extra_args,
            setup: self.string(table, "setup", "shell lines such as \"module load cuda\"").map(|setup| {
                if is_template(setup.get_ref()) { PerJob::Template(setup) } else { PerJob::Value(setup.into_inner()) }
            }),
            max_parallel,
            jobs_per_task: jobs_per_task.unwrap_or_default(),
            poll_interval,
            requeue: self.boolean(table, "requeue"),
        }
    }

    /// A string setting: a template (checked once rendered), or a value checked now.
    pub(super) fn slurm_string(
        &mut self,
        table: &DeTable<'_>,
        key: &str,
        what: &str,
        check: fn(&str) -> Result<String, String>,
    ) -> Option<PerJob<String>> {
        let text = self.string(table, key, what)?;
        self.checked(key, text, check)
    }

    pub(super) fn checked(
        &mut self,
        key: &str,
        text: Spanned<String>,
        check: fn(&str) -> Result<String, String>,
    ) -> Option<PerJob<String>> {
        if is_template(text.get_ref()) {
            return Some(PerJob::Template(text));
        }
        match check(text.get_ref()) {
            Ok(value) => Some(PerJob::Value(value)),
            Err(expected) => {
                self.at(text.span(), format!("invalid `{key}` \"{}\"", text.get_ref()), expected);
                None
            }
        }
    }

    /// A whole number from 0, or a template that renders to one.
    pub(super) fn count(&mut self, table: &DeTable<'_>, key: &str, what: &str) -> Option<PerJob<u32>> {
        let item = table.get(key)?;
        match item.get_ref() {
            DeValue::Integer(i) if i.radix() == 10 => match i.as_str().parse::<u32>() {
                Ok(n) => Some(PerJob::Value(n)),
                Err(_) => {
                    self.at(item.span(), format!("invalid `{key}`"), format!("expected {what}: a whole number from 0"));
                    None
                }
            },
            DeValue::String(text) if is_template(text) => {
                Some(PerJob::Template(Spanned::new(item.span(), text.to_string())))
            }
            other => {
                self.at(item.span(), format!("invalid `{key}`"), format!("expected {what}, found {}", kind(other)))
                    .help = Some(format!(
                    "write a number, `{key} = 2`, or a template over params, `{key} = \"{{{{ 2 if big else 1 }}}}\"`"
                ));
                None
            }
        }
    }

    /// A number from 0 (whole or not), or a template that renders to one.
    pub(super) fn quantity(&mut self, table: &DeTable<'_>, key: &str) -> Option<PerJob<f64>> {
        let item = table.get(key)?;
        match (item.get_ref(), toml_number(item.get_ref())) {
            (_, Some(n)) if n >= 0.0 && n.is_finite() => Some(PerJob::Value(n)),
            (DeValue::String(text), _) if is_template(text) => {
                Some(PerJob::Template(Spanned::new(item.span(), text.to_string())))
            }
            (other, _) => {
                self.at(
                    item.span(),
                    format!("invalid amount of `{key}`"),
                    format!("expected a number from 0, or a template over params; found {}", kind(other)),
                );
                None
            }
        }
    }

    /// A duration: `"90s"`, `"10m"`, `"2h"` or a whole number of seconds.
    /// A positive duration: `"90s"`, `"10m"`, `"2h"`, or whole seconds.
    pub(super) fn duration(&mut self, table: &DeTable<'_>, key: &str) -> Option<Duration> {
        let item = table.get(key)?;
        let message = format!("invalid {key}");
        let duration = match item.get_ref() {
            DeValue::String(text) => match humantime::parse_duration(text) {
                Ok(duration) => Some(duration),
                Err(e) => {
                    self.at(item.span(), message, format!("{e}; expected e.g. \"90s\", \"10m\", \"2h\""));
                    None
                }
            },
            DeValue::Integer(i) => match i.as_str().parse::<u64>() {
                Ok(seconds) if i.radix() == 10 => Some(Duration::from_secs(seconds)),
                _ => {
                    self.at(item.span(), message, "expected a positive number of seconds");
                    None
                }
            },
            other => {
                self.at(item.span(), message, format!("expected a duration such as \"10m\", found {}", kind(other)));
                None
            }
        }?;
        if duration.is_zero() {
            self.at(item.span(), format!("invalid {key}"), "a duration of 0 would stop everything at once").help =
                Some("write how long, e.g. \"10m\"".into());
            return None;
        }
        Some(duration)
    }

    /// What can only be checked with the whole file read: resources named in `[job]` are declared,
    /// fixed amounts fit what the machine offers, and templates use only declared params.
    pub(super) fn per_job_settings(&mut self, job: Option<&JobSpec>, executor: &ExecutorSpec, params: &[Param]) {
        let local = &executor.local;
        let mut templates: Vec<&Spanned<String>> = Vec::new();
        if let Some(job) = job {
            if let (Some(PerJob::Value(needed)), GpuPool::Ids(ids)) =
                (job.gpus.as_ref().map(Spanned::get_ref), &local.gpus)
                && *needed as usize > ids.len()
            {
                let span = job.gpus.as_ref().map_or(0..0, Spanned::span);
                self.at(
                    span,
                    format!("each job needs {needed} GPUs, but [executor.local] lists {}", ids.len()),
                    "no job could ever start",
                )
                .help = Some("list more ids in [executor.local] gpus, or ask for fewer".into());
            }
            for (name, amount) in &job.resources {
                let declared = local.resources.iter().find(|(declared, _)| declared.get_ref() == name.get_ref());
                match (declared, amount) {
                    (None, _) => {
                        let names = local.resources.iter().map(|(n, _)| n.get_ref().as_str());
                        let help = did_you_mean(name.get_ref(), names).unwrap_or_else(|| {
                            format!(
                                "declare how much the machine has: [executor.local] resources = {{ {} = 16 }}",
                                name.get_ref()
                            )
                        });
                        self.at(
                            name.span(),
                            format!("unknown resource `{}`", name.get_ref()),
                            "not declared in [executor.local] resources",
                        )
                        .help = Some(help);
                    }
                    (Some((_, capacity)), PerJob::Value(needed)) if needed > capacity => {
                        self.at(
                            name.span(),
                            format!(
                                "each job needs {needed} of `{}`, but [executor.local] offers {capacity}",
                                name.get_ref()
                            ),
                            "no job could ever start",
                        );
                    }
                    _ => {}
                }
            }
            templates.extend(job.gpus.iter().map(Spanned::get_ref).filter_map(template_of));
            templates.extend(job.resources.iter().filter_map(|(_, amount)| template_of(amount)));
        }
        let slurm = &executor.slurm;
        let strings = [&slurm.partition, &slurm.account, &slurm.qos, &slurm.time, &slurm.mem, &slurm.setup];
        templates.extend(strings.into_iter().flatten().chain(&slurm.extra_args).filter_map(template_of));
        templates.extend([&slurm.cpus, &slurm.gpus].into_iter().flatten().filter_map(template_of));
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        for template in templates {
            let origin = crate::jobfile::expr::Origin { source: self.source, span: template.span() };
            if let Err(diagnostic) = crate::jobfile::expr::check_template(template.get_ref(), &names, &origin) {
                self.error(diagnostic);
            }
        }
    }
}

pub(super) fn template_of<T>(setting: &PerJob<T>) -> Option<&Spanned<String>> {
    match setting {
        PerJob::Value(_) => None,
        PerJob::Template(template) => Some(template),
    }
}
