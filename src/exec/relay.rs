//! A job's standard output and error, copied from pipes into `stdout.log` and `stderr.log`, each
//! file made when the job first writes to it: a job that writes nothing to one has no such file,
//! which spares the file system a create per silent stream (on a shared file system, a network
//! round trip).

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the relay looks whether the job's own process ended while something it started
/// still holds the pipes open.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// How long output may still come after the job's process group was killed: only a process
/// that left the group can write then.
const DRAIN_FOR: Duration = Duration::from_secs(1);

/// One stream of a job: its pipe and the log it goes to.
pub struct Stream {
    pipe: Option<File>,
    path: PathBuf,
    log: Option<File>,
    /// The first error writing the log: the job's output from then on is lost.
    error: Option<String>,
}

impl Stream {
    /// `pipe`: the job's end of it (`None`: a stream with nothing to copy).
    pub fn new(pipe: Option<impl Into<OwnedFd>>, path: PathBuf) -> Stream {
        Stream { pipe: pipe.map(|pipe| File::from(pipe.into())), path, log: None, error: None }
    }

    /// Copies what the pipe holds (one read); at the end of the stream, closes it.
    fn pump(&mut self, buffer: &mut [u8]) {
        let Some(pipe) = &mut self.pipe else { return };
        match pipe.read(buffer) {
            Ok(0) => self.pipe = None,
            Ok(n) => self.write(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => self.pipe = None,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if self.log.is_none() {
            match File::create(&self.path) {
                Ok(file) => self.log = Some(file),
                Err(e) => {
                    self.error = Some(format!("cannot create {}: {e}", self.path.display()));
                    return;
                }
            }
        }
        if let Some(Err(e)) = self.log.as_mut().map(|log| log.write_all(bytes)) {
            self.error = Some(format!("cannot write {}: {e}", self.path.display()));
        }
    }
}

/// Relays `streams` into their logs until both end. `ended` is asked every [`LOOK_EVERY`] while
/// they are open, whether the job's process ended (a process it left behind may keep a pipe
/// open); once it has, and `stop` killed what was left of its group, output is taken for at most
/// [`DRAIN_FOR`] more. The first error writing a log, if any.
pub fn relay(streams: &mut [Stream; 2], mut ended: impl FnMut() -> bool, stop: impl FnOnce()) -> Option<String> {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut stop = Some(stop);
    let mut draining_until: Option<Instant> = None;
    let mut looked = Instant::now();
    loop {
        let open: Vec<usize> = (0..streams.len()).filter(|&i| streams[i].pipe.is_some()).collect();
        if open.is_empty() || draining_until.is_some_and(|until| Instant::now() >= until) {
            break;
        }
        let mut fds: Vec<libc::pollfd> = open
            .iter()
            .map(|&i| libc::pollfd {
                fd: streams[i].pipe.as_ref().map_or(-1, |p| p.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of pollfd of the given length for the call's duration.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, LOOK_EVERY.as_millis() as i32) };
        for (fd, &i) in fds.iter().zip(&open) {
            if fd.revents != 0 {
                streams[i].pump(&mut buffer);
            }
        }
        // Also while output keeps coming: a process the job left may write forever.
        if draining_until.is_none() && (ready == 0 || looked.elapsed() >= LOOK_EVERY) {
            looked = Instant::now();
            if ended() {
                if let Some(stop) = stop.take() {
                    stop();
                }
                draining_until = Some(Instant::now() + DRAIN_FOR);
            }
        }
    }
    streams.iter_mut().find_map(|stream| stream.error.take())
}
