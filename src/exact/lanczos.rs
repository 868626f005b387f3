//! Thick-restart Lanczos for the lowest eigenpairs of a Hermitian operator.
//!
//! The Krylov basis `V` is kept orthonormal by two passes of classical Gram–Schmidt against all
//! basis vectors (full reorthogonalization), so the projected matrix `H = V†AV` is computed
//! column by column from the Gram–Schmidt coefficients. When the basis reaches `max_basis`
//! vectors, the Rayleigh–Ritz pairs `(θ_i, y_i)` of `H` are formed; the residual of a Ritz pair is
//! `‖A x_i − θ_i x_i‖ = β |y_i[m−1]|` (β the norm of the last residual vector). The basis is then
//! compressed to the `keep` lowest Ritz vectors plus the residual direction and extended again
//! (Wu & Simon, SIAM J. Matrix Anal. Appl. 22, 602 (2000)). Memory: `max_basis` vectors.

use crate::error::{Error, Result};
use crate::linalg::{axpy, norm, orthogonalize, scale, Field};
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

/// A Hermitian linear map `y = A x` on vectors of length [`dim`](Self::dim).
pub trait LinearOperator<T>: Sync {
    fn dim(&self) -> usize;
    fn apply(&self, x: &[T], y: &mut [T]);
}

/// Parameters of [`lanczos`].
#[derive(Clone, Debug)]
pub struct LanczosParams {
    /// Number of lowest eigenpairs wanted.
    pub n_states: usize,
    /// Converged when every wanted residual `‖Ax − θx‖ ≤ tolerance · max(|θ|, 1)`.
    /// The eigenvalue error is then below `residual² / gap`: the default 1e-7 gives eigenvalues
    /// to about 1e-12 relative for gaps above ~1e-2·|θ|.
    pub tolerance: f64,
    /// Compute eigenvectors (the ground-state recurrence then runs a second pass).
    pub eigenvectors: bool,
    /// Largest Krylov basis kept in memory.
    pub max_basis: usize,
    /// Give up after this many operator applications.
    pub max_matvecs: usize,
    /// Seed of the random start vector.
    pub seed: u64,
    /// Set from outside (a signal) to stop with an error at the next matrix-vector product.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Default for LanczosParams {
    fn default() -> Self {
        LanczosParams {
            n_states: 1,
            tolerance: 1e-7,
            eigenvectors: true,
            max_basis: 40,
            max_matvecs: 20_000,
            seed: 7,
            cancel: None,
        }
    }
}

/// What the solver did.
#[derive(Clone, Debug, Default)]
pub struct LanczosInfo {
    pub matvecs: usize,
    pub restarts: usize,
    /// Final residual norms of the wanted Ritz pairs.
    pub residuals: Vec<f64>,
}

/// An error when `params.cancel` is set.
fn check_cancel(params: &LanczosParams) -> Result<()> {
    if params
        .cancel
        .as_ref()
        .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
    {
        return Err(Error::Runtime("Lanczos: interrupted".into()));
    }
    Ok(())
}

/// Lowest eigenvalues (ascending) and their eigenvectors.
#[derive(Clone, Debug)]
pub struct Eigenpairs<T> {
    pub values: Vec<f64>,
    pub vectors: Vec<Vec<T>>,
}

fn random_unit<T: Field>(n: usize, rng: &mut Xoshiro256PlusPlus, basis: &[Vec<T>]) -> Vec<T> {
    let mut v: Vec<T> = (0..n)
        .map(|_| {
            T::from_c64(num_complex::Complex64::new(
                rng.random::<f64>() - 0.5,
                rng.random::<f64>() - 0.5,
            ))
        })
        .collect();
    orthogonalize(basis, &mut v);
    orthogonalize(basis, &mut v);
    let nv = norm(&v);
    scale(T::from_re(1.0 / nv), &mut v);
    v
}

/// `Σ_j coeffs[j] · basis[j]` for several coefficient columns at once.
fn combine<T: Field>(basis: &[Vec<T>], coeffs: &Array2<T>, columns: usize) -> Vec<Vec<T>> {
    (0..columns)
        .into_par_iter()
        .map(|i| {
            let mut x = vec![T::ZERO; basis[0].len()];
            for (j, v) in basis.iter().enumerate() {
                axpy(coeffs[[j, i]], v, &mut x);
            }
            x
        })
        .collect()
}

