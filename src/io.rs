//! The HDF5 store (DESIGN.md §5): root attributes and one group per concern.
//!
//! Complex arrays use the compound `{r: f64, i: f64}` that h5py reads as complex128. Files are
//! written to `<name>.tmp` and renamed into place, so a reader never sees a half-written file.

use crate::ansatz::{Ansatz, RbmKind};
use crate::error::{Error, Result};
use crate::exact::{structure_factor, EdResult};
use crate::lattice::Lattice;
use crate::optimizer::OptimizerState;
use crate::sampler::rng_state;
use crate::stats::Stats;
use crate::vmc::{HistoryRow, VmcState};
use hdf5::types::VarLenUnicode;
use hdf5::{Group, H5Type, Location};
use ndarray::Array2;
use num_complex::Complex64;
use std::path::{Path, PathBuf};

/// Converts an HDF5 error on `path` into a runtime error naming the file.
pub fn h5err(path: &Path) -> impl Fn(hdf5::Error) -> Error + '_ {
    move |e| Error::Runtime(format!("{}: HDF5 error: {e}", path.display()))
}

/// Run-independent facts stored as root attributes.
#[derive(Clone, Debug)]
pub struct RootInfo {
    pub config_text: String,
    pub seed: u64,
    pub ranks: usize,
    pub threads: usize,
    pub command: String,
    /// UTC start time (kept across resumes).
    pub start_time: String,
}

/// UTC time as ISO 8601 (`2026-11-26T19:41:23Z`).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Writes a string attribute.
pub fn write_str_attr(loc: &Location, name: &str, value: &str) -> hdf5::Result<()> {
    let v: VarLenUnicode = value
        .parse()
        .map_err(|e| hdf5::Error::from(format!("{e:?}")))?;
    loc.new_attr::<VarLenUnicode>()
        .create(name)?
        .write_scalar(&v)
}

/// Writes a scalar attribute.
pub fn write_attr<T: H5Type>(loc: &Location, name: &str, value: T) -> hdf5::Result<()> {
    loc.new_attr::<T>().create(name)?.write_scalar(&value)
}

/// Reads a string attribute.
pub fn read_str_attr(loc: &Location, name: &str) -> hdf5::Result<String> {
    Ok(loc
        .attr(name)?
        .read_scalar::<VarLenUnicode>()?
        .as_str()
        .to_string())
}

/// Writes a one-dimensional dataset.
pub fn write_1d<T: H5Type>(group: &Group, name: &str, data: &[T]) -> hdf5::Result<()> {
    group
        .new_dataset_builder()
        .with_data(ndarray::ArrayView1::from(data))
        .create(name)
        .map(|_| ())
}

/// Writes a two-dimensional dataset.
pub fn write_2d<T: H5Type>(group: &Group, name: &str, data: &Array2<T>) -> hdf5::Result<()> {
    group
        .new_dataset_builder()
        .with_data(data)
        .create(name)
        .map(|_| ())
}

/// A file being written: created as `<path>.tmp` and renamed over `path` by [`NewFile::commit`].
pub struct NewFile {
    pub file: hdf5::File,
    path: PathBuf,
    tmp: PathBuf,
}

impl NewFile {
    /// Starts a new file; refuses to replace an existing `path` unless `overwrite`.
    pub fn create(path: &Path, overwrite: bool, root: &RootInfo) -> Result<Self> {
        if path.exists() && !overwrite {
            return Err(Error::Input(format!(
                "{}: output file exists; choose another --output or pass --force to replace it",
                path.display()
            )));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::Runtime(format!("{}: cannot create directory: {e}", dir.display()))
            })?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = hdf5::File::create(&tmp).map_err(h5err(&tmp))?;
        write_root(&file, root).map_err(h5err(&tmp))?;
        Ok(NewFile {
            file,
            path: path.to_path_buf(),
            tmp,
        })
    }

    /// Flushes, closes and atomically renames the file into place.
    pub fn commit(self) -> Result<PathBuf> {
        self.file.flush().map_err(h5err(&self.tmp))?;
        drop(self.file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| {
            Error::Runtime(format!(
                "{}: cannot rename into place: {e}",
                self.path.display()
            ))
        })?;
        Ok(self.path)
    }
}

