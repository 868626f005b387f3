//! `nqs measure`: observables of a stored run's state, post hoc.
//!
//! The stored chains continue from where the run left them; the results go to the group
//! `measurements` (replaced by each call), written into a copy of the file that is renamed over
//! it, so the optimization history and state are never touched and a failure changes nothing.

use super::read_run;
use crate::ansatz::{self, Ansatz, AnsatzVisitor};
use crate::dist::{chain_range, on_root, Communicator};
use crate::error::{Error, Result};
use crate::io::{self, OutputLock, ResultsRecord};
use crate::measure::{self, ChainLayout, ObservableSpec};
use crate::vmc::RunState;
use std::path::{Path, PathBuf};

/// Choices of `nqs measure`.
#[derive(Clone, Debug, Default)]
pub struct MeasureJob {
    /// Samples over all chains (default: the run's `observable_samples`, else 4 × samples).
    pub samples: Option<usize>,
    /// Pauli strings in addition to the run's `[[observables]]`.
    pub observables: Vec<ObservableSpec>,
}

/// What was measured.
pub struct MeasureReport {
    pub path: PathBuf,
    pub results: ResultsRecord,
    pub n_sites: usize,
    pub wall_time: f64,
}

/// Measures the state stored in the run file `path` and stores the results in it.
pub fn run(path: &Path, job: &MeasureJob, comm: &dyn Communicator) -> Result<MeasureReport> {
    let start = std::time::Instant::now();
    let mut lock = None;
    on_root(comm, || {
        lock = Some(OutputLock::acquire(path)?);
        Ok(())
    })?;
    let stored = read_run(path)?;
    let model = &stored.model;
    let mut observables = model.config.observables.clone();
    observables.extend(job.observables.iter().cloned());
    measure::validate_observables(&observables, model.lattice.n_sites())
        .map_err(|e| Error::usage("--observable", format!("{}: {}", e.key, e.message)))?;
    let chains = model.config.sampler.chains;
    if chains < comm.size() {
        return Err(Error::usage(
            "mpirun -np",
            format!(
                "the run has {chains} chains, fewer than the {} ranks",
                comm.size()
            ),
        ));
    }
    let total = job
        .samples
        .or(model.config.run.observable_samples)
        .unwrap_or(4 * model.config.sampler.samples_per_chain() * chains);
    if total == 0 || total > 1 << 28 {
        return Err(Error::usage(
            "--samples",
            format!("expected 1..={}, got {total}", 1u64 << 28),
        ));
    }
    let results = ansatz::visit(
        &model.config.ansatz,
        &model.lattice,
        &model.transform,
        0,
        Measure {
            stored: &stored,
            observables: &observables,
            per_chain: total.div_ceil(chains),
            comm,
            path,
        },
    )?;
    on_root(comm, || {
        let tmp = io::sibling(path, ".tmp");
        std::fs::copy(path, &tmp).map_err(|e| Error::io(&tmp, "cannot copy", e))?;
        let written = (|| -> hdf5::Result<()> {
            let file = hdf5::File::open_rw(&tmp)?;
            if file.link_exists("measurements") {
                file.unlink("measurements")?;
            }
            io::write_results(&file, "measurements", &results)?;
            let group = file.group("measurements")?;
            io::write_str_attr(&group, "time", &io::utc_now())?;
            file.flush()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::hdf5(path, "cannot write the measurements", e));
        }
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&tmp, "cannot sync", e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, "cannot rename into place", e))
    })?;
    drop(lock);
    Ok(MeasureReport {
        path: path.to_path_buf(),
        n_sites: model.lattice.n_sites(),
        results,
        wall_time: start.elapsed().as_secs_f64(),
    })
}

struct Measure<'a> {
    stored: &'a super::StoredRun,
    observables: &'a [ObservableSpec],
    per_chain: usize,
    comm: &'a dyn Communicator,
    path: &'a Path,
}

impl AnsatzVisitor for Measure<'_> {
    type Output = Result<ResultsRecord>;
    fn visit<A: Ansatz + 'static>(self, ansatz: A) -> Result<ResultsRecord> {
        let model = &self.stored.model;
        let problem = model.problem();
        let chains = model.config.sampler.chains;
        let mut state = RunState::new(&problem, ansatz, self.comm);
        state
            .restore(&self.stored.state, chains)
            .map_err(|e| Error::file(self.path, e))?;
        let (first, local) = chain_range(chains, self.comm.rank(), self.comm.size());
        let layout = ChainLayout {
            local,
            first,
            total: chains,
        };
        let setup = measure::Setup {
            layout,
            hamiltonian: &model.hamiltonian,
            lattice: &model.lattice,
            observables: self.observables,
            sz_sector: state.sampler.settings.n_up.is_some(),
        };
        let batch = state.sampler.settings.samples_per_chain;
        Ok(measure::sample_and_measure(
            &mut state.sampler,
            &state.ansatz,
            self.per_chain,
            batch,
            &setup,
            self.comm,
            &mut || false,
        )
        .expect("never interrupted"))
    }
}
