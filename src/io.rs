//! The HDF5 store (DESIGN.md §5): root attributes and one group per concern.
//!
//! Complex arrays use the compound `{r: f64, i: f64}` that h5py reads as complex128. Files are
//! written to `<name>.tmp` and renamed into place, so a reader never sees a half-written file.

use crate::ansatz::{Ansatz, RbmKind};
use crate::error::{Error, Result};
use crate::exact::{structure_factor, EdResult};
use crate::lattice::Lattice;
use crate::stats::Stats;
use crate::vmc::VmcState;
use hdf5::types::VarLenUnicode;
use hdf5::{Group, H5Type, Location};
use ndarray::Array2;
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
        let write = || -> hdf5::Result<()> {
            write_str_attr(&file, "version", env!("CARGO_PKG_VERSION"))?;
            write_str_attr(&file, "program", "nqs")?;
            write_str_attr(&file, "command", &root.command)?;
            write_str_attr(&file, "config", &root.config_text)?;
            write_attr(&file, "seed", root.seed)?;
            write_attr(&file, "ranks", root.ranks as u64)?;
            write_attr(&file, "threads", root.threads as u64)?;
            write_str_attr(&file, "start_time", &utc_now())
        };
        write().map_err(h5err(&tmp))?;
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

/// Writes the groups of a finished VMC run: ansatz, optimizer, sampler, history, exact,
/// observables.
#[allow(clippy::too_many_arguments)]
pub fn write_run(
    root: &Group,
    state: &VmcState,
    energy: &Stats,
    reference: Option<&(f64, String)>,
    szsz: &Array2<f64>,
    szsz_error: &Array2<f64>,
    structure: &[(Vec<f64>, Stats)],
    extra: &[(String, Stats)],
    path: &Path,
) -> Result<()> {
    let write = || -> hdf5::Result<()> {
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
        let s = root.create_group("sampler")?;
        let n = state.ansatz.n_sites();
        let configs = Array2::from_shape_fn((state.sampler.chains.len(), n), |(c, i)| {
            state.sampler.chains[c].sigma[i]
        });
        write_2d(&s, "configurations", &configs)?;
        let h = root.create_group("history")?;
        let column = |f: &dyn Fn(&crate::vmc::HistoryRow) -> f64| {
            state.history.iter().map(f).collect::<Vec<f64>>()
        };
        write_1d(
            &h,
            "iteration",
            &state
                .history
                .iter()
                .map(|r| r.iteration as u64)
                .collect::<Vec<_>>(),
        )?;
        write_1d(&h, "energy", &column(&|r| r.energy))?;
        write_1d(&h, "energy_imag", &column(&|r| r.energy_imag))?;
        write_1d(&h, "error", &column(&|r| r.error))?;
        write_1d(&h, "variance", &column(&|r| r.variance))?;
        write_1d(&h, "r_hat", &column(&|r| r.r_hat))?;
        write_1d(&h, "tau", &column(&|r| r.tau))?;
        write_1d(&h, "acceptance", &column(&|r| r.acceptance))?;
        write_1d(&h, "learning_rate", &column(&|r| r.learning_rate))?;
        write_1d(&h, "diag_shift", &column(&|r| r.diag_shift))?;
        write_1d(&h, "cg_iterations", &column(&|r| r.cg_iterations as f64))?;
        write_1d(&h, "wall_time", &column(&|r| r.wall_time))?;
        let obs = root.create_group("observables")?;
        write_attr(&obs, "energy", energy.mean.re)?;
        write_attr(&obs, "energy_error", energy.error)?;
        write_attr(&obs, "energy_variance", energy.variance)?;
        write_2d(&obs, "szsz", szsz)?;
        write_2d(&obs, "szsz_error", szsz_error)?;
        if !structure.is_empty() {
            let dims = structure[0].0.len();
            write_2d(
                &obs,
                "structure_factor_q",
                &Array2::from_shape_fn((structure.len(), dims), |(i, d)| structure[i].0[d]),
            )?;
            write_1d(
                &obs,
                "structure_factor",
                &structure.iter().map(|s| s.1.mean.re).collect::<Vec<_>>(),
            )?;
            write_1d(
                &obs,
                "structure_factor_error",
                &structure.iter().map(|s| s.1.error).collect::<Vec<_>>(),
            )?;
        }
        for (name, s) in extra {
            let g = obs.create_group(name)?;
            write_attr(&g, "mean", s.mean.re)?;
            write_attr(&g, "mean_imag", s.mean.im)?;
            write_attr(&g, "error", s.error)?;
        }
        if let Some((e, method)) = reference {
            let x = root.create_group("exact")?;
            write_attr(&x, "energy", *e)?;
            write_str_attr(&x, "method", method)?;
        }
        Ok(())
    };
    write().map_err(h5err(path))
}