/// Writes the `exact` group: energies, sectors, ground state, correlations, structure factor.
pub fn write_exact(
    parent: &Group,
    result: &EdResult,
    lattice: &Lattice,
    units: &str,
    path: &Path,
) -> Result<()> {
    let write = || -> hdf5::Result<()> {
        let g = parent.create_group("exact")?;
        let gs = &result.ground_state;
        write_attr(&g, "energy", gs.energy)?;
        write_attr(&g, "energy_per_site", gs.energy / lattice.n_sites() as f64)?;
        write_str_attr(&g, "units", units)?;
        write_str_attr(&g, "method", &result.method())?;
        write_attr(&g, "dimension", result.dimension() as u64)?;
        write_str_attr(
            &g,
            "sector",
            &serde_json::to_string(&gs.sector).unwrap_or_default(),
        )?;
        write_1d(
            &g,
            "energies",
            &result.energies.iter().map(|e| e.0).collect::<Vec<_>>(),
        )?;
        write_str_attr(
            &g,
            "sectors",
            &serde_json::to_string(&result.sectors).unwrap_or_default(),
        )?;
        if !gs.amplitudes.is_empty() {
            write_1d(&g, "basis_states", &gs.basis_states)?;
            write_1d(&g, "eigenvector", &gs.amplitudes)?;
        }
        let Some(zz) = &gs.zz_correlations else {
            return Ok(());
        };
        write_2d(&g, "zz_correlations", zz)?;
        let sq = structure_factor(lattice, zz);
        if !sq.is_empty() {
            let dims = sq[0].0.len();
            let q = Array2::from_shape_fn((sq.len(), dims), |(i, d)| sq[i].0[d]);
            write_2d(&g, "structure_factor_q", &q)?;
            write_1d(
                &g,
                "structure_factor",
                &sq.iter().map(|s| s.1).collect::<Vec<_>>(),
            )?;
        }
        Ok(())
    };
    write().map_err(h5err(path))
}

/// Final estimates of a run, written when it finishes.
pub struct RunResults<'a> {
    pub energy: &'a Stats,
    pub reference: Option<&'a (f64, String)>,
    pub szsz: &'a Array2<f64>,
    pub szsz_error: &'a Array2<f64>,
    pub structure: &'a [(Vec<f64>, Stats)],
    pub extra: &'a [(String, Stats)],
}

/// The sidecar file holding the last complete checkpoint of `path`.
pub fn checkpoint_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".ckpt");
    PathBuf::from(p)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn write_root(file: &hdf5::File, root: &RootInfo) -> hdf5::Result<()> {
    write_str_attr(file, "version", env!("CARGO_PKG_VERSION"))?;
    write_str_attr(file, "program", "nqs")?;
    write_str_attr(file, "command", &root.command)?;
    write_str_attr(file, "config", &root.config_text)?;
    write_attr(file, "seed", root.seed)?;
    write_attr(file, "ranks", root.ranks as u64)?;
    write_attr(file, "threads", root.threads as u64)?;
    write_str_attr(file, "start_time", &root.start_time)
}

/// Everything a restart needs: ansatz, optimizer, sampler (configurations and random streams of
/// every chain) and the history so far.
fn write_state(root: &Group, state: &VmcState) -> hdf5::Result<()> {
    let a = root.create_group("ansatz")?;
    let (kind, alpha) = match state.ansatz.kind() {
        RbmKind::Dense { alpha } => ("rbm", *alpha),
        RbmKind::Symmetric { alpha, .. } => ("rbm_symm", *alpha),
    };
    write_str_attr(&a, "kind", kind)?;
    write_attr(&a, "alpha", alpha as u64)?;
    write_attr(&a, "n_sites", state.ansatz.n_sites() as u64)?;
    write_attr(&a, "n_hidden", state.ansatz.n_hidden() as u64)?;
    write_1d(&a, "parameters", state.ansatz.parameters())?;
    let o = root.create_group("optimizer")?;
    write_attr(&o, "iteration", state.optimizer.iteration as u64)?;
    write_1d(&o, "adam_m", &state.optimizer.adam_m)?;
    write_1d(&o, "adam_v", &state.optimizer.adam_v)?;
    write_1d(&o, "last_solution", &state.optimizer.last_solution)?;
    let s = root.create_group("sampler")?;
    let n = state.ansatz.n_sites();
    let chains = &state.sampler.chains;
    write_attr(&s, "first_chain", state.sampler.first_chain as u64)?;
    write_2d(
        &s,
        "configurations",
        &Array2::from_shape_fn((chains.len(), n), |(c, i)| chains[c].sigma[i]),
    )?;
    let states: Vec<[u64; 4]> = chains.iter().map(|c| rng_state(&c.rng)).collect();
    write_2d(
        &s,
        "rng_state",
        &Array2::from_shape_fn((chains.len(), 4), |(c, k)| states[c][k]),
    )?;
    write_1d(
        &s,
        "thermalized",
        &chains
            .iter()
            .map(|c| u8::from(c.thermalized))
            .collect::<Vec<_>>(),
    )?;
    let h = root.create_group("history")?;
    for (k, name) in HistoryRow::COLUMNS.iter().enumerate() {
        write_1d(
            &h,
            name,
            &state
                .history
                .iter()
                .map(|r| r.values()[k])
                .collect::<Vec<f64>>(),
        )?;
    }
    Ok(())
}

