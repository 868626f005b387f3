//! The HDF5 store (DESIGN.md §5) and the file policy every command shares.
//!
//! The store sits below the drivers: it takes and returns plain records ([`StateRecord`],
//! [`ResultsRecord`], …) and knows nothing of VMC, tomography or the command line. Complex arrays
//! use the compound `{r: f64, i: f64}` that h5py reads as complex128.
//!
//! File policy:
//! - [`open_nqs_file`] is the one signature check (a regular file, HDF5 magic bytes, a
//!   [`probe`] that the HDF5 library can read it without crashing, root attribute
//!   `program = "nqs"`);
//! - new files are written as `<name>.tmp`, flushed, synced and renamed into place
//!   ([`write_atomically`], [`NewFile`]), so a reader never sees a half-written file;
//! - [`prepare_output`] checks an output before any work (not a directory, the directory
//!   writable, an existing file only replaced with `--force`);
//! - [`OutputLock`] gives a run exclusive ownership of its output without relying on HDF5 file
//!   locking.

mod lock;
pub mod probe;
mod run_store;

pub use lock::OutputLock;
pub use run_store::{write_checkpoint, RunStore};

use crate::error::{Error, Result};
use hdf5::types::{TypeDescriptor, VarLenUnicode};
use hdf5::{Group, H5Type, Location};
use ndarray::Array2;
use num_complex::Complex64;
use std::path::{Path, PathBuf};

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

/// Reads a string attribute (checked UTF-8: the HDF5 types do not check what a file holds).
pub fn read_str_attr(loc: &Location, name: &str) -> hdf5::Result<String> {
    let value = loc.attr(name)?.read_scalar::<VarLenUnicode>()?;
    String::from_utf8(value.as_bytes().to_vec())
        .map_err(|_| hdf5::Error::from(format!("attribute {name}: not valid UTF-8")))
}

/// Reads a scalar attribute.
pub fn read_attr<T: H5Type>(loc: &Location, name: &str) -> hdf5::Result<T> {
    loc.attr(name)?.read_scalar::<T>()
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

/// Reads a one-dimensional dataset (a 2-D one is an error, not flattened).
pub fn read_1d<T: H5Type>(group: &Group, name: &str) -> hdf5::Result<Vec<T>> {
    let ds = group.dataset(name)?;
    if ds.ndim() != 1 {
        return Err(format!(
            "{name}: expected a 1-D dataset, got {} dimensions",
            ds.ndim()
        )
        .into());
    }
    check_fits::<T>(&ds, name)?;
    ds.read_raw()
}

/// A dataset's size is only a header: one declaring more than half the available memory is
/// refused before it is read (a damaged file otherwise aborts the program on allocation).
pub(crate) fn check_fits<T: H5Type>(ds: &hdf5::Dataset, name: &str) -> hdf5::Result<()> {
    let bytes = ds.size() as u128 * std::mem::size_of::<T>() as u128;
    let available = crate::exact::available_memory();
    if bytes > u128::from(available / 2) {
        return Err(format!(
            "{name}: declares {} elements ({:.3e} bytes), more than half the available memory ({:.1} GB)",
            ds.size(),
            bytes as f64,
            available as f64 / 1e9
        )
        .into());
    }
    Ok(())
}

/// Reads a two-dimensional dataset.
pub fn read_2d<T: H5Type>(group: &Group, name: &str) -> hdf5::Result<Array2<T>> {
    let ds = group.dataset(name)?;
    if ds.ndim() != 2 {
        return Err(format!(
            "{name}: expected a 2-D dataset, got {} dimensions",
            ds.ndim()
        )
        .into());
    }
    check_fits::<T>(&ds, name)?;
    ds.read_2d()
}

/// Does `path` start with the HDF5 signature?
pub fn is_hdf5(path: &Path) -> bool {
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == b"\x89HDF\r\n\x1a\n"
}

/// Opens an HDF5 file written by nqs, with one clear error for anything else.
pub fn open_nqs_file(path: &Path) -> Result<hdf5::File> {
    if path.is_dir() {
        return Err(Error::file(
            path,
            "is a directory, expected an nqs HDF5 file",
        ));
    }
    if !path.exists() {
        return Err(Error::file(path, "no such file"));
    }
    if !path.is_file() {
        return Err(Error::file(
            path,
            "not a regular file (a device or pipe), expected an nqs HDF5 file",
        ));
    }
    if !is_hdf5(path) {
        return Err(Error::file(path, "not an HDF5 file"));
    }
    probe::check(path)?;
    let file = hdf5::File::open(path)
        .map_err(|e| Error::bad_hdf5(path, "cannot open HDF5 file (truncated or damaged?)", e))?;
    match read_str_attr(&file, "program") {
        Ok(p) if p == "nqs" => Ok(file),
        _ => Err(Error::file(
            path,
            "an HDF5 file, but not one written by nqs (no root attribute program = \"nqs\")",
        )),
    }
}

/// The `command` that wrote an nqs file (`run`, `ed`, `tomo`, …).
pub fn file_command(file: &hdf5::File) -> String {
    read_str_attr(file, "command").unwrap_or_default()
}

/// `path` with `suffix` appended to its file name (`run.h5` → `run.h5.ckpt`).
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// The sidecar file holding the last complete checkpoint of a run file.
pub fn checkpoint_path(path: &Path) -> PathBuf {
    sibling(path, ".ckpt")
}

/// Checks, before any work, that `path` can be written: not a directory, an existing file only
/// with `force`, its directory creatable and writable. Exit code 2 otherwise.
pub fn prepare_output(path: &Path, force: bool, what: &str) -> Result<()> {
    if path.as_os_str().is_empty() {
        return Err(Error::output(path, "empty output path"));
    }
    if path.is_dir() || path.as_os_str().as_encoded_bytes().ends_with(b"/") {
        return Err(Error::output(
            path,
            format!("is a directory; {what} needs a file name"),
        ));
    }
    if path.exists() && !force {
        return Err(Error::output(
            path,
            "exists; choose another output or pass --force to replace it",
        ));
    }
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    check_writable_dir(&dir)
}

/// Creates `dir` if needed and checks that a file can be created in it.
pub fn check_writable_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::output(dir, format!("cannot create the output directory: {e}")))?;
    let probe = dir.join(format!(".nqs-write-test-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(Error::output(
            dir,
            format!("the output directory is not writable: {e}"),
        )),
    }
}

