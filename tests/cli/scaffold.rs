//! `jobman init`, `jobman completions` and `jobman man`: the scaffold builds as written and
//! overwrites nothing of the user's; completion scripts parse and complete; man pages render.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::SystemTime;
use std::{env, fs};

use super::{Project, assert_exit, stderr, stdout, strings};

const SCAFFOLD: [&str; 4] = ["Jobfile.toml", "templates/train.py.j2", ".gitignore", "README.md"];

#[test]
fn init_scaffolds_a_project_that_builds_every_job_then_nothing() {
    let project = Project::new();
    let out = project.cmd(&["init"]).output().expect("jobman runs");
    assert_exit(&out, 0);
    assert_eq!(
        stderr(&out),
        "     Created Jobfile.toml\n     Created templates/train.py.j2\n     Created .gitignore\n     Created \
         README.md\n        Next jobman build   (runs the sweep, then writes report.csv and figures/)\n"
    );
    for file in SCAFFOLD {
        assert!(project.path().join(file).is_file(), "{file} was not created");
    }

    let out = project.builds(&[]).ok();

    // Every job ran: six folders, each with its results, and six rows in the report.
    assert_eq!(project.job_dirs().len(), 6, "{}", out.stderr());
    for dir in project.job_dirs() {
        let results = fs::read_to_string(dir.join("results.json")).expect("each job wrote results.json");
        let results: serde_json::Value = serde_json::from_str(&results).expect("results.json is JSON");
        assert!(results["loss"].is_f64(), "{results}");
    }
    let report = project.read("report.csv").expect("report.csv written");
    let mut lines = report.lines();
    assert_eq!(lines.next(), Some("id,name,lr,seed,loss,w,b,duration"));
    let mut names: Vec<&str> = lines.map(|line| line.split(',').nth(1).expect("a name column")).collect();
    names.sort();
    assert_eq!(names, ["lr0.01-s0", "lr0.01-s1", "lr0.03-s0", "lr0.03-s1", "lr0.1-s0", "lr0.1-s1"]);
    let png = fs::read(project.path().join("figures/loss_vs_lr.png")).expect("the figure's PNG");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(project.path().join("figures/index.html").is_file());

    // A second build runs nothing: no record is rewritten (each holds its run's start time), no
    // product is touched.
    let before = snapshot(&project);
    let out = project.builds(&[]).ok();
    assert_eq!(snapshot(&project), before, "the second build changed files:\n{}", out.stderr());
}

/// Each record's bytes, and the modification times of the products.
fn snapshot(project: &Project) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for dir in project.job_dirs() {
        let record = fs::read_to_string(dir.join("jobman-record.json")).unwrap_or_default();
        files.insert(dir.display().to_string(), record);
    }
    for product in ["report.csv", "figures/loss_vs_lr.png", "figures/index.html"] {
        let modified = fs::metadata(project.path().join(product)).and_then(|m| m.modified()).ok();
        files.insert(product.to_string(), format!("{:?}", modified.map(|t| t.duration_since(SystemTime::UNIX_EPOCH))));
    }
    files
}

#[test]
fn the_scaffold_jobfile_explains_every_line() {
    let project = Project::new();
    assert_exit(&project.cmd(&["init"]).output().expect("jobman runs"), 0);
    let jobfile = project.read("Jobfile.toml").expect("Jobfile.toml");
    let bare: Vec<&str> = jobfile.lines().filter(|line| !line.trim().is_empty() && !line.contains('#')).collect();
    assert!(bare.is_empty(), "lines without a comment: {bare:#?}");
}

#[test]
fn init_creates_a_missing_folder_and_says_to_go_there() {
    let project = Project::new();
    let out = project.cmd(&["init", "my sweep"]).output().expect("jobman runs");
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("     Created my sweep/Jobfile.toml\n"), "{}", stderr(&out));
    assert!(stderr(&out).contains("Next cd 'my sweep' && jobman build"), "{}", stderr(&out));
    for file in SCAFFOLD {
        assert!(project.path().join("my sweep").join(file).is_file(), "{file} was not created");
    }
    assert!(!project.path().join("Jobfile.toml").exists());
}

