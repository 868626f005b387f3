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
//! persistent Metropolis chains beyond (then `log Z`, hence the NLL, is not available, and the
//! fit runs all epochs).
//!
//! **Which epoch is kept.** With a validation split, the parameters of the last epoch are kept
//! unless the epoch with the lowest validation NLL is better than the last one by more than
//! two standard errors of the paired per-shot difference (overfitting); validation noise alone
//! never selects an earlier, worse state. The kept epoch and the reason are reported and stored.

pub mod data;
pub mod metrics;
pub mod shots;

pub use data::{Measurements, MAX_ROTATED};

use crate::ansatz::{Ansatz, Rbm, RbmKind};
use crate::error::{check_count, check_range, display_number, Error, Invalid, Result};
use crate::hilbert::spin_from_outcome;
use crate::optimizer::{Adam, AdamMoments};
use num_complex::Complex64;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

const ZERO: Complex64 = Complex64::new(0.0, 0.0);

/// Largest N for exact normalization, fidelity and KL divergence.
pub const EXACT_LIMIT: usize = 20;
/// Largest N for the exactly enumerated SR metric.
pub const SR_LIMIT: usize = 14;

/// Optimizer of the likelihood fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitOptimizer {
    Adam,
    Sgd,
    /// Natural gradient: `δ = (S + ε I)^{−1} ∂NLL/∂p̄` with the quantum geometric tensor
    /// `S = Cov_{|ψ|²}(O)` by exact enumeration (N ≤ 14).
    Sr,
}

/// The options of `nqs tomo`, from the command line or a `[tomography]` file (one struct:
/// the command line's values are laid over the file's, then the defaults).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TomoOptions {
    /// Shots: text (one shot a row, N values 0/1) or HDF5 (`measurements/…`).
    pub samples: Option<PathBuf>,
    /// Bases of text shots (one row of N letters X/Y/Z per shot); all Z when absent.
    pub bases: Option<PathBuf>,
    /// Reference state (2^N rows "Re Im") for fidelity and KL divergence.
    pub reference: Option<PathBuf>,
    #[serde(default = "defaults::alpha")]
    pub alpha: usize,
    #[serde(default = "defaults::epochs")]
    pub epochs: usize,
    #[serde(default = "defaults::batch_size")]
    pub batch_size: usize,
    #[serde(default = "defaults::learning_rate")]
    pub learning_rate: f64,
    #[serde(default = "defaults::optimizer")]
    pub optimizer: FitOptimizer,
    /// Diagonal shift of the SR metric.
    #[serde(default = "defaults::diag_shift")]
    pub diag_shift: f64,
    /// Fit a complex RBM even to Z-only data (default: a positive real RBM for Z-only data).
    #[serde(default)]
    pub complex: bool,
    /// Fraction of shots held out for the validation NLL.
    #[serde(default = "defaults::validation")]
    pub validation: f64,
    /// Epochs without a better validation NLL before stopping.
    #[serde(default = "defaults::patience")]
    pub patience: usize,
    #[serde(default = "defaults::seed")]
    pub seed: u64,
    #[serde(default = "defaults::output")]
    pub output: PathBuf,
    /// Chains of the sampled normalization (N > 20).
    #[serde(default = "defaults::chains")]
    pub chains: usize,
}

mod defaults {
    pub fn alpha() -> usize {
        1
    }
    pub fn epochs() -> usize {
        200
    }
    pub fn batch_size() -> usize {
        100
    }
    pub fn learning_rate() -> f64 {
        0.003
    }
    pub fn optimizer() -> super::FitOptimizer {
        super::FitOptimizer::Adam
    }
    pub fn diag_shift() -> f64 {
        0.01
    }
    pub fn validation() -> f64 {
        0.1
    }
    pub fn patience() -> usize {
        40
    }
    pub fn seed() -> u64 {
        1234
    }
    pub fn output() -> std::path::PathBuf {
        "runs/tomography.h5".into()
    }
    pub fn chains() -> usize {
        16
    }
}

impl Default for TomoOptions {
    fn default() -> Self {
        toml::from_str("").expect("every option has a default")
    }
}

