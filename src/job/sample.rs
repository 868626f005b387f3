//! `nqs sample`: synthetic shots of a stored state (ED eigenvector or RBM), in the physical
//! basis, written as QuCumber text files, an HDF5 file and the exact state.

use super::physical_state;
use crate::error::{Error, Result};
use crate::io::{self, NewFile, RootInfo};
use crate::tomography::{data, shots};
use ndarray::Array2;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Largest number of shots of one call.
pub const MAX_SHOTS: usize = 100_000_000;

/// Where the bases of the shots come from.
#[derive(Clone, Debug)]
pub enum Bases {
    /// One basis for every shot (`--basis ZZXY`; all Z when None), `shots` times.
    Fixed { basis: Option<String>, shots: usize },
    /// A bases file (one row per shot).
    File(PathBuf),
}

/// Choices of `nqs sample`.
#[derive(Clone, Debug)]
pub struct SampleJob {
    pub bases: Bases,
    pub seed: u64,
    pub output: PathBuf,
    pub force: bool,
}

/// What was written.
pub struct SampleReport {
    pub shots: usize,
    pub n_sites: usize,
    pub output: PathBuf,
}

/// The files of an output directory that `nqs sample` writes.
pub const FILES: [&str; 4] = ["samples.txt", "bases.txt", "measurements.h5", "state.txt"];

fn prepare_directory(dir: &Path, force: bool) -> Result<()> {
    if dir.is_file() {
        return Err(Error::output(dir, "is a file; --output names a directory"));
    }
    if !force {
        if let Some(existing) = FILES.iter().find(|f| dir.join(f).exists()) {
            return Err(Error::output(
                dir,
                format!("already holds {existing}; choose another --output or pass --force to replace the data set"),
            ));
        }
    }
    io::check_writable_dir(dir)
}

/// Samples shots of the state in `state` and writes them to the output directory.
/// Rows of `n` values, space-separated: outcome digits, or basis letters.
fn rows(values: &[u8], n: usize, letters: bool) -> String {
    let mut text = String::with_capacity(values.len() * 2);
    for row in values.chunks(n) {
        for (k, v) in row.iter().enumerate() {
            if k > 0 {
                text.push(' ');
            }
            text.push(if letters {
                *v as char
            } else {
                char::from(b'0' + v)
            });
        }
        text.push('\n');
    }
    text
}

/// samples.txt, bases.txt (QuCumber's layout) and state.txt (one amplitude `re im` a line).
fn write_text_files(
    dir: &Path,
    n: usize,
    data: &data::Measurements,
    psi: &[num_complex::Complex64],
) -> Result<()> {
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, "cannot write", e))
    };
    write("samples.txt", rows(&data.outcomes, n, false))?;
    write("bases.txt", rows(&data.bases, n, true))?;
    let mut state_text = String::with_capacity(psi.len() * 50);
    for z in psi {
        let _ = writeln!(state_text, "{:.17e} {:.17e}", z.re, z.im);
    }
    write("state.txt", state_text)
}

pub fn run(state: &Path, job: &SampleJob) -> Result<SampleReport> {
    prepare_directory(&job.output, job.force)?;
    let _lock = io::OutputLock::acquire(&job.output.join("measurements.h5"))?;
    let psi = physical_state(state)?;
    let n = psi.len().trailing_zeros() as usize;
    let bases: Vec<Vec<u8>> = match &job.bases {
        Bases::File(path) => data::read_bases(path, n)?,
        Bases::Fixed { basis, shots } => {
            if *shots == 0 || *shots > MAX_SHOTS {
                return Err(Error::usage(
                    "--shots",
                    format!("expected 1..={MAX_SHOTS}, got {shots}"),
                ));
            }
            let all_z = "Z".repeat(n);
            let row = data::parse_basis_row(basis.as_deref().unwrap_or(&all_z), n)
                .map_err(|e| Error::usage("--basis", e))?;
            vec![row; *shots]
        }
    };
    // Text and HDF5 copies of outcomes and bases: about 6 bytes per site and shot.
    let bytes = bases.len() as u64 * n as u64 * 6;
    let available = crate::exact::available_memory() / 2;
    if bytes > available {
        return Err(Error::Resources(format!(
            "{} shots × {n} sites need about {:.1} GiB, more than the {:.1} GiB available",
            bases.len(),
            bytes as f64 / (1u64 << 30) as f64,
            available as f64 / (1u64 << 30) as f64
        )));
    }
    let data = shots::sample_shots(&psi, &bases, job.seed);
    write_text_files(&job.output, n, &data, &psi)?;
    let root = RootInfo {
        command: "sample".into(),
        seed: job.seed,
        ranks: 1,
        threads: 1,
        start_time: io::utc_now(),
        ..RootInfo::default()
    };
    let h5 = job.output.join("measurements.h5");
    let file = NewFile::create(&h5, &root)?;
    let shots = data.len();
    file.write("cannot write the shots", |f| {
        let g = f.create_group("measurements")?;
        io::write_2d(
            &g,
            "outcomes",
            &Array2::from_shape_vec((shots, n), data.outcomes.clone()).expect("shots × sites"),
        )?;
        io::write_2d(
            &g,
            "bases",
            &Array2::from_shape_vec((shots, n), data.bases.clone()).expect("shots × sites"),
        )?;
        io::write_str_attr(&g, "state", &state.display().to_string())?;
        io::write_str_attr(&g, "basis", "physical")
    })?;
    file.commit()?;
    Ok(SampleReport {
        shots,
        n_sites: n,
        output: job.output.clone(),
    })
}