#[test]
fn init_refuses_to_overwrite_a_jobfile_or_template_and_writes_nothing() {
    let project = Project::new();
    project.jobfile("# mine\n").template("train.py.j2", "mine\n");
    let out = project.cmd(&["init"]).output().expect("jobman runs");
    assert_exit(&out, 2);
    assert_eq!(
        stderr(&out),
        "error: this folder already has Jobfile.toml and templates/train.py.j2; jobman init overwrites nothing\n  \
         help: `jobman init --force` replaces them with the scaffold's (.gitignore and README.md are only ever \
         appended to)\n"
    );
    assert_eq!(project.read("Jobfile.toml").as_deref(), Some("# mine\n"));
    assert_eq!(project.read("templates/train.py.j2").as_deref(), Some("mine\n"));
    assert!(project.read(".gitignore").is_none() && project.read("README.md").is_none(), "init wrote files");

    // Named folder, one conflict.
    project.file("sub/templates/train.py.j2", "mine\n");
    let out = project.cmd(&["init", "sub"]).output().expect("jobman runs");
    assert_exit(&out, 2);
    assert_eq!(
        stderr(&out),
        "error: sub already has templates/train.py.j2; jobman init overwrites nothing\n  help: `jobman init sub \
         --force` replaces it with the scaffold's (.gitignore and README.md are only ever appended to)\n"
    );
    assert!(!project.path().join("sub/Jobfile.toml").exists());
}

#[test]
fn init_appends_to_an_existing_gitignore_and_readme_once() {
    let project = Project::new();
    project.file(".gitignore", "target/").file("README.md", "# My project\n\nMine.\n");
    let out = project.cmd(&["init"]).output().expect("jobman runs");
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("    Appended to .gitignore\n    Appended to README.md\n"), "{}", stderr(&out));
    let gitignore = project.read(".gitignore").expect(".gitignore");
    assert!(gitignore.starts_with("target/\n\n# jobman:"), "{gitignore}");
    let ignored: Vec<&str> = gitignore.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    assert_eq!(ignored, ["target/", "scratch_space/", ".jobman/"]);
    let readme = project.read("README.md").expect("README.md");
    assert!(readme.starts_with("# My project\n\nMine.\n\n## Running the experiments\n"), "{readme}");

    // Again, forced: the Jobfile is replaced, the shared files are left as they are.
    project.jobfile("# mine\n");
    let out = project.cmd(&["init", "--force"]).output().expect("jobman runs");
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("    Replaced Jobfile.toml\n"), "{}", stderr(&out));
    assert!(stderr(&out).contains("        Kept .gitignore (it already has what jobman adds)\n"), "{}", stderr(&out));
    assert!(project.read("Jobfile.toml").expect("Jobfile").contains("[[template]]"));
    assert_eq!(project.read(".gitignore"), Some(gitignore));
    assert_eq!(project.read("README.md"), Some(readme));
}

#[test]
fn bash_completions_parse_and_complete_the_commands() {
    let project = Project::new();
    let out = project.cmd(&["completions", "bash"]).output().expect("jobman runs");
    assert_exit(&out, 0);
    let script = stdout(&out);
    assert!(script.contains("build") && script.contains("status"), "{script}");
    project.file("jobman.bash", &script);
    let check = Command::new("bash").arg("-n").arg(project.path().join("jobman.bash")).output().expect("bash runs");
    assert!(check.status.success(), "bash -n: {}", String::from_utf8_lossy(&check.stderr));

    // Tab after `jobman ` offers the commands, and not the internal one.
    let complete = |words: &str| -> Vec<String> {
        let program = format!(
            "source jobman.bash; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             _jobman jobman \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let out = Command::new("bash").arg("-c").arg(program).current_dir(project.path()).output().expect("bash");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    };
    let offered = complete("jobman ''");
    for command in ["build", "status", "init", "completions", "man"] {
        assert!(offered.contains(&command.to_string()), "`jobman <Tab>` lacks {command}: {offered:?}");
    }
    assert!(!offered.iter().any(|word| word.contains("watchdog")), "{offered:?}");
    assert_eq!(complete("jobman bu"), strings(&["build"]));
}

#[test]
fn completions_exist_for_every_shell() {
    let project = Project::new();
    let out = project.cmd(&["completions", "zsh"]).output().expect("jobman runs");
    assert_exit(&out, 0);
    assert!(stdout(&out).starts_with("#compdef jobman\n"), "{}", stdout(&out));
    assert!(stdout(&out).contains("build"));
    for shell in ["fish", "elvish", "powershell"] {
        let out = project.cmd(&["completions", shell]).output().expect("jobman runs");
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("build") && !stdout(&out).contains("__watchdog"), "{shell}: {}", stdout(&out));
    }
    let out = project.cmd(&["completions", "tcsh"]).output().expect("jobman runs");
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("[possible values: bash, elvish, fish, powershell, zsh]"), "{}", stderr(&out));
}