impl TomoOptions {
    /// Checks every value's range (keys are the option names, as in the `[tomography]` file).
    pub fn validate(&self) -> std::result::Result<(), Invalid> {
        if self.samples.is_none() {
            return Err(Invalid::new(
                "samples",
                "missing: give the shots (--samples FILE)",
            ));
        }
        let paths = [
            ("samples", &self.samples),
            ("bases", &self.bases),
            ("reference", &self.reference),
        ];
        for (key, path) in paths {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(Invalid::new(key, "expected a file name, got an empty one"));
            }
        }
        if self.output.as_os_str().is_empty() {
            return Err(Invalid::new(
                "output",
                "expected a file name, got an empty one",
            ));
        }
        check_count("alpha", self.alpha, 1, 64)?;
        check_count("epochs", self.epochs, 1, 1_000_000)?;
        check_count("batch_size", self.batch_size, 1, 10_000_000)?;
        if !(self.learning_rate > 0.0 && self.learning_rate <= 10.0) {
            return Err(Invalid::new(
                "learning_rate",
                format!(
                    "expected a number in (0, 10], got {}",
                    display_number(self.learning_rate)
                ),
            ));
        }
        check_range("diag_shift", self.diag_shift, 0.0, 1e3)?;
        if !(self.validation.is_finite() && (0.0..0.9).contains(&self.validation)) {
            return Err(Invalid::new(
                "validation",
                format!(
                    "expected a fraction in [0, 0.9), got {}",
                    display_number(self.validation)
                ),
            ));
        }
        check_count("patience", self.patience, 1, 1_000_000)?;
        check_count("chains", self.chains, 1, 4096)?;
        Ok(())
    }
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

/// `U_b[s][k]`, k the computational index (0 = up).
pub(crate) fn rotation(basis: u8) -> [[Complex64; 2]; 2] {
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

/// `log Z = log Σ_σ |ψ(σ)|²` and `⟨O⟩_{|ψ|²}` by the Gray-code walk, with an online
/// log-sum-exp so memory stays O(P) for any N.
pub fn exact_normalization(rbm: &Rbm, mut mean_o: Option<&mut [Complex64]>) -> f64 {
    let mut o = vec![ZERO; rbm.n_parameters()];
    if let Some(m) = mean_o.as_deref_mut() {
        m.iter_mut().for_each(|x| *x = ZERO);
    }
    let (mut max, mut z) = (0.0f64, 0.0f64);
    let log0 = metrics::gray_walk(rbm, |sigma, cache, log_rel| {
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
            rbm.log_derivatives(sigma, cache, &mut o);
            m.iter_mut().zip(&o).for_each(|(s, x)| *s += w * x);
        }
    });
    if let Some(m) = mean_o {
        m.iter_mut().for_each(|x| *x /= z);
    }
    log0 + max + z.ln()
}

