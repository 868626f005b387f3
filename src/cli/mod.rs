//! Binary-only helpers: the communicator, signal handling, the progress observer and the
//! report printers (text or one JSON object).

pub mod args;
mod report;

pub use report::Printer;

use nqs::dist::{self, Communicator};
use nqs::error::{Error, Result};
use nqs::vmc::{HistoryRow, IterationReport, Observer, StopFlag};
use std::time::Instant;

/// The communicator of this process (MPI when started by an MPI launcher) and the name of the
/// MPI library. Under MPI a panic anywhere ends the whole job instead of leaving the other
/// ranks waiting.
pub fn communicator() -> (Box<dyn Communicator>, String) {
    #[cfg(feature = "mpi")]
    if dist::launched_by_mpi() {
        if let Some(mpi) = dist::Mpi::initialize() {
            let default = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                default(info);
                // If MPI_Abort itself stalls (seen under heavy load), die anyway: the launcher
                // then ends the job because a rank died.
                std::thread::spawn(|| {
                    std::thread::sleep(std::time::Duration::from_secs(20));
                    std::process::abort();
                });
                dist::abort_world(101);
            }));
            return (Box::new(mpi), dist::Mpi::library());
        }
    }
    let name = if cfg!(feature = "mpi") {
        "none (not started by an MPI launcher)"
    } else {
        "none (built without the mpi feature)"
    };
    (Box::new(dist::Serial), name.into())
}

/// The stop flag set by SIGTERM, SIGINT and SIGUSR1 (Open MPI's mpirun forwards SIGUSR1 to
/// every rank but turns a SIGTERM of its own into exit code 1), plus the test hooks.
pub fn stop_flag() -> Result<StopFlag> {
    let stop = StopFlag::from_env();
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGUSR1,
    ] {
        signal_hook::flag::register(signal, stop.signal.clone())
            .map_err(|e| Error::Runtime(format!("cannot install a signal handler: {e}")))?;
    }
    Ok(stop)
}

/// Progress on stderr: an indicatif bar on a terminal, a line every few seconds otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: Instant,
    enabled: bool,
    total: usize,
}

impl Progress {
    /// Progress of `total` steps; `enabled` on rank 0 only.
    pub fn new(total: usize, enabled: bool) -> Progress {
        use std::io::IsTerminal;
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} {msg} [{elapsed_precise}<{eta_precise}]",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            last_line: Instant::now(),
            enabled,
            total,
        }
    }

    fn update(&mut self, done: usize, message: String) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(done as u64);
                bar.set_message(message);
            }
            None if self.enabled
                && (done == self.total
                    || done <= 1
                    || self.last_line.elapsed().as_secs_f64() >= 5.0) =>
            {
                nqs::errln!("iter {done:>6}/{} {message}", self.total);
                self.last_line = Instant::now();
            }
            None => {}
        }
    }

    /// One tomography epoch.
    pub fn epoch(&mut self, r: &nqs::tomography::EpochRecord, total: usize) {
        self.total = total;
        let fidelity = r
            .fidelity
            .map_or(String::new(), |f| format!("  fidelity {f:.5}"));
        self.update(
            r.epoch + 1,
            format!(
                "NLL train {:.5} validation {:.5}{fidelity}",
                r.train_nll, r.validation_nll
            ),
        );
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn iteration(&mut self, row: &HistoryRow, report: &IterationReport) -> Result<()> {
        let solve = report
            .update
            .solve
            .as_ref()
            .map_or(report.update.method.to_string(), |s| s.summary());
        self.update(
            row.iteration + 1,
            format!(
                "E = {:.6} ± {:.6}  var {:.4}  acc {:.2}  R̂ {:.3}  {solve}",
                row.energy, row.error, row.variance, row.acceptance, row.r_hat
            ),
        );
        // Fallbacks and solver changes are events: always logged, whatever the cadence.
        if let Some(event) = report
            .update
            .solve
            .as_ref()
            .and_then(|s| s.fallback.as_ref())
        {
            self.note(&format!("note: iteration {}: {event}", row.iteration + 1));
        }
        Ok(())
    }

    fn note(&mut self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None if self.enabled => nqs::errln!("{line}"),
            None => {}
        }
    }
}