fn write_results(root: &Group, results: &RunResults) -> hdf5::Result<()> {
    let obs = root.create_group("observables")?;
    write_attr(&obs, "energy", results.energy.mean.re)?;
    write_attr(&obs, "energy_error", results.energy.error)?;
    write_attr(&obs, "energy_variance", results.energy.variance)?;
    write_2d(&obs, "szsz", results.szsz)?;
    write_2d(&obs, "szsz_error", results.szsz_error)?;
    if let Some(((q0, _), _)) = results.structure.split_first() {
        let dims = q0.len();
        let sq = results.structure;
        write_2d(
            &obs,
            "structure_factor_q",
            &Array2::from_shape_fn((sq.len(), dims), |(i, d)| sq[i].0[d]),
        )?;
        write_1d(
            &obs,
            "structure_factor",
            &sq.iter().map(|s| s.1.mean.re).collect::<Vec<_>>(),
        )?;
        write_1d(
            &obs,
            "structure_factor_error",
            &sq.iter().map(|s| s.1.error).collect::<Vec<_>>(),
        )?;
    }
    for (name, s) in results.extra {
        let g = obs.create_group(name)?;
        write_attr(&g, "mean", s.mean.re)?;
        write_attr(&g, "mean_imag", s.mean.im)?;
        write_attr(&g, "error", s.error)?;
    }
    if let Some((e, method)) = results.reference {
        let x = root.create_group("exact")?;
        write_attr(&x, "energy", *e)?;
        write_str_attr(&x, "method", method)?;
    }
    Ok(())
}

/// Writes a complete file to `<target>.tmp` and renames it over `target`: readers (and a
/// resume after kill -9) only ever see complete files, because rename is atomic on POSIX file
/// systems and the data is flushed before it.
fn write_atomically(
    target: &Path,
    fill: impl FnOnce(&hdf5::File) -> hdf5::Result<()>,
) -> Result<()> {
    let tmp = sibling(target, ".tmp");
    {
        let file = hdf5::File::create(&tmp).map_err(h5err(&tmp))?;
        fill(&file).map_err(h5err(&tmp))?;
        file.flush().map_err(h5err(&tmp))?;
    }
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::Runtime(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, target).map_err(|e| {
        Error::Runtime(format!(
            "{}: cannot rename into place: {e}",
            target.display()
        ))
    })
}

/// The output of a VMC run.
///
/// Crash safety: the run file `path` is live — root attributes and the history, one row
/// appended and flushed per iteration, for monitoring with h5py. Checkpoints go to the sidecar
/// `path.ckpt`, always written whole and renamed into place ([`write_atomically`]), so a kill at
/// any instant (even inside an HDF5 write to the live file) leaves the last complete checkpoint
/// readable. When the run finishes, `path` is replaced atomically by the complete file (state,
/// history, observables, `finished = 1`) and the sidecar is removed.
pub struct RunStore {
    path: PathBuf,
    live: hdf5::File,
    rows: usize,
}

