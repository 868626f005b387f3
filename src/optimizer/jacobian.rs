//! The scaled, centred log-derivative matrix `X = (O − ⟨O⟩)/√N_s` (samples × parameters) as a
//! linear operator: `S = X†X`, `F = X†y` and every SR solve only need products with it.
//!
//! Two representations behind the [`Jacobian`] trait:
//! - [`Materialized`]: the rows of X stored (any ansatz; the reference in tests);
//! - [`StructuredRbm`]: for a dense RBM, `O_s = (σ_s, t_s, t_s ⊗ σ_s)` with `t = tanh θ`, so only
//!   the N_s × N spins Σ and the N_s × M activations T are stored and every product is a GEMM:
//!   `X v ∝ Σ v_a + T v_b + rowsum(T ∘ (Σ V_Wᵀ)) − m·v`, `X† w ∝ (Σᵀ w, T† w, T†(w ∘ Σ)) − m̄ Σw`,
//!   O(N_s·N·M) flops instead of a memory-bound pass over 16·N_s·P bytes, and no N_s × P matrix.
//!
//! Rows live on the process that sampled them; `⟨O⟩` is the mean over all processes, and
//! products with `X†` return this process's part (the caller sums over processes).

use crate::ansatz::{Ansatz, DenseRbmLayer};
use crate::dist::Communicator;
use crate::linalg::{self, Op};
use crate::sampler::SampleSet;
use ndarray::{s, Array1, Array2, ArrayViewMut2, Axis};
use num_complex::Complex64;
use rayon::prelude::*;

const ZERO: Complex64 = Complex64::new(0.0, 0.0);
const ONE: Complex64 = Complex64::new(1.0, 0.0);

/// Whether `⟨O⟩` is subtracted (SR always centres; the uncentred form is for tests and for
/// estimators of `O O†` itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Centering {
    Centred,
    Uncentred,
}

/// `X = (O − ⟨O⟩)/√N_s` restricted to this process's samples.
pub trait Jacobian: Send {
    fn n_parameters(&self) -> usize;
    /// Rows held by this process.
    fn n_local(&self) -> usize;
    /// Global index of this process's first row.
    fn first_row(&self) -> usize;
    /// Rows over all processes (N_s).
    fn n_total(&self) -> usize;
    /// `y ← X v` for the local rows (`y.len() == n_local`).
    fn apply(&mut self, v: &[Complex64], y: &mut [Complex64]);
    /// `out ← X_local† w` (`w.len() == n_local`; the caller sums `out` over processes).
    fn apply_adjoint(&mut self, w: &[Complex64], out: &mut [Complex64]);
    /// `out_k ← Σ_{local s} |X_sk|²` (the caller sums over processes).
    fn column_norms(&mut self, out: &mut [f64]);
    /// Local rows `first..first + out.nrows()` of X into `out`.
    fn rows(&self, first: usize, out: ArrayViewMut2<Complex64>);
    /// `X X†` over the rows of every process, on every process (a collective call), when this
    /// representation can form it without the N_s × P matrix.
    fn structured_kernel(&self, comm: &dyn Communicator) -> Option<Array2<Complex64>>;
    /// `materialized` or `structured RBM`.
    fn representation(&self) -> &'static str;
}

/// The rows of X, stored.
pub struct Materialized {
    x: Array2<Complex64>,
    first_row: usize,
    n_total: usize,
}

impl Materialized {
    /// Log-derivatives of every sample, centred with the mean over all processes and scaled by
    /// `1/√N_s`.
    pub fn new<A: Ansatz>(
        ansatz: &A,
        samples: &SampleSet<A::Cache>,
        first_row: usize,
        n_total: usize,
        centering: Centering,
        comm: &dyn Communicator,
    ) -> Self {
        let mut x = Array2::<Complex64>::zeros((samples.len(), ansatz.n_parameters()));
        x.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(s, mut row)| {
                ansatz.log_derivatives(
                    samples.configuration(s),
                    &samples.caches[s],
                    row.as_slice_mut().expect("row-major"),
                );
            });
        Self::from_log_derivatives(x, first_row, n_total, centering, comm)
    }

    /// From the raw log-derivatives O of this process's samples (rows).
    pub fn from_log_derivatives(
        mut x: Array2<Complex64>,
        first_row: usize,
        n_total: usize,
        centering: Centering,
        comm: &dyn Communicator,
    ) -> Self {
        let mut mean = x.sum_axis(Axis(0));
        comm.sum_c64(mean.as_slice_mut().expect("contiguous"));
        let keep = if centering == Centering::Centred {
            1.0
        } else {
            0.0
        };
        mean.mapv_inplace(|m| m * (keep / n_total as f64));
        let scale = 1.0 / (n_total as f64).sqrt();
        x.axis_iter_mut(Axis(0))
            .into_par_iter()
            .for_each(|mut row| row.zip_mut_with(&mean, |o, m| *o = (*o - m) * scale));
        Self::from_parts(x, first_row, n_total)
    }

    /// Rows that are already centred and scaled.
    pub fn from_parts(x: Array2<Complex64>, first_row: usize, n_total: usize) -> Self {
        Materialized {
            x,
            first_row,
            n_total,
        }
    }

    /// The stored rows.
    pub fn matrix(&self) -> &Array2<Complex64> {
        &self.x
    }
}

