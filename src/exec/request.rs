//! What each job asks of its executor — GPUs, named resources, sbatch settings — from `[job]`
//! and `[executor.slurm]`, with per-job templates rendered over the job's params and checked.
//! None of it is part of a job's key: where a job runs does not change what it computes.
//!
//! A template that renders to nothing leaves its setting out, so that
//! `extra_args = ["{% if model == 'large' %}--constraint=a100{% endif %}"]` asks for A100s only
//! for the large model.

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use toml::Spanned;

use crate::exec::slurm::SlurmSettings;
use crate::jobfile::slurm::{extra_arg, memory, slurm_name, time_limit};
use crate::jobfile::{ParamSet, display_value};
use crate::jobfile::{PerJob, StageView};
use crate::util::diagnostic::Diagnostic;

/// What a job holds while it runs on the local executor.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRequest {
    pub gpus: u32,
    /// Declared resource → amount, for the resources the job names.
    pub resources: Vec<(String, f64)>,
}

/// The Jobfile's per-job settings, their templates compiled once for all jobs.
pub struct Requests<'j> {
    jobfile: StageView<'j>,
    env: Environment<'static>,
}

impl<'j> Requests<'j> {
    pub fn new(jobfile: StageView<'j>) -> Result<Requests<'j>, Diagnostic> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        let (job, slurm) = (&jobfile.job, &jobfile.executor.slurm);
        let strings = [&slurm.partition, &slurm.account, &slurm.qos, &slurm.time, &slurm.mem, &slurm.setup];
        let mut templates: Vec<&Spanned<String>> =
            strings.into_iter().flatten().chain(&slurm.extra_args).filter_map(template).collect();
        let job_gpus = job.gpus.as_ref().map(Spanned::get_ref);
        templates
            .extend([slurm.cpus.as_ref(), slurm.gpus.as_ref(), job_gpus].into_iter().flatten().filter_map(template));
        templates.extend(job.resources.iter().filter_map(|(_, amount)| template(amount)));
        for text in templates {
            env.add_template_owned(text.get_ref().clone(), text.get_ref().clone()).map_err(|e| {
                Diagnostic::new(format!("invalid template `{}`", text.get_ref())).at(
                    &jobfile.source,
                    text.span(),
                    e.detail().unwrap_or("syntax error").to_string(),
                )
            })?;
        }
        Ok(Requests { jobfile, env })
    }

    /// The GPUs and resources one job holds on the local executor. Fails when a template does
    /// not render to a number, or asks for more of a resource than the machine is declared to have.
    pub fn local(&self, params: &ParamSet) -> Result<LocalRequest, Diagnostic> {
        let job = &self.jobfile.job;
        let gpus = match &job.gpus {
            None => 0,
            Some(gpus) => {
                self.number(gpus.get_ref(), params, "a whole number of GPUs", |t| t.parse().ok())?.unwrap_or(0)
            }
        };
        let mut resources = Vec::new();
        for (name, amount) in &job.resources {
            let Some(amount) = self.number(amount, params, "a number from 0", |t| {
                t.parse::<f64>().ok().filter(|n| *n >= 0.0 && n.is_finite())
            })?
            else {
                continue;
            };
            let capacity = self.jobfile.executor.local.resources.iter().find(|(n, _)| n.get_ref() == name.get_ref());
            if let Some((_, capacity)) = capacity
                && amount > *capacity
            {
                return Err(Diagnostic::new(format!(
                    "the job with {} needs {amount} of `{}`, but [executor.local] offers {capacity}",
                    describe(params),
                    name.get_ref()
                ))
                .at(&self.jobfile.source, name.span(), "it could never start"));
            }
            resources.push((name.get_ref().clone(), amount));
        }
        Ok(LocalRequest { gpus, resources })
    }

