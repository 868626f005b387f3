//! Stochastic reconfiguration: solve `(S + shift) δ = F` with `S = X†X`, `F = X†y`.
//!
//! Shifts: additive `S + εI`, or multiplicative `S + ε diag(S)`. Solvers behind [`SrSolver`]:
//! - [`Dense`]: S from row blocks of X (never the whole N_s × P matrix), Cholesky, and the
//!   eigenvalue pseudo-inverse when the factorization fails;
//! - [`ConjugateGradient`]: matrix-free `S v = X†(X v)`, warm-started; with the multiplicative
//!   shift preconditioned by `(1 + ε) diag(S)` (the same iterates as CG on the rescaled system);
//! - [`Kernel`]: the push-through identity `δ = X†(XX† + εI)^{−1} y` with the N_s × N_s kernel —
//!   for a dense RBM formed from the factors in `N_s²(N + M)` work — one Cholesky, no cap, no
//!   warm start (additive shift only: `X diag(S)^{−1} X†` does not factor).
//!
//! Every solver returns what it did ([`SolveInfo`]); the true relative residual
//! `‖(S + shift)δ − F‖/‖F‖` is computed for all of them.

use super::jacobian::{covariance, Jacobian};
use crate::dist::Communicator;
use crate::error::{Error, Result};
use crate::linalg::{self, PsdMethod};
use crate::pool;
use num_complex::Complex64;
use serde::{Deserialize, Serialize};

const ZERO: Complex64 = Complex64::new(0.0, 0.0);

/// The diagonal regularization of S.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shift {
    /// `S + ε I`.
    Additive(f64),
    /// `S + ε diag(S)`.
    Multiplicative(f64),
}

/// `optimizer.solver`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SolverKind {
    #[default]
    Auto,
    Dense,
    Cg,
    /// The N_s × N_s kernel (push-through identity).
    Sample,
}

/// What one solve did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SolveInfo {
    /// `dense`, `cg`, `sample`, with the representation of X.
    pub path: String,
    /// CG iterations (0 for direct solves).
    pub iterations: usize,
    /// `‖(S + shift)δ − F‖/‖F‖`.
    pub residual: f64,
    /// False when CG stopped at its iteration cap.
    pub converged: bool,
    /// A fallback taken (pseudo-inverse, dropped eigenvalues).
    pub fallback: Option<String>,
}

impl SolveInfo {
    /// One line for the log: `cg 37 its, residual 8.1e-9` or `cg 200 its (CAP), residual 3e-4`.
    pub fn summary(&self) -> String {
        let its = if self.iterations > 0 {
            format!(
                " {} its{}",
                self.iterations,
                if self.converged { "" } else { " (cap)" }
            )
        } else {
            String::new()
        };
        let fallback = self
            .fallback
            .as_ref()
            .map_or(String::new(), |f| format!(", {f}"));
        format!("{}{its}, res {:.1e}{fallback}", self.path, self.residual)
    }
}

/// A solver of the SR equations.
pub trait SrSolver: Send + Sync {
    /// Solves `(X†X + shift) δ = f`; `f = X†y` is the (global) gradient, `y` this process's
    /// rows of the right-hand side, `warm` a start vector (may be empty).
    fn solve(
        &self,
        x: &mut dyn Jacobian,
        f: &[Complex64],
        y: &[Complex64],
        shift: Shift,
        warm: &[Complex64],
        comm: &dyn Communicator,
    ) -> Result<(Vec<Complex64>, SolveInfo)>;
}

fn norm(v: &[Complex64]) -> f64 {
    v.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt()
}

/// `X† w` summed over processes.
pub fn adjoint_product(
    x: &mut dyn Jacobian,
    w: &[Complex64],
    comm: &dyn Communicator,
) -> Vec<Complex64> {
    let mut out = vec![ZERO; x.n_parameters()];
    x.apply_adjoint(w, &mut out);
    comm.sum_c64(&mut out);
    out
}

