//! Stage 5: run jobs on a local pool of worker threads, each job's command in its own process
//! group, with timeouts, Ctrl-C, and a watchdog process that kills every running job's group if
//! jobman itself dies (even by SIGKILL).

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};

use crate::store::Usage;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
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
}

/// One command to run in a job folder.
pub struct Launch<'a> {
    pub command: &'a str,
    pub dir: &'a Path,
    pub env: Vec<(&'static str, String)>,
    pub stdout: std::fs::File,
    pub stderr: std::fs::File,
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
    watchdog: Mutex<Option<ChildStdin>>,
    watchdog_process: Option<Child>,
}

impl Drop for Supervisor {
    /// Closing the pipe ends the watchdog; waiting for it means the lock is free when jobman exits.
    fn drop(&mut self) {
        self.watchdog.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut process) = self.watchdog_process.take() {
            let _ = process.wait();
        }
    }
}

impl Supervisor {
    /// `interrupted` is raised by the SIGINT/SIGTERM handler.
    pub fn new(interrupted: Arc<AtomicBool>, mut watchdog: Option<Child>) -> Supervisor {
        let pipe = watchdog.as_mut().and_then(|w| w.stdin.take());
        Supervisor {
            running: Mutex::default(),
            interrupted,
            stopping: AtomicBool::new(false),
            watchdog: Mutex::new(pipe),
            watchdog_process: watchdog,
        }
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
            .stdout(launch.stdout)
            .stderr(launch.stderr)
            .process_group(0);
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) => return (ProcessEnd::SpawnFailed(spawn_error(launch.command, &e)), None),
        };
        let group = child.id() as i32;
        self.track(group, launch.timeout.map(|t| Instant::now() + t));
        let waited = wait(&child);
        // Whatever the job left running in its group goes with it.
        kill_group(group, libc::SIGKILL);
        let timed_out = self.untrack(group);
        let end = match waited {
            _ if timed_out => ProcessEnd::TimedOut,
            Some((status, _)) if status.code().is_some() => ProcessEnd::Exited(status.code().unwrap_or(-1)),
            _ if self.interrupted() => ProcessEnd::Interrupted,
            Some((status, _)) => ProcessEnd::Signaled(status.signal().unwrap_or(0)),
            None => ProcessEnd::SpawnFailed("lost track of the process".into()),
        };
        (end, waited.map(|(_, usage)| usage))
    }

    fn track(&self, group: i32, deadline: Option<Instant>) {
        self.lock().deadlines.insert(group, deadline);
        self.tell_watchdog(&format!("+{group}\n"));
        // A Ctrl-C that came between the check and the spawn must still reach this job.
        if self.interrupted() {
            kill_group(group, libc::SIGTERM);
        }
    }

    /// Forgets a finished group; true when it was killed for its timeout.
    fn untrack(&self, group: i32) -> bool {
        let timed_out = {
            let mut running = self.lock();
            running.deadlines.remove(&group);
            running.terminated.remove(&group);
            let at = running.timed_out.iter().position(|&g| g == group);
            at.map(|i| running.timed_out.swap_remove(i)).is_some()
        };
        self.tell_watchdog(&format!("-{group}\n"));
        timed_out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tell_watchdog(&self, line: &str) {
        let mut watchdog = self.watchdog.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pipe) = watchdog.as_mut()
            && pipe.write_all(line.as_bytes()).is_err()
        {
            *watchdog = None;
        }
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
/// used (std's `Child::wait` drops that).
fn wait(child: &Child) -> Option<(std::process::ExitStatus, Usage)> {
    let pid = child.id() as libc::pid_t;
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data that wait4 fills in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child, writing into the two locals above.
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
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
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return None;
        }
    }
}

pub fn kill_group(group: i32, signal: i32) {
    // SAFETY: kill only sends a signal; a group that is gone yields ESRCH, which is fine.
    unsafe {
        libc::kill(-group, signal);
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

/// The watchdog: a second jobman process, started once per build. It reads `+GROUP`/`-GROUP`
/// lines on stdin; when stdin closes (jobman ended, however it ended) it kills every group still
/// listed, and every group running a job of `jobs_dir` (found by its environment: a job spawned
/// in the moment before jobman could report it). It also holds the workspace lock (inherited as
/// fd 3), so the next build cannot start until the old build's jobs are gone.
pub fn watchdog_main(jobs_dir: &Path) -> i32 {
    use std::io::BufRead;
    // A Ctrl-C or hangup is for jobman, which cleans up itself; the watchdog waits for EOF.
    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    let mut live: Vec<i32> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (sign, number) = line.split_at(line.len().min(1));
        let Ok(group) = number.parse::<i32>() else { continue };
        match sign {
            "+" => live.push(group),
            "-" => live.retain(|&g| g != group),
            _ => {}
        }
    }
    for group in groups_running_jobs_of(jobs_dir) {
        if !live.contains(&group) {
            live.push(group);
        }
    }
    for &group in &live {
        kill_group(group, libc::SIGTERM);
    }
    if !live.is_empty() {
        std::thread::sleep(Duration::from_millis(500));
    }
    for &group in &live {
        kill_group(group, libc::SIGKILL);
    }
    0
}

/// Starts the watchdog, handing it the lock's descriptor as fd 3.
pub fn spawn_watchdog(lock: &std::fs::File, jobs_dir: &Path) -> std::io::Result<Child> {
    use std::os::fd::AsRawFd;
    let lock_fd = lock.as_raw_fd();
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("__watchdog").arg(jobs_dir).stdin(Stdio::piped()).stdout(Stdio::null());
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
    command.spawn()
}

/// Stops the job groups a dead build left behind when both jobman and its watchdog were killed:
/// those running a job of this workspace. Called with the lock held, so no live build of this
/// workspace owns them.
pub fn stop_leftover_jobs(jobs_dir: &Path) {
    for group in groups_running_jobs_of(jobs_dir) {
        crate::util::console::status("Stopping", &format!("process group {group} left running by an earlier build"));
        kill_group(group, libc::SIGKILL);
    }
}

/// The process groups with a process whose environment says it runs a job of `jobs_dir`, under
/// a local build: a job that Slurm runs (`SLURM_JOB_ID` set), even on this machine, is Slurm's
/// to stop, and a build that follows it counts on it.
fn groups_running_jobs_of(jobs_dir: &Path) -> Vec<i32> {
    let marker = format!("JOBMAN_JOB_DIR={}/", jobs_dir.display());
    let Ok(processes) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut groups = Vec::new();
    for entry in processes.flatten() {
        let path = entry.path();
        let Some(group) = std::fs::read_to_string(path.join("stat")).ok().and_then(|stat| process_group(&stat)) else {
            continue;
        };
        if groups.contains(&group) {
            continue;
        }
        let environ = std::fs::read(path.join("environ")).unwrap_or_default();
        let mut vars = environ.split(|&b| b == 0);
        if vars.clone().any(|var| var.starts_with(marker.as_bytes()))
            && !vars.any(|var| var.starts_with(b"SLURM_JOB_ID="))
        {
            groups.push(group);
        }
    }
    groups
}

/// The process group field of `/proc/PID/stat` (the fifth, after the parenthesised name).
fn process_group(stat: &str) -> Option<i32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(2)?.parse().ok()
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
