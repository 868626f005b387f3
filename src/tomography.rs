//! Quantum-state tomography: fit the RBM to measured shots (Torlai et al., Nat. Phys. 14, 447
//! (2018); QuCumber's data formats).
//!
//! A shot is an outcome `s ∈ {0,1}^N` in a basis `b ∈ {X,Y,Z}^N`. Its probability is
//! `P_b(s) = |ψ_b(s)|² / Z`, `ψ_b(s) = Σ_σ Π_j U_{b_j}[s_j, σ_j] ψ(σ)`, `Z = Σ_σ |ψ(σ)|²`, with
//! `U_X = (1/√2)[[1,1],[1,−1]]`, `U_Y = (1/√2)[[1,−i],[1,i]]` and `U_Z = 1`; only the 2^|R|
//! configurations of the rotated sites R contribute. Training minimizes the negative
//! log-likelihood `NLL = −(1/N_d) Σ log P_b(s)` with the Wirtinger gradient
//!
//! `∂NLL/∂p̄ = −(1/N_d) Σ conj(D_b(s)) + conj(⟨O⟩_{|ψ|²})`,
//! `D_b(s) = ∂ log ψ_b(s)/∂p = Σ_σ c_σ ψ(σ) O(σ) / ψ_b(s)`,
//!
//! the normalization term by exact enumeration (Gray code, O(M) per state) for N ≤ 20 and by
//! persistent Metropolis chains beyond.

use crate::ansatz::{Ansatz, Rbm, RbmKind};
use crate::error::{Error, Result};
use crate::hilbert::{qubit_index, spin_from_outcome};
use num_complex::Complex64;
use std::path::Path;

const ZERO: Complex64 = Complex64::new(0.0, 0.0);

/// Shots: outcomes (0/1) and basis letters, row-major `shots × N`.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurements {
    pub n_sites: usize,
    pub outcomes: Vec<u8>,
    pub bases: Vec<u8>,
}

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
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|_| Error::input(path, "not a UTF-8 text file"))
}

/// Reads QuCumber-style text files: samples (one shot a row, N values 0/1 separated by spaces)
/// and optional bases (one shot a row, N letters X/Y/Z, row-aligned with the samples).
pub fn read_text_files(samples: &Path, bases: Option<&Path>) -> Result<Measurements> {
    let text = read_text(samples)?;
    let mut n_sites = 0;
    let mut outcomes = Vec::new();
    for (line_no, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let row: Vec<u8> = line
            .split_whitespace()
            .map(|v| match v {
                "0" => Ok(0),
                "1" => Ok(1),
                other => Err(Error::Input(format!(
                    "{}:{}: expected 0 or 1, got {other:?}",
                    samples.display(),
                    line_no + 1
                ))),
            })
            .collect::<Result<_>>()?;
        if n_sites == 0 {
            n_sites = row.len();
        } else if row.len() != n_sites {
            return Err(Error::Input(format!(
                "{}:{}: ragged row: {} values, expected {n_sites}",
                samples.display(),
                line_no + 1,
                row.len()
            )));
        }
        outcomes.extend(row);
    }
    if outcomes.is_empty() {
        return Err(Error::input(samples, "no shots in the samples file"));
    }
    let shots = outcomes.len() / n_sites;
    let bases = match bases {
        None => vec![b'Z'; outcomes.len()],
        Some(path) => {
            let text = read_text(path)?;
            let mut letters = Vec::new();
            let mut rows = 0;
            for (line_no, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let row: Vec<u8> = line.split_whitespace().flat_map(|t| t.bytes()).collect();
                if row.len() != n_sites {
                    return Err(Error::Input(format!(
                        "{}:{}: {} basis letters, expected {n_sites}",
                        path.display(),
                        line_no + 1,
                        row.len()
                    )));
                }
                if let Some(bad) = row.iter().find(|b| !matches!(b, b'X' | b'Y' | b'Z')) {
                    return Err(Error::Input(format!(
                        "{}:{}: bad basis letter {:?}; expected X, Y or Z",
                        path.display(),
                        line_no + 1,
                        *bad as char
                    )));
                }
                letters.extend(row);
                rows += 1;
            }
            if rows != shots {
                return Err(Error::Input(format!(
                    "{}: {rows} basis rows but {} has {shots} shots",
                    path.display(),
                    samples.display()
                )));
            }
            letters
        }
    };
    Ok(Measurements {
        n_sites,
        outcomes,
        bases,
    })
}

