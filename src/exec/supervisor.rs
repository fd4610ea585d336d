//! Stage 5: run jobs on a local pool of worker threads, each job's command in its own process
//! group, with timeouts, Ctrl-C, and a watchdog process that kills every running job's group if
//! jobman itself dies (even by SIGKILL).

use std::collections::HashMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};

use super::relay::{self, Stream};
use super::running::{self, RunningGroups};
use crate::store::Usage;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a command ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessEnd {
    Exited(i32),
    Signaled(i32),
    TimedOut,
    Interrupted,
    /// The command could not start (not found, not executable).
    SpawnFailed(String),
    /// It ran, but its output could not be written to its logs (a full disk).
    OutputLost(String),
}

/// One command to run in a job folder.
pub struct Launch<'a> {
    pub command: &'a str,
    pub dir: &'a Path,
    pub env: Vec<(&'static str, String)>,
    /// Where its standard output and error go: each file is made when the job first writes to
    /// it ([`relay`]).
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub timeout: Option<Duration>,
}

/// How long a job gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Running {
    /// Process group → when it must end.
    deadlines: HashMap<i32, Option<Instant>>,
    /// Groups sent SIGTERM, and when.
    terminated: HashMap<i32, Instant>,
    timed_out: Vec<i32>,
}

/// Starts, follows and stops the job processes of one build.
pub struct Supervisor {
    running: Mutex<Running>,
    interrupted: Arc<AtomicBool>,
    /// Set by `--fail-fast` after a failure: start nothing new.
    stopping: AtomicBool,
    /// A local build's: what stops its jobs if jobman dies.
    watchdog: Option<Watchdog>,
}

impl Drop for Supervisor {
    /// Every job ended: the list of running groups goes, then the watchdog, which finds no
    /// list. Waiting for it means the lock is free when jobman exits.
    fn drop(&mut self) {
        if let Some(Watchdog { mut process, groups }) = self.watchdog.take() {
            groups.remove();
            drop(process.stdin.take());
            let _ = process.wait();
        }
    }
}