impl Jacobian for Materialized {
    fn n_parameters(&self) -> usize {
        self.x.ncols()
    }
    fn n_local(&self) -> usize {
        self.x.nrows()
    }
    fn first_row(&self) -> usize {
        self.first_row
    }
    fn n_total(&self) -> usize {
        self.n_total
    }
    fn apply(&mut self, v: &[Complex64], y: &mut [Complex64]) {
        linalg::matvec(y, false, ONE, self.x.view(), Op::Plain, v);
    }
    fn apply_adjoint(&mut self, w: &[Complex64], out: &mut [Complex64]) {
        linalg::matvec(out, false, ONE, self.x.view(), Op::Adjoint, w);
    }
    fn column_norms(&mut self, out: &mut [f64]) {
        out.iter_mut().for_each(|o| *o = 0.0);
        for row in self.x.rows() {
            for (o, x) in out.iter_mut().zip(row) {
                *o += x.norm_sqr();
            }
        }
    }
    fn rows(&self, first: usize, mut out: ArrayViewMut2<Complex64>) {
        let count = out.nrows();
        out.assign(&self.x.slice(s![first..first + count, ..]));
    }
    fn structured_kernel(&self, _: &dyn Communicator) -> Option<Array2<Complex64>> {
        None
    }
    fn representation(&self) -> &'static str {
        "materialized"
    }
}

/// Samples per block of the structured products: blocks run in parallel, each with sequential
/// GEMMs, and block results are added in block order (so results do not depend on the thread
/// count).
const SAMPLE_BLOCK: usize = 128;

/// A complex array's interleaved real view (re, im, re, im, …).
fn real_view(z: &[Complex64]) -> &[f64] {
    bytemuck::cast_slice(z)
}

fn real_view_mut(z: &mut [Complex64]) -> &mut [f64] {
    bytemuck::cast_slice_mut(z)
}

/// X of a dense RBM from its factors: spins Σ (N_s × N, real ±1) and activations T (N_s × M).
///
/// Σ is real, so every product with it is a real GEMM on the interleaved view of a complex
/// matrix: half the flops of a complex GEMM.
pub struct StructuredRbm {
    n: usize,
    m: usize,
    sigma: Array2<f64>,
    t: Array2<Complex64>,
    /// ⟨O⟩ over all processes: visible (N), hidden (M), weights (M × N).
    mean_a: Array1<Complex64>,
    mean_b: Array1<Complex64>,
    mean_w: Array2<Complex64>,
    /// `Σ_{local s} t_sj σ_si` (M × N), for the column norms.
    local_tw: Array2<Complex64>,
    scale: f64,
    first_row: usize,
    n_total: usize,
    centering: Centering,
}

/// `Σᵀ R` of real Σ (rows × N) and complex R (rows × K), summed over fixed sample blocks in
/// parallel: an N × K complex matrix.
fn sigma_transpose_times(sigma: &Array2<f64>, r: &Array2<Complex64>) -> Array2<Complex64> {
    let (n, k) = (sigma.ncols(), r.ncols());
    let parts: Vec<Array2<Complex64>> = sigma
        .axis_chunks_iter(Axis(0), SAMPLE_BLOCK)
        .into_par_iter()
        .zip(r.axis_chunks_iter(Axis(0), SAMPLE_BLOCK).into_par_iter())
        .map(|(s, rb)| {
            let mut q = Array2::<Complex64>::zeros((n, k));
            let rows = rb.nrows();
            let rb = rb.as_standard_layout();
            let r_real = ndarray::ArrayView2::from_shape(
                (rows, 2 * k),
                real_view(rb.as_slice().expect("standard layout")),
            )
            .expect("interleaved view");
            let q_real = ArrayViewMut2::from_shape(
                (n, 2 * k),
                real_view_mut(q.as_slice_mut().expect("contiguous")),
            )
            .expect("interleaved view");
            linalg::matmul(q_real, false, 1.0, s, Op::Transpose, r_real, Op::Plain);
            q
        })
        .collect();
    parts
        .into_iter()
        .reduce(|a, b| a + b)
        .unwrap_or_else(|| Array2::zeros((n, k)))
}