/// Reads `measurements/outcomes` (shots × N, 0/1) and `measurements/bases` (shots × N ASCII
/// letters; all Z when absent) from an HDF5 file.
pub fn read_hdf5(path: &Path) -> Result<Measurements> {
    let file = hdf5::File::open(path)
        .map_err(|e| Error::input(path, format!("cannot open HDF5 file: {e}")))?;
    let outcomes = file
        .dataset("measurements/outcomes")
        .and_then(|d| d.read_2d::<u8>())
        .map_err(|e| Error::input(path, format!("measurements/outcomes: {e}")))?;
    let (shots, n) = outcomes.dim();
    if shots == 0 || n == 0 {
        return Err(Error::input(path, "measurements/outcomes is empty"));
    }
    if outcomes.iter().any(|&v| v > 1) {
        return Err(Error::input(
            path,
            "measurements/outcomes: values must be 0 or 1",
        ));
    }
    let bases = match file.dataset("measurements/bases") {
        Err(_) => vec![b'Z'; shots * n],
        Ok(d) => {
            let b = d
                .read_2d::<u8>()
                .map_err(|e| Error::input(path, format!("measurements/bases: {e}")))?;
            if b.dim() != (shots, n) {
                return Err(Error::input(
                    path,
                    format!(
                        "measurements/bases has shape {:?}, outcomes {:?}",
                        b.dim(),
                        (shots, n)
                    ),
                ));
            }
            if b.iter().any(|v| !matches!(v, b'X' | b'Y' | b'Z')) {
                return Err(Error::input(
                    path,
                    "measurements/bases: letters must be X, Y or Z (ASCII codes)",
                ));
            }
            b.iter().copied().collect()
        }
    };
    Ok(Measurements {
        n_sites: n,
        outcomes: outcomes.iter().copied().collect(),
        bases,
    })
}

/// Reads a reference state: 2^N rows "Re Im", row i = Σ_j s_j 2^(N−1−j) (site 0 most
/// significant, s_j = 0 for Z = +1).
pub fn read_reference(path: &Path, n_sites: usize) -> Result<Vec<Complex64>> {
    let text = read_text(path)?;
    let mut amplitudes = Vec::new();
    for (line_no, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|t| t.parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                Error::Input(format!(
                    "{}:{}: expected two numbers \"Re Im\"",
                    path.display(),
                    line_no + 1
                ))
            })?;
        if v.len() != 2 || !v.iter().all(|x| x.is_finite()) {
            return Err(Error::Input(format!(
                "{}:{}: expected two finite numbers \"Re Im\"",
                path.display(),
                line_no + 1
            )));
        }
        amplitudes.push(Complex64::new(v[0], v[1]));
    }
    if amplitudes.len() != 1 << n_sites {
        return Err(Error::input(
            path,
            format!(
                "{} rows, expected 2^{n_sites} = {}",
                amplitudes.len(),
                1u64 << n_sites
            ),
        ));
    }
    Ok(amplitudes)
}

/// `U_b[s][k]`, k the computational index (0 = up).
fn rotation(basis: u8) -> [[Complex64; 2]; 2] {
    let h = std::f64::consts::FRAC_1_SQRT_2;
    let c = |re: f64, im: f64| Complex64::new(re * h, im * h);
    match basis {
        b'X' => [[c(1.0, 0.0), c(1.0, 0.0)], [c(1.0, 0.0), c(-1.0, 0.0)]],
        b'Y' => [[c(1.0, 0.0), c(0.0, -1.0)], [c(1.0, 0.0), c(0.0, 1.0)]],
        _ => [
            [Complex64::new(1.0, 0.0), ZERO],
            [ZERO, Complex64::new(1.0, 0.0)],
        ],
    }
}

/// Scratch for evaluating one shot without allocation.
pub struct ShotScratch {
    sigma: Vec<i8>,
    cache: crate::ansatz::RbmCache,
    o: Vec<Complex64>,
    rotated: Vec<usize>,
    flips: Vec<usize>,
    /// `c_σ ψ(σ)/ψ(σ0)` of each configuration of the rotated sites.
    terms: Vec<Complex64>,
}

