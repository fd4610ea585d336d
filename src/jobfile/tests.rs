use std::time::Duration;

use serde_json::Value;

use super::sweep::Sampling;
use super::*;

fn parse_text(text: &str) -> Result<Jobfile, Diagnostics> {
    let source = Source { path: "Jobfile.toml".into(), text: text.into() };
    parse(&source, Path::new("/w"))
}

#[test]
fn generated_axes_give_the_numbers_a_user_would_write() {
    let jobfile = parse_text(
        "[params]\na = { range = [0, 6, 2] }\nb = { linspace = [0, 1, 3] }\nc = { logspace = [-3, -1, 3] }\nd = { range = [0.1, 0.4, 0.1] }\n[job]\ncommand = \"true\"\n",
    )
    .unwrap();
    let values: Vec<String> =
        jobfile.report_stage().params.iter().map(|p| serde_json::to_string(&p.values).unwrap()).collect();
    assert_eq!(values, ["[0,2,4]", "[0.0,0.5,1.0]", "[0.001,0.01,0.1]", "[0.1,0.2,0.3]"]);
}

#[test]
fn nested_tables_flatten_into_dotted_names() {
    let jobfile =
        parse_text("[params]\nepochs = 3\n[params.model]\nwidth = [1, 2]\n[job]\ncommand = \"true\"\n").unwrap();
    let names: Vec<_> = jobfile.report_stage().params.iter().map(|p| (p.name.as_str(), p.swept)).collect();
    assert_eq!(names, [("epochs", false), ("model.width", true)]);
}

/// The one diagnostic of a Jobfile with exactly one mistake, rendered.
fn mistake(text: &str) -> String {
    let error = parse_text(text).unwrap_err();
    assert_eq!(error.0.len(), 1, "{error}");
    error.to_string()
}

const JOB: &str = "[params]\nmodel = [\"small\", \"large\"]\n[job]\ncommand = \"true\"\n";

#[test]
fn executor_settings_parse_into_their_types() {
    let jobfile = parse_text(&format!(
        "{JOB}gpus = 1\nresources = {{ mem_gb = 8, licenses = 0.5 }}\n[executor]\nkind = \"slurm\"\n[executor.local]\ngpus = [0, 2]\nresources = {{ mem_gb = 64, licenses = 2 }}\n[executor.slurm]\npartition = \"gpu\"\naccount = \"lab\"\nqos = \"normal\"\ntime = \"00:10:00\"\ncpus = 4\nmem = \"16G\"\ngpus = 2\nextra_args = [\"--constraint=a100\"]\nsetup = \"\"\"\nmodule load cuda\nsource venv/bin/activate\n\"\"\"\nmax_parallel = 8\npoll_interval = \"30s\"\n"
    ))
    .unwrap();
    let executor = &jobfile.executor;
    assert_eq!(executor.kind, ExecutorKind::Slurm);
    assert_eq!(executor.local.gpus, GpuPool::Ids(vec![0, 2]));
    let capacities: Vec<_> = executor.local.resources.iter().map(|(n, c)| (n.get_ref().as_str(), *c)).collect();
    assert_eq!(capacities, [("mem_gb", 64.0), ("licenses", 2.0)]);
    assert_eq!(jobfile.report_stage().job.gpus.as_ref().map(|g| g.get_ref()), Some(&PerJob::Value(1)));
    let needs: Vec<_> =
        jobfile.report_stage().job.resources.iter().map(|(n, a)| (n.get_ref().as_str(), a.clone())).collect();
    assert_eq!(needs, [("mem_gb", PerJob::Value(8.0)), ("licenses", PerJob::Value(0.5))]);
    let slurm = &executor.slurm;
    let value = |text: &str| Some(PerJob::Value(text.to_string()));
    assert_eq!(slurm.partition, value("gpu"));
    assert_eq!(slurm.account, value("lab"));
    assert_eq!(slurm.qos, value("normal"));
    assert_eq!(slurm.time, value("00:10:00"));
    assert_eq!(slurm.mem, value("16G"));
    assert_eq!(slurm.setup, value("module load cuda\nsource venv/bin/activate\n"));
    assert_eq!((slurm.cpus.clone(), slurm.gpus.clone()), (Some(PerJob::Value(4)), Some(PerJob::Value(2))));
    assert_eq!(slurm.extra_args, [PerJob::Value("--constraint=a100".to_string())]);
    assert_eq!((slurm.max_parallel, slurm.poll_interval), (Some(8), Duration::from_secs(30)));
}