impl Supervisor {
    /// `interrupted` is raised by the SIGINT/SIGTERM handler.
    pub fn new(interrupted: Arc<AtomicBool>, watchdog: Option<Watchdog>) -> Supervisor {
        Supervisor { running: Mutex::default(), interrupted, stopping: AtomicBool::new(false), watchdog }
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Whether new jobs may still start.
    pub fn accepting(&self) -> bool {
        !self.interrupted() && !self.stopping.load(Ordering::SeqCst)
    }

    pub fn stop_accepting(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Runs a command to its end in its own process group; what it used, when it ran.
    pub fn run(&self, launch: Launch<'_>) -> (ProcessEnd, Option<Usage>) {
        if !self.accepting() {
            return (ProcessEnd::Interrupted, None);
        }
        let mut command = build_command(launch.command);
        command
            .current_dir(launch.dir)
            .envs(launch.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let groups = self.watchdog.as_ref().map(|watchdog| &watchdog.groups);
        groups.inspect(|groups| groups.starting());
        let spawned = command.spawn();
        groups.inspect(|groups| groups.started(spawned.as_ref().ok().map(|child| child.id() as i32)));
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => return (ProcessEnd::SpawnFailed(spawn_error(launch.command, &e)), None),
        };
        let group = child.id() as i32;
        self.track(group, launch.timeout.map(|t| Instant::now() + t));
        let mut streams =
            [Stream::new(child.stdout.take(), launch.stdout), Stream::new(child.stderr.take(), launch.stderr)];
        let mut reaped = None;
        let lost = relay::relay(
            &mut streams,
            || {
                reaped = wait(&child, libc::WNOHANG);
                reaped.is_some()
            },
            || kill_group(group, libc::SIGKILL),
        );
        let waited = reaped.or_else(|| wait(&child, 0));
        // Whatever the job left running in its group goes with it.
        kill_group(group, libc::SIGKILL);
        if let Some(watchdog) = &self.watchdog {
            watchdog.groups.ended(group);
        }
        let timed_out = self.untrack(group);
        let end = match (&waited, lost) {
            _ if timed_out => ProcessEnd::TimedOut,
            (_, Some(message)) => ProcessEnd::OutputLost(message),
            (Some((status, _)), None) if status.code().is_some() => ProcessEnd::Exited(status.code().unwrap_or(-1)),
            _ if self.interrupted() => ProcessEnd::Interrupted,
            (Some((status, _)), None) => ProcessEnd::Signaled(status.signal().unwrap_or(0)),
            (None, None) => ProcessEnd::SpawnFailed("lost track of the process".into()),
        };
        (end, waited.map(|(_, usage)| usage))
    }

    fn track(&self, group: i32, deadline: Option<Instant>) {
        self.lock().deadlines.insert(group, deadline);
        // A Ctrl-C that came between the check and the spawn must still reach this job.
        if self.interrupted() {
            kill_group(group, libc::SIGTERM);
        }
    }

    /// Forgets a finished group; true when it was killed for its timeout.
    fn untrack(&self, group: i32) -> bool {
        let mut running = self.lock();
        running.deadlines.remove(&group);
        running.terminated.remove(&group);
        let at = running.timed_out.iter().position(|&g| g == group);
        at.map(|i| running.timed_out.swap_remove(i)).is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One pass of the monitor: enforce deadlines and interrupts. Called every few milliseconds
    /// while jobs run.
    pub fn tick(&self) {
        let now = Instant::now();
        let interrupted = self.interrupted();
        let mut running = self.lock();
        let Running { deadlines, terminated, timed_out } = &mut *running;
        for (&group, deadline) in deadlines.iter() {
            let overdue = deadline.is_some_and(|d| now >= d);
            match terminated.get(&group) {
                None if interrupted || overdue => {
                    if overdue && !interrupted {
                        timed_out.push(group);
                    }
                    kill_group(group, libc::SIGTERM);
                    terminated.insert(group, now);
                }
                Some(&since) if now.duration_since(since) >= KILL_GRACE => kill_group(group, libc::SIGKILL),
                _ => {}
            }
        }
    }
}

/// Waits for the child with `wait4`, which also says what it and the processes it waited for
/// used (std's `Child::wait` drops that). With `WNOHANG` in `options`, `None` while it runs.
fn wait(child: &Child, options: libc::c_int) -> Option<(std::process::ExitStatus, Usage)> {
    let pid = child.id() as libc::pid_t;
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data that wait4 fills in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child, writing into the two locals above.
        let waited = unsafe { libc::wait4(pid, &mut status, options, &mut usage) };
        if waited == pid {
            let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            let usage = Usage {
                // Linux gives kilobytes.
                max_rss_mb: (usage.ru_maxrss as f64 / 1024.0 * 10.0).round() / 10.0,
                user_cpu_secs: (seconds(usage.ru_utime) * 1000.0).round() / 1000.0,
                system_cpu_secs: (seconds(usage.ru_stime) * 1000.0).round() / 1000.0,
            };
            return Some((std::process::ExitStatus::from_raw(status), usage));
        }
        if waited == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return None;
        }
    }
}

pub fn kill_group(group: i32, signal: i32) {
    // 0 and 1 would be jobman's own group and every process it may signal: never a job's.
    if group > 1 {
        // SAFETY: kill only sends a signal; a group that is gone yields ESRCH, which is fine.
        unsafe {
            libc::kill(-group, signal);
        }
    }
}

/// Like make: a command without shell syntax is executed directly (one process, not two); any
/// other goes through `sh -c`.
fn build_command(text: &str) -> Command {
    const SHELL_SYNTAX: &[char] = &[
        '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?', '[', ']', '#', '~', '=', '%', '{', '}',
        '!', '\n',
    ];
    // Words only the shell understands (`exit 3`, `cd sub`), as make's list of them.
    const SHELL_WORDS: &[&str] = &[
        ".", ":", "alias", "break", "case", "cd", "command", "continue", "eval", "exec", "exit", "export", "for", "if",
        "read", "readonly", "return", "set", "shift", "source", "trap", "type", "ulimit", "umask", "unset", "until",
        "wait", "while",
    ];
    let words: Vec<&str> = text.split_whitespace().collect();
    if text.contains(SHELL_SYNTAX) || words.first().is_none_or(|w| SHELL_WORDS.contains(w)) {
        let mut command = Command::new("/bin/sh");
        command.arg("-c").arg(text);
        command
    } else {
        let mut command = Command::new(words[0]);
        command.args(&words[1..]);
        command
    }
}

fn spawn_error(command: &str, error: &std::io::Error) -> String {
    let program = command.split_whitespace().next().unwrap_or(command);
    match error.kind() {
        std::io::ErrorKind::NotFound if program.contains('/') => {
            format!("command not found: {program} (no such file, from the job's folder)")
        }
        std::io::ErrorKind::NotFound => not_on_path(program, &std::env::var("PATH").unwrap_or_default()),
        std::io::ErrorKind::PermissionDenied => format!("permission denied: {program}"),
        _ => format!("cannot start `{program}`: {error}"),
    }
}

/// `command not found: pythn3 (searched PATH=/usr/local/bin:/usr/bin:/bin); did you mean
/// `python3`?`: the programs of the searched folders are read only once a command is missing.
fn not_on_path(program: &str, path: &str) -> String {
    let programs: Vec<String> = std::env::split_paths(path)
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten().filter_map(|e| e.file_name().into_string().ok()))
        .collect();
    let hint = crate::util::diagnostic::did_you_mean(program, programs.iter().map(String::as_str))
        .map(|hint| format!("; {hint}"))
        .unwrap_or_default();
    format!("command not found: {program} (searched PATH={path}){hint}")
}