/// Writes a complete file to `<target>.tmp`, flushes and syncs it, and renames it over
/// `target`: readers (and a resume after kill -9) only ever see complete files, because rename
/// is atomic on POSIX file systems.
pub fn write_atomically(
    target: &Path,
    fill: impl FnOnce(&hdf5::File) -> hdf5::Result<()>,
) -> Result<()> {
    let tmp = sibling(target, ".tmp");
    {
        let file = hdf5::File::create(&tmp).map_err(|e| Error::hdf5(&tmp, "cannot create", e))?;
        let filled = fill(&file).and_then(|()| file.flush());
        if let Err(e) = filled {
            drop(file);
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::hdf5(&tmp, "cannot write", e));
        }
    }
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(&tmp, "cannot sync", e))?;
    std::fs::rename(&tmp, target).map_err(|e| Error::io(target, "cannot rename into place", e))
}

/// A new output file: written to `<path>.tmp` and renamed over `path` by [`NewFile::commit`];
/// dropped without a commit, the temporary file is removed.
pub struct NewFile {
    file: Option<hdf5::File>,
    path: PathBuf,
    tmp: PathBuf,
}

impl NewFile {
    /// Starts a new file with the root attributes (call [`prepare_output`] first).
    pub fn create(path: &Path, root: &RootInfo) -> Result<Self> {
        let tmp = sibling(path, ".tmp");
        let file = hdf5::File::create(&tmp).map_err(|e| Error::hdf5(&tmp, "cannot create", e))?;
        write_root(&file, root).map_err(|e| Error::hdf5(&tmp, "cannot write", e))?;
        Ok(NewFile {
            file: Some(file),
            path: path.to_path_buf(),
            tmp,
        })
    }

    /// The file being written.
    pub fn file(&self) -> &hdf5::File {
        self.file.as_ref().expect("open until committed")
    }

    /// Runs `fill` on the file, naming the file in errors.
    pub fn write(
        &self,
        context: &str,
        fill: impl FnOnce(&hdf5::File) -> hdf5::Result<()>,
    ) -> Result<()> {
        fill(self.file()).map_err(|e| Error::hdf5(&self.tmp, context.to_string(), e))
    }