/// `S = Σ_σ p_σ (O_σ − ⟨O⟩)†(O_σ − ⟨O⟩)` with `p_σ = |ψ(σ)|²/Z`, by enumeration (N ≤ 14).
pub fn exact_metric(rbm: &Rbm) -> ndarray::Array2<Complex64> {
    let n = rbm.n_sites();
    let p = rbm.n_parameters();
    let mut rows = ndarray::Array2::<Complex64>::zeros((1 << n, p));
    let mut log_w = Vec::with_capacity(1 << n);
    let mut o = vec![ZERO; p];
    metrics::gray_walk(rbm, |sigma, cache, log_rel| {
        rbm.log_derivatives(sigma, cache, &mut o);
        rows.row_mut(log_w.len())
            .iter_mut()
            .zip(&o)
            .for_each(|(r, x)| *r = *x);
        log_w.push(log_rel);
    });
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

/// `−log P_b(s)` of each shot in `indices` (`log_z` NaN gives NaN).
pub fn shot_nll(rbm: &Rbm, data: &Measurements, indices: &[usize], log_z: f64) -> Vec<f64> {
    use rayon::prelude::*;
    indices
        .par_chunks(64)
        .map_init(
            || ShotScratch::new(rbm),
            |scratch, chunk| {
                chunk
                    .iter()
                    .map(|&k| {
                        log_z
                            - 2.0
                                * rotated_log_amplitude(
                                    rbm,
                                    data.outcome(k),
                                    data.basis(k),
                                    scratch,
                                    None,
                                )
                                .re
                    })
                    .collect::<Vec<f64>>()
            },
        )
        .collect::<Vec<Vec<f64>>>()
        .concat()
}

/// Mean negative log-likelihood of the shots `indices` (NaN without shots or `log Z`).
pub fn nll(rbm: &Rbm, data: &Measurements, indices: &[usize], log_z: f64) -> f64 {
    let values = shot_nll(rbm, data, indices, log_z);
    values.iter().sum::<f64>() / values.len() as f64
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
            rule: std::sync::Arc::new(crate::sampler::LocalFlip),
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

/// One epoch of the fit (NLLs NaN where not computable).
#[derive(Clone, Debug, Serialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_nll: f64,
    pub validation_nll: f64,
    /// Standard error of the validation NLL (over the held-out shots).
    pub validation_error: f64,
    pub fidelity: Option<f64>,
    pub kl: Option<f64>,
    pub wall_time: f64,
}

impl EpochRecord {
    /// Column names of the stored history.
    pub const COLUMNS: [&'static str; 7] = [
        "epoch",
        "train_nll",
        "validation_nll",
        "validation_error",
        "fidelity",
        "kl",
        "wall_time",
    ];

    pub fn values(&self) -> Vec<f64> {
        vec![
            self.epoch as f64,
            self.train_nll,
            self.validation_nll,
            self.validation_error,
            self.fidelity.unwrap_or(f64::NAN),
            self.kl.unwrap_or(f64::NAN),
            self.wall_time,
        ]
    }
}

/// What [`fit`] did: every epoch, and which epoch's parameters it kept, and why.
#[derive(Clone, Debug)]
pub struct FitReport {
    pub history: Vec<EpochRecord>,
    pub kept_epoch: usize,
    pub kept_reason: String,
}

/// Settings of [`fit`] derived from the options and the data.
#[derive(Clone, Debug)]
pub struct FitSettings {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub optimizer: FitOptimizer,
    /// Keep the parameters real (a positive wavefunction, for Z-only data).
    pub positive: bool,
    pub validation_fraction: f64,
    pub patience: usize,
    pub seed: u64,
    pub chains: usize,
    pub diag_shift: f64,
}

impl FitSettings {
    pub fn new(options: &TomoOptions, positive: bool) -> Self {
        FitSettings {
            epochs: options.epochs,
            batch_size: options.batch_size,
            learning_rate: options.learning_rate,
            optimizer: options.optimizer,
            positive,
            validation_fraction: options.validation,
            patience: options.patience,
            seed: options.seed,
            chains: options.chains,
            diag_shift: options.diag_shift,
        }
    }
}

/// Mean and standard error of the paired difference `a_i − b_i`.
fn paired_difference(a: &[f64], b: &[f64]) -> (f64, f64) {
    let n = a.len() as f64;
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

/// The optimizer of the fit and its state.
struct Trainer<'a> {
    settings: &'a FitSettings,
    normalization: Normalization,
    adam: Adam,
    moments: AdamMoments,
    step: usize,
}

impl Trainer<'_> {
    /// One update from the shots `batch`; returns the batch's NLL.
    fn update(&mut self, rbm: &mut Rbm, data: &Measurements, batch: &[usize]) -> Result<f64> {
        let s = self.settings;
        let (g, batch_nll) = gradient(rbm, data, batch, &mut self.normalization, s.positive);
        if !g.iter().all(|z| z.re.is_finite() && z.im.is_finite()) {
            return Err(Error::Numerical(
                "the likelihood gradient is not finite (try a smaller --learning-rate)".into(),
            ));
        }
        self.step += 1;
        let direction: Vec<Complex64> = match s.optimizer {
            FitOptimizer::Sgd => g,
            FitOptimizer::Adam => self.adam.direction(&mut self.moments, self.step, &g),
            FitOptimizer::Sr => {
                let mut metric = exact_metric(rbm);
                metric
                    .diag_mut()
                    .iter_mut()
                    .for_each(|d| *d += s.diag_shift);
                let (delta, _) = crate::linalg::solve_psd(metric.view(), &g)?;
                let real = |x: Complex64| {
                    if s.positive {
                        Complex64::new(x.re, 0.0)
                    } else {
                        x
                    }
                };
                delta.into_iter().map(real).collect()
            }
        };
        let params: Vec<Complex64> = rbm
            .parameters()
            .iter()
            .zip(&direction)
            .map(|(a, u)| a - u * s.learning_rate)
            .collect();
        rbm.set_parameters(&params);
        Ok(batch_nll)
    }
}

/// The validation NLL of every held-out shot, its mean and standard error, and the fidelity and
/// KL divergence against the reference.
fn evaluate(
    rbm: &Rbm,
    data: &Measurements,
    validation: &[usize],
    reference: Option<&[Complex64]>,
) -> (Vec<f64>, f64, f64, Option<f64>, Option<f64>) {
    let exact = rbm.n_sites() <= EXACT_LIMIT;
    let log_z = if exact {
        exact_normalization(rbm, None)
    } else {
        f64::NAN
    };
    let losses = shot_nll(rbm, data, validation, log_z);
    let n = losses.len() as f64;
    let mean = losses.iter().sum::<f64>() / n;
    let error =
        (losses.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0) / n).sqrt();
    let (fidelity, kl) = match (reference, exact) {
        (Some(r), true) => metrics::against_reference(r, rbm, &data.distinct_bases()),
        _ => (None, None),
    };
    (losses, mean, error, fidelity, kl)
}

/// The epoch with the lowest validation NLL: its number, per-shot NLLs and parameters.
type Best = (usize, Vec<f64>, Vec<Complex64>);