#[test]
fn without_an_executor_section_jobs_run_locally_on_auto_detected_gpus() {
    let jobfile = parse_text(JOB).unwrap();
    assert_eq!(jobfile.executor.kind, ExecutorKind::Local);
    assert_eq!(jobfile.executor.local.gpus, GpuPool::Auto);
    assert_eq!(jobfile.executor.slurm.poll_interval, crate::jobfile::slurm::DEFAULT_POLL_INTERVAL);
    assert_eq!(jobfile.report_stage().job.gpus, None);
}

#[test]
fn a_setting_with_template_syntax_is_kept_for_rendering_per_job() {
    let jobfile = parse_text(&format!(
        "{JOB}gpus = \"{{{{ 2 if model == 'large' else 1 }}}}\"\n[executor.slurm]\ntime = \"{{{{ '04:00:00' if model == 'large' else '00:30:00' }}}}\"\nsetup = \"echo ${{HOME}}\"\n"
    ))
    .unwrap();
    assert!(matches!(jobfile.report_stage().job.gpus.as_ref().map(|g| g.get_ref()), Some(PerJob::Template(_))));
    assert!(matches!(jobfile.executor.slurm.time, Some(PerJob::Template(_))));
    // `${HOME}` is shell, not a template.
    assert_eq!(jobfile.executor.slurm.setup, Some(PerJob::Value("echo ${HOME}".into())));
}

#[test]
fn durations_become_slurm_time_limits() {
    for (written, limit) in [("90m", "01:30:00"), ("36h", "1-12:00:00"), ("2-00:00:00", "2-00:00:00"), ("90", "90")] {
        let jobfile = parse_text(&format!("{JOB}[executor.slurm]\ntime = \"{written}\"\n")).unwrap();
        assert_eq!(jobfile.executor.slurm.time, Some(PerJob::Value(limit.to_string())), "{written}");
    }
}

#[test]
fn an_unknown_executor_kind_suggests_the_closest() {
    let text = mistake(&format!("{JOB}[executor]\nkind = \"slrum\"\n"));
    assert!(text.contains("unknown kind `slrum`"), "{text}");
    assert!(text.contains("did you mean `slurm`?"), "{text}");
}

#[test]
fn a_job_table_with_a_mistake_does_not_hide_the_mistakes_of_the_filters() {
    let errors = parse_text("[params]\nlr = [1, 2]\n[sweep]\nwhere = \"lrr > 1\"\n[job]\nname = \"x\"\n").unwrap_err();
    assert_eq!(errors.0.len(), 2, "{errors}");
    let text = errors.to_string();
    assert!(text.contains("[job] needs a `command`"), "{text}");
    assert!(text.contains("unknown parameter `lrr`"), "{text}");
}

#[test]
fn a_misspelt_distribution_is_a_mistake_not_a_nested_param() {
    let text = mistake("[params]\nlr = { unifrom = [0, 1] }\n[sweep]\nsamples = 3\n[job]\ncommand = \"true\"\n");
    assert!(text.contains("unknown generator or distribution `unifrom` for `lr`"), "{text}");
    assert!(text.contains("did you mean `uniform`?"), "{text}");
    assert!(!text.contains("`samples` without"), "one mistake, not two: {text}");
    let text = mistake("[params]\nn = { linspce = [0, 1, 5] }\n[job]\ncommand = \"true\"\n");
    assert!(text.contains("did you mean `linspace`?"), "{text}");
    // A real nested param stays one.
    let jobfile = parse_text("[params]\nmodel = { width = [1, 2] }\n[job]\ncommand = \"true\"\n").unwrap();
    assert_eq!(jobfile.report_stage().params[0].name, "model.width");
}

