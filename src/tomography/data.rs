//! Measurement data: QuCumber-style text files and the HDF5 layout, read strictly.
//!
//! A shot is an outcome `s ∈ {0,1}^N` (0 = Z eigenvalue +1) in a basis `b ∈ {X,Y,Z}^N`. Text:
//! samples one shot a row (`0 1 1 0`), bases one row of letters (`X Z Z Y` or `XZZY`). HDF5:
//! `measurements/outcomes` (shots × N integers 0/1) and `measurements/bases` (shots × N ASCII
//! codes or one-character strings). Anything else — fractional or negative outcomes, a group
//! where a dataset belongs, ragged rows — is an error naming the file and line.

use crate::error::{shorten, Error, Result};
use hdf5::types::TypeDescriptor;
use num_complex::Complex64;
use std::path::Path;

/// Shots: outcomes (0/1) and basis letters, row-major `shots × N`.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurements {
    pub n_sites: usize,
    pub outcomes: Vec<u8>,
    pub bases: Vec<u8>,
}

/// Most sites of one shot measured in X or Y: the rotated amplitude sums `2^r` terms.
pub const MAX_ROTATED: usize = 20;

impl Measurements {
    pub fn len(&self) -> usize {
        self.outcomes.len() / self.n_sites.max(1)
    }
    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }
    pub fn outcome(&self, k: usize) -> &[u8] {
        &self.outcomes[k * self.n_sites..(k + 1) * self.n_sites]
    }
    pub fn basis(&self, k: usize) -> &[u8] {
        &self.bases[k * self.n_sites..(k + 1) * self.n_sites]
    }
    /// True when every shot is in the Z basis.
    pub fn z_only(&self) -> bool {
        self.bases.iter().all(|&b| b == b'Z')
    }
    /// The distinct bases of the data, sorted.
    pub fn distinct_bases(&self) -> Vec<Vec<u8>> {
        let mut bases: Vec<Vec<u8>> = (0..self.len()).map(|k| self.basis(k).to_vec()).collect();
        bases.sort();
        bases.dedup();
        bases
    }

    /// Refuses shots whose rotated amplitude cannot be computed (more than [`MAX_ROTATED`] sites
    /// in X or Y).
    pub fn check_computable(&self, source: &Path) -> Result<()> {
        for k in 0..self.len() {
            let r = self.basis(k).iter().filter(|&&b| b != b'Z').count();
            if r > MAX_ROTATED {
                return Err(Error::file(
                    source,
                    format!("shot {} is measured in X/Y on {r} sites; its amplitude sums 2^{r} terms, at most {MAX_ROTATED} rotated sites per shot are supported", k + 1),
                ));
            }
        }
        Ok(())
    }
}

/// Parses one basis row: letters X, Y, Z, optionally separated by white space; exactly `n`.
pub fn parse_basis_row(text: &str, n: usize) -> std::result::Result<Vec<u8>, String> {
    let row: Vec<u8> = text.split_whitespace().flat_map(|t| t.bytes()).collect();
    if let Some(bad) = row.iter().find(|b| !matches!(b, b'X' | b'Y' | b'Z')) {
        return Err(format!(
            "bad basis letter {:?}; expected X, Y or Z",
            *bad as char
        ));
    }
    if row.len() != n {
        return Err(format!("{} basis letters, expected {n}", row.len()));
    }
    Ok(row)
}

fn read_text(path: &Path) -> Result<String> {
    if path.is_dir() {
        return Err(Error::file(path, "is a directory, expected a text file"));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|_| Error::file(path, "not a UTF-8 text file"))
}

/// Non-empty lines with their 1-based numbers.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l))
}

/// Reads a bases file with `n` letters per row.
pub fn read_bases(path: &Path, n: usize) -> Result<Vec<Vec<u8>>> {
    let text = read_text(path)?;
    let rows: Vec<Vec<u8>> = lines(&text)
        .map(|(line, l)| {
            parse_basis_row(l, n)
                .map_err(|e| Error::Input(format!("{}:{line}: {e}", path.display())))
        })
        .collect::<Result<_>>()?;
    if rows.is_empty() {
        return Err(Error::file(path, "no bases in the file"));
    }
    Ok(rows)
}

