//! Stages: `[stage.NAME]` tables, `needs` one-to-one and fan-in, upstream outputs in downstream
//! keys (early cutoff), `jobman build STAGE`, upstream failures, and the report of a stage.

use super::*;

/// train writes its weights from `data.txt` (a file the key does not cover, so a forced rerun
/// can change them), eval reads them; ensemble needs every seed of a learning rate.
pub(super) const STAGES: &str = r#"
[params]
lr = [1, 2]
seed = [0, 1]

[stage.train]
name = "train-lr{{lr}}-s{{seed}}"
command = "echo {{job.name}} >> ../../ran.log; [ ! -e ../../fail-lr{{lr}} ] || exit 3; cat ../../data.txt > weights.txt; echo '{\"accuracy\": 0.{{lr}}{{seed}}, \"loss\": {{seed}}}' > results.json"
results = "results.json"
outputs = ["weights.txt"]

[stage.eval]
needs = ["train"]
name = "eval-lr{{lr}}-s{{seed}}-n{{noise}}"
command = "echo {{job.name}} >> ../../ran.log; cat {{needs.train.dir}}/weights.txt > seen.txt; echo {{needs.train.name}} {{needs.train.results.accuracy}} {{needs.train.params.lr}} > context.txt; echo '{\"accuracy\": 0.{{noise}}}' > results.json"
results = "results.json"

[stage.eval.params]
noise = [0, 5]

[stage.ensemble]
needs = [{ stage = "train", group_by = ["lr"] }]
name = "ensemble-lr{{lr}}"
command = "echo {{job.name}} >> ../../ran.log; echo '{% for t in needs.train %}{{t.name}} {% endfor %}' > members.txt"

[report]
stage = "eval"
"#;

fn project() -> Project {
    let project = Project::new();
    project.jobfile(STAGES).file("data.txt", "w1\n");
    project
}

/// The folder of the current job of this name.
fn folder(project: &Project, name: &str) -> PathBuf {
    let out = project.runs(&["ls", "--format", "json"]).ok();
    let jobs: Value = serde_json::from_str(&out.stdout()).unwrap();
    let job = jobs["jobs"].as_array().unwrap().iter().find(|j| j["name"] == name).expect(name);
    project.path().join("scratch_space").join(job["id"].as_str().unwrap())
}

#[test]
fn downstream_jobs_run_after_and_see_their_upstream_jobs() {
    let project = project();
    project.builds(&[]).ok();
    let ran = project.lines("ran.log");
    // Every train job ran before any job that needs train.
    let last_train = ran.iter().rposition(|j| j.starts_with("train")).unwrap();
    let first_other = ran.iter().position(|j| !j.starts_with("train")).unwrap();
    assert!(last_train < first_other, "{ran:?}");
    assert_eq!(ran.len(), 4 + 8 + 2, "{ran:?}");

    let eval = folder(&project, "eval-lr2-s1-n5");
    assert_eq!(fs::read_to_string(eval.join("seen.txt")).unwrap(), "w1\n");
    assert_eq!(fs::read_to_string(eval.join("context.txt")).unwrap(), "train-lr2-s1 0.21 2\n");
    let members = fs::read_to_string(folder(&project, "ensemble-lr1").join("members.txt")).unwrap();
    assert_eq!(members.trim(), "train-lr1-s0 train-lr1-s1");

    // The report has one row per eval job, with its train job's params and results joined in;
    // a train result named like an eval one gets the stage's prefix.
    let report = project.read("report.csv").unwrap();
    let header = report.lines().next().unwrap();
    assert_eq!(header, "id,name,lr,seed,noise,accuracy,loss,train.accuracy,status,duration,attempts");
    assert_eq!(report.lines().count(), 1 + 8);
    assert!(report.contains(",eval-lr2-s1-n5,2,1,5,0.5,1,0.21,done,"), "{report}");

    // ls lists the jobs of every stage, each with its stage and the params it has.
    let out = project.runs(&["ls", "--format", "csv"]).ok();
    let listing = out.stdout();
    assert_eq!(listing.lines().next(), Some("id,stage,name,status,duration,lr,seed,noise"), "{listing}");
    assert_eq!(listing.lines().count(), 1 + 4 + 8 + 2, "{listing}");
    assert!(listing.lines().any(|l| l.contains(",ensemble,ensemble-lr2,done,") && l.ends_with(",2,,")), "{listing}");
    let out =
        project.cmd(&["ls", "--format", "json", "--where", "noise == 5 and lr == 1 and seed == 0"]).output().unwrap();
    let listed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed["jobs"][0]["stage"], "eval", "{listed:#}");
    // One stage alone; a stage misspelt is refused with the right name.
    let out = project.runs(&["ls", "--stage", "ensemble", "--format", "csv"]).ok().stdout();
    assert_eq!(out.lines().count(), 1 + 2, "{out}");
    assert!(out.lines().skip(1).all(|l| l.contains(",ensemble,")), "{out}");
    project.runs(&["ls", "--stage", "ensemle"]).refused().says("did you mean `ensemble`?");
    // show names the upstream job and the outputs its key covers.
    let out = project.cmd(&["show", "eval-lr2-s1-n5"]).output().unwrap();
    let shown = stdout(&out);
    let train_id = folder(&project, "train-lr2-s1").file_name().unwrap().to_string_lossy().to_string();
    let line = shown.lines().find(|l| l.trim_start().starts_with("needs train")).unwrap_or_default();
    // Only the declared outputs: the results reach eval through its rendered command.
    assert!(line.contains(&format!("{train_id}  weights.txt ")) && !line.contains("results.json"), "{shown}");

    project.ran();
    assert_exit(&project.build(&[]), 0);
    assert!(project.ran().is_empty(), "a second build runs nothing");
}

