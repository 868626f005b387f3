//! Parameter updates: stochastic reconfiguration (SR), Adam and plain SGD.
//!
//! With centred log-derivatives `Ō = O − ⟨O⟩` (samples × parameters) and centred local
//! energies `ε = E_loc − ⟨E⟩`, all scaled by `1/√N_s`, write `X = Ō/√N_s`, `y = ε/√N_s`:
//! `S = X†X`, `F = X†y` (the energy gradient `∂E/∂p*`). SR solves `(S + ε I) δ = F` (additive
//! shift) or `(S + ε diag S) δ = F` (multiplicative shift, done as the additive problem for the
//! columns of X scaled by `diag(S)^{−1/2}`), then `p ← p − η δ`. Solvers:
//! - `dense`: S by GEMM, Cholesky, and an eigenvalue pseudo-inverse when the factorization fails
//!   or gives non-finite numbers;
//! - `cg`: conjugate gradients with `S v = X†(X v)`, warm-started from the previous solution;
//! - `sample`: the push-through form `δ = X†(XX† + ε I)^{−1} y` with the N_s × N_s kernel;
//! - `auto`: the cheapest of the three by operation count within the memory budget.
//!
//! The products are split over row blocks of X and run on the rayon pool; partial sums are
//! added in a fixed order, so results do not depend on the thread count.

use crate::config::{DiagShiftKind, OptimizerConfig, OptimizerKind, SrSolverKind};
use crate::dist::Communicator;
use crate::error::{Error, Result};
use crate::linalg::{self, Op};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use num_complex::Complex64;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

const ZERO: Complex64 = Complex64::new(0.0, 0.0);
const ONE: Complex64 = Complex64::new(1.0, 0.0);

/// Rows of X per parallel block.
const ROW_BLOCK: usize = 64;

/// `max(initial · decay^p, minimum)`.
pub fn schedule(initial: f64, decay: f64, minimum: f64, iteration: usize) -> f64 {
    (initial * decay.powi(iteration as i32)).max(minimum)
}

/// Everything an optimizer carries from one iteration to the next (part of a checkpoint).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OptimizerState {
    /// Updates done so far.
    pub iteration: usize,
    /// Adam first and second moments.
    pub adam_m: Vec<Complex64>,
    pub adam_v: Vec<f64>,
    /// Last SR solution in the scaled variables (CG warm start).
    pub last_solution: Vec<Complex64>,
}

/// What one update did (goes to the log and the history).
#[derive(Clone, Debug, Default, Serialize)]
pub struct UpdateInfo {
    pub method: String,
    pub learning_rate: f64,
    pub diag_shift: f64,
    pub cg_iterations: usize,
    /// Relative residual `‖(S+εI)δ − F‖/‖F‖` of the solve (0 for SGD/Adam).
    pub residual: f64,
    /// The dense Cholesky failed and the pseudo-inverse was used.
    pub pseudo_inverse: bool,
    /// ‖F‖.
    pub gradient_norm: f64,
}

/// `y = X v` (X: rows × P), row blocks in parallel.
fn mat_vec(x: &ArrayView2<Complex64>, v: &Array1<Complex64>) -> Array1<Complex64> {
    let v = v.as_slice().expect("contiguous");
    let mut y = Array1::<Complex64>::zeros(x.nrows());
    x.axis_chunks_iter(Axis(0), ROW_BLOCK)
        .into_par_iter()
        .zip(
            y.as_slice_mut()
                .expect("contiguous")
                .par_chunks_mut(ROW_BLOCK),
        )
        .for_each(|(b, yb)| linalg::matvec(yb, false, ONE, b, Op::Plain, v));
    y
}

/// `X† w` over the samples of every rank: partial products of row blocks added in order, then
/// summed over ranks (one all-reduce of a P-vector).
fn mat_h_vec(
    x: &ArrayView2<Complex64>,
    w: &Array1<Complex64>,
    comm: &dyn Communicator,
) -> Array1<Complex64> {
    let w = w.as_slice().expect("contiguous");
    let parts: Vec<Vec<Complex64>> = x
        .axis_chunks_iter(Axis(0), ROW_BLOCK)
        .into_par_iter()
        .zip(w.par_chunks(ROW_BLOCK))
        .map(|(b, wb)| {
            let mut part = vec![ZERO; x.ncols()];
            linalg::matvec(&mut part, false, ONE, b, Op::Adjoint, wb);
            part
        })
        .collect();
    let mut sum = Array1::<Complex64>::zeros(x.ncols());
    for part in parts {
        sum.iter_mut().zip(part).for_each(|(s, p)| *s += p);
    }
    comm.sum_c64(sum.as_slice_mut().expect("contiguous"));
    sum
}