impl StructuredRbm {
    /// The factors of this process's samples; `⟨O⟩` is summed over all processes.
    pub fn new<C: Sync>(
        layer: &dyn DenseRbmLayer<C>,
        samples: &SampleSet<C>,
        first_row: usize,
        n_total: usize,
        centering: Centering,
        comm: &dyn Communicator,
    ) -> Self {
        let (ns, n, m) = (samples.len(), samples.n_sites, layer.n_hidden());
        let sigma = Array2::from_shape_fn((ns, n), |(s, i)| f64::from(samples.configuration(s)[i]));
        let mut t = Array2::<Complex64>::zeros((ns, m));
        t.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(s, mut row)| {
                layer.activations(&samples.caches[s], row.as_slice_mut().expect("row-major"))
            });
        // Σᵀ T (N × M); its transpose is Σ_s t_sj σ_si (M × N).
        let local_tw = sigma_transpose_times(&sigma, &t)
            .reversed_axes()
            .as_standard_layout()
            .into_owned();
        // One reduction for all of ⟨O⟩: [Σσ, Σt, Σ t⊗σ].
        let mut sums: Vec<Complex64> = sigma
            .sum_axis(Axis(0))
            .iter()
            .map(|&x| Complex64::new(x, 0.0))
            .collect();
        sums.extend(t.sum_axis(Axis(0)));
        sums.extend(local_tw.iter());
        comm.sum_c64(&mut sums);
        let inv = 1.0 / n_total as f64;
        let keep = if centering == Centering::Centred {
            inv
        } else {
            0.0
        };
        let mean_a = Array1::from_iter(sums[..n].iter().map(|x| x * keep));
        let mean_b = Array1::from_iter(sums[n..n + m].iter().map(|x| x * keep));
        let mean_w = Array2::from_shape_fn((m, n), |(j, i)| sums[n + m + j * n + i] * keep);
        StructuredRbm {
            n,
            m,
            sigma,
            t,
            mean_a,
            mean_b,
            mean_w,
            local_tw,
            scale: inv.sqrt(),
            first_row,
            n_total,
            centering,
        }
    }

    /// `⟨O⟩ · v`.
    fn mean_dot(&self, v: &[Complex64]) -> Complex64 {
        let (n, m) = (self.n, self.m);
        let a: Complex64 = self.mean_a.iter().zip(&v[..n]).map(|(x, y)| x * y).sum();
        let b: Complex64 = self
            .mean_b
            .iter()
            .zip(&v[n..n + m])
            .map(|(x, y)| x * y)
            .sum();
        let w: Complex64 = self
            .mean_w
            .iter()
            .zip(&v[n + m..])
            .map(|(x, y)| x * y)
            .sum();
        a + b + w
    }
}

impl Jacobian for StructuredRbm {
    fn n_parameters(&self) -> usize {
        self.n + self.m + self.n * self.m
    }
    fn n_local(&self) -> usize {
        self.sigma.nrows()
    }
    fn first_row(&self) -> usize {
        self.first_row
    }
    fn n_total(&self) -> usize {
        self.n_total
    }