impl ShotScratch {
    pub fn new(rbm: &Rbm) -> Self {
        ShotScratch {
            sigma: vec![1; rbm.n_sites()],
            cache: rbm.new_cache(),
            o: vec![ZERO; rbm.n_parameters()],
            rotated: Vec::new(),
            flips: Vec::new(),
            terms: Vec::new(),
        }
    }
}

/// `(log ψ_b(s), D_b(s))`: the rotated log-amplitude, and its log-derivatives added into `d`
/// (when given). Sums over the 2^|R| configurations of the rotated sites, with amplitudes
/// relative to the first one so nothing overflows.
pub fn rotated_log_amplitude(
    rbm: &Rbm,
    outcome: &[u8],
    basis: &[u8],
    scratch: &mut ShotScratch,
    d: Option<&mut [Complex64]>,
) -> Complex64 {
    let n = rbm.n_sites();
    scratch.rotated.clear();
    for j in 0..n {
        scratch.sigma[j] = spin_from_outcome(outcome[j]);
        if basis[j] != b'Z' {
            scratch.rotated.push(j);
            scratch.sigma[j] = 1;
        }
    }
    rbm.refresh(&scratch.sigma, &mut scratch.cache);
    let log0 = rbm.log_psi(&scratch.sigma, &scratch.cache);
    let r = scratch.rotated.len();
    // Terms c_σ ψ(σ)/ψ(σ0) for every configuration of the rotated sites.
    let mut total = ZERO;
    scratch.terms.clear();
    scratch.flips.clear();
    for config in 0usize..1 << r {
        let mut coefficient = Complex64::new(1.0, 0.0);
        for (k, &j) in scratch.rotated.iter().enumerate() {
            let idx = (config >> k) & 1;
            coefficient *= rotation(basis[j])[outcome[j] as usize][idx];
        }
        scratch.flips.clear();
        scratch.flips.extend(
            scratch
                .rotated
                .iter()
                .enumerate()
                .filter(|(k, _)| (config >> k) & 1 == 1)
                .map(|(_, &j)| j),
        );
        let t = coefficient * rbm.ratio(&scratch.sigma, &scratch.cache, &scratch.flips);
        scratch.terms.push(t);
        total += t;
    }
    if let Some(d) = d {
        for config in 0..scratch.terms.len() {
            let t = scratch.terms[config];
            for (k, &j) in scratch.rotated.iter().enumerate() {
                scratch.sigma[j] = if (config >> k) & 1 == 1 { -1 } else { 1 };
            }
            rbm.refresh(&scratch.sigma, &mut scratch.cache);
            rbm.log_derivatives(&scratch.sigma, &scratch.cache, &mut scratch.o);
            let w = t / total;
            for (di, oi) in d.iter_mut().zip(&scratch.o) {
                *di += w * oi;
            }
        }
    }
    log0 + total.ln()
}

/// `log Z = log Σ_σ |ψ(σ)|²` and `⟨O⟩_{|ψ|²}` by enumerating all 2^N states in Gray-code order
/// (one flip, O(M), per state).
pub fn exact_normalization(rbm: &Rbm, mut mean_o: Option<&mut [Complex64]>) -> f64 {
    let n = rbm.n_sites();
    let mut sigma = vec![1i8; n];
    let mut cache = rbm.new_cache();
    rbm.refresh(&sigma, &mut cache);
    let log0 = 2.0 * rbm.log_psi(&sigma, &cache).re;
    let mut o = vec![ZERO; rbm.n_parameters()];
    if let Some(m) = mean_o.as_deref_mut() {
        m.iter_mut().for_each(|x| *x = ZERO);
    }
    // Online log-sum-exp: z = Σ exp(l − max) and Σ exp(l − max) O, rescaled when max grows,
    // so memory stays O(P) for any N.
    let (mut max, mut z) = (0.0f64, 0.0f64);
    let mut log_rel = 0.0; // log |ψ(σ)|² − log0
    for k in 0usize..1 << n {
        if k > 0 {
            let bit = k.trailing_zeros() as usize;
            log_rel += 2.0 * rbm.log_ratio(&sigma, &cache, &[bit]).re;
            rbm.flip(&mut sigma, &mut cache, &[bit]);
        }
        if log_rel > max {
            let rescale = (max - log_rel).exp();
            z *= rescale;
            if let Some(m) = mean_o.as_deref_mut() {
                m.iter_mut().for_each(|x| *x *= rescale);
            }
            max = log_rel;
        }
        let w = (log_rel - max).exp();
        z += w;
        if let Some(m) = mean_o.as_deref_mut() {
            rbm.log_derivatives(&sigma, &cache, &mut o);
            m.iter_mut().zip(&o).for_each(|(s, x)| *s += w * x);
        }
    }
    if let Some(m) = mean_o {
        m.iter_mut().for_each(|x| *x /= z);
    }
    log0 + max + z.ln()
}