fn norm(v: &Array1<Complex64>) -> f64 {
    v.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt()
}

/// Chooses the SR solver for `auto` by operation count: dense `P²N_s + P³/3`, sample
/// `N_s²P + N_s³/3` (matrix-matrix products, counted at half their flops since BLAS-3 runs
/// several times faster than the memory-bound matrix-vector products of CG), CG about
/// `2·N_s·P` per iteration for ~100 iterations; dense and sample only while their matrix fits
/// in `memory_limit` bytes.
///
/// `sample` needs every sample's row on one process, so it is not chosen with several ranks.
pub fn choose_solver(
    n_samples: usize,
    n_params: usize,
    memory_limit: u64,
    ranks: usize,
) -> SrSolverKind {
    let (ns, p) = (n_samples as f64, n_params as f64);
    let dense = (p * p * ns + p * p * p / 3.0) / 2.0;
    let sample = (ns * ns * p + ns * ns * ns / 3.0) / 2.0;
    let cg = 2.0 * ns * p * 100.0;
    let fits = |dim: f64| dim * dim * 16.0 * 2.0 < memory_limit as f64;
    let mut best = (cg, SrSolverKind::Cg);
    if fits(p) && dense < best.0 {
        best = (dense, SrSolverKind::Dense);
    }
    if ranks == 1 && fits(ns) && sample < best.0 {
        best = (sample, SrSolverKind::Sample);
    }
    best.1
}

/// Solves the Hermitian positive semi-definite system `S δ = f`: Cholesky, or the eigenvalue
/// pseudo-inverse (eigenvalues below 1e-12 of the largest dropped) when the factorization fails
/// or gives non-finite numbers. Returns δ and whether the pseudo-inverse was used.
pub fn solve_hermitian(
    s_matrix: &Array2<Complex64>,
    f: &Array1<Complex64>,
) -> Result<(Array1<Complex64>, bool)> {
    let (x, method) = linalg::solve_psd(s_matrix.view(), f.as_slice().expect("contiguous"))
        .map_err(|e| Error::Numerical(format!("SR: {e}")))?;
    Ok((Array1::from(x), method != linalg::PsdMethod::Cholesky))
}