#[test]
fn the_man_page_renders_with_its_sections_and_commands() {
    let project = Project::new();
    let out = project.cmd(&["man"]).output().expect("jobman runs");
    assert_exit(&out, 0);
    let roff = stdout(&out);
    assert!(roff.contains(".TH JOBMAN 1") && roff.contains(".SH NAME"), "{roff}");
    assert!(roff.is_ascii(), "non-ASCII characters need roff escapes");
    let Some(text) = render_man(&roff) else { return };
    for expected in ["NAME", "SYNOPSIS", "jobman - Run experiment sweeps", "jobman-build(1)", "jobman-init(1)"] {
        assert!(text.contains(expected), "the rendered page lacks {expected:?}:\n{text}");
    }
}

#[test]
fn man_dir_writes_a_page_per_command() {
    let project = Project::new();
    let out = project.cmd(&["man", "--dir", "man/man1"]).output().expect("jobman runs");
    assert_exit(&out, 0);
    let dir = project.path().join("man/man1");
    let pages: Vec<String> = fs::read_dir(&dir)
        .expect("the folder was created")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for page in ["jobman.1", "jobman-build.1", "jobman-status.1", "jobman-init.1", "jobman-man.1"] {
        assert!(pages.contains(&page.to_string()), "no {page} in {pages:?}");
    }
    assert!(!pages.iter().any(|p| p.contains("watchdog") || p == "jobman-help.1"), "{pages:?}");
    assert!(stderr(&out).contains("       Wrote man/man1/jobman-build.1\n"), "{}", stderr(&out));

    let build = fs::read_to_string(dir.join("jobman-build.1")).expect("jobman-build.1");
    assert!(build.starts_with(".ie") && build.contains(".TH JOBMAN-BUILD 1"), "{build}");
    let Some(text) = render_man(&build) else { return };
    let version = concat!("jobman ", env!("CARGO_PKG_VERSION"));
    assert!(text.contains("jobman-build - Build") && text.contains("--dry-run") && text.contains(version), "{text}");
}

/// The page as text, words one space apart, by mandoc or groff (failing on any of groff's
/// warnings). `None` when neither is
/// installed, after saying so; a failure when `CI` is set: CI must render the pages.
fn render_man(roff: &str) -> Option<String> {
    let renderer: Option<(&str, &[&str])> = if on_path("mandoc") {
        Some(("mandoc", &["-T", "utf8"]))
    } else if on_path("groff") {
        Some(("groff", &["-man", "-T", "utf8", "-ww"]))
    } else {
        None
    };
    let Some((program, args)) = renderer else {
        let message = "rendering the man page needs mandoc or groff (Debian's groff-base); run \
                       scripts/install-test-deps.sh to install it";
        super::skip::skip(message);
        return None;
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the renderer starts");
    child.stdin.take().expect("stdin").write_all(roff.as_bytes()).expect("write the page");
    let out = child.wait_with_output().expect("the renderer runs");
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && (program != "groff" || warnings.is_empty()), "{program} complains:\n{warnings}");
    // Justified lines space words unevenly; the checks read words one space apart.
    Some(plain_text(&String::from_utf8_lossy(&out.stdout)).split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Terminal text without its bold and underline: `X\bX` overstrikes and `ESC[…m` sequences.
fn plain_text(text: &str) -> String {
    let mut plain = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\u{8}' => {
                plain.pop();
            }
            '\u{1b}' => {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            _ => plain.push(c),
        }
    }
    plain
}

fn on_path(program: &str) -> bool {
    env::var_os("PATH").is_some_and(|path| env::split_paths(&path).any(|dir| Path::new(&dir).join(program).is_file()))
}