/// Reads QuCumber-style text files: samples (one shot a row, N values 0/1 separated by spaces)
/// and optional bases (one shot a row, row-aligned with the samples; all Z when absent).
pub fn read_text_files(samples: &Path, bases: Option<&Path>) -> Result<Measurements> {
    let text = read_text(samples)?;
    let mut n_sites = 0;
    let mut outcomes = Vec::new();
    for (line, l) in lines(&text) {
        let row: Vec<u8> = l
            .split_whitespace()
            .map(|v| match v {
                "0" => Ok(0),
                "1" => Ok(1),
                other => Err(Error::Input(format!(
                    "{}:{line}: expected 0 or 1, got \"{}\"",
                    samples.display(),
                    shorten(other)
                ))),
            })
            .collect::<Result<_>>()?;
        if n_sites == 0 {
            n_sites = row.len();
        } else if row.len() != n_sites {
            return Err(Error::Input(format!(
                "{}:{line}: ragged row: {} values, expected {n_sites}",
                samples.display(),
                row.len()
            )));
        }
        outcomes.extend(row);
    }
    if outcomes.is_empty() {
        return Err(Error::file(samples, "no shots in the samples file"));
    }
    let shots = outcomes.len() / n_sites;
    let bases = match bases {
        None => vec![b'Z'; outcomes.len()],
        Some(path) => {
            let rows = read_bases(path, n_sites)?;
            if rows.len() != shots {
                return Err(Error::file(
                    path,
                    format!(
                        "{} basis rows but {} has {shots} shots",
                        rows.len(),
                        samples.display()
                    ),
                ));
            }
            rows.concat()
        }
    };
    Ok(Measurements {
        n_sites,
        outcomes,
        bases,
    })
}

fn is_integer(descriptor: &TypeDescriptor) -> bool {
    matches!(
        descriptor,
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_)
    )
}

/// Reads `measurements/outcomes` (shots × N integers 0/1) and `measurements/bases` (shots × N
/// ASCII codes or one-character strings; all Z when absent) from an HDF5 file.
pub fn read_hdf5(path: &Path) -> Result<Measurements> {
    crate::io::probe::check(path)?;
    let file =
        hdf5::File::open(path).map_err(|e| Error::bad_hdf5(path, "cannot open HDF5 file", e))?;
    let group = file
        .group("measurements")
        .map_err(|e| Error::bad_hdf5(path, "no group `measurements`", e))?;
    let bad = |what: &str| Error::file(path, format!("measurements/{what}"));
    let outcomes = group
        .dataset("outcomes")
        .map_err(|e| Error::bad_hdf5(path, "measurements/outcomes must be a dataset", e))?;
    let descriptor = outcomes
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| Error::bad_hdf5(path, "measurements/outcomes: unreadable type", e))?;
    if !is_integer(&descriptor) || outcomes.ndim() != 2 {
        return Err(bad(&format!(
            "outcomes: expected a 2-D integer dataset of 0/1 (shots × sites), got {} dimensions of {descriptor:?}",
            outcomes.ndim()
        )));
    }
    let (shots, n) = (outcomes.shape()[0], outcomes.shape()[1]);
    if shots == 0 || n == 0 {
        return Err(bad("outcomes is empty"));
    }
    // Outcomes and bases take a byte each per site and shot; the header alone declares the size.
    let bytes = 2 * shots as u128 * n as u128;
    let available = crate::exact::available_memory();
    if shots > crate::job::sample::MAX_SHOTS || bytes > u128::from(available / 2) {
        return Err(bad(&format!(
            "outcomes: {shots} shots × {n} sites is too large (at most {} shots, and {:.1} GB for outcomes and bases against {:.1} GB available)",
            crate::job::sample::MAX_SHOTS,
            bytes as f64 / 1e9,
            available as f64 / 1e9
        )));
    }
    // i8 keeps every value outside 0/1 outside it (HDF5 clips out-of-range values to ±127/−128).
    let values = outcomes
        .read_2d::<i8>()
        .map_err(|e| Error::bad_hdf5(path, "measurements/outcomes", e))?;
    if let Some(v) = values.iter().find(|&&v| v != 0 && v != 1) {
        let clipped = if *v == i8::MAX || *v == i8::MIN {
            " or beyond (read as i8)"
        } else {
            ""
        };
        return Err(bad(&format!(
            "outcomes: values must be 0 or 1, found {v}{clipped}"
        )));
    }
    let bases = if group.link_exists("bases") {
        let ds = group
            .dataset("bases")
            .map_err(|_| bad("bases must be a dataset (shots × sites letters), not a group"))?;
        if ds.shape() != [shots, n] {
            return Err(bad(&format!(
                "bases has shape {:?}, outcomes {:?}",
                ds.shape(),
                (shots, n)
            )));
        }
        let descriptor = ds
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|e| Error::bad_hdf5(path, "measurements/bases: unreadable type", e))?;
        let letters: Vec<u8> = match descriptor {
            // ASCII codes 88–90 fit i8; HDF5 clips anything outside its range to ±127/−128.
            d if is_integer(&d) => ds
                .read_2d::<i8>()
                .map_err(|e| Error::bad_hdf5(path, "measurements/bases", e))?
                .iter()
                .map(|&v| u8::try_from(v).unwrap_or(0))
                .collect(),
            TypeDescriptor::FixedAscii(1) | TypeDescriptor::FixedUnicode(1) => ds
                .read_2d::<hdf5::types::FixedAscii<1>>()
                .map_err(|e| Error::bad_hdf5(path, "measurements/bases", e))?
                .iter()
                .map(|s| s.as_bytes().first().copied().unwrap_or(0))
                .collect(),
            other => {
                return Err(bad(&format!(
                    "bases: expected ASCII codes or one-letter strings, got {other:?}"
                )))
            }
        };
        if letters.iter().any(|v| !matches!(v, b'X' | b'Y' | b'Z')) {
            return Err(bad("bases: letters must be X, Y or Z"));
        }
        letters
    } else {
        vec![b'Z'; shots * n]
    };
    Ok(Measurements {
        n_sites: n,
        outcomes: values.iter().map(|&v| v as u8).collect(),
        bases,
    })
}