#[test]
fn an_upstream_rerun_with_the_same_outputs_reruns_nothing_downstream() {
    let project = project();
    assert_exit(&project.build(&[]), 0);
    project.ran();
    // Forced, train runs again and writes the same weights and results: eval and ensemble stay.
    project.builds(&["train", "--force"]).ok().ran(["train-lr1-s0", "train-lr1-s1", "train-lr2-s0", "train-lr2-s1"]);
    assert_exit(&project.build(&[]), 0);
    assert!(project.ran().is_empty(), "identical upstream outputs keep downstream keys");

    // Now one train job writes other weights under the same key: exactly its dependents rerun.
    project.file("data.txt", "w2\n");
    project.builds(&["train", "--force", "--where", "lr == 1 and seed == 0"]).ok().ran(["train-lr1-s0"]);
    let out = project.cmd(&["explain", "eval"]).output().unwrap();
    assert!(stdout(&out).contains("eval-lr1-s0-n0  upstream `train`: job "), "{}", stdout(&out));
    assert!(stdout(&out).contains("reran: output `weights.txt` changed"), "{}", stdout(&out));
    project.builds(&[]).ok().ran(["ensemble-lr1", "eval-lr1-s0-n0", "eval-lr1-s0-n5"]);
    assert_eq!(fs::read_to_string(folder(&project, "eval-lr1-s0-n0").join("seen.txt")).unwrap(), "w2\n");
}

#[test]
fn building_a_stage_builds_what_it_needs_and_nothing_else() {
    let project = project();
    // Before anything ran, the jobs waiting for upstream jobs count too.
    let text = project.runs(&["explain"]).ok().stdout();
    assert!(text.starts_with("would run 4 of 14 jobs, then the 10 waiting for upstream jobs:\n"), "{text}");
    assert_exit(&project.build(&["eval"]), 0);
    let ran = project.ran();
    assert_eq!(ran.iter().filter(|j| j.starts_with("train")).count(), 4, "{ran:?}");
    assert_eq!(ran.iter().filter(|j| j.starts_with("eval")).count(), 8, "{ran:?}");
    assert!(!ran.iter().any(|j| j.starts_with("ensemble")), "{ran:?}");
    let link = fs::read_link(project.path().join("scratch_space/by-name/eval/eval-lr1-s0-n0")).unwrap();
    assert!(link.starts_with("../.."), "by-name/STAGE/NAME with stages: {link:?}");
    assert_exit(&project.build(&["train"]), 0);
    assert!(project.ran().is_empty());

    // explain takes a stage as a target too: its jobs alone.
    let out = project.runs(&["explain", "ensemble"]).ok();
    let text = out.stdout();
    // ensemble and the train jobs it needs; the new ensemble jobs are compared with no train job.
    assert!(text.contains("would run 2 of 6 jobs") && !text.contains("eval-"), "{text}");
    assert!(text.contains("ensemble-lr1  new job") && !text.contains("closest previous job"), "{text}");
    let out = project.builds(&["evl"]).refused();
    assert!(
        out.stderr().contains("unknown target `evl`") && out.stderr().contains("did you mean `eval`?"),
        "{}",
        out.stderr()
    );
}

