//! Exclusive ownership of an output file, without HDF5 file locking.
//!
//! The owner creates `<output>.lock` with `O_EXCL` (atomic on POSIX and on NFSv3+/Lustre),
//! holding its host, pid, Slurm job id and start time, and refreshes the file's modification
//! time every [`HEARTBEAT`] from a background thread. A lock is stale — and taken over with a
//! note — when its process is gone (same host, no such pid), when it belongs to this very Slurm
//! job (a requeued job), or when its heartbeat is older than [`STALE_AFTER`]. Otherwise a second
//! command on the same output exits with code 2 naming the owner.

use super::sibling;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often the owner refreshes its lock.
pub const HEARTBEAT: Duration = Duration::from_secs(20);
/// A lock whose heartbeat is older than this is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// An acquired lock; released (the file removed) when dropped.
pub struct OutputLock {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Owner {
    host: String,
    pid: u32,
    job: String,
    started: String,
}

impl Owner {
    fn me() -> Self {
        Owner {
            host: super::host_name(),
            pid: std::process::id(),
            job: slurm_job(),
            started: super::utc_now(),
        }
    }

    fn parse(text: &str) -> Self {
        let mut owner = Owner::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("host", v)) => owner.host = v.to_string(),
                Some(("pid", v)) => owner.pid = v.parse().unwrap_or(0),
                Some(("job", v)) => owner.job = v.to_string(),
                Some(("started", v)) => owner.started = v.to_string(),
                _ => {}
            }
        }
        owner
    }

    fn describe(&self) -> String {
        let job = if self.job.is_empty() {
            String::new()
        } else {
            format!(", Slurm job {}", self.job)
        };
        format!(
            "host {}, pid {}{job}, since {}",
            self.host, self.pid, self.started
        )
    }
}

fn slurm_job() -> String {
    let job = std::env::var("SLURM_JOB_ID").unwrap_or_default();
    match std::env::var("SLURM_ARRAY_TASK_ID") {
        Ok(task) if !job.is_empty() => format!("{job}_{task}"),
        _ => job,
    }
}

/// Whether process `pid` of this host still runs: it exists and is not a zombie (a killed
/// process whose parent has not reaped it yet holds nothing).
fn process_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (command) state …`: the command may contain spaces and parentheses.
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].trim_start().chars().next());
    !matches!(state, Some('Z' | 'X'))
}

/// Why an existing lock may be taken over, if it may.
fn stale_reason(path: &Path, owner: &Owner) -> Option<String> {
    let me = Owner::me();
    if owner.host == me.host && owner.pid != 0 && Path::new("/proc").is_dir() {
        if owner.pid == me.pid {
            return Some("left by this process".into());
        }
        if !process_running(owner.pid) {
            return Some(format!("its process {} on this host is gone", owner.pid));
        }
    }
    if !owner.job.is_empty() && owner.job == me.job {
        return Some(format!(
            "it belongs to this Slurm job ({}), requeued",
            me.job
        ));
    }
    let age = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok());
    match age {
        Some(age) if age > STALE_AFTER => {
            Some(format!("its heartbeat stopped {} s ago", age.as_secs()))
        }
        _ => None,
    }
}

impl OutputLock {
    /// Takes the lock of `output`, or explains who holds it (exit code 2).
    pub fn acquire(output: &Path) -> Result<OutputLock> {
        let path = sibling(output, ".lock");
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let me = Owner::me();
                    let text = format!(
                        "host={}\npid={}\njob={}\nstarted={}\n",
                        me.host, me.pid, me.job, me.started
                    );
                    file.write_all(text.as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| Error::io(&path, "cannot write the lock file", e))?;
                    return Ok(Self::start_heartbeat(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = Owner::parse(&std::fs::read_to_string(&path).unwrap_or_default());
                    match stale_reason(&path, &owner) {
                        Some(reason) => {
                            crate::errln!(
                                "note: taking over the stale lock {} ({reason})",
                                path.display()
                            );
                            let _ = std::fs::remove_file(&path);
                        }
                        None => {
                            return Err(Error::output(
                                output,
                                format!(
                                    "in use by another nqs ({}); wait for it, or remove {} if that process is really gone",
                                    owner.describe(),
                                    path.display()
                                ),
                            ))
                        }
                    }
                }
                Err(e) => {
                    return Err(Error::output(
                        output,
                        format!("cannot create the lock file {}: {e}", path.display()),
                    ))
                }
            }
        }
        Err(Error::output(
            output,
            format!("could not take the lock {} (contended)", path.display()),
        ))
    }

    fn start_heartbeat(path: PathBuf) -> OutputLock {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, target) = (stop.clone(), path.clone());
        let heartbeat = std::thread::Builder::new()
            .name("nqs-lock".into())
            .spawn(move || {
                let step = Duration::from_millis(200);
                let mut waited = Duration::ZERO;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(step);
                    waited += step;
                    if waited >= HEARTBEAT {
                        waited = Duration::ZERO;
                        if let Ok(f) = std::fs::OpenOptions::new().append(true).open(&target) {
                            let _ = f.set_modified(SystemTime::now());
                        }
                    }
                }
            })
            .ok();
        OutputLock {
            path,
            stop,
            heartbeat,
        }
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_owner_is_refused_and_stale_locks_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run.h5");
        let lock = OutputLock::acquire(&out).unwrap();
        // Same process: the first lock is "left by this process" only after a crash; a live
        // one held by another pid on this host is refused.
        let lock_path = sibling(&out, ".lock");
        drop(lock);
        assert!(!lock_path.exists());
        std::fs::write(
            &lock_path,
            format!("host={}\npid=1\njob=\nstarted=x\n", crate::io::host_name()),
        )
        .unwrap();
        let err = OutputLock::acquire(&out).err().expect("pid 1 is alive");
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("pid 1"), "{err}");
        // A dead pid on this host is stale.
        std::fs::write(
            &lock_path,
            format!(
                "host={}\npid=999999999\njob=\nstarted=x\n",
                crate::io::host_name()
            ),
        )
        .unwrap();
        let lock = OutputLock::acquire(&out).unwrap();
        drop(lock);
    }
}