/// `diag(S)` summed over processes.
fn diagonal(x: &mut dyn Jacobian, comm: &dyn Communicator) -> Vec<f64> {
    let mut d = vec![0.0; x.n_parameters()];
    x.column_norms(&mut d);
    comm.sum_f64(&mut d);
    d
}

/// `(S + shift) v` (global), with `diag` = diag(S) for the multiplicative shift.
fn apply_shifted(
    x: &mut dyn Jacobian,
    v: &[Complex64],
    shift: Shift,
    diag: &[f64],
    scratch: &mut [Complex64],
    comm: &dyn Communicator,
) -> Vec<Complex64> {
    let mut out = vec![ZERO; x.n_parameters()];
    x.apply_normal(v, &mut out, scratch);
    comm.sum_c64(&mut out);
    match shift {
        Shift::Additive(eps) => out.iter_mut().zip(v).for_each(|(o, v)| *o += v * eps),
        Shift::Multiplicative(eps) => out
            .iter_mut()
            .zip(v)
            .zip(diag)
            .for_each(|((o, v), d)| *o += v * (eps * d)),
    }
    out
}

/// The relative residual `‖(S + shift)δ − F‖/‖F‖`.
fn residual(
    x: &mut dyn Jacobian,
    delta: &[Complex64],
    f: &[Complex64],
    shift: Shift,
    diag: &[f64],
    comm: &dyn Communicator,
) -> f64 {
    let mut scratch = vec![ZERO; x.n_local()];
    let a_delta = apply_shifted(x, delta, shift, diag, &mut scratch, comm);
    let r: Vec<Complex64> = a_delta.iter().zip(f).map(|(a, b)| a - b).collect();
    norm(&r) / norm(f).max(1e-300)
}

fn check_finite(delta: &[Complex64], path: &str) -> Result<()> {
    if delta.iter().all(|z| z.re.is_finite() && z.im.is_finite()) {
        Ok(())
    } else {
        Err(Error::Numerical(format!(
            "SR ({path}): the solution is not finite"
        )))
    }
}

/// Dense S, Cholesky, pseudo-inverse fallback.
pub struct Dense;

impl SrSolver for Dense {
    fn solve(
        &self,
        x: &mut dyn Jacobian,
        f: &[Complex64],
        _y: &[Complex64],
        shift: Shift,
        _warm: &[Complex64],
        comm: &dyn Communicator,
    ) -> Result<(Vec<Complex64>, SolveInfo)> {
        let path = format!("dense ({})", x.representation());
        let mut s_matrix = covariance(x);
        comm.sum_c64(s_matrix.as_slice_mut().expect("contiguous"));
        let diag: Vec<f64> = (0..f.len()).map(|k| s_matrix[[k, k]].re).collect();
        for (k, &d) in diag.iter().enumerate() {
            s_matrix[[k, k]] += match shift {
                Shift::Additive(eps) => eps,
                Shift::Multiplicative(eps) => eps * d,
            };
        }
        let (delta, method) = linalg::solve_psd(s_matrix.view(), f)?;
        check_finite(&delta, &path)?;
        let fallback = match method {
            PsdMethod::Cholesky => None,
            PsdMethod::PseudoInverse { dropped } => Some(format!(
                "Cholesky failed: pseudo-inverse, {dropped} eigenvalues dropped"
            )),
        };
        let residual = residual(x, &delta, f, shift, &diag, comm);
        Ok((
            delta,
            SolveInfo {
                path,
                iterations: 0,
                residual,
                converged: true,
                fallback,
            },
        ))
    }
}

/// Conjugate gradients on `(S + shift) δ = F`.
pub struct ConjugateGradient {
    /// Stop when `‖r‖ ≤ tolerance · ‖F‖`.
    pub tolerance: f64,
    pub max_iterations: usize,
}