    /// Flushes, closes, syncs and atomically renames the file into place.
    pub fn commit(mut self) -> Result<PathBuf> {
        let file = self.file.take().expect("open until committed");
        file.flush()
            .map_err(|e| Error::hdf5(&self.tmp, "cannot flush", e))?;
        drop(file);
        std::fs::File::open(&self.tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&self.tmp, "cannot sync", e))?;
        std::fs::rename(&self.tmp, &self.path)
            .map_err(|e| Error::io(&self.path, "cannot rename into place", e))?;
        Ok(self.path.clone())
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Facts stored as root attributes of every file.
#[derive(Clone, Debug, Default)]
pub struct RootInfo {
    /// `run`, `ed`, `tomo`, `sample`, …
    pub command: String,
    /// The canonical configuration (TOML), empty where there is none.
    pub config_text: String,
    /// Hash of the physics-defining configuration.
    pub identity: String,
    /// `pauli` or `spin`, empty where there are no energies.
    pub units: String,
    pub seed: u64,
    pub ranks: usize,
    pub threads: usize,
    /// UTC start time (kept across resumes).
    pub start_time: String,
}

/// Writes the root attributes.
pub fn write_root(file: &hdf5::File, root: &RootInfo) -> hdf5::Result<()> {
    write_str_attr(file, "program", "nqs")?;
    write_str_attr(file, "version", env!("CARGO_PKG_VERSION"))?;
    write_str_attr(file, "command", &root.command)?;
    write_str_attr(file, "config", &root.config_text)?;
    write_str_attr(file, "identity", &root.identity)?;
    write_str_attr(file, "units", &root.units)?;
    write_attr(file, "seed", root.seed)?;
    write_attr(file, "ranks", root.ranks as u64)?;
    write_attr(file, "threads", root.threads as u64)?;
    write_str_attr(file, "start_time", &root.start_time)
}

/// Reads the root attributes (missing optional ones are empty); a `units` attribute other than
/// `pauli` or `spin` is refused.
pub fn read_root(file: &hdf5::File) -> std::result::Result<RootInfo, String> {
    let text = |name: &str| read_str_attr(file, name).unwrap_or_default();
    let units = text("units");
    if !matches!(units.as_str(), "" | "pauli" | "spin") {
        return Err(format!(
            "its units attribute is {:?}, expected \"pauli\" or \"spin\" (damaged file?)",
            crate::error::shorten(&units)
        ));
    }
    Ok(RootInfo {
        command: text("command"),
        config_text: text("config"),
        identity: text("identity"),
        units,
        seed: read_attr(file, "seed").unwrap_or(0),
        ranks: read_attr::<u64>(file, "ranks").unwrap_or(1) as usize,
        threads: read_attr::<u64>(file, "threads").unwrap_or(1) as usize,
        start_time: text("start_time"),
    })
}

/// A run file's `finished` attribute: 1 for a complete run, 0 (or absent) for a live file or a
/// checkpoint. Anything else is refused: another value, or another type than an integer (read
/// as i64, so that HDF5's conversion cannot clip or round it into 0 or 1).
pub fn read_finished(file: &hdf5::File) -> std::result::Result<bool, String> {
    if !file
        .attr_names()
        .is_ok_and(|names| names.iter().any(|n| n == "finished"))
    {
        return Ok(false);
    }
    let unreadable = |e: hdf5::Error| format!("its finished attribute cannot be read ({e})");
    let attr = file.attr("finished").map_err(unreadable)?;
    let integer = matches!(
        attr.dtype().and_then(|t| t.to_descriptor()),
        Ok(TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_))
    );
    if !integer {
        return Err("its finished attribute is not an integer (damaged file?)".into());
    }
    match attr.read_scalar::<i64>() {
        Ok(0) => Ok(false),
        Ok(1) => Ok(true),
        Ok(v) => Err(format!(
            "its finished attribute is {v}, expected 0 or 1 (damaged file?)"
        )),
        Err(e) => Err(unreadable(e)),
    }
}