    /// One job's sbatch settings; `gpus` defaults to `[job] gpus`.
    pub fn slurm(&self, params: &ParamSet) -> Result<SlurmSettings, Diagnostic> {
        let spec = &self.jobfile.executor.slurm;
        let string = |setting: &Option<PerJob<String>>, key: &str, check: fn(&str) -> Result<String, String>| {
            setting.as_ref().map_or(Ok(None), |s| self.checked(s, params, key, check))
        };
        let count = |setting: &Option<PerJob<u32>>, what: &str| {
            setting.as_ref().map_or(Ok(None), |s| self.number(s, params, what, |t| t.parse().ok()))
        };
        let mut extra_args = Vec::new();
        for arg in &spec.extra_args {
            extra_args.extend(self.checked(arg, params, "extra_args", extra_arg)?);
        }
        let setup = match &spec.setup {
            None => None,
            Some(PerJob::Value(text)) => Some(text.clone()),
            Some(PerJob::Template(template)) => Some(self.render(template, params)?).filter(|s| !s.trim().is_empty()),
        };
        Ok(SlurmSettings {
            partition: string(&spec.partition, "partition", slurm_name)?,
            account: string(&spec.account, "account", slurm_name)?,
            qos: string(&spec.qos, "qos", slurm_name)?,
            time: string(&spec.time, "time", time_limit)?,
            cpus: count(&spec.cpus, "a whole number of CPUs")?,
            mem: string(&spec.mem, "mem", memory)?,
            gpus: match &spec.gpus {
                Some(_) => count(&spec.gpus, "a whole number of GPUs")?,
                None => count(&self.jobfile.job.gpus.clone().map(Spanned::into_inner), "a whole number of GPUs")?,
            },
            extra_args,
            setup,
        })
    }

    fn render(&self, template: &Spanned<String>, params: &ParamSet) -> Result<String, Diagnostic> {
        let rendered = self.env.get_template(template.get_ref()).and_then(|t| t.render(Serde(&params.nested())));
        rendered.map_err(|e| {
            Diagnostic::new(format!("cannot render `{}` for the job with {}", template.get_ref(), describe(params))).at(
                &self.jobfile.source,
                template.span(),
                e.detail().unwrap_or("rendering failed").to_string(),
            )
        })
    }

    /// A string setting: the value, or the template rendered and checked; `None` when it renders empty.
    fn checked(
        &self,
        setting: &PerJob<String>,
        params: &ParamSet,
        key: &str,
        check: fn(&str) -> Result<String, String>,
    ) -> Result<Option<String>, Diagnostic> {
        let template = match setting {
            PerJob::Value(value) => return Ok(Some(value.clone())),
            PerJob::Template(template) => template,
        };
        let text = self.render(template, params)?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        check(&text).map(Some).map_err(|expected| self.rendered_wrong(template, params, key, &text, &expected))
    }

    /// A number setting: the value, or the template rendered and read; `None` when it renders empty.
    fn number<T: Copy>(
        &self,
        setting: &PerJob<T>,
        params: &ParamSet,
        what: &str,
        read: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, Diagnostic> {
        let template = match setting {
            PerJob::Value(value) => return Ok(Some(*value)),
            PerJob::Template(template) => template,
        };
        let text = self.render(template, params)?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        read(text.trim())
            .map(Some)
            .ok_or_else(|| self.rendered_wrong(template, params, "setting", &text, &format!("expected {what}")))
    }

    fn rendered_wrong(
        &self,
        template: &Spanned<String>,
        params: &ParamSet,
        key: &str,
        text: &str,
        expected: &str,
    ) -> Diagnostic {
        Diagnostic::new(format!("this {key} renders as `{}` for the job with {}", text.trim(), describe(params))).at(
            &self.jobfile.source,
            template.span(),
            expected,
        )
    }
}

fn template<T>(setting: &PerJob<T>) -> Option<&Spanned<String>> {
    match setting {
        PerJob::Value(_) => None,
        PerJob::Template(template) => Some(template),
    }
}

/// `model=large, lr=0.1`: a job named by its params, for messages.
fn describe(params: &ParamSet) -> String {
    params.0.iter().map(|(name, value)| format!("{name}={}", display_value(value))).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::util::diagnostic::Source;

    fn jobfile(text: &str) -> crate::jobfile::Jobfile {
        let source = Source { path: "Jobfile.toml".into(), text: text.into() };
        crate::jobfile::parse(&source, Path::new("/w")).unwrap()
    }

    fn params(pairs: &[(&str, serde_json::Value)]) -> ParamSet {
        ParamSet(pairs.iter().map(|(n, v)| ((*n).into(), v.clone())).collect())
    }

    const SWEEP: &str = "[params]\nmodel = [\"small\", \"large\"]\n[job]\ncommand = \"true\"\n";

    #[test]
    fn where_and_with_what_a_job_runs_is_not_part_of_its_key() {
        let plain = jobfile(SWEEP);
        let dressed = jobfile(&format!(
            "{SWEEP}gpus = 1\nresources = {{ mem_gb = 8 }}\n[executor]\nkind = \"slurm\"\n[executor.local]\ngpus = [0, 1]\nresources = {{ mem_gb = 64 }}\n[executor.slurm]\npartition = \"gpu\"\ntime = \"{{{{ model }}}}\"\nmem = \"4G\"\nsetup = \"module load cuda\"\nmax_parallel = 2\n"
        ));
        let job = params(&[("model", json!("large"))]);
        let key = |jobfile: StageView<'_>| {
            crate::plan::render::Renderer::new(jobfile).unwrap().plan(0, job.clone(), None).unwrap().key
        };
        assert_eq!(key(plain.stage(0)), key(dressed.stage(0)));
    }