impl RunStore {
    /// (Re)creates the live file with the given history rows.
    pub fn create(path: &Path, root: &RootInfo, history: &[HistoryRow]) -> Result<RunStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::Runtime(format!("{}: cannot create directory: {e}", dir.display()))
            })?;
        }
        let live = hdf5::File::create(path).map_err(h5err(path))?;
        let init = || -> hdf5::Result<()> {
            write_root(&live, root)?;
            write_attr(&live, "finished", 0u8)?;
            let h = live.create_group("history")?;
            for (k, name) in HistoryRow::COLUMNS.iter().enumerate() {
                let ds = h.new_dataset::<f64>().chunk(256).shape(0..).create(*name)?;
                if !history.is_empty() {
                    ds.resize(history.len())?;
                    ds.write_slice(
                        &history.iter().map(|r| r.values()[k]).collect::<Vec<f64>>(),
                        0..history.len(),
                    )?;
                }
            }
            live.flush()
        };
        init().map_err(h5err(path))?;
        Ok(RunStore {
            path: path.to_path_buf(),
            live,
            rows: history.len(),
        })
    }

    /// Appends one history row to the live file and flushes it.
    pub fn append(&mut self, row: &HistoryRow) -> Result<()> {
        let values = row.values();
        let n = self.rows;
        let write = || -> hdf5::Result<()> {
            let h = self.live.group("history")?;
            for (k, name) in HistoryRow::COLUMNS.iter().enumerate() {
                let ds = h.dataset(name)?;
                ds.resize(n + 1)?;
                ds.write_slice(&values[k..k + 1], n..n + 1)?;
            }
            self.live.flush()
        };
        write().map_err(h5err(&self.path))?;
        self.rows += 1;
        Ok(())
    }

    /// Writes a complete checkpoint to the sidecar file.
    pub fn checkpoint(&self, root: &RootInfo, state: &VmcState) -> Result<()> {
        write_atomically(&checkpoint_path(&self.path), |file| {
            write_root(file, root)?;
            write_attr(file, "finished", 0u8)?;
            write_state(file, state)
        })
    }

    /// Replaces the live file by the complete final file and removes the checkpoint sidecar.
    pub fn finish(
        self,
        root: &RootInfo,
        state: &VmcState,
        results: &RunResults,
    ) -> Result<PathBuf> {
        let RunStore { path, live, .. } = self;
        drop(live);
        write_atomically(&path, |file| {
            write_root(file, root)?;
            write_attr(file, "finished", 1u8)?;
            write_state(file, state)?;
            write_results(file, results)
        })?;
        let ckpt = checkpoint_path(&path);
        if ckpt.exists() {
            std::fs::remove_file(&ckpt)
                .map_err(|e| Error::Runtime(format!("{}: {e}", ckpt.display())))?;
        }
        Ok(path)
    }
}

/// The state read back from a checkpoint or a finished run file.
pub struct StoredRun {
    pub config_text: String,
    pub start_time: String,
    pub finished: bool,
    pub kind: String,
    pub alpha: usize,
    pub n_sites: usize,
    pub parameters: Vec<Complex64>,
    pub optimizer: OptimizerState,
    pub first_chain: usize,
    pub configurations: Array2<i8>,
    pub rng_states: Array2<u64>,
    pub thermalized: Vec<u8>,
    pub history: Vec<HistoryRow>,
}

/// Opens an HDF5 file written by nqs, with one clear error for anything else.
pub fn open_nqs_file(path: &Path) -> Result<hdf5::File> {
    if !path.is_file() {
        return Err(Error::input(path, "no such file"));
    }
    let mut magic = [0u8; 8];
    let is_hdf5 = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == b"\x89HDF\r\n\x1a\n";
    if !is_hdf5 {
        return Err(Error::input(path, "not an HDF5 file"));
    }
    let file = hdf5::File::open(path).map_err(|e| {
        Error::input(
            path,
            format!("cannot open HDF5 file (truncated or damaged?): {e}"),
        )
    })?;
    match read_str_attr(&file, "program") {
        Ok(p) if p == "nqs" => Ok(file),
        _ => Err(Error::input(
            path,
            "an HDF5 file, but not one written by nqs (no root attribute program = \"nqs\")",
        )),
    }
}