/// A wavefunction: its kind, sizes and flat parameters, and the Marshall sites that relate it
/// to the physical basis (`ψ_phys(σ) = (−1)^{down spins on marshall_sites} ψ(σ)`).
#[derive(Clone, Debug, PartialEq)]
pub struct AnsatzRecord {
    pub kind: String,
    pub alpha: usize,
    pub n_sites: usize,
    pub n_hidden: usize,
    pub parameters: Vec<Complex64>,
    pub marshall_sites: Vec<u64>,
}

impl AnsatzRecord {
    /// Checks that the state was stored in the basis of `marshall_sites` (those of a model's
    /// `marshall_sign`, [`crate::operator::Hamiltonian::marshall_sites`]).
    pub fn check_basis(&self, marshall_sites: &[u64]) -> std::result::Result<(), String> {
        if self.marshall_sites == marshall_sites {
            return Ok(());
        }
        Err("its ansatz/marshall_sites say the state was sampled in another basis than the configuration's model.marshall_sign".into())
    }
}

/// The optimizer's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimizerRecord {
    pub iteration: usize,
    pub adam_m: Vec<Complex64>,
    pub adam_v: Vec<f64>,
    pub last_solution: Vec<Complex64>,
    /// `solver = "auto"` has changed to its direct solver (attribute `auto_direct`, 0 | 1;
    /// absent in files written before it existed: 0).
    pub auto_direct: bool,
}

/// Every chain: configuration (±1), random-stream words, thermalized flag.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainsRecord {
    pub configurations: Array2<i8>,
    pub rng_state: Array2<u64>,
    pub thermalized: Vec<u8>,
}

/// The optimization history: named columns, one row per iteration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryRecord {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

/// Everything a restart needs.
#[derive(Clone, Debug, PartialEq)]
pub struct StateRecord {
    pub ansatz: AnsatzRecord,
    pub optimizer: OptimizerRecord,
    pub chains: ChainsRecord,
    pub history: HistoryRecord,
}

/// An estimate with its error bar.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Estimate {
    pub mean: f64,
    pub error: f64,
}

/// Measured observables (final estimate of a run, or `nqs measure`), in the run's units.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResultsRecord {
    pub units: String,
    pub samples: usize,
    pub energy: Estimate,
    pub energy_variance: f64,
    pub r_hat: f64,
    pub tau: f64,
    /// `⟨Z_i Z_j⟩` or `⟨S^z_i S^z_j⟩` (named by `correlation_label`) and its error.
    pub correlation_label: String,
    pub correlations: Array2<f64>,
    pub correlation_errors: Array2<f64>,
    /// Site coordinates (one row per site; empty for custom graphs).
    pub coordinates: Array2<f64>,
    /// Momenta (rows) and `S(q)` with errors.
    pub momenta: Array2<f64>,
    pub structure_factor: Vec<Estimate>,
    /// `⟨Σ_i Z_i⟩/N` (or `S^z`/N) and `⟨|Σ Z|⟩/N`.
    pub magnetization: Estimate,
    pub abs_magnetization: Estimate,
    /// Pauli strings by name: mean (real, imaginary) and error.
    pub pauli: Vec<(String, Estimate, f64)>,
}

/// Writes measured observables into a new group `name` of `parent`.
/// What a finished run file says about its energy.
#[derive(Clone, Debug, Default)]
pub struct FinalEnergy {
    /// `observables`: the final estimate and its variance.
    pub energy: Option<(Estimate, f64)>,
    /// `exact`: the reference energy and its method.
    pub exact: Option<(f64, String)>,
}

/// Reads the final energy (group `observables`) and the exact reference (group `exact`) of a
/// finished run file; each is None where the file has no such group.
pub fn read_final_energy(path: &Path) -> hdf5::Result<FinalEnergy> {
    let file = hdf5::File::open(path)?;
    let energy = match file.group("observables") {
        Ok(g) => Some((
            Estimate {
                mean: read_attr(&g, "energy")?,
                error: read_attr(&g, "energy_error")?,
            },
            read_attr(&g, "energy_variance")?,
        )),
        Err(_) => None,
    };
    let exact = match file.group("exact") {
        Ok(g) => Some((read_attr(&g, "energy")?, read_str_attr(&g, "method")?)),
        Err(_) => None,
    };
    Ok(FinalEnergy { energy, exact })
}