/// What a few Lanczos steps say about the lowest eigenvalues of an operator.
#[derive(Clone, Debug)]
pub struct Bracket {
    /// Ritz values, ascending: by Cauchy interlacing `θ_i ≥ λ_i`, upper bounds of the
    /// operator's lowest eigenvalues.
    pub upper: Vec<f64>,
    /// `‖A x_1 − θ_1 x_1‖` of the lowest Ritz pair: some eigenvalue lies in `θ_1 ± residual`.
    pub residual: f64,
    pub matvecs: usize,
}

impl Bracket {
    /// `θ_1 − residual`: below the lowest eigenvalue whenever the lowest Ritz pair approximates
    /// the lowest eigenpair (a random start vector overlaps every eigenvector).
    pub fn lower_estimate(&self) -> f64 {
        self.upper[0] - self.residual
    }
}

/// `steps` Lanczos steps with full reorthogonalization from a random vector (memory: `steps`
/// vectors): upper bounds of the lowest eigenvalues and the lowest Ritz residual.
pub fn bracket<T: Field>(
    op: &impl LinearOperator<T>,
    steps: usize,
    params: &LanczosParams,
) -> Result<Bracket> {
    let n = op.dim();
    let steps = steps.clamp(1, n);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(params.seed);
    let mut basis = vec![random_unit::<T>(n, &mut rng, &[])];
    let (mut alphas, mut betas) = (Vec::new(), Vec::new());
    let mut beta = 0.0;
    while alphas.len() < steps {
        check_cancel(params)?;
        let mut w = vec![T::ZERO; n];
        op.apply(basis.last().expect("a start vector"), &mut w);
        let coefficients = orthogonalize(&basis, &mut w);
        let again = orthogonalize(&basis, &mut w);
        let last = basis.len() - 1;
        alphas.push((coefficients[last] + again[last]).re());
        beta = norm(&w);
        if beta <= 1e-12 * alphas.iter().map(|a: &f64| a.abs()).fold(1.0, f64::max)
            || alphas.len() == steps
        {
            break;
        }
        betas.push(beta);
        scale(T::from_re(1.0 / beta), &mut w);
        basis.push(w);
    }
    let m = alphas.len();
    let t = Array2::from_shape_fn((m, m), |(i, j)| match i.abs_diff(j) {
        0 => alphas[i],
        1 => betas[i.min(j)],
        _ => 0.0,
    });
    let (values, vectors) = crate::linalg::eigh(t.view())
        .map_err(|e| Error::Numerical(format!("Lanczos bracket: {e}")))?;
    Ok(Bracket {
        residual: beta * vectors[[m - 1, 0]].abs(),
        upper: values,
        matvecs: m,
    })
}

/// The `n_states` lowest eigenpairs of `op`: the three-term recurrence without
/// reorthogonalization for the ground state alone ([`ground_state`]), thick restart otherwise.
pub fn lanczos<T: Field>(
    op: &impl LinearOperator<T>,
    params: &LanczosParams,
) -> Result<(Eigenpairs<T>, LanczosInfo)> {
    if params.n_states == 1 && op.dim() > params.max_basis {
        return ground_state(op, params);
    }
    // A single Krylov sequence sees one vector of each degenerate eigenspace. Deflation rounds:
    // lock what was found and search again orthogonally to it, until a round finds nothing
    // below the current n_states-th eigenvalue.
    let k = params.n_states.min(op.dim());
    let mut locked: Vec<(f64, Vec<T>)> = Vec::new();
    let mut info = LanczosInfo::default();
    for round in 0..=k {
        if locked.len() >= op.dim() {
            break;
        }
        let round_params = LanczosParams {
            n_states: k.min(op.dim() - locked.len()),
            seed: params.seed + round as u64,
            ..params.clone()
        };
        let vectors: Vec<Vec<T>> = locked.iter().map(|(_, v)| v.clone()).collect();
        let (pairs, round_info) = thick_restart(op, &round_params, &vectors)?;
        info.matvecs += round_info.matvecs;
        info.restarts += round_info.restarts;
        info.residuals.extend(round_info.residuals);
        let new_below = match locked.get(k - 1) {
            Some(&(threshold, _)) => pairs
                .values
                .first()
                .is_some_and(|&v| v < threshold - params.tolerance * threshold.abs().max(1.0)),
            None => true,
        };
        locked.extend(pairs.values.into_iter().zip(pairs.vectors));
        locked.sort_by(|a, b| a.0.total_cmp(&b.0));
        if !new_below || op.dim() <= params.max_basis {
            break;
        }
    }
    locked.truncate(k);
    let (values, vectors) = locked.into_iter().unzip();
    Ok((Eigenpairs { values, vectors }, info))
}