/// Reads the state stored in a checkpoint or finished run file.
pub fn read_run(path: &Path) -> Result<StoredRun> {
    let file = open_nqs_file(path)?;
    let bad = |e: hdf5::Error| Error::input(path, format!("incomplete or damaged run file: {e}"));
    let read = || -> hdf5::Result<StoredRun> {
        let a = file.group("ansatz")?;
        let o = file.group("optimizer")?;
        let s = file.group("sampler")?;
        let h = file.group("history")?;
        let columns: Vec<Vec<f64>> = HistoryRow::COLUMNS
            .iter()
            .map(|name| h.dataset(name).and_then(|d| d.read_raw::<f64>()))
            .collect::<hdf5::Result<_>>()?;
        let rows = columns.first().map_or(0, Vec::len);
        let history = (0..rows)
            .map(|r| {
                HistoryRow::from_values(
                    &columns
                        .iter()
                        .map(|c| c.get(r).copied().unwrap_or(f64::NAN))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        Ok(StoredRun {
            config_text: read_str_attr(&file, "config")?,
            start_time: read_str_attr(&file, "start_time")?,
            finished: file.attr("finished")?.read_scalar::<u8>()? == 1,
            kind: read_str_attr(&a, "kind")?,
            alpha: a.attr("alpha")?.read_scalar::<u64>()? as usize,
            n_sites: a.attr("n_sites")?.read_scalar::<u64>()? as usize,
            parameters: a.dataset("parameters")?.read_raw()?,
            optimizer: OptimizerState {
                iteration: o.attr("iteration")?.read_scalar::<u64>()? as usize,
                adam_m: o.dataset("adam_m")?.read_raw()?,
                adam_v: o.dataset("adam_v")?.read_raw()?,
                last_solution: o.dataset("last_solution")?.read_raw()?,
            },
            first_chain: s.attr("first_chain")?.read_scalar::<u64>()? as usize,
            configurations: s.dataset("configurations")?.read_2d()?,
            rng_states: s.dataset("rng_state")?.read_2d()?,
            thermalized: s.dataset("thermalized")?.read_raw()?,
            history,
        })
    };
    read().map_err(bad)
}

/// Writes a tomography fit: the state in the same `ansatz` layout as VMC runs and the fit
/// history and metrics under `tomography`.
#[allow(clippy::too_many_arguments)]
pub fn write_tomography(
    root: &Group,
    rbm: &crate::ansatz::Rbm,
    history: &[crate::tomography::EpochRecord],
    nll: f64,
    fidelity: Option<f64>,
    kl: Option<f64>,
    path: &Path,
) -> Result<()> {
    let write = || -> hdf5::Result<()> {
        let a = root.create_group("ansatz")?;
        let alpha = match rbm.kind() {
            RbmKind::Dense { alpha } | RbmKind::Symmetric { alpha, .. } => *alpha,
        };
        write_str_attr(&a, "kind", "rbm")?;
        write_attr(&a, "alpha", alpha as u64)?;
        write_attr(&a, "n_sites", rbm.n_sites() as u64)?;
        write_attr(&a, "n_hidden", rbm.n_hidden() as u64)?;
        write_1d(&a, "parameters", rbm.parameters())?;
        let t = root.create_group("tomography")?;
        write_attr(&t, "nll", nll)?;
        write_attr(&t, "fidelity", fidelity.unwrap_or(f64::NAN))?;
        write_attr(&t, "kl", kl.unwrap_or(f64::NAN))?;
        write_1d(
            &t,
            "epoch",
            &history.iter().map(|r| r.epoch as u64).collect::<Vec<_>>(),
        )?;
        write_1d(
            &t,
            "train_nll",
            &history.iter().map(|r| r.train_nll).collect::<Vec<_>>(),
        )?;
        write_1d(
            &t,
            "validation_nll",
            &history.iter().map(|r| r.validation_nll).collect::<Vec<_>>(),
        )?;
        write_1d(
            &t,
            "fidelity_history",
            &history
                .iter()
                .map(|r| r.fidelity.unwrap_or(f64::NAN))
                .collect::<Vec<_>>(),
        )?;
        write_1d(
            &t,
            "kl_history",
            &history
                .iter()
                .map(|r| r.kl.unwrap_or(f64::NAN))
                .collect::<Vec<_>>(),
        )?;
        write_1d(
            &t,
            "wall_time",
            &history.iter().map(|r| r.wall_time).collect::<Vec<_>>(),
        )
    };
    write().map_err(h5err(path))
}