pub fn write_results(parent: &Group, name: &str, r: &ResultsRecord) -> hdf5::Result<()> {
    let g = parent.create_group(name)?;
    write_str_attr(&g, "units", &r.units)?;
    write_attr(&g, "samples", r.samples as u64)?;
    write_attr(&g, "energy", r.energy.mean)?;
    write_attr(&g, "energy_error", r.energy.error)?;
    write_attr(&g, "energy_variance", r.energy_variance)?;
    write_attr(&g, "r_hat", r.r_hat)?;
    write_attr(&g, "tau", r.tau)?;
    write_attr(&g, "magnetization", r.magnetization.mean)?;
    write_attr(&g, "magnetization_error", r.magnetization.error)?;
    write_attr(&g, "abs_magnetization", r.abs_magnetization.mean)?;
    write_attr(&g, "abs_magnetization_error", r.abs_magnetization.error)?;
    let zz = g
        .new_dataset_builder()
        .with_data(&r.correlations)
        .create("zz")?;
    write_str_attr(&zz, "label", &r.correlation_label)?;
    write_2d(&g, "zz_error", &r.correlation_errors)?;
    write_2d(&g, "coordinates", &r.coordinates)?;
    if !r.structure_factor.is_empty() {
        write_2d(&g, "structure_factor_q", &r.momenta)?;
        let sq: Vec<f64> = r.structure_factor.iter().map(|e| e.mean).collect();
        let err: Vec<f64> = r.structure_factor.iter().map(|e| e.error).collect();
        write_1d(&g, "structure_factor", &sq)?;
        write_1d(&g, "structure_factor_error", &err)?;
    }
    if !r.pauli.is_empty() {
        let p = g.create_group("pauli")?;
        for (name, estimate, imaginary) in &r.pauli {
            let o = p.create_group(name)?;
            write_attr(&o, "mean", estimate.mean)?;
            write_attr(&o, "mean_imag", *imaginary)?;
            write_attr(&o, "error", estimate.error)?;
        }
    }
    Ok(())
}

/// Writes a restartable state: groups `ansatz`, `optimizer`, `sampler`, `history`.
pub fn write_state(root: &Group, state: &StateRecord) -> hdf5::Result<()> {
    let a = root.create_group("ansatz")?;
    let r = &state.ansatz;
    write_str_attr(&a, "kind", &r.kind)?;
    write_attr(&a, "alpha", r.alpha as u64)?;
    write_attr(&a, "n_sites", r.n_sites as u64)?;
    write_attr(&a, "n_hidden", r.n_hidden as u64)?;
    write_1d(&a, "parameters", &r.parameters)?;
    write_1d(&a, "marshall_sites", &r.marshall_sites)?;
    let o = root.create_group("optimizer")?;
    write_attr(&o, "iteration", state.optimizer.iteration as u64)?;
    write_1d(&o, "adam_m", &state.optimizer.adam_m)?;
    write_1d(&o, "adam_v", &state.optimizer.adam_v)?;
    write_1d(&o, "last_solution", &state.optimizer.last_solution)?;
    write_attr(&o, "auto_direct", u8::from(state.optimizer.auto_direct))?;
    let s = root.create_group("sampler")?;
    write_2d(&s, "configurations", &state.chains.configurations)?;
    write_2d(&s, "rng_state", &state.chains.rng_state)?;
    write_1d(&s, "thermalized", &state.chains.thermalized)?;
    write_history(root, &state.history)
}

/// Writes the `history` group: one dataset per column (fixed size).
pub fn write_history(root: &Group, history: &HistoryRecord) -> hdf5::Result<()> {
    let h = root.create_group("history")?;
    for (k, name) in history.columns.iter().enumerate() {
        let column: Vec<f64> = history.rows.iter().map(|r| r[k]).collect();
        write_1d(&h, name, &column)?;
    }
    Ok(())
}

/// Reads the history columns `columns` (all of the same length).
pub fn read_history(root: &Group, columns: &[&str]) -> hdf5::Result<HistoryRecord> {
    let h = root.group("history")?;
    let data: Vec<Vec<f64>> = columns
        .iter()
        .map(|name| read_1d::<f64>(&h, name))
        .collect::<hdf5::Result<_>>()?;
    let rows = data.first().map_or(0, Vec::len);
    if let Some((name, _)) = columns.iter().zip(&data).find(|(_, c)| c.len() != rows) {
        return Err(format!(
            "history/{name} has a different length than history/{}",
            columns[0]
        )
        .into());
    }
    Ok(HistoryRecord {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows: (0..rows)
            .map(|r| data.iter().map(|c| c[r]).collect())
            .collect(),
    })
}