/// Normalized amplitudes of the RBM in the qubit ordering of reference files (N ≤ 20).
pub fn normalized_state(rbm: &Rbm) -> Vec<Complex64> {
    let n = rbm.n_sites();
    let mut sigma = vec![0i8; n];
    let mut cache = rbm.new_cache();
    let logs: Vec<(usize, Complex64)> = (0u64..1 << n)
        .map(|state| {
            crate::hilbert::spins_from_bits(state, &mut sigma);
            rbm.refresh(&sigma, &mut cache);
            (qubit_index(state, n), rbm.log_psi(&sigma, &cache))
        })
        .collect();
    let max = logs
        .iter()
        .map(|(_, l)| l.re)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut psi = vec![ZERO; 1 << n];
    for (i, l) in logs {
        psi[i] = (l - max).exp();
    }
    let norm = psi.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
    psi.iter_mut().for_each(|z| *z /= norm);
    psi
}

/// `|⟨a|b⟩|² / (‖a‖² ‖b‖²)`.
pub fn fidelity(a: &[Complex64], b: &[Complex64]) -> f64 {
    let overlap: Complex64 = a.iter().zip(b).map(|(x, y)| x.conj() * y).sum();
    let na: f64 = a.iter().map(|z| z.norm_sqr()).sum();
    let nb: f64 = b.iter().map(|z| z.norm_sqr()).sum();
    overlap.norm_sqr() / (na * nb)
}

/// Outcome probabilities of a state vector (qubit ordering) measured in `basis`.
pub fn basis_probabilities(psi: &[Complex64], basis: &[u8]) -> Vec<f64> {
    let n = basis.len();
    let mut v = psi.to_vec();
    for (j, &b) in basis.iter().enumerate() {
        if b == b'Z' {
            continue;
        }
        let u = rotation(b);
        let stride = 1 << (n - 1 - j);
        for i in 0..v.len() {
            if i & stride == 0 {
                let (x0, x1) = (v[i], v[i | stride]);
                v[i] = u[0][0] * x0 + u[0][1] * x1;
                v[i | stride] = u[1][0] * x0 + u[1][1] * x1;
            }
        }
    }
    let total: f64 = v.iter().map(|z| z.norm_sqr()).sum();
    v.iter().map(|z| z.norm_sqr() / total).collect()
}

/// Basis-averaged KL divergence `mean_b Σ_s P_ref,b(s) ln(P_ref,b(s)/P_b(s))` over the distinct
/// bases of the data.
pub fn kl_divergence(reference: &[Complex64], model: &[Complex64], bases: &[Vec<u8>]) -> f64 {
    let total: f64 = bases
        .iter()
        .map(|b| {
            let p = basis_probabilities(reference, b);
            let q = basis_probabilities(model, b);
            p.iter()
                .zip(&q)
                .filter(|(x, _)| **x > 0.0)
                .map(|(x, y)| x * (x / y.max(1e-300)).ln())
                .sum::<f64>()
        })
        .sum();
    total / bases.len().max(1) as f64
}

/// A dense RBM for tomography (real parameters when `positive`).
pub fn new_model(n_sites: usize, alpha: usize, positive: bool, seed: u64) -> Rbm {
    let mut rbm = Rbm::random(n_sites, RbmKind::Dense { alpha }, 0.05, seed);
    if positive {
        let p: Vec<Complex64> = rbm
            .parameters()
            .iter()
            .map(|z| Complex64::new(z.re, 0.0))
            .collect();
        rbm.set_parameters(&p);
    }
    rbm
}