    /// `(X v)_s = (σ_s·v_a + Σ_j t_sj (b_j + u_sj) − ⟨O⟩·v)/√N_s` with `u = Σ V_Wᵀ`.
    fn apply(&mut self, v: &[Complex64], y: &mut [Complex64]) {
        let (n, m) = (self.n, self.m);
        // V_Wᵀ (N × M), interleaved: N × 2M real.
        let mut vt = Array2::<Complex64>::zeros((n, m));
        for j in 0..m {
            for i in 0..n {
                vt[[i, j]] = v[n + m + j * n + i];
            }
        }
        let vt_real = ndarray::ArrayView2::from_shape(
            (n, 2 * m),
            real_view(vt.as_slice().expect("contiguous")),
        )
        .expect("interleaved view");
        let offset = self.mean_dot(v);
        let (v_a, v_b) = (&v[..n], &v[n..n + m]);
        let scale = self.scale;
        self.sigma
            .axis_chunks_iter(Axis(0), SAMPLE_BLOCK)
            .into_par_iter()
            .zip(
                self.t
                    .axis_chunks_iter(Axis(0), SAMPLE_BLOCK)
                    .into_par_iter(),
            )
            .zip(y.par_chunks_mut(SAMPLE_BLOCK))
            .for_each(|((s, t), yb)| {
                let rows = s.nrows();
                let mut u = Array2::<Complex64>::zeros((rows, m));
                let u_real = ArrayViewMut2::from_shape(
                    (rows, 2 * m),
                    real_view_mut(u.as_slice_mut().expect("contiguous")),
                )
                .expect("interleaved view");
                linalg::matmul(u_real, false, 1.0, s, Op::Plain, vt_real, Op::Plain);
                for (r, ys) in yb.iter_mut().enumerate() {
                    let visible: Complex64 = s.row(r).iter().zip(v_a).map(|(x, y)| y * *x).sum();
                    let hidden: Complex64 = t
                        .row(r)
                        .iter()
                        .zip(u.row(r))
                        .zip(v_b)
                        .map(|((tj, uj), bj)| tj * (uj + bj))
                        .sum();
                    *ys = (visible + hidden - offset) * scale;
                }
            });
    }

    /// `X† w`: with `R = diag(w) T̄`, the weights block is `(Σᵀ R)ᵀ`, the hidden block the column
    /// sums of R, the visible block `Σᵀ w`; minus `⟨O⟩̄ Σ_s w_s`, times `1/√N_s`.
    fn apply_adjoint(&mut self, w: &[Complex64], out: &mut [Complex64]) {
        let (n, m) = (self.n, self.m);
        let w_sum: Complex64 = w.iter().sum();
        // R = [diag(w) T̄ | w] (N_s × (M + 1)): one GEMM gives the weights and visible blocks.
        let mut r = Array2::<Complex64>::zeros((self.n_local(), m + 1));
        r.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(self.t.axis_iter(Axis(0)).into_par_iter())
            .zip(w.par_iter())
            .for_each(|((mut row, t), &ws)| {
                for (x, tj) in row.iter_mut().zip(t) {
                    *x = ws * tj.conj();
                }
                row[m] = ws;
            });
        let q = sigma_transpose_times(&self.sigma, &r);
        for i in 0..n {
            out[i] = q[[i, m]];
        }
        let hidden = r.slice(s![.., ..m]).sum_axis(Axis(0));
        out[n..n + m].copy_from_slice(hidden.as_slice().expect("contiguous"));
        for j in 0..m {
            for i in 0..n {
                out[n + m + j * n + i] = q[[i, j]];
            }
        }
        let means = self
            .mean_a
            .iter()
            .chain(self.mean_b.iter())
            .chain(self.mean_w.iter());
        for (o, mk) in out.iter_mut().zip(means) {
            *o = (*o - mk.conj() * w_sum) * self.scale;
        }
    }

    fn column_norms(&mut self, out: &mut [f64]) {
        let (n, m) = (self.n, self.m);
        let ns = self.n_local() as f64;
        let s2 = self.scale * self.scale;
        for (i, o) in out[..n].iter_mut().enumerate() {
            let mean = self.mean_a[i];
            *o = self
                .sigma
                .column(i)
                .iter()
                .map(|&x| (mean - x).norm_sqr())
                .sum::<f64>()
                * s2;
        }
        for (j, o) in out[n..n + m].iter_mut().enumerate() {
            let mean = self.mean_b[j];
            *o = self
                .t
                .column(j)
                .iter()
                .map(|x| (x - mean).norm_sqr())
                .sum::<f64>()
                * s2;
        }
        let t_norms: Vec<f64> = (0..m)
            .map(|j| self.t.column(j).iter().map(|x| x.norm_sqr()).sum())
            .collect();
        // Σ_s |t_sj σ_si − m|² = Σ_s |t_sj|² − 2 Re(m̄ Σ_s t_sj σ_si) + N_s |m|²  (σ² = 1).
        for j in 0..m {
            for i in 0..n {
                let mw = self.mean_w[[j, i]];
                out[n + m + j * n + i] = (t_norms[j]
                    - 2.0 * (mw.conj() * self.local_tw[[j, i]]).re
                    + ns * mw.norm_sqr())
                    * s2;
            }
        }
    }