/// Reads a reference state: 2^N rows "Re Im", row i = Σ_j s_j 2^(N−1−j) (site 0 most
/// significant, s_j = 0 for Z = +1). Returned normalized; a zero vector is an error. Scaled
/// first by its largest entry, so 1e±300 amplitudes normalize without over- or underflow.
pub fn read_reference(path: &Path, n_sites: usize) -> Result<Vec<Complex64>> {
    let text = read_text(path)?;
    let mut amplitudes = Vec::new();
    for (line, l) in lines(&text) {
        let v: Vec<f64> = l
            .split_whitespace()
            .map(|t| t.parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                Error::Input(format!(
                    "{}:{line}: expected two numbers \"Re Im\"",
                    path.display()
                ))
            })?;
        if v.len() != 2 || !v.iter().all(|x| x.is_finite()) {
            return Err(Error::Input(format!(
                "{}:{line}: expected two finite numbers \"Re Im\"",
                path.display()
            )));
        }
        amplitudes.push(Complex64::new(v[0], v[1]));
    }
    if amplitudes.len() != 1 << n_sites {
        return Err(Error::file(
            path,
            format!(
                "{} rows, expected 2^{n_sites} = {}",
                amplitudes.len(),
                1u64 << n_sites
            ),
        ));
    }
    normalize(&mut amplitudes).map_err(|e| Error::file(path, e))?;
    Ok(amplitudes)
}

/// Scales a vector to unit norm (first by its largest entry); an error for the zero vector.
pub fn normalize(v: &mut [Complex64]) -> std::result::Result<(), String> {
    let largest = v
        .iter()
        .map(|z| z.re.abs().max(z.im.abs()))
        .fold(0.0, f64::max);
    if largest == 0.0 || !largest.is_finite() {
        return Err("the state has zero (or non-finite) norm".into());
    }
    v.iter_mut().for_each(|z| *z /= largest);
    let norm = v.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
    v.iter_mut().for_each(|z| *z /= norm);
    Ok(())
}