    #[test]
    fn templates_render_per_job_and_empty_ones_leave_the_setting_out() {
        let jobfile = jobfile(&format!(
            "{SWEEP}gpus = \"{{{{ 2 if model == 'large' else 0 }}}}\"\n[executor.slurm]\npartition = \"cpu\"\ntime = \"{{{{ '04:00:00' if model == 'large' else '30m' }}}}\"\nextra_args = [\"{{% if model == 'large' %}}--constraint=a100{{% endif %}}\", \"--exclusive\"]\nsetup = \"module load python/{{{{ model }}}}\"\n"
        ));
        let requests = Requests::new(jobfile.stage(0)).unwrap();
        let small = requests.slurm(&params(&[("model", json!("small"))])).unwrap();
        let large = requests.slurm(&params(&[("model", json!("large"))])).unwrap();
        assert_eq!(
            small,
            SlurmSettings {
                partition: Some("cpu".into()),
                time: Some("00:30:00".into()),
                gpus: Some(0),
                extra_args: vec!["--exclusive".into()],
                setup: Some("module load python/small".into()),
                ..SlurmSettings::default()
            }
        );
        assert_eq!(large.time.as_deref(), Some("04:00:00"));
        assert_eq!(large.gpus, Some(2), "[executor.slurm] gpus defaults to [job] gpus");
        assert_eq!(large.extra_args, ["--constraint=a100", "--exclusive"]);
        assert_eq!(requests.local(&params(&[("model", json!("large"))])).unwrap().gpus, 2);
    }

    #[test]
    fn a_template_that_renders_a_wrong_value_names_the_job_and_what_was_expected() {
        let jobfile = jobfile(&format!("{SWEEP}[executor.slurm]\nmem = \"{{{{ model }}}}\"\n"));
        let error = Requests::new(jobfile.stage(0)).unwrap().slurm(&params(&[("model", json!("large"))])).unwrap_err();
        let text = crate::util::diagnostic::Diagnostics::from(error).to_string();
        assert!(text.contains("this mem renders as `large` for the job with model=large"), "{text}");
        assert!(text.contains("expected an amount of memory such as \"4G\""), "{text}");
        assert!(text.contains("Jobfile.toml:6:7"), "{text}");
    }

    #[test]
    fn a_rendered_amount_beyond_the_declared_capacity_is_refused() {
        let jobfile = jobfile(&format!(
            "{SWEEP}resources = {{ mem_gb = \"{{{{ 64 if model == 'large' else 8 }}}}\" }}\n[executor.local]\nresources = {{ mem_gb = 32 }}\n"
        ));
        let requests = Requests::new(jobfile.stage(0)).unwrap();
        let small = requests.local(&params(&[("model", json!("small"))])).unwrap();
        assert_eq!(small, LocalRequest { gpus: 0, resources: vec![("mem_gb".into(), 8.0)] });
        let error = requests.local(&params(&[("model", json!("large"))])).unwrap_err();
        assert_eq!(error.message, "the job with model=large needs 64 of `mem_gb`, but [executor.local] offers 32");
    }
}