/// Optimizer of the likelihood fit.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FitOptimizer {
    Adam,
    Sgd,
    /// Natural gradient: `δ = (S + ε I)^{−1} ∂NLL/∂p̄` with the quantum geometric tensor
    /// `S = Cov_{|ψ|²}(O)` by exact enumeration (N ≤ 14).
    Sr,
}

/// Settings of [`fit`].
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub optimizer: FitOptimizer,
    /// Keep the parameters real (a positive wavefunction; for Z-only data of stoquastic states).
    pub positive: bool,
    /// Fraction of shots held out for the validation NLL.
    pub validation_fraction: f64,
    /// Stop after this many epochs without a better validation NLL (and keep the best).
    pub patience: usize,
    pub seed: u64,
    /// Chains for the normalization gradient when N > 20.
    pub chains: usize,
    /// SR diagonal shift ε.
    pub diag_shift: f64,
}

/// Largest N for the exactly enumerated SR metric.
pub const SR_LIMIT: usize = 14;

/// `S = Σ_σ p_σ (O_σ − ⟨O⟩)†(O_σ − ⟨O⟩)` with `p_σ = |ψ(σ)|²/Z`, by enumeration.
pub fn exact_metric(rbm: &Rbm) -> ndarray::Array2<Complex64> {
    let n = rbm.n_sites();
    let p = rbm.n_parameters();
    let mut sigma = vec![1i8; n];
    let mut cache = rbm.new_cache();
    rbm.refresh(&sigma, &mut cache);
    let mut rows = ndarray::Array2::<Complex64>::zeros((1 << n, p));
    let mut log_w = vec![0.0; 1 << n];
    let mut o = vec![ZERO; p];
    for k in 0usize..1 << n {
        if k > 0 {
            let bit = k.trailing_zeros() as usize;
            log_w[k] = log_w[k - 1] + 2.0 * rbm.log_ratio(&sigma, &cache, &[bit]).re;
            rbm.flip(&mut sigma, &mut cache, &[bit]);
        }
        rbm.log_derivatives(&sigma, &cache, &mut o);
        rows.row_mut(k)
            .iter_mut()
            .zip(&o)
            .for_each(|(r, x)| *r = *x);
    }
    let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_w.iter().map(|l| (l - max).exp()).collect();
    let z: f64 = w.iter().sum();
    let mean: ndarray::Array1<Complex64> = rows
        .axis_iter(ndarray::Axis(1))
        .map(|col| col.iter().zip(&w).map(|(x, wi)| x * wi).sum::<Complex64>() / z)
        .collect();
    for (k, mut row) in rows.axis_iter_mut(ndarray::Axis(0)).enumerate() {
        let scale = (w[k] / z).sqrt();
        row.zip_mut_with(&mean, |x, m| *x = (*x - m) * scale);
    }
    let mut metric = ndarray::Array2::zeros((p, p));
    crate::linalg::matmul(
        metric.view_mut(),
        false,
        Complex64::new(1.0, 0.0),
        rows.view(),
        crate::linalg::Op::Adjoint,
        rows.view(),
        crate::linalg::Op::Plain,
    );
    metric
}

/// One epoch of the fit.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_nll: f64,
    pub validation_nll: f64,
    pub fidelity: Option<f64>,
    pub kl: Option<f64>,
    pub wall_time: f64,
}

/// Largest N for exact normalization and metrics.
pub const EXACT_LIMIT: usize = 20;

/// Negative log-likelihood of the shots `indices`.
pub fn nll(rbm: &Rbm, data: &Measurements, indices: &[usize], log_z: f64) -> f64 {
    use rayon::prelude::*;
    if indices.is_empty() {
        return f64::NAN;
    }
    let sum: f64 = indices
        .par_chunks(64)
        .map_init(
            || ShotScratch::new(rbm),
            |scratch, chunk| {
                chunk
                    .iter()
                    .map(|&k| {
                        2.0 * rotated_log_amplitude(
                            rbm,
                            data.outcome(k),
                            data.basis(k),
                            scratch,
                            None,
                        )
                        .re
                    })
                    .sum::<f64>()
            },
        )
        .collect::<Vec<f64>>()
        .into_iter()
        .sum();
    log_z - sum / indices.len() as f64
}