impl SrSolver for ConjugateGradient {
    fn solve(
        &self,
        x: &mut dyn Jacobian,
        f: &[Complex64],
        _y: &[Complex64],
        shift: Shift,
        warm: &[Complex64],
        comm: &dyn Communicator,
    ) -> Result<(Vec<Complex64>, SolveInfo)> {
        let path = format!("cg ({})", x.representation());
        let p = f.len();
        let diag = match shift {
            Shift::Multiplicative(_) => diagonal(x, comm),
            Shift::Additive(_) => vec![],
        };
        // Jacobi preconditioner for the multiplicative shift: the rescaled system's CG.
        let precondition = |r: &[Complex64]| -> Vec<Complex64> {
            match shift {
                Shift::Multiplicative(eps) => r
                    .iter()
                    .zip(&diag)
                    .map(|(v, d)| if *d > 0.0 { v / ((1.0 + eps) * d) } else { *v })
                    .collect(),
                Shift::Additive(_) => r.to_vec(),
            }
        };
        // Many short parallel regions (one product per iteration): keep the workers awake, in
        // a single process only — MPI ranks may share cores, and spinning workers would take
        // them from the other ranks while this one waits in a reduction.
        let (delta, iterations, converged) =
            pool::with_awake_workers_if(comm.size() == 1, || -> Result<_> {
                let mut scratch = vec![ZERO; x.n_local()];
                let mut delta = if warm.len() == p {
                    warm.to_vec()
                } else {
                    vec![ZERO; p]
                };
                let a_delta = apply_shifted(x, &delta, shift, &diag, &mut scratch, comm);
                let mut r: Vec<Complex64> = f.iter().zip(&a_delta).map(|(a, b)| a - b).collect();
                let mut z = precondition(&r);
                let mut d = z.clone();
                let mut rz: f64 = r.iter().zip(&z).map(|(a, b)| (a.conj() * b).re).sum();
                let target = self.tolerance * norm(f);
                let mut iterations = 0;
                let mut converged = norm(&r) <= target;
                while !converged && iterations < self.max_iterations {
                    let q = apply_shifted(x, &d, shift, &diag, &mut scratch, comm);
                    let dq: f64 = d.iter().zip(&q).map(|(a, b)| (a.conj() * b).re).sum();
                    let alpha = rz / dq;
                    if !alpha.is_finite() {
                        return Err(Error::Numerical(format!(
                            "SR ({path}): breakdown at iteration {iterations} (d·Sd = {dq:e})"
                        )));
                    }
                    delta.iter_mut().zip(&d).for_each(|(x, d)| *x += d * alpha);
                    r.iter_mut().zip(&q).for_each(|(r, q)| *r -= q * alpha);
                    iterations += 1;
                    let r_norm = norm(&r);
                    if !r_norm.is_finite() {
                        return Err(Error::Numerical(format!(
                            "SR ({path}): the residual is not finite at iteration {iterations}"
                        )));
                    }
                    converged = r_norm <= target;
                    z = precondition(&r);
                    let rz_new: f64 = r.iter().zip(&z).map(|(a, b)| (a.conj() * b).re).sum();
                    let beta = rz_new / rz;
                    d.iter_mut().zip(&z).for_each(|(d, z)| *d = z + *d * beta);
                    rz = rz_new;
                }
                Ok((delta, iterations, converged))
            })?;
        check_finite(&delta, &path)?;
        let residual = residual(x, &delta, f, shift, &diag, comm);
        Ok((
            delta,
            SolveInfo {
                path,
                iterations,
                residual,
                converged,
                fallback: None,
            },
        ))
    }
}

/// The push-through identity with the N_s × N_s kernel, formed and factorized in a buffer kept
/// from one step to the next (16 N_s² bytes).
#[derive(Default)]
pub struct Kernel {
    buffer: std::sync::Mutex<ndarray::Array2<Complex64>>,
}