#[test]
fn a_misspelt_slurm_key_suggests_the_closest() {
    let text = mistake(&format!("{JOB}[executor.slurm]\npartiton = \"gpu\"\n"));
    assert!(text.contains("unknown key `partiton`"), "{text}");
    assert!(text.contains("did you mean `partition`?"), "{text}");
    let text = mistake(&format!("{JOB}[executor]\nslrum = {{}}\n"));
    assert!(text.contains("did you mean `slurm`?"), "{text}");
}

#[test]
fn a_time_slurm_cannot_read_is_refused_with_the_forms_it_can() {
    let text = mistake(&format!("{JOB}[executor.slurm]\ntime = \"ten minutes\"\n"));
    assert!(text.contains("invalid `time` \"ten minutes\""), "{text}");
    assert!(text.contains("expected a Slurm time limit such as \"00:10:00\" (HH:MM:SS)"), "{text}");
    assert!(text.contains("Jobfile.toml:6:8"), "{text}");
    for wrong in ["1:2:3:4", "1-", "a-01:00:00", ""] {
        mistake(&format!("{JOB}[executor.slurm]\ntime = \"{wrong}\"\n"));
    }
}

#[test]
fn a_time_limit_is_a_string() {
    let text = mistake(&format!("{JOB}[executor.slurm]\ntime = 90\n"));
    assert!(text.contains("`time` must be a string"), "{text}");
    assert!(text.contains("expected a time limit such as \"00:10:00\", found an integer"), "{text}");
}

#[test]
fn memory_needs_a_whole_number_and_a_unit_slurm_knows() {
    let text = mistake(&format!("{JOB}[executor.slurm]\nmem = \"4.5G\"\n"));
    assert!(text.contains("invalid `mem` \"4.5G\""), "{text}");
    assert!(text.contains("expected an amount of memory such as \"4G\""), "{text}");
    mistake(&format!("{JOB}[executor.slurm]\nmem = \"4 PB\"\n"));
}

#[test]
fn names_with_spaces_are_refused() {
    let text = mistake(&format!("{JOB}[executor.slurm]\npartition = \"gpu large\"\n"));
    assert!(text.contains("expected a name without spaces or quotes"), "{text}");
}

#[test]
fn extra_args_are_options_that_jobman_does_not_write_itself() {
    let text = mistake(&format!("{JOB}[executor.slurm]\nextra_args = [\"--constraint=a100\", \"--array=0-3\"]\n"));
    assert!(text.contains("invalid `extra_args` \"--array=0-3\""), "{text}");
    assert!(text.contains("jobman writes `--array` itself"), "{text}");
    for own in ["-o log.txt", "--output=x", "-e/tmp/x", "--wrap=true", "--error"] {
        mistake(&format!("{JOB}[executor.slurm]\nextra_args = [\"{own}\"]\n"));
    }
    let text = mistake(&format!("{JOB}[executor.slurm]\nextra_args = [\"constraint=a100\"]\n"));
    assert!(text.contains("expected one sbatch option with its value"), "{text}");
    let jobfile =
        parse_text(&format!("{JOB}[executor.slurm]\nextra_args = [\"--exclusive\", \"-C a100\", \"--export=ALL\"]\n"))
            .unwrap();
    assert_eq!(jobfile.executor.slurm.extra_args.len(), 3);
}

#[test]
fn counts_must_be_whole_numbers_or_templates() {
    let text = mistake(&format!("{JOB}[executor.slurm]\ncpus = \"four\"\n"));
    assert!(text.contains("invalid `cpus`"), "{text}");
    assert!(text.contains("expected a number of CPUs per task, found a string"), "{text}");
    mistake(&format!("{JOB}gpus = -1\n"));
    let text = mistake(&format!("{JOB}[executor.slurm]\nmax_parallel = 0\n"));
    assert!(text.contains("expected a whole number from 1"), "{text}");
}

#[test]
fn a_poll_interval_under_a_second_is_refused() {
    let text = mistake(&format!("{JOB}[executor.slurm]\npoll_interval = \"200ms\"\n"));
    assert!(text.contains("`poll_interval` is too short"), "{text}");
    mistake(&format!("{JOB}[executor.slurm]\npoll_interval = \"soon\"\n"));
}