/// Reads the restartable state of a checkpoint or finished run file (shapes checked here;
/// lengths against the configuration by the caller).
pub fn read_state(file: &hdf5::File, history_columns: &[&str]) -> hdf5::Result<StateRecord> {
    let a = file.group("ansatz")?;
    let o = file.group("optimizer")?;
    let s = file.group("sampler")?;
    let configurations: Array2<i8> = read_2d(&s, "configurations")?;
    let rng_state: Array2<u64> = read_2d(&s, "rng_state")?;
    let thermalized: Vec<u8> = read_1d(&s, "thermalized")?;
    let chains = configurations.nrows();
    if rng_state.dim() != (chains, 4) || thermalized.len() != chains {
        return Err(format!(
            "sampler: {chains} configurations but rng_state {:?} and {} thermalized flags",
            rng_state.dim(),
            thermalized.len()
        )
        .into());
    }
    Ok(StateRecord {
        ansatz: AnsatzRecord {
            kind: read_str_attr(&a, "kind")?,
            alpha: read_attr::<u64>(&a, "alpha")? as usize,
            n_sites: read_attr::<u64>(&a, "n_sites")? as usize,
            n_hidden: read_attr::<u64>(&a, "n_hidden")? as usize,
            parameters: read_1d(&a, "parameters")?,
            marshall_sites: if a.link_exists("marshall_sites") {
                read_1d(&a, "marshall_sites")?
            } else {
                vec![]
            },
        },
        optimizer: OptimizerRecord {
            iteration: read_attr::<u64>(&o, "iteration")? as usize,
            adam_m: read_1d(&o, "adam_m")?,
            adam_v: read_1d(&o, "adam_v")?,
            last_solution: read_1d(&o, "last_solution")?,
            auto_direct: match o.attr("auto_direct") {
                Ok(a) => a.read_scalar::<u8>()? != 0,
                Err(_) => false,
            },
        },
        chains: ChainsRecord {
            configurations,
            rng_state,
            thermalized,
        },
        history: read_history(file, history_columns)?,
    })
}

/// Reads only the wavefunction of a file (`ansatz` group).
pub fn read_ansatz(file: &hdf5::File) -> hdf5::Result<AnsatzRecord> {
    let a = file.group("ansatz")?;
    Ok(AnsatzRecord {
        kind: read_str_attr(&a, "kind")?,
        alpha: read_attr::<u64>(&a, "alpha")? as usize,
        n_sites: read_attr::<u64>(&a, "n_sites")? as usize,
        n_hidden: read_attr::<u64>(&a, "n_hidden")? as usize,
        parameters: read_1d(&a, "parameters")?,
        marshall_sites: if a.link_exists("marshall_sites") {
            read_1d(&a, "marshall_sites")?
        } else {
            vec![]
        },
    })
}

/// Host name of this machine.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// An exact diagonalization result (`exact` group), in the physical basis.
#[derive(Clone, Debug, Default)]
pub struct ExactRecord {
    pub energy: f64,
    pub n_sites: usize,
    pub units: String,
    pub method: String,
    pub dimension: u64,
    /// JSON of the ground state's sector and of every sector solved.
    pub sector: String,
    pub sectors: String,
    /// The lowest energies found.
    pub energies: Vec<f64>,
    /// The ground state in the physical basis (bit i = site i up), when stored.
    pub basis_states: Vec<u64>,
    pub eigenvector: Vec<Complex64>,
    /// Correlations `⟨Z_i Z_j⟩` (or `S^z S^z`, named by the label) and `S(q)` on the momentum grid.
    pub correlation_label: String,
    pub correlations: Option<Array2<f64>>,
    pub momenta: Array2<f64>,
    pub structure_factor: Vec<f64>,
}