impl SrSolver for Kernel {
    fn solve(
        &self,
        x: &mut dyn Jacobian,
        f: &[Complex64],
        y: &[Complex64],
        shift: Shift,
        _warm: &[Complex64],
        comm: &dyn Communicator,
    ) -> Result<(Vec<Complex64>, SolveInfo)> {
        let Shift::Additive(eps) = shift else {
            return Err(Error::Input(
                "optimizer.solver = \"sample\" needs diag_shift_kind = \"additive\"".into(),
            ));
        };
        let path = format!("sample ({})", x.representation());
        let build = x.kernel_builder(comm).ok_or_else(|| {
            Error::Input("optimizer.solver = \"sample\" with several MPI ranks needs a dense RBM (structured kernel); use \"cg\"".into())
        })?;
        let shifted = |kernel: &mut ndarray::Array2<Complex64>| {
            build(kernel);
            for k in 0..kernel.nrows() {
                kernel[[k, k]] += eps;
            }
        };
        // The right-hand side of every process, in global row order.
        let total = x.n_total();
        let mut y_all = vec![ZERO; total];
        y_all[x.first_row()..x.first_row() + y.len()].copy_from_slice(y);
        comm.sum_c64(&mut y_all);
        let (mut z, method) = {
            let mut kernel = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
            shifted(&mut kernel);
            linalg::solve_psd_in_place(&mut kernel, &y_all, shifted)?
        };
        drop(build);
        // Every process continues from rank 0's bits.
        comm.broadcast_c64(&mut z);
        let local = &z[x.first_row()..x.first_row() + x.n_local()];
        let delta = adjoint_product(x, local, comm);
        check_finite(&delta, &path)?;
        let fallback = match method {
            PsdMethod::Cholesky => None,
            PsdMethod::PseudoInverse { dropped } => Some(format!(
                "Cholesky failed: pseudo-inverse, {dropped} eigenvalues dropped"
            )),
        };
        let residual = residual(x, &delta, f, shift, &[], comm);
        Ok((
            delta,
            SolveInfo {
                path,
                iterations: 0,
                residual,
                converged: true,
                fallback,
            },
        ))
    }
}

/// The sizes `auto` decides from.
#[derive(Clone, Copy, Debug)]
pub struct ProblemSize {
    /// Samples over all processes.
    pub samples: usize,
    pub parameters: usize,
    /// `(N, M)` when X is a structured dense RBM.
    pub rbm: Option<(usize, usize)>,
    pub ranks: usize,
    /// Bytes a solver may allocate.
    pub memory: u64,
    pub multiplicative: bool,
    /// CG's iteration cap (`optimizer.cg_max_iterations`).
    pub cg_max_iterations: usize,
}

/// How much slower than the Cholesky's GEMM updates the CG iteration runs per multiply-add
/// (skinny products and vector updates; criterion on 2 Xeon cores, 2026-11-28: 27 vs 72 G
/// multiply-adds/s at (N, M, N_s) = (36, 108, 2000); in the L = 36 run with 1008 samples the
/// measured break-even is ~44 CG iterations, this model gives 41).
const CG_EFFICIENCY_PENALTY: f64 = 2.5;

/// What `auto` decided.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoChoice {
    /// The solver of the first step.
    pub start: SolverKind,
    /// `(direct, k)`: start with CG and change to `direct` for good once a CG solve needs more
    /// than `k` iterations (where `direct` becomes the cheaper one).
    pub switch: Option<(SolverKind, usize)>,
    /// The decision and the costs it came from, for the log.
    pub reason: String,
}

/// Below this many CG iterations at break-even, `auto` starts with the direct solver: CG's
/// first solves (from a zero warm start) need more.
const MIN_BREAK_EVEN: f64 = 10.0;

/// A CG solve stopped at its cap gives an inexact step; `auto` changes to the direct solver
/// when CG hits its cap if the direct solve costs at most this many capped CG solves.
const CAPPED_CG_FACTOR: f64 = 2.0;

/// The name of a concrete solver (`cg` for CG and `auto`).
pub fn solver_name(kind: SolverKind) -> &'static str {
    match kind {
        SolverKind::Dense => "dense",
        SolverKind::Sample => "sample",
        _ => "cg",
    }
}