/// `∂NLL/∂p̄` over the shots `batch` (real part only when `positive`), and the NLL of the batch.
pub fn gradient(
    rbm: &Rbm,
    data: &Measurements,
    batch: &[usize],
    normalization: &mut Normalization,
    positive: bool,
) -> (Vec<Complex64>, f64) {
    use rayon::prelude::*;
    let p = rbm.n_parameters();
    let parts: Vec<(Vec<Complex64>, f64)> = batch
        .par_chunks(16)
        .map_init(
            || ShotScratch::new(rbm),
            |scratch, chunk| {
                let mut d = vec![ZERO; p];
                let mut log_sum = 0.0;
                for &k in chunk {
                    log_sum += 2.0
                        * rotated_log_amplitude(
                            rbm,
                            data.outcome(k),
                            data.basis(k),
                            scratch,
                            Some(&mut d),
                        )
                        .re;
                }
                (d, log_sum)
            },
        )
        .collect();
    let mut d_sum = vec![ZERO; p];
    let mut log_sum = 0.0;
    for (d, l) in parts {
        d_sum.iter_mut().zip(d).for_each(|(a, b)| *a += b);
        log_sum += l;
    }
    let mut mean_o = vec![ZERO; p];
    let log_z = normalization.evaluate(rbm, &mut mean_o);
    let nb = batch.len() as f64;
    let grad = d_sum
        .iter()
        .zip(&mean_o)
        .map(|(d, o)| {
            let g = -d.conj() / nb + o.conj();
            if positive {
                Complex64::new(g.re, 0.0)
            } else {
                g
            }
        })
        .collect();
    (grad, log_z - log_sum / nb)
}

/// The normalization term: exact for N ≤ [`EXACT_LIMIT`], persistent Metropolis chains beyond.
pub enum Normalization {
    Exact,
    Sampled(Box<crate::sampler::MetropolisSampler<crate::ansatz::RbmCache>>),
}

impl Normalization {
    pub fn new(rbm: &Rbm, chains: usize, seed: u64) -> Self {
        let n = rbm.n_sites();
        if n <= EXACT_LIMIT {
            return Normalization::Exact;
        }
        let settings = crate::sampler::SamplerSettings {
            moves: crate::sampler::Moves::Local,
            sweep: n,
            thermalization: 50,
            samples_per_chain: 8,
            refresh_every: 8,
            n_up: None,
        };
        Normalization::Sampled(Box::new(crate::sampler::MetropolisSampler::new(
            rbm, settings, seed, 0, chains,
        )))
    }

    /// `log Z` (NaN when sampled: only relative NLLs are then available) and `⟨O⟩_{|ψ|²}`.
    pub fn evaluate(&mut self, rbm: &Rbm, mean_o: &mut [Complex64]) -> f64 {
        match self {
            Normalization::Exact => exact_normalization(rbm, Some(mean_o)),
            Normalization::Sampled(sampler) => {
                let mut samples = sampler.new_sample_set(rbm);
                sampler.sample(rbm, &mut samples);
                let mut o = vec![ZERO; mean_o.len()];
                mean_o.iter_mut().for_each(|m| *m = ZERO);
                for s in 0..samples.len() {
                    rbm.log_derivatives(samples.configuration(s), &samples.caches[s], &mut o);
                    mean_o.iter_mut().zip(&o).for_each(|(m, x)| *m += x);
                }
                mean_o.iter_mut().for_each(|m| *m /= samples.len() as f64);
                f64::NAN
            }
        }
    }
}