/// Lowest eigenpair by the plain Lanczos recurrence
/// `β_j v_{j+1} = A v_j − α_j v_j − β_{j−1} v_{j−1}` (three vectors in memory, no
/// reorthogonalization: loss of orthogonality only creates spurious copies of converged Ritz
/// values, never a wrong lowest one). The tridiagonal `T_j` is diagonalized every few steps;
/// the residual of its lowest Ritz pair is `β_j |y_j|`. A second pass repeats the (bitwise
/// deterministic) recurrence to accumulate the eigenvector `x = Σ_j y_j v_j`, and the returned
/// residual is the true `‖Ax − θx‖` of the normalized vector.
pub fn ground_state<T: Field>(
    op: &impl LinearOperator<T>,
    params: &LanczosParams,
) -> Result<(Eigenpairs<T>, LanczosInfo)> {
    let n = op.dim();
    let mut info = LanczosInfo::default();
    let start = random_unit::<T>(n, &mut Xoshiro256PlusPlus::seed_from_u64(params.seed), &[]);
    let mut alphas: Vec<f64> = Vec::new();
    let mut betas: Vec<f64> = Vec::new();
    // One step of the recurrence: (v_prev, v) → (v, v_next); returns (α, β).
    let step = |v_prev: &[T], v: &[T], w: &mut Vec<T>, beta_prev: f64| -> (f64, f64) {
        op.apply(v, w);
        let alpha = crate::linalg::dot(v, w).re();
        axpy(T::from_re(-alpha), v, w);
        if beta_prev != 0.0 {
            axpy(T::from_re(-beta_prev), v_prev, w);
        }
        (alpha, norm(w))
    };
    let lowest = |alphas: &[f64], betas: &[f64]| -> Result<(f64, Vec<f64>)> {
        let m = alphas.len();
        let t = Array2::from_shape_fn((m, m), |(i, j)| match i.abs_diff(j) {
            0 => alphas[i],
            1 => betas[i.min(j)],
            _ => 0.0,
        });
        let (values, vectors) = crate::linalg::eigh(t.view()).map_err(|e| {
            Error::Numerical(format!("Lanczos: tridiagonal eigenproblem failed: {e}"))
        })?;
        Ok((values[0], vectors.column(0).to_vec()))
    };
    let mut v_prev = vec![T::ZERO; n];
    let mut v = start.clone();
    let mut w = vec![T::ZERO; n];
    let mut beta_prev = 0.0;
    let (theta, y) = loop {
        check_cancel(params)?;
        let (alpha, beta) = step(&v_prev, &v, &mut w, beta_prev);
        info.matvecs += 1;
        alphas.push(alpha);
        betas.push(beta);
        let m = alphas.len();
        let exhausted = beta <= 1e-14 * alpha.abs().max(1.0) || m >= n;
        if m % 4 == 0 || exhausted || info.matvecs >= params.max_matvecs {
            let (theta, y) = lowest(&alphas, &betas[..m - 1])?;
            let residual = beta * y[m - 1].abs();
            if exhausted || residual <= 0.1 * params.tolerance * theta.abs().max(1.0) {
                info.residuals = vec![residual];
                break (theta, y);
            }
            if info.matvecs >= params.max_matvecs {
                return Err(Error::Numerical(format!("Lanczos did not converge in {} matrix-vector products (residual {residual:.2e})", info.matvecs)));
            }
        }
        scale(T::from_re(1.0 / beta), &mut w);
        std::mem::swap(&mut v_prev, &mut v);
        std::mem::swap(&mut v, &mut w);
        beta_prev = beta;
    };
    if !params.eigenvectors {
        return Ok((
            Eigenpairs {
                values: vec![theta],
                vectors: vec![],
            },
            info,
        ));
    }
    // Second pass: x = Σ_j y_j v_j.
    let mut x = vec![T::ZERO; n];
    v_prev.iter_mut().for_each(|a| *a = T::ZERO);
    v.copy_from_slice(&start);
    beta_prev = 0.0;
    for (j, &yj) in y.iter().enumerate() {
        axpy(T::from_re(yj), &v, &mut x);
        if j + 1 == y.len() {
            break;
        }
        let (_, beta) = step(&v_prev, &v, &mut w, beta_prev);
        info.matvecs += 1;
        scale(T::from_re(1.0 / beta), &mut w);
        std::mem::swap(&mut v_prev, &mut v);
        std::mem::swap(&mut v, &mut w);
        beta_prev = beta;
    }
    let nx = norm(&x);
    scale(T::from_re(1.0 / nx), &mut x);
    op.apply(&x, &mut w);
    info.matvecs += 1;
    axpy(T::from_re(-theta), &x, &mut w);
    let residual = norm(&w);
    if residual > params.tolerance * theta.abs().max(1.0) {
        return Err(Error::Numerical(format!(
            "Lanczos eigenvector residual {residual:.2e} above tolerance (eigenvalue {theta})"
        )));
    }
    info.residuals = vec![residual];
    Ok((
        Eigenpairs {
            values: vec![theta],
            vectors: vec![x],
        },
        info,
    ))
}