/// Which parameters to keep at the end, and why (see the module documentation).
fn choose_kept(
    rbm: &mut Rbm,
    best: Option<Best>,
    last: usize,
    last_losses: &[f64],
) -> (usize, String) {
    match best {
        Some((epoch, losses, params)) if epoch != last => {
            let (diff, error) = paired_difference(last_losses, &losses);
            let sigmas = if error > 0.0 {
                format!("{} standard errors", crate::error::display_number(diff / error))
            } else {
                format!("no error estimate from {} validation shot(s)", losses.len())
            };
            if diff > 2.0 * error {
                rbm.set_parameters(&params);
                (epoch, format!("epoch {epoch} has the lowest validation NLL, lower than the last epoch's by {} ({sigmas}): the last epochs overfit", crate::error::display_number(diff)))
            } else {
                (last, format!("the last epoch: the lowest validation NLL (epoch {epoch}) is within validation noise of it ({sigmas})"))
            }
        }
        Some(_) => (last, "the last epoch, which has the lowest validation NLL".into()),
        None if rbm.n_sites() > EXACT_LIMIT => (last, format!("the last epoch (no validation: the NLL needs the exact normalization, N ≤ {EXACT_LIMIT})")),
        None => (last, "the last epoch (no validation split)".into()),
    }
}

/// Maximum-likelihood fit of `rbm` to `data`; calls `on_epoch` after every epoch.
pub fn fit(
    rbm: &mut Rbm,
    data: &Measurements,
    reference: Option<&[Complex64]>,
    settings: &FitSettings,
    mut on_epoch: impl FnMut(&EpochRecord),
) -> Result<FitReport> {
    use rand::{RngExt, SeedableRng};
    let start = std::time::Instant::now();
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(settings.seed);
    let mut order: Vec<usize> = (0..data.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let n_val = if rbm.n_sites() <= EXACT_LIMIT {
        ((data.len() as f64) * settings.validation_fraction).round() as usize
    } else {
        0
    };
    let (validation, train) = order.split_at(n_val.min(data.len().saturating_sub(1)));
    let mut train = train.to_vec();
    let mut trainer = Trainer {
        settings,
        normalization: Normalization::new(rbm, settings.chains, settings.seed ^ 0x5eed),
        adam: Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        },
        moments: AdamMoments::default(),
        step: 0,
    };
    let mut history = Vec::new();
    let mut best: Option<Best> = None;
    let mut last_losses: Vec<f64> = Vec::new();
    let mut since_best = 0;
    for epoch in 0..settings.epochs {
        for i in (1..train.len()).rev() {
            train.swap(i, rng.random_range(0..=i));
        }
        let mut train_nll = 0.0;
        let batches = train.chunks(settings.batch_size.max(1));
        let count = batches.len();
        for batch in batches {
            train_nll += trainer
                .update(rbm, data, batch)
                .map_err(|e| Error::Numerical(format!("epoch {epoch}: {e}")))?;
        }
        let (losses, validation_nll, validation_error, fidelity, kl) =
            evaluate(rbm, data, validation, reference);
        let record = EpochRecord {
            epoch,
            train_nll: train_nll / count.max(1) as f64,
            validation_nll,
            validation_error,
            fidelity,
            kl,
            wall_time: start.elapsed().as_secs_f64(),
        };
        let finite = |z: &Complex64| z.re.is_finite() && z.im.is_finite();
        let nll_computable = rbm.n_sites() <= EXACT_LIMIT && !validation.is_empty();
        if !rbm.parameters().iter().all(finite) || (nll_computable && !validation_nll.is_finite()) {
            let largest = rbm
                .parameters()
                .iter()
                .map(|z| z.norm())
                .fold(0.0, f64::max);
            return Err(Error::Numerical(format!(
                "epoch {epoch}: the fit diverged (validation NLL {validation_nll}, largest parameter modulus {largest:.3e}); try a smaller --learning-rate{}",
                if settings.optimizer == FitOptimizer::Sr { " or a larger --diag-shift" } else { "" }
            )));
        }
        on_epoch(&record);
        history.push(record);
        if validation_nll.is_finite() {
            let best_mean = best
                .as_ref()
                .map(|(_, b, _)| b.iter().sum::<f64>() / b.len() as f64);
            if best_mean.is_none_or(|b| validation_nll < b) {
                best = Some((epoch, losses.clone(), rbm.parameters().to_vec()));
                since_best = 0;
            } else {
                since_best += 1;
            }
        }
        last_losses = losses;
        if since_best >= settings.patience {
            break;
        }
    }
    let last = history.last().map_or(0, |r| r.epoch);
    let (kept_epoch, kept_reason) = choose_kept(rbm, best, last, &last_losses);
    Ok(FitReport {
        history,
        kept_epoch,
        kept_reason,
    })
}