#[test]
fn local_gpus_are_auto_or_distinct_ids() {
    let text = mistake(&format!("{JOB}[executor.local]\ngpus = \"all\"\n"));
    assert!(text.contains("expected \"auto\" or a list of GPU ids such as [0, 1], found \"all\""), "{text}");
    let text = mistake(&format!("{JOB}[executor.local]\ngpus = [0, 1, 0]\n"));
    assert!(text.contains("GPU 0 is listed twice"), "{text}");
    mistake(&format!("{JOB}[executor.local]\ngpus = [-1]\n"));
}

#[test]
fn a_job_may_not_need_more_gpus_than_the_machine_lists() {
    let text = mistake(&format!("{JOB}gpus = 3\n[executor.local]\ngpus = [0, 1]\n"));
    assert!(text.contains("each job needs 3 GPUs, but [executor.local] lists 2"), "{text}");
    assert!(text.contains("Jobfile.toml:5:8"), "{text}");
}

#[test]
fn job_resources_must_be_declared_and_fit() {
    let text =
        mistake(&format!("{JOB}resources = {{ mem_gbs = 8 }}\n[executor.local]\nresources = {{ mem_gb = 64 }}\n"));
    assert!(text.contains("unknown resource `mem_gbs`"), "{text}");
    assert!(text.contains("did you mean `mem_gb`?"), "{text}");
    let text = mistake(&format!("{JOB}resources = {{ licenses = 1 }}\n"));
    assert!(
        text.contains("declare how much the machine has: [executor.local] resources = { licenses = 16 }"),
        "{text}"
    );
    let text =
        mistake(&format!("{JOB}resources = {{ mem_gb = 80 }}\n[executor.local]\nresources = {{ mem_gb = 64 }}\n"));
    assert!(text.contains("each job needs 80 of `mem_gb`, but [executor.local] offers 64"), "{text}");
    let text = mistake(&format!("{JOB}[executor.local]\nresources = {{ mem_gb = 0 }}\n"));
    assert!(text.contains("invalid capacity of `mem_gb`"), "{text}");
}

#[test]
fn a_setting_template_may_use_only_declared_params() {
    let text = mistake(&format!("{JOB}[executor.slurm]\npartition = \"{{{{ modle }}}}\"\n"));
    assert!(text.contains("unknown parameter `modle`"), "{text}");
    assert!(text.contains("did you mean `model`?"), "{text}");
    let text = mistake(&format!("{JOB}gpus = \"{{{{ 1 if model == 'large' }}\"\n"));
    assert!(text.contains("invalid template"), "{text}");
}

#[test]
fn all_mistakes_are_reported_at_once() {
    let error = parse_text("[parms]\nx = 1\n[job]\ncomand = \"true\"\n").unwrap_err();
    let text = error.to_string();
    assert_eq!(error.0.len(), 3, "{text}");
    assert!(text.contains("did you mean `params`?"), "{text}");
    assert!(text.contains("did you mean `command`?"), "{text}");
}

const SAMPLED: &str = "[job]\ncommand = \"true\"\n[params]\n";

#[test]
fn distributions_and_sampling_parse_into_their_types() {
    let jobfile = parse_text(&format!(
        "{SAMPLED}a = {{ uniform = [0, 0.5] }}\nb = {{ loguniform = [1e-4, 1e-1] }}\nc = {{ randint = [1, 8] }}\nd = {{ choice = [\"x\", 2] }}\n[sweep]\nsamples = 20\nseed = -3\n"
    ))
    .unwrap();
    let distributions: Vec<_> =
        jobfile.report_stage().params.iter().map(|p| (p.swept, p.distribution.clone().unwrap())).collect();
    assert_eq!(
        distributions,
        [
            (true, Distribution::Uniform { low: 0.0, high: 0.5 }),
            (true, Distribution::LogUniform { low: 1e-4, high: 1e-1 }),
            (true, Distribution::RandInt { low: 1, high: 8 }),
            (true, Distribution::Choice(vec![Value::from("x"), Value::from(2)])),
        ]
    );
    assert_eq!(jobfile.report_stage().sweep.sampling, Some(Sampling { samples: 20, seed: -3 }));
    let unseeded = parse_text(&format!("{SAMPLED}a = {{ uniform = [0, 1] }}\n[sweep]\nsamples = 2\n")).unwrap();
    assert_eq!(unseeded.report_stage().sweep.sampling, Some(Sampling { samples: 2, seed: 0 }));
}