/// Maximum-likelihood fit of `rbm` to `data`; calls `on_epoch` after every epoch and returns the
/// history. With a validation split the parameters of the best validation NLL are kept.
pub fn fit(
    rbm: &mut Rbm,
    data: &Measurements,
    reference: Option<&[Complex64]>,
    opts: &FitOptions,
    mut on_epoch: impl FnMut(&EpochRecord),
) -> Result<Vec<EpochRecord>> {
    use rand::{RngExt, SeedableRng};
    let start = std::time::Instant::now();
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(opts.seed);
    let mut order: Vec<usize> = (0..data.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let n_val = ((data.len() as f64) * opts.validation_fraction).round() as usize;
    let (validation, train) = order.split_at(n_val.min(data.len().saturating_sub(1)));
    let mut train = train.to_vec();
    let mut bases: Vec<Vec<u8>> = (0..data.len()).map(|k| data.basis(k).to_vec()).collect();
    bases.sort();
    bases.dedup();
    let exact = rbm.n_sites() <= EXACT_LIMIT;
    let mut normalization = Normalization::new(rbm, opts.chains, opts.seed ^ 0x5eed);
    let p = rbm.n_parameters();
    let (mut m, mut v) = (vec![ZERO; p], vec![0.0f64; p]);
    let mut step = 0i32;
    let mut history = Vec::new();
    let mut best: Option<(f64, Vec<Complex64>)> = None;
    let mut since_best = 0;
    for epoch in 0..opts.epochs {
        for i in (1..train.len()).rev() {
            train.swap(i, rng.random_range(0..=i));
        }
        let mut train_nll = 0.0;
        let mut batches = 0;
        for batch in train.chunks(opts.batch_size.max(1)) {
            let (g, batch_nll) = gradient(rbm, data, batch, &mut normalization, opts.positive);
            if !g.iter().all(|z| z.re.is_finite() && z.im.is_finite()) {
                return Err(Error::Numerical(format!(
                    "epoch {epoch}: the likelihood gradient is not finite"
                )));
            }
            train_nll += batch_nll;
            batches += 1;
            step += 1;
            let update: Vec<Complex64> = match opts.optimizer {
                FitOptimizer::Sgd => g.iter().map(|x| x * opts.learning_rate).collect(),
                FitOptimizer::Sr => {
                    let mut s = exact_metric(rbm);
                    for k in 0..p {
                        s[[k, k]] += opts.diag_shift;
                    }
                    let (delta, _) =
                        crate::optimizer::solve_hermitian(&s, &ndarray::Array1::from(g.clone()))?;
                    delta.iter().map(|x| if opts.positive { Complex64::new(x.re, 0.0) } else { *x } * opts.learning_rate).collect()
                }
                FitOptimizer::Adam => {
                    let (b1, b2) = (0.9, 0.999);
                    g.iter()
                        .enumerate()
                        .map(|(k, x)| {
                            m[k] = m[k] * b1 + x * (1.0 - b1);
                            v[k] = v[k] * b2 + x.norm_sqr() * (1.0 - b2);
                            let mh = m[k] / (1.0 - f64::powi(b1, step));
                            let vh = v[k] / (1.0 - f64::powi(b2, step));
                            mh * opts.learning_rate / (vh.sqrt() + 1e-8)
                        })
                        .collect()
                }
            };
            let params: Vec<Complex64> = rbm
                .parameters()
                .iter()
                .zip(&update)
                .map(|(a, u)| a - u)
                .collect();
            rbm.set_parameters(&params);
        }
        let log_z = if exact {
            exact_normalization(rbm, None)
        } else {
            f64::NAN
        };
        let validation_nll = if validation.is_empty() {
            f64::NAN
        } else {
            nll(rbm, data, validation, log_z)
        };
        let (fidelity, kl) = match (reference, exact) {
            (Some(r), true) => {
                let psi = normalized_state(rbm);
                (
                    Some(self::fidelity(r, &psi)),
                    Some(kl_divergence(r, &psi, &bases)),
                )
            }
            _ => (None, None),
        };
        let record = EpochRecord {
            epoch,
            train_nll: train_nll / batches.max(1) as f64,
            validation_nll,
            fidelity,
            kl,
            wall_time: start.elapsed().as_secs_f64(),
        };
        on_epoch(&record);
        history.push(record);
        if validation_nll.is_finite() {
            if best.as_ref().is_none_or(|(b, _)| validation_nll < *b) {
                best = Some((validation_nll, rbm.parameters().to_vec()));
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= opts.patience {
                    break;
                }
            }
        }
    }
    if let Some((_, params)) = best {
        rbm.set_parameters(&params);
    }
    Ok(history)
}