/// Writes the `exact` group.
pub fn write_exact(parent: &Group, r: &ExactRecord) -> hdf5::Result<()> {
    let g = parent.create_group("exact")?;
    write_attr(&g, "energy", r.energy)?;
    write_attr(&g, "energy_per_site", r.energy / r.n_sites as f64)?;
    write_str_attr(&g, "units", &r.units)?;
    write_str_attr(&g, "method", &r.method)?;
    write_attr(&g, "dimension", r.dimension)?;
    write_str_attr(&g, "sector", &r.sector)?;
    write_str_attr(&g, "sectors", &r.sectors)?;
    write_str_attr(&g, "basis", "physical")?;
    write_1d(&g, "energies", &r.energies)?;
    if !r.eigenvector.is_empty() {
        write_1d(&g, "basis_states", &r.basis_states)?;
        write_1d(&g, "eigenvector", &r.eigenvector)?;
    }
    if let Some(zz) = &r.correlations {
        let ds = g.new_dataset_builder().with_data(zz).create("zz")?;
        write_str_attr(&ds, "label", &r.correlation_label)?;
        if !r.structure_factor.is_empty() {
            write_2d(&g, "structure_factor_q", &r.momenta)?;
            write_1d(&g, "structure_factor", &r.structure_factor)?;
        }
    }
    Ok(())
}

/// `nqs spectrum`'s table: one row per sector (NaN where a value does not exist).
#[derive(Clone, Debug)]
pub struct SpectrumRecord {
    pub momentum: Vec<Vec<usize>>,
    /// ±1, or 0 without a spin-inversion projection.
    pub spin_inversion: Vec<i8>,
    pub energy: Vec<f64>,
    pub error: Vec<f64>,
    pub exact: Vec<f64>,
    pub lower_edge: Vec<f64>,
    /// The sectors' run files.
    pub files: Vec<String>,
}

/// Group `spectrum`: `momentum` (sectors × dimensions), `spin_inversion`, `energy`, `error`,
/// `exact`, `lower_edge`, and the attribute `files` (one run file per line).
pub fn write_spectrum(parent: &Group, r: &SpectrumRecord) -> hdf5::Result<()> {
    let g = parent.create_group("spectrum")?;
    let dims = r.momentum.first().map_or(0, Vec::len);
    let momentum =
        Array2::from_shape_fn((r.momentum.len(), dims), |(s, d)| r.momentum[s][d] as u64);
    write_2d(&g, "momentum", &momentum)?;
    write_1d(&g, "spin_inversion", &r.spin_inversion)?;
    write_1d(&g, "energy", &r.energy)?;
    write_1d(&g, "error", &r.error)?;
    write_1d(&g, "exact", &r.exact)?;
    write_1d(&g, "lower_edge", &r.lower_edge)?;
    write_str_attr(&g, "files", &r.files.join("\n"))?;
    write_str_attr(&g, "basis", "physical")?;
    Ok(())
}

/// A tomography fit: the state and the fit history.
#[derive(Clone, Debug)]
pub struct TomographyRecord {
    pub ansatz: AnsatzRecord,
    /// NaN where not computable (no exact normalization).
    pub nll: f64,
    pub fidelity: Option<f64>,
    pub kl: Option<f64>,
    /// The epoch whose parameters are stored, and why.
    pub kept_epoch: usize,
    pub kept_reason: String,
    pub history: HistoryRecord,
}

/// Writes a tomography fit: the state in the same `ansatz` layout as VMC runs and the fit
/// history and metrics under `tomography`.
pub fn write_tomography(root: &Group, r: &TomographyRecord) -> hdf5::Result<()> {
    let a = root.create_group("ansatz")?;
    write_str_attr(&a, "kind", &r.ansatz.kind)?;
    write_attr(&a, "alpha", r.ansatz.alpha as u64)?;
    write_attr(&a, "n_sites", r.ansatz.n_sites as u64)?;
    write_attr(&a, "n_hidden", r.ansatz.n_hidden as u64)?;
    write_1d(&a, "parameters", &r.ansatz.parameters)?;
    write_1d(&a, "marshall_sites", &r.ansatz.marshall_sites)?;
    let t = root.create_group("tomography")?;
    write_attr(&t, "nll", r.nll)?;
    write_attr(&t, "fidelity", r.fidelity.unwrap_or(f64::NAN))?;
    write_attr(&t, "kl", r.kl.unwrap_or(f64::NAN))?;
    write_attr(&t, "kept_epoch", r.kept_epoch as u64)?;
    write_str_attr(&t, "kept_reason", &r.kept_reason)?;
    write_history(&t, &r.history)
}