#[test]
fn a_distribution_without_samples_says_to_add_them() {
    let text = mistake(&format!("{SAMPLED}lr = {{ loguniform = [1e-4, 1e-1] }}\n"));
    assert!(text.contains("`lr` is sampled, but [sweep] has no `samples`"), "{text}");
    assert!(text.contains("Jobfile.toml:4:6"), "{text}");
    assert!(text.contains("samples = 20"), "{text}");
    let text = mistake(&format!("{SAMPLED}lr = {{ uniform = [0, 1] }}\n[sweep]\nseed = 1\n"));
    assert!(text.contains("has no `samples`"), "{text}");
}

#[test]
fn samples_or_seed_without_a_distribution_are_refused() {
    let text = mistake(&format!("{SAMPLED}lr = [0.1, 0.01]\n[sweep]\nsamples = 20\n"));
    assert!(text.contains("`samples` without a sampled parameter"), "{text}");
    assert!(text.contains("lr = { loguniform = [1e-4, 1e-1] }"), "{text}");
    let text = mistake(&format!("{SAMPLED}lr = [0.1, 0.01]\n[sweep]\nseed = 20\n"));
    assert!(text.contains("`seed` without `samples`"), "{text}");
}

#[test]
fn samples_and_seed_are_whole_numbers() {
    for wrong in ["0", "-2", "2.5", "\"10\"", "2000000"] {
        let text = mistake(&format!("{SAMPLED}lr = {{ uniform = [0, 1] }}\n[sweep]\nsamples = {wrong}\n"));
        assert!(text.contains("invalid `samples`"), "{text}");
        assert!(text.contains("expected a whole number from 1 to 1,000,000"), "{text}");
    }
    let text = mistake(&format!("{SAMPLED}lr = {{ uniform = [0, 1] }}\n[sweep]\nsamples = 3\nseed = \"a\"\n"));
    assert!(text.contains("invalid `seed`"), "{text}");
    let text =
        parse_text(&format!("{SAMPLED}lr = {{ uniform = [0, 1] }}\n[sweep]\nsampels = 3\n")).unwrap_err().to_string();
    assert!(text.contains("did you mean `samples`?"), "{text}");
}

#[test]
fn distribution_bounds_are_checked() {
    let cases = [
        ("{ uniform = [1, 1] }", "expected the low bound below the high bound"),
        ("{ uniform = [2, 1] }", "expected the low bound below the high bound"),
        ("{ uniform = [0] }", "expected `uniform = [low, high]` with numbers"),
        ("{ uniform = [\"a\", 1] }", "expected `uniform = [low, high]` with numbers"),
        ("{ uniform = 1 }", "expected `uniform = [low, high]`, found an integer"),
        ("{ loguniform = [0, 1] }", "expected bounds above 0"),
        ("{ loguniform = [-1, 1] }", "expected bounds above 0"),
        ("{ randint = [1, 2.5] }", "expected `randint = [low, high]` with integers, both included"),
        ("{ randint = [3, 3] }", "expected the low bound below the high bound"),
        ("{ choice = [] }", "expected at least one value to choose from"),
        ("{ choice = \"adam\" }", "expected `choice = [..]`, the values to choose from, found a string"),
        ("{ uniform = [0, 1], choice = [1] }", "a sampled parameter takes exactly one key"),
        ("{ uniform = [0, nan] }", "expected a finite number"),
    ];
    for (written, expected) in cases {
        let text = mistake(&format!("{SAMPLED}x = {written}\n[sweep]\nsamples = 3\n"));
        assert!(text.contains(expected), "{written}: {text}");
    }
}