/// Solves `(X†X + ε I) δ = X†y` with the requested solver; returns δ and what was done.
pub fn sr_solve(
    x: &ArrayView2<Complex64>,
    y: &Array1<Complex64>,
    shift: f64,
    solver: SrSolverKind,
    config: &OptimizerConfig,
    warm_start: &[Complex64],
    comm: &dyn Communicator,
) -> Result<(Array1<Complex64>, UpdateInfo)> {
    if solver == SrSolverKind::Sample && comm.size() > 1 {
        return Err(Error::Input(
            "optimizer.solver = \"sample\" needs all samples on one process; with several MPI ranks use \"cg\" (or \"dense\")".into(),
        ));
    }
    let p = x.ncols();
    let f = mat_h_vec(x, y, comm);
    let f_norm = norm(&f);
    let mut info = UpdateInfo {
        diag_shift: shift,
        gradient_norm: f_norm,
        ..Default::default()
    };
    let residual_of = |delta: &Array1<Complex64>| -> f64 {
        let s_delta = mat_h_vec(x, &mat_vec(x, delta), comm) + delta * Complex64::new(shift, 0.0);
        norm(&(s_delta - &f)) / f_norm.max(1e-300)
    };
    let delta = match solver {
        SrSolverKind::Dense | SrSolverKind::Auto => {
            info.method = "sr/dense".into();
            let mut s_matrix = Array2::<Complex64>::zeros((p, p));
            linalg::matmul(
                s_matrix.view_mut(),
                false,
                ONE,
                x.view(),
                Op::Adjoint,
                x.view(),
                Op::Plain,
            );
            comm.sum_c64(s_matrix.as_slice_mut().expect("contiguous"));
            for k in 0..p {
                s_matrix[[k, k]] += shift;
            }
            let (delta, pseudo_inverse) = solve_hermitian(&s_matrix, &f)?;
            info.pseudo_inverse = pseudo_inverse;
            delta
        }
        SrSolverKind::Cg => {
            info.method = "sr/cg".into();
            let apply = |v: &Array1<Complex64>| {
                mat_h_vec(x, &mat_vec(x, v), comm) + v * Complex64::new(shift, 0.0)
            };
            let mut delta = if warm_start.len() == p {
                Array1::from(warm_start.to_vec())
            } else {
                Array1::zeros(p)
            };
            let mut r = &f - &apply(&delta);
            let mut d = r.clone();
            let mut rr = r.iter().map(|z| z.norm_sqr()).sum::<f64>();
            let target = config.cg_tolerance * f_norm;
            while rr.sqrt() > target && info.cg_iterations < config.cg_max_iterations {
                let q = apply(&d);
                let alpha = rr
                    / d.iter()
                        .zip(q.iter())
                        .map(|(a, b)| (a.conj() * b).re)
                        .sum::<f64>();
                delta.scaled_add(Complex64::new(alpha, 0.0), &d);
                r.scaled_add(Complex64::new(-alpha, 0.0), &q);
                let rr_new = r.iter().map(|z| z.norm_sqr()).sum::<f64>();
                d = &r + &(d * Complex64::new(rr_new / rr, 0.0));
                rr = rr_new;
                info.cg_iterations += 1;
            }
            delta
        }
        SrSolverKind::Sample => {
            info.method = "sr/sample".into();
            let ns = x.nrows();
            let mut kernel = Array2::<Complex64>::zeros((ns, ns));
            linalg::matmul(
                kernel.view_mut(),
                false,
                ONE,
                x.view(),
                Op::Plain,
                x.view(),
                Op::Adjoint,
            );
            for k in 0..ns {
                kernel[[k, k]] += shift;
            }
            let (z, _) = linalg::solve_psd(kernel.view(), y.as_slice().expect("contiguous"))
                .map_err(|e| Error::Numerical(format!("SR (sample): kernel solve failed: {e}")))?;
            mat_h_vec(x, &Array1::from(z), comm)
        }
    };
    info.residual = residual_of(&delta);
    Ok((delta, info))
}