/// Runs `work` over `items` on `workers` threads while the calling thread watches deadlines and
/// interrupts. `done` sees each result as it comes, on the calling thread.
pub fn run_pool<T: Send, R: Send>(
    supervisor: &Supervisor,
    workers: usize,
    items: Vec<T>,
    work: impl Fn(T) -> R + Sync,
    mut done: impl FnMut(R),
) {
    let queue = Mutex::new(items.into_iter());
    let (sender, receiver) = std::sync::mpsc::channel::<R>();
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            let sender = sender.clone();
            let queue = &queue;
            let work = &work;
            scope.spawn(move || {
                loop {
                    if !supervisor.accepting() {
                        break;
                    }
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some(item) = next else { break };
                    if sender.send(work(item)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        loop {
            match receiver.recv_timeout(Duration::from_millis(20)) {
                Ok(result) => done(result),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
            supervisor.tick();
        }
    });
}

/// A local build's watchdog: a second jobman process, and the list of the build's running job
/// groups ([`running`]) that it reads when jobman dies.
pub struct Watchdog {
    process: Child,
    groups: RunningGroups,
}

impl Watchdog {
    /// Starts the list of running groups in `state_dir` and the watchdog process, handing it the
    /// workspace lock's descriptor as fd 3: the next build cannot start until the old build's
    /// jobs are gone.
    pub fn start(lock: &std::fs::File, state_dir: &Path, jobs_dir: &Path) -> std::io::Result<Watchdog> {
        use std::os::fd::AsRawFd;
        let groups = RunningGroups::create(state_dir)?;
        let lock_fd = lock.as_raw_fd();
        let mut command = Command::new(std::env::current_exe()?);
        command.arg("__watchdog").arg(state_dir).arg(jobs_dir).stdin(Stdio::piped()).stdout(Stdio::null());
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if lock_fd == 3 {
                    let flags = libc::fcntl(3, libc::F_GETFD);
                    libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                } else if libc::dup2(lock_fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(Watchdog { process: command.spawn()?, groups })
    }
}

/// The watchdog's life: wait for its stdin to close (jobman ended, however it ended), then stop
/// the groups the build's list names as running. A build that ended well removed the list.
pub fn watchdog_main(state_dir: &Path, jobs_dir: &Path) -> i32 {
    // A Ctrl-C or hangup is for jobman, which cleans up itself; the watchdog waits for EOF.
    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    let live = running::listed_and_alive(state_dir, jobs_dir);
    for &group in &live {
        kill_group(group, libc::SIGTERM);
    }
    if !live.is_empty() {
        std::thread::sleep(Duration::from_millis(500));
    }
    for &group in &live {
        kill_group(group, libc::SIGKILL);
    }
    running::forget(state_dir);
    0
}

/// Stops the job groups a dead build left behind when both jobman and its watchdog were killed,
/// as the build's list of running groups names them. Called with the lock held, so no live
/// build of this workspace owns them.
pub fn stop_leftover_jobs(state_dir: &Path, jobs_dir: &Path) {
    let Some(groups) = running::left_running(state_dir, jobs_dir) else { return };
    for group in groups {
        crate::util::console::status("Stopping", &format!("process group {group} left running by an earlier build"));
        kill_group(group, libc::SIGKILL);
    }
    running::forget(state_dir);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_command_names_the_path_searched_and_the_nearest_program() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("python3"), "").unwrap();
        let path = dir.path().display().to_string();
        assert_eq!(
            super::not_on_path("pythn3", &path),
            format!("command not found: pythn3 (searched PATH={path}); did you mean `python3`?")
        );
        assert_eq!(super::not_on_path("zzz", &path), format!("command not found: zzz (searched PATH={path})"));
    }
}