/// The solver `auto` picks, and why. Costs in real multiply-adds (a complex multiply-add is
/// 4, real × complex 2) within the memory budget, with R processes:
/// - dense: `4 (N_s P²/R + P³/3)` (form S, Cholesky);
/// - sample: `4 (N_s² P + N_s³/3)`, or `2 N_s² N + 4 N_s² M + 4 N_s³/3` for the structured
///   RBM (Gram matrices of σ and of tanh θ, then Cholesky);
/// - one CG iteration: `S v` costs `8 N_s P/R`, or `4 N_s N M/R` structured (two
///   real × complex GEMMs), weighted by [`CG_EFFICIENCY_PENALTY`].
///
/// The cheaper direct solver costs as much as `k` CG iterations. CG's iteration count is not
/// known in advance (S grows ill-conditioned as the state converges: the L = 36 chain needs
/// ~20 iterations at first and reaches a cap of 200 later), so with `k` below the cap `auto`
/// starts with CG and changes to the direct solver for good after the first warm-started CG
/// solve that needs more than `k` iterations (deterministic, and part of the checkpointed
/// state). With `k` beyond the cap but below [`CAPPED_CG_FACTOR`] times it, the change comes
/// when a CG solve stops at its cap (its step is then inexact); with `k` below
/// [`MIN_BREAK_EVEN`] it starts with the direct solver.
///
/// `sample` needs the additive shift, and several ranks only when structured.
pub fn choose(size: &ProblemSize) -> AutoChoice {
    let (ns, p, r) = (
        size.samples as f64,
        size.parameters as f64,
        size.ranks as f64,
    );
    let cg_iteration = CG_EFFICIENCY_PENALTY
        * match size.rbm {
            Some((n, m)) => 4.0 * ns * n as f64 * m as f64,
            None => 8.0 * ns * p,
        }
        / r;
    let dense = 4.0 * (ns * p * p / r + p * p * p / 3.0);
    let sample = match size.rbm {
        // The lower triangle of TT† (of XX† when materialized), then the complex Cholesky.
        Some((_, m)) => 2.0 * ns * ns * m as f64 + 4.0 * ns * ns * ns / 3.0,
        None => 2.0 * ns * ns * p + 4.0 * ns * ns * ns / 3.0,
    };
    let fits = |dim: f64| dim * dim * 16.0 * 3.0 < size.memory as f64;
    let mut direct: Option<(f64, SolverKind)> = None;
    let mut why = vec![format!("cg ~{cg_iteration:.1e} per iteration")];
    if fits(p) {
        why.push(format!("dense ~{dense:.1e}"));
        direct = Some((dense, SolverKind::Dense));
    } else {
        why.push("dense: S does not fit in memory".into());
    }
    let sample_ok = !size.multiplicative && (size.ranks == 1 || size.rbm.is_some());
    if sample_ok && fits(ns) {
        why.push(format!("sample ~{sample:.1e}"));
        if direct.is_none_or(|(cost, _)| sample < cost) {
            direct = Some((sample, SolverKind::Sample));
        }
    } else if size.multiplicative {
        why.push("sample: needs the additive shift".into());
    } else if !fits(ns) {
        why.push("sample: the kernel does not fit in memory".into());
    } else {
        why.push("sample: several ranks need a dense RBM".into());
    }
    let cap = size.cg_max_iterations as f64;
    let (start, switch, decision) = match direct {
        Some((cost, kind)) if cost / cg_iteration < MIN_BREAK_EVEN => {
            (kind, None, solver_name(kind).to_string())
        }
        Some((cost, kind)) if cost / cg_iteration < CAPPED_CG_FACTOR * cap => {
            // Beyond the cap CG's step is inexact: the direct solve is worth up to
            // CAPPED_CG_FACTOR capped solves, so change once CG stops at its cap.
            let k = ((cost / cg_iteration) as usize).min(size.cg_max_iterations.saturating_sub(1));
            (
                SolverKind::Cg,
                Some((kind, k)),
                format!(
                    "cg, then {} once a CG solve needs more than {k} iterations",
                    solver_name(kind)
                ),
            )
        }
        _ => (SolverKind::Cg, None, "cg".to_string()),
    };
    AutoChoice {
        start,
        switch,
        reason: format!(
            "auto chose {decision} for {} samples × {} parameters{} ({}; real multiply-adds)",
            size.samples,
            size.parameters,
            if size.rbm.is_some() {
                " (structured RBM)"
            } else {
                ""
            },
            why.join(", ")
        ),
    }
}