    fn rows(&self, first: usize, mut out: ArrayViewMut2<Complex64>) {
        let (n, m) = (self.n, self.m);
        for (k, mut row) in out.axis_iter_mut(Axis(0)).enumerate() {
            let s = first + k;
            for i in 0..n {
                row[i] = (Complex64::new(self.sigma[[s, i]], 0.0) - self.mean_a[i]) * self.scale;
            }
            for j in 0..m {
                let tj = self.t[[s, j]];
                row[n + j] = (tj - self.mean_b[j]) * self.scale;
                for i in 0..n {
                    row[n + m + j * n + i] =
                        (tj * self.sigma[[s, i]] - self.mean_w[[j, i]]) * self.scale;
                }
            }
        }
    }

    /// `K = X X†` from the factors of all processes: with `G = ΣΣᵀ + TT† + (ΣΣᵀ)∘(TT†)`, the
    /// uncentred `O O†`, the centred kernel is `K = (G − r 1ᵀ − 1 r† + ḡ 11ᵀ)/N_s` with `r` the
    /// row means of G and `ḡ` their mean. Work `N_s²(N + M)`; communication: the factors,
    /// `N_s (N + M)` numbers, summed into place.
    fn structured_kernel(&self, comm: &dyn Communicator) -> Option<Array2<Complex64>> {
        let (n, m, total) = (self.n, self.m, self.n_total);
        let (sigma, t) = if comm.size() == 1 {
            (self.sigma.clone(), self.t.clone())
        } else {
            let mut sigma = Array2::<f64>::zeros((total, n));
            let mut t = Array2::<Complex64>::zeros((total, m));
            let rows = self.first_row..self.first_row + self.n_local();
            sigma.slice_mut(s![rows.clone(), ..]).assign(&self.sigma);
            t.slice_mut(s![rows, ..]).assign(&self.t);
            comm.sum_f64(sigma.as_slice_mut().expect("contiguous"));
            comm.sum_c64(t.as_slice_mut().expect("contiguous"));
            (sigma, t)
        };
        let mut g_sigma = Array2::<f64>::zeros((total, total));
        linalg::matmul(
            g_sigma.view_mut(),
            false,
            1.0,
            sigma.view(),
            Op::Plain,
            sigma.view(),
            Op::Transpose,
        );
        let mut g = Array2::<Complex64>::zeros((total, total));
        linalg::matmul(
            g.view_mut(),
            false,
            ONE,
            t.view(),
            Op::Plain,
            t.view(),
            Op::Adjoint,
        );
        g.zip_mut_with(&g_sigma, |gt, &gs| *gt = *gt * (1.0 + gs) + gs);
        let inv = 1.0 / total as f64;
        if self.centering == Centering::Uncentred {
            g.mapv_inplace(|k| k * inv);
            return Some(g);
        }
        let r: Vec<Complex64> = g.rows().into_iter().map(|row| row.sum() * inv).collect();
        let grand: Complex64 = r.iter().sum::<Complex64>() * inv;
        g.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(s, mut row)| {
                for (sp, k) in row.iter_mut().enumerate() {
                    *k = (*k - r[s] - r[sp].conj() + grand) * inv;
                }
            });
        Some(g)
    }

    fn representation(&self) -> &'static str {
        "structured RBM"
    }
}

/// `X X†` of a materialized Jacobian (single process), by one GEMM.
pub fn materialized_kernel(x: &Materialized) -> Array2<Complex64> {
    let ns = x.n_local();
    let mut k = Array2::<Complex64>::zeros((ns, ns));
    linalg::matmul(
        k.view_mut(),
        false,
        ONE,
        x.matrix().view(),
        Op::Plain,
        x.matrix().view(),
        Op::Adjoint,
    );
    k
}

/// `X_local† X_local` (P × P) built from row blocks, so that no N_s × P matrix is needed.
pub fn covariance(jacobian: &dyn Jacobian) -> Array2<Complex64> {
    let p = jacobian.n_parameters();
    let mut s_matrix = Array2::<Complex64>::zeros((p, p));
    let block = (4 << 20) / (16 * p.max(1)) + 1;
    let mut rows = Array2::<Complex64>::zeros((block.min(jacobian.n_local()), p));
    let mut first = 0;
    while first < jacobian.n_local() {
        let count = block.min(jacobian.n_local() - first);
        let mut view = rows.slice_mut(s![..count, ..]);
        jacobian.rows(first, view.view_mut());
        linalg::matmul(
            s_matrix.view_mut(),
            first > 0,
            ONE,
            view.view(),
            Op::Adjoint,
            view.view(),
            Op::Plain,
        );
        first += count;
    }
    if jacobian.n_local() == 0 {
        s_matrix.fill(ZERO);
    }
    s_matrix
}