#[test]
fn a_failed_upstream_job_skips_only_its_dependents() {
    let project = project();
    project.file("fail-lr2", "");
    let out = project.builds(&[]).job_failed();
    let ran = project.ran();
    // The lr=2 train jobs failed: their eval and ensemble jobs were skipped, the rest ran.
    assert!(ran.contains(&"eval-lr1-s0-n5".to_string()) && ran.contains(&"ensemble-lr1".to_string()), "{ran:?}");
    assert!(!ran.iter().any(|j| j.starts_with("eval-lr2") || j == "ensemble-lr2"), "{ran:?}");
    let err = out.stderr();
    assert!(err.contains("upstream failed (train job train-lr2-s0)"), "{err}");
    assert_eq!(err.matches("Skipped").count(), 4 + 1, "{err}");
    // Jobs that wait for a failed upstream job are pending, not missing from the count.
    // A filter naming a param of one stage lists that stage's jobs only.
    let out = project.runs(&["ls", "--where", "noise == 5", "--format", "paths"]).ok();
    assert_eq!(out.stdout().lines().count(), 2, "the done lr=1 eval jobs with noise 5: {}", out.stdout());
    let status = project.cmd(&["status"]).output().unwrap();
    assert_eq!(
        stdout(&status).trim(),
        "train     4 jobs: 2 done, 2 failed, 0 pending\n\
         eval      8 jobs: 4 done, 4 pending (4 waiting for upstream jobs)\n\
         ensemble  2 jobs: 1 done, 1 pending (1 waiting for upstream jobs)\n\
         all       14 jobs: 7 done, 2 failed, 5 pending (5 waiting for upstream jobs)"
    );
    // One stage, or several summed; a stage in --where as in --stage.
    let out = project.runs(&["status", "--stage", "eval"]).ok().stdout();
    assert_eq!(out.trim(), "eval  8 jobs: 4 done, 4 pending (4 waiting for upstream jobs)");
    let out = project.runs(&["status", "--stage", "train,ensemble"]).ok().stdout();
    assert!(
        out.trim().ends_with("\nall       6 jobs: 3 done, 2 failed, 1 pending (1 waiting for upstream jobs)"),
        "{out}"
    );
    let json: Value =
        serde_json::from_str(&project.runs(&["status", "--json", "--stage", "train"]).ok().stdout()).unwrap();
    assert_eq!(
        (json["total"].as_u64(), json["failed"].as_u64(), json["stages"].as_array().map(Vec::len)),
        (Some(4), Some(2), Some(1))
    );
    project.runs(&["status", "--stage", "evl"]).refused().says("did you mean `eval`?");
    let out = project.runs(&["ls", "--where", "stage == 'train' and lr == 2", "--format", "csv"]).ok().stdout();
    assert_eq!(
        out.lines().skip(1).map(|l| l.split(',').nth(2).unwrap()).collect::<Vec<_>>(),
        ["train-lr2-s0", "train-lr2-s1"],
        "{out}"
    );
    project.runs(&["ls", "--where", "stag == 'train'"]).refused().says("did you mean `stage`?");

    // Fixed, the failed train jobs and their dependents run; nothing else does.
    fs::remove_file(project.path().join("fail-lr2")).unwrap();
    assert_exit(&project.build(&[]), 0);
    let ran = project.ran();
    assert_eq!(ran.len(), 2 + 4 + 1, "{ran:?}");
    assert!(ran.iter().all(|j| j.contains("lr2")), "{ran:?}");
}