/// The `n_states` lowest eigenpairs by thick-restart Lanczos with full reorthogonalization,
/// restricted to the orthogonal complement of `locked` (orthonormal vectors).
pub fn thick_restart<T: Field>(
    op: &impl LinearOperator<T>,
    params: &LanczosParams,
    locked: &[Vec<T>],
) -> Result<(Eigenpairs<T>, LanczosInfo)> {
    let n = op.dim() - locked.len();
    let k = params.n_states.min(n).max(1);
    let m = params.max_basis.max(k + 8).min(n);
    let keep = ((k + m) / 2).max(k).min(m.saturating_sub(1)).max(1);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(params.seed);
    let mut info = LanczosInfo::default();
    let dim = op.dim();
    let mut basis: Vec<Vec<T>> = vec![random_unit(dim, &mut rng, locked)];
    let mut h = Array2::<T>::zeros((m, m));
    let mut w = vec![T::ZERO; dim];
    loop {
        // Extend the basis to m vectors; `beta` is the norm of the residual after the last one.
        let mut beta = 0.0;
        let mut residual: Option<Vec<T>> = None;
        for j in basis.len() - 1..m {
            check_cancel(params)?;
            op.apply(&basis[j], &mut w);
            info.matvecs += 1;
            orthogonalize(locked, &mut w);
            let c1 = orthogonalize(&basis, &mut w);
            orthogonalize(locked, &mut w);
            let c2 = orthogonalize(&basis, &mut w);
            for i in 0..=j {
                h[[i, j]] = c1[i] + c2[i];
            }
            beta = norm(&w);
            let scale_h = h[[j, j]].abs2().sqrt().max(1e-300);
            let mut next = std::mem::replace(&mut w, vec![T::ZERO; dim]);
            if beta <= 1e-13 * scale_h || beta == 0.0 {
                // Invariant subspace: continue with a fresh direction (coupling exactly zero).
                beta = 0.0;
                if basis.len() == n {
                    break;
                }
                let mut against = basis.clone();
                against.extend(locked.iter().cloned());
                next = random_unit(dim, &mut rng, &against);
            } else {
                scale(T::from_re(1.0 / beta), &mut next);
            }
            if j + 1 < m {
                if beta == 0.0 && j + 1 >= k && basis.len() >= k {
                    // Everything spanned so far is exact; stop extending when enough is found.
                    break;
                }
                h[[j, j + 1]] = T::from_re(beta);
                basis.push(next);
            } else {
                residual = Some(next);
            }
        }
        let size = basis.len();
        // The Gram–Schmidt coefficients fill the upper triangle; mirror it for the eigensolver.
        let mut sub = h.slice(ndarray::s![..size, ..size]).to_owned();
        for i in 0..size {
            for j in 0..i {
                sub[[i, j]] = sub[[j, i]].conj();
            }
        }
        let (theta, y) = crate::linalg::eigh(sub.view()).map_err(|e| {
            Error::Numerical(format!("Lanczos: projected eigenproblem failed: {e}"))
        })?;
        let wanted = k.min(size);
        info.residuals = (0..wanted)
            .map(|i| beta * y[[size - 1, i]].abs2().sqrt())
            .collect();
        let converged = info
            .residuals
            .iter()
            .zip(theta.iter())
            .all(|(r, t)| *r <= params.tolerance * t.abs().max(1.0));
        if converged || residual.is_none() || info.matvecs >= params.max_matvecs {
            if !converged {
                return Err(Error::Numerical(format!(
                    "Lanczos did not converge in {} matrix-vector products (residuals {:?})",
                    info.matvecs, info.residuals
                )));
            }
            let vectors = combine(&basis, &y, wanted);
            return Ok((
                Eigenpairs {
                    values: theta.iter().take(wanted).copied().collect(),
                    vectors,
                },
                info,
            ));
        }
        // Thick restart: keep the lowest Ritz vectors and append the residual direction.
        info.restarts += 1;
        let kept = combine(&basis, &y, keep);
        h.fill(T::ZERO);
        for i in 0..keep {
            h[[i, i]] = T::from_re(theta[i]);
            h[[i, keep]] = (T::from_re(beta) * y[[size - 1, i]]).conj();
        }
        basis = kept;
        basis.push(residual.expect("checked above"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_complex::Complex64;

    struct Diagonal(Vec<f64>);
    impl LinearOperator<f64> for Diagonal {
        fn dim(&self) -> usize {
            self.0.len()
        }
        fn apply(&self, x: &[f64], y: &mut [f64]) {
            for ((y, x), d) in y.iter_mut().zip(x).zip(&self.0) {
                *y = x * d;
            }
        }
    }

    #[test]
    fn finds_lowest_of_a_diagonal_with_restarts() {
        let d: Vec<f64> = (0..3000)
            .map(|i| ((i * 7919) % 3000) as f64 * 0.01 - 3.0)
            .collect();
        let params = LanczosParams {
            n_states: 3,
            max_basis: 20,
            ..Default::default()
        };
        let (e, info) = lanczos(&Diagonal(d), &params).unwrap();
        assert!(info.restarts > 0);
        for (i, v) in e.values.iter().enumerate() {
            assert!((v - (-3.0 + 0.01 * i as f64)).abs() < 1e-10, "{v}");
        }
    }

    struct Dense(Array2<Complex64>);
    impl LinearOperator<Complex64> for Dense {
        fn dim(&self) -> usize {
            self.0.nrows()
        }
        fn apply(&self, x: &[Complex64], y: &mut [Complex64]) {
            let r = self.0.dot(&ndarray::ArrayView1::from(x));
            y.copy_from_slice(r.as_slice().unwrap());
        }
    }

    #[test]
    fn tiny_space_is_solved_exactly() {
        let a = Array2::from_shape_fn((3, 3), |(i, j)| {
            if i == j {
                Complex64::new(i as f64, 0.0)
            } else if i < j {
                Complex64::new(0.3, 0.1)
            } else {
                Complex64::new(0.3, -0.1)
            }
        });
        let (exact, _) = crate::linalg::eigh(a.view()).unwrap();
        let (e, _) = lanczos(
            &Dense(a),
            &LanczosParams {
                n_states: 3,
                ..Default::default()
            },
        )
        .unwrap();
        for (x, y) in e.values.iter().zip(exact.iter()) {
            assert!((x - y).abs() < 1e-12);
        }
    }
}