/// One optimizer step from centred log-derivatives `o` (samples × P, already scaled by
/// `1/√N_s`) and centred local energies `e` (scaled likewise): returns the parameter change
/// `−η δ` and what was done.
pub fn update(
    config: &OptimizerConfig,
    state: &mut OptimizerState,
    o: &ArrayView2<Complex64>,
    e: &Array1<Complex64>,
    memory_limit: u64,
    comm: &dyn Communicator,
) -> Result<(Array1<Complex64>, UpdateInfo)> {
    let it = state.iteration;
    let lr = schedule(
        config.learning_rate,
        config.learning_rate_decay,
        config.learning_rate_min,
        it,
    );
    let p = o.ncols();
    let (step, mut info) = match config.kind {
        OptimizerKind::Sgd => {
            let f = mat_h_vec(o, e, comm);
            let info = UpdateInfo {
                method: "sgd".into(),
                gradient_norm: norm(&f),
                ..Default::default()
            };
            (f, info)
        }
        OptimizerKind::Adam => {
            let f = mat_h_vec(o, e, comm);
            if state.adam_m.len() != p {
                state.adam_m = vec![ZERO; p];
                state.adam_v = vec![0.0; p];
            }
            let (b1, b2) = (config.beta1, config.beta2);
            let t = (it + 1) as i32;
            let step: Array1<Complex64> = (0..p)
                .map(|k| {
                    state.adam_m[k] = state.adam_m[k] * b1 + f[k] * (1.0 - b1);
                    state.adam_v[k] = state.adam_v[k] * b2 + f[k].norm_sqr() * (1.0 - b2);
                    let m_hat = state.adam_m[k] / (1.0 - b1.powi(t));
                    let v_hat = state.adam_v[k] / (1.0 - b2.powi(t));
                    m_hat / (v_hat.sqrt() + 1e-8)
                })
                .collect();
            let info = UpdateInfo {
                method: "adam".into(),
                gradient_norm: norm(&f),
                ..Default::default()
            };
            (step, info)
        }
        OptimizerKind::Sr => {
            let shift = schedule(
                config.diag_shift,
                config.diag_shift_decay,
                config.diag_shift_min,
                it,
            );
            let solver = match config.solver {
                SrSolverKind::Auto => {
                    choose_solver(o.nrows() * comm.size(), p, memory_limit, comm.size())
                }
                s => s,
            };
            match config.diag_shift_kind {
                DiagShiftKind::Additive => {
                    sr_solve(o, e, shift, solver, config, &state.last_solution, comm)?
                }
                DiagShiftKind::Multiplicative => {
                    // (S + ε diag S) δ = F  ⇔  (S' + ε) δ' = F' with X' = X D^{−1/2}, δ = D^{−1/2} δ'.
                    let mut diag: Vec<f64> = o
                        .axis_iter(Axis(1))
                        .map(|col| col.iter().map(|z| z.norm_sqr()).sum::<f64>())
                        .collect();
                    comm.sum_f64(&mut diag);
                    let scale: Vec<f64> = diag
                        .iter()
                        .map(|&d| if d > 0.0 { 1.0 / d.sqrt() } else { 1.0 })
                        .collect();
                    let scaled = Array2::from_shape_fn(o.dim(), |(s, k)| o[[s, k]] * scale[k]);
                    let (d, info) = sr_solve(
                        &scaled.view(),
                        e,
                        shift,
                        solver,
                        config,
                        &state.last_solution,
                        comm,
                    )?;
                    (d.iter().zip(&scale).map(|(z, s)| z * s).collect(), info)
                }
            }
        }
    };
    if config.kind == OptimizerKind::Sr {
        state.last_solution = step.to_vec();
    }
    if !step.iter().all(|z| z.re.is_finite() && z.im.is_finite()) {
        return Err(Error::Numerical(format!(
            "{}: the parameter update is not finite",
            info.method
        )));
    }
    info.learning_rate = lr;
    state.iteration += 1;
    Ok((step * Complex64::new(-lr, 0.0), info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn random(ns: usize, p: usize, seed: u64) -> (Array2<Complex64>, Array1<Complex64>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut c = || Complex64::new(rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5);
        let x = Array2::from_shape_fn((ns, p), |_| c());
        let y = Array1::from_shape_fn(ns, |_| c());
        (x, y)
    }

    #[test]
    fn all_solvers_agree() {
        let config: OptimizerConfig =
            toml::from_str("cg_tolerance = 1e-12\ncg_max_iterations = 1000").unwrap();
        for (ns, p) in [(300, 40), (40, 300)] {
            let (x, y) = random(ns, p, 3);
            let (dense, i1) = sr_solve(
                &x.view(),
                &y,
                1e-3,
                SrSolverKind::Dense,
                &config,
                &[],
                &crate::dist::Serial,
            )
            .unwrap();
            let (cg, i2) = sr_solve(
                &x.view(),
                &y,
                1e-3,
                SrSolverKind::Cg,
                &config,
                &[],
                &crate::dist::Serial,
            )
            .unwrap();
            let (sample, i3) = sr_solve(
                &x.view(),
                &y,
                1e-3,
                SrSolverKind::Sample,
                &config,
                &[],
                &crate::dist::Serial,
            )
            .unwrap();
            for info in [&i1, &i2, &i3] {
                assert!(info.residual < 1e-8, "{info:?}");
            }
            assert!(norm(&(&dense - &cg)) < 1e-7 * norm(&dense));
            assert!(norm(&(&dense - &sample)) < 1e-7 * norm(&dense));
        }
    }

    #[test]
    fn singular_s_falls_back_to_pseudo_inverse() {
        let (mut x, y) = random(20, 10, 4);
        x.column_mut(3).fill(ZERO);
        x.column_mut(7).fill(ZERO);
        let config = OptimizerConfig::default();
        let (d, info) = sr_solve(
            &x.view(),
            &y,
            0.0,
            SrSolverKind::Dense,
            &config,
            &[],
            &crate::dist::Serial,
        )
        .unwrap();
        assert!(info.pseudo_inverse);
        assert!(d.iter().all(|z| z.re.is_finite()));
        assert!(d[3].norm() < 1e-12 && d[7].norm() < 1e-12);
    }
}