#[test]
fn stage_mistakes_are_clear_errors() {
    let project = Project::new();
    let cases = [
        ("needs = [\"trian\"]", "no stage named `trian`", "did you mean `train`?"),
        ("needs = [{ stage = \"train\", group_by = [\"sed\"] }]", "`group_by` names `sed`", "did you mean `seed`?"),
    ];
    for (needs, message, help) in cases {
        project.jobfile(&format!(
            "[params]\nseed = [0, 1]\n[stage.train]\ncommand = \"true\"\n[stage.eval]\n{needs}\ncommand = \"true\"\n"
        ));
        let out = project.builds(&[]).refused();
        let err = out.stderr();
        assert!(err.contains(message) && err.contains(help) && err.contains("Jobfile.toml:"), "{err}");
    }

    // The cycle named is the cycle, not a stage that merely needs one of its stages.
    project.jobfile(
        "[stage.c]\nneeds = [\"a\"]\ncommand = \"true\"\n[stage.a]\nneeds = [\"b\"]\ncommand = \"true\"\n\
         [stage.b]\nneeds = [\"a\"]\ncommand = \"true\"\n",
    );
    let out = project.builds(&[]).refused();
    assert!(out.stderr().contains("stage `a` needs itself: a → b → a"), "{}", out.stderr());
    assert!(!out.stderr().contains("stage `c`"), "{}", out.stderr());

    // A shared [sweep] that one stage cannot read (it groups `x` away) says which stage.
    project.jobfile(
        "[params]\nx = [1, 7]\ny = [1, 2]\n[sweep]\nwhere = \"x > 5\"\n[stage.a]\ncommand = \"true\"\n\
         [stage.agg]\nneeds = [{ stage = \"a\", group_by = [\"y\"] }]\ncommand = \"true\"\n",
    );
    project.builds(&[]).refused().says("unknown parameter `x` in `x > 5` (in stage `agg`)");

    // A misspelt upstream stage in a template is found once the upstream jobs are done.
    let project = Project::new();
    project.jobfile(
        "[params]\nseed = [0, 1]\n[stage.train]\ncommand = \"true\"\n\
         [stage.eval]\nneeds = [\"train\"]\ncommand = \"echo {{ seed }} {{ needs.trian.dir }}\"\n",
    );
    project.builds(&[]).refused().says("did you mean `needs.train`?");

    let project = Project::new();
    project.jobfile("[stage]\n");
    project.builds(&[]).refused().says("[stage] declares no stage");

    // eval overrides seed with a value train does not have: its jobs need a train job that is not there.
    project.jobfile(
        "[params]\nseed = [0, 1]\n[stage.train]\ncommand = \"true\"\n\
         [stage.eval]\nneeds = [\"train\"]\ncommand = \"true\"\n[stage.eval.params]\nseed = 7\n",
    );
    let out = project.builds(&[]).refused();
    let err = out.stderr();
    assert!(
        err.contains("a job of `eval` with seed=7 needs a job of `train` with the same values, and there is none"),
        "{err}"
    );
    assert!(project.job_dirs().is_empty(), "nothing ran: {:?}", project.job_dirs());
}

/// train → eval → summary (all eval jobs): a stage whose upstream stage waits, waits too.
const CHAIN: &str = r#"
[params]
seed = [0, 1]

[stage.train]
name = "train-s{{seed}}"
command = "echo {{job.name}} >> ../../ran.log; [ ! -e ../../fail-s{{seed}} ] || exit 3"

[stage.eval]
needs = ["train"]
name = "eval-s{{seed}}"
command = "echo {{job.name}} >> ../../ran.log"

[stage.summary]
needs = [{ stage = "eval", all = true }]
name = "summary"
command = "echo {{job.name}} {{ needs.eval | length }} >> ../../ran.log"
"#;

#[test]
fn a_stage_needing_a_waiting_stage_waits_and_never_runs_on_part_of_its_inputs() {
    let project = Project::new();
    project.jobfile(CHAIN);
    // Nothing has run: status and a dry run plan all three stages without a mistake.
    let out = project.runs(&["status"]).ok();
    assert!(
        out.stdout().trim().ends_with("\nall      5 jobs: 0 done, 5 pending (3 waiting for upstream jobs)"),
        "{}",
        out.stdout()
    );
    assert_exit(&project.build(&["--dry-run"]), 0);

    project.file("fail-s1", "");
    let out = project.builds(&[]).job_failed();
    // summary needs both eval jobs; one of them waits for a failed train job: summary is skipped.
    assert_eq!(project.ran(), ["eval-s0", "train-s0", "train-s1"]);
    assert!(
        out.stderr().contains("Skipped ") && out.stderr().contains("upstream failed (eval job seed=1)"),
        "{}",
        out.stderr()
    );

    fs::remove_file(project.path().join("fail-s1")).unwrap();
    project.builds(&[]).ok().ran(["eval-s1", "summary 2", "train-s1"]);
}

#[test]
fn reordering_the_upstream_sweep_reruns_no_fan_in_job() {
    let project = project();
    assert_exit(&project.build(&[]), 0);
    let members = fs::read_to_string(folder(&project, "ensemble-lr1").join("members.txt")).unwrap();
    project.ran();
    project.jobfile(&STAGES.replace("seed = [0, 1]", "seed = [1, 0]"));
    assert_exit(&project.build(&[]), 0);
    assert!(project.ran().is_empty(), "the same jobs in another order are the same jobs");
    assert_eq!(fs::read_to_string(folder(&project, "ensemble-lr1").join("members.txt")).unwrap(), members);
}

#[test]
fn gc_keeps_the_folders_of_jobs_that_wait_for_upstream_jobs() {
    let project = project();
    assert_exit(&project.build(&[]), 0);
    // The lr=2 train jobs run again and fail: their eval and ensemble jobs wait, unkeyed. Their
    // folders are what a successful rerun with the same outputs would bring back.
    project.file("fail-lr2", "");
    assert_exit(&project.build(&["train", "--force", "--where", "lr == 2"]), 1);
    let out = project.runs(&["gc"]).ok();
    let text = out.stdout() + &out.stderr();
    assert!(text.contains("5 folders of stages with jobs waiting for upstream jobs"), "{text}");
    assert!(!text.contains("eval-lr2") && !text.contains("ensemble-lr2"), "{text}");

    fs::remove_file(project.path().join("fail-lr2")).unwrap();
    project.ran();
    project.builds(&[]).ok().ran(["train-lr2-s0", "train-lr2-s1"]); // the same weights bring the downstream jobs back
}

#[test]
fn before_anything_ran_the_report_would_wait_for_every_job_of_its_stage() {
    let project = project();
    let out = project.runs(&["explain", "report"]).ok();
    assert!(out.stdout().contains("report.csv would be remade: 8 jobs would run first"), "{}", out.stdout());
    let out = project.cmd(&["graph"]).output().unwrap();
    assert!(stdout(&out).contains("8 jobs (0 done, 8 pending)"), "{}", stdout(&out));
}

#[test]
fn the_report_builds_its_stage_and_what_it_needs_and_not_a_stage_it_does_not_read() {
    let project = project();
    project.builds(&["report"]).ok();
    let ran = project.ran();
    assert_eq!(ran.iter().filter(|j| j.starts_with("train")).count(), 4, "{ran:?}");
    assert_eq!(ran.iter().filter(|j| j.starts_with("eval")).count(), 8, "{ran:?}");
    assert!(!ran.iter().any(|j| j.starts_with("ensemble")), "the report does not read ensemble: {ran:?}");
    assert!(project.read("report.csv").is_some_and(|csv| csv.lines().count() == 1 + 8));
    project.builds(&[]).ok().ran(["ensemble-lr1", "ensemble-lr2"]);
}

#[test]
fn graph_draws_each_stage_under_the_stages_it_needs_and_each_job_under_its_upstream_jobs() {
    let project = project();
    let text = project.runs(&["graph"]).ok().stdout();
    // A stage that nothing reads (ensemble) is a tree of its own, beside the index's.
    assert_eq!(
        text,
        "ensemble: 2 jobs (0 done, 2 pending)
└── train: 4 jobs (0 done, 4 pending)
figures/index.html (may rebuild)
└── report.csv (would rebuild)
    └── eval: 8 jobs (0 done, 8 pending)
        └── train: 4 jobs (0 done, 4 pending)
"
    );
    project.builds(&["train"]).ok();
    project.ran();

    let text = project.runs(&["graph", "--jobs"]).ok().stdout();
    // Each eval job hangs under the one train job it needs, and under no other.
    for (lr, seed) in [(1, 0), (1, 1), (2, 0), (2, 1)] {
        let eval = format!("eval-lr{lr}-s{seed}-n0 (pending)\n");
        let at = text.find(&eval).unwrap_or_else(|| panic!("{eval} in {text}"));
        let below = &text[at + eval.len()..];
        let next_line = below.lines().next().unwrap_or_default();
        assert!(next_line.ends_with(&format!("train-lr{lr}-s{seed} (done)")), "{next_line:?} in {text}");
    }
    let dot = project.runs(&["graph", "--format", "dot"]).ok().stdout();
    // train → eval, train → ensemble, eval → report → index.
    assert_eq!(dot.matches(" -> ").count(), 4, "{dot}");
}
