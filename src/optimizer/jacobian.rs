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
use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2, Axis, CowArray};
use num_complex::Complex64;
use rayon::prelude::*;

const ZERO: Complex64 = Complex64::new(0.0, 0.0);
const ONE: Complex64 = Complex64::new(1.0, 0.0);

/// Writes the lower triangle of the N_s × N_s kernel `X X†` into the given array (reshaped when
/// it has another size; the strict upper triangle is left alone or mirrored).
pub type KernelBuilder<'a> = Box<dyn Fn(&mut Array2<Complex64>) + 'a>;

/// Makes `a` an n × n array, keeping its storage when it has that shape already.
fn square(a: &mut Array2<Complex64>, n: usize) {
    if a.dim() != (n, n) {
        *a = Array2::zeros((n, n));
    }
}

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
    /// `out ← X_local† X_local v`, this process's part of `S v` (the caller sums over
    /// processes); `scratch` has `n_local` elements. Representations whose rows are independent
    /// fuse the two products per block of rows.
    fn apply_normal(&mut self, v: &[Complex64], out: &mut [Complex64], scratch: &mut [Complex64]) {
        self.apply(v, scratch);
        self.apply_adjoint(scratch, out);
    }
    /// `out_k ← Σ_{local s} |X_sk|²` (the caller sums over processes).
    fn column_norms(&mut self, out: &mut [f64]);
    /// Local rows `first..first + out.nrows()` of X into `out`.
    fn rows(&self, first: usize, out: ArrayViewMut2<Complex64>);
    /// The sample-space kernel `X X†` over the rows of every process: gathers what it needs
    /// (a collective call) and returns a builder that forms the kernel's lower triangle
    /// locally, as often as a solver needs it (a Cholesky in place overwrites it); `None` when
    /// this representation would need the N_s × P rows of several processes.
    fn kernel_builder(&self, comm: &dyn Communicator) -> Option<KernelBuilder<'_>>;
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
    fn kernel_builder(&self, comm: &dyn Communicator) -> Option<KernelBuilder<'_>> {
        (comm.size() == 1).then(|| -> KernelBuilder<'_> {
            Box::new(|k: &mut Array2<Complex64>| {
                square(k, self.x.nrows());
                linalg::gram_lower(k.view_mut(), self.x.view());
            })
        })
    }
    fn representation(&self) -> &'static str {
        "materialized"
    }
}

/// Samples per block of the structured products: blocks run in parallel, each with sequential
/// GEMMs, and block results are added in block order (so results do not depend on the thread
/// count).
const SAMPLE_BLOCK: usize = 128;

/// A complex matrix's interleaved real view (re, im, re, im, …): rows × 2·cols.
fn real_view(z: &Array2<Complex64>) -> ArrayView2<'_, f64> {
    let shape = (z.nrows(), 2 * z.ncols());
    let slice = z.as_slice().expect("standard layout");
    ArrayView2::from_shape(shape, bytemuck::cast_slice(slice)).expect("interleaved view")
}

fn real_view_mut(z: &mut Array2<Complex64>) -> ArrayViewMut2<'_, f64> {
    let shape = (z.nrows(), 2 * z.ncols());
    let slice = z.as_slice_mut().expect("standard layout");
    ArrayViewMut2::from_shape(shape, bytemuck::cast_slice_mut(slice)).expect("interleaved view")
}

/// X of a dense RBM from its factors: spins Σ (N_s × N, real ±1) and activations T (N_s × M).
///
/// Σ is real, so every product with it is a real GEMM on the interleaved view of a complex
/// matrix: half the flops of a complex GEMM. Products run over fixed blocks of
/// [`SAMPLE_BLOCK`] rows in parallel, each with its own scratch (allocated once per SR step),
/// and block results are added in block order.
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
    /// `V_Wᵀ` (N × M) of the vector being applied.
    vt: Array2<Complex64>,
    blocks: Vec<BlockScratch>,
}

/// Scratch of one block of rows.
struct BlockScratch {
    /// `Σ_b V_Wᵀ` (rows × M).
    u: Array2<Complex64>,
    /// `X_b v` (rows).
    y: Vec<Complex64>,
    /// `R = [diag(w) T̄_b | w]` (rows × (M + 1)).
    r: Array2<Complex64>,
    /// `Σ_bᵀ R` (N × (M + 1)): the weights and visible blocks of `X_b† w`.
    q: Array2<Complex64>,
    /// Column sums of R: the hidden block and `Σ_s w_s`.
    r_sums: Vec<Complex64>,
}

/// `Σᵀ R` of real Σ (rows × N) and complex R (rows × K) into `q` (N × K), as one real GEMM on
/// the interleaved views.
fn sigma_transpose_times(sigma: ArrayView2<f64>, r: &Array2<Complex64>, q: &mut Array2<Complex64>) {
    linalg::matmul(
        real_view_mut(q),
        false,
        1.0,
        sigma,
        Op::Transpose,
        real_view(r),
        Op::Plain,
    );
}

/// `y = X_b v` of a block of rows: `(σ_s·v_a + Σ_j t_sj (v_bj + u_sj) − offset)·scale` with
/// `u = Σ_b V_Wᵀ` (a real GEMM on the interleaved view; `u` is scratch, rows × M) and `vt` =
/// `V_Wᵀ` (N × M).
#[allow(clippy::too_many_arguments)]
fn block_apply(
    sigma: ArrayView2<f64>,
    t: ArrayView2<Complex64>,
    vt: &Array2<Complex64>,
    v_a: &[Complex64],
    v_b: &[Complex64],
    offset: Complex64,
    scale: f64,
    u: &mut Array2<Complex64>,
    y: &mut [Complex64],
) {
    linalg::matmul(
        real_view_mut(u),
        false,
        1.0,
        sigma,
        Op::Plain,
        real_view(vt),
        Op::Plain,
    );
    for (r, ys) in y.iter_mut().enumerate() {
        let visible: Complex64 = sigma.row(r).iter().zip(v_a).map(|(x, y)| y * *x).sum();
        let hidden: Complex64 = t
            .row(r)
            .iter()
            .zip(u.row(r))
            .zip(v_b)
            .map(|((tj, uj), bj)| tj * (uj + bj))
            .sum();
        *ys = (visible + hidden - offset) * scale;
    }
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
        let blocks: Vec<BlockScratch> = (0..ns.div_ceil(SAMPLE_BLOCK))
            .map(|b| {
                let rows = SAMPLE_BLOCK.min(ns - b * SAMPLE_BLOCK);
                BlockScratch {
                    u: Array2::zeros((rows, m)),
                    y: vec![ZERO; rows],
                    r: Array2::zeros((rows, m + 1)),
                    q: Array2::zeros((n, m + 1)),
                    r_sums: vec![ZERO; m + 1],
                }
            })
            .collect();
        let mut jacobian = StructuredRbm {
            n,
            m,
            sigma,
            t,
            mean_a: Array1::zeros(n),
            mean_b: Array1::zeros(m),
            mean_w: Array2::zeros((m, n)),
            local_tw: Array2::zeros((m, n)),
            scale: (1.0 / n_total as f64).sqrt(),
            first_row,
            n_total,
            vt: Array2::zeros((n, m)),
            blocks,
        };
        // Σᵀ T (N × M) block by block (with R = [T | 1]); its transpose is Σ_s t_sj σ_si.
        let ones = vec![ONE; ns];
        jacobian.blocks_adjoint(&ones, false);
        let q = jacobian.summed_q();
        jacobian.local_tw = Array2::from_shape_fn((m, n), |(j, i)| q[[i, j]]);
        // One reduction for all of ⟨O⟩: [Σσ, Σt, Σ t⊗σ].
        let mut sums: Vec<Complex64> = (0..n).map(|i| q[[i, m]]).collect();
        sums.extend(jacobian.t.sum_axis(Axis(0)));
        sums.extend(jacobian.local_tw.iter());
        comm.sum_c64(&mut sums);
        let keep = if centering == Centering::Centred {
            1.0 / n_total as f64
        } else {
            0.0
        };
        jacobian.mean_a = Array1::from_iter(sums[..n].iter().map(|x| x * keep));
        jacobian.mean_b = Array1::from_iter(sums[n..n + m].iter().map(|x| x * keep));
        jacobian.mean_w = Array2::from_shape_fn((m, n), |(j, i)| sums[n + m + j * n + i] * keep);
        jacobian
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

    /// Prepares `vt = V_Wᵀ` and returns `⟨O⟩·v`.
    fn prepare_apply(&mut self, v: &[Complex64]) -> Complex64 {
        let (n, m) = (self.n, self.m);
        for j in 0..m {
            for i in 0..n {
                self.vt[[i, j]] = v[n + m + j * n + i];
            }
        }
        self.mean_dot(v)
    }

    /// `R = [diag(w) T̄_b | w]`, `q = Σ_bᵀ R` and the column sums of R for block b (with
    /// `conjugate = false`, T instead of T̄: used once for `Σᵀ T`).
    fn block_adjoint(
        sigma: ArrayView2<f64>,
        t: ArrayView2<Complex64>,
        w: &[Complex64],
        conjugate: bool,
        block: &mut BlockScratch,
    ) {
        let m = t.ncols();
        for ((mut row, t), &ws) in block.r.rows_mut().into_iter().zip(t.rows()).zip(w) {
            for (x, tj) in row.iter_mut().zip(t) {
                *x = ws * if conjugate { tj.conj() } else { *tj };
            }
            row[m] = ws;
        }
        block.r_sums.iter_mut().for_each(|x| *x = ZERO);
        for row in block.r.rows() {
            for (sum, x) in block.r_sums.iter_mut().zip(row) {
                *sum += x;
            }
        }
        sigma_transpose_times(sigma, &block.r, &mut block.q);
    }

    /// Runs `block_adjoint` on every block with its rows of `w` (or of each block's own `y`).
    fn blocks_adjoint(&mut self, w: &[Complex64], conjugate: bool) {
        let (sigma, t) = (&self.sigma, &self.t);
        self.blocks
            .par_iter_mut()
            .zip(w.par_chunks(SAMPLE_BLOCK))
            .enumerate()
            .for_each(|(b, (block, wb))| {
                let rows = b * SAMPLE_BLOCK..b * SAMPLE_BLOCK + wb.len();
                Self::block_adjoint(
                    sigma.slice(s![rows.clone(), ..]),
                    t.slice(s![rows, ..]),
                    wb,
                    conjugate,
                    block,
                );
            });
    }

    /// `Σ_b q_b` in block order.
    fn summed_q(&self) -> Array2<Complex64> {
        let mut q = Array2::<Complex64>::zeros((self.n, self.m + 1));
        for block in &self.blocks {
            q += &block.q;
        }
        q
    }

    /// `X† w` from the block results: weights `(Σᵀ R)ᵀ`, hidden the column sums of R, visible
    /// `Σᵀ w`, minus `⟨O⟩̄ Σ_s w_s`, times `1/√N_s`.
    fn gather_adjoint(&self, out: &mut [Complex64]) {
        let (n, m) = (self.n, self.m);
        out.iter_mut().for_each(|o| *o = ZERO);
        let mut w_sum = ZERO;
        for block in &self.blocks {
            for (i, o) in out[..n].iter_mut().enumerate() {
                *o += block.q[[i, m]];
            }
            for (o, x) in out[n..n + m].iter_mut().zip(&block.r_sums) {
                *o += x;
            }
            w_sum += block.r_sums[m];
            for j in 0..m {
                let weights = &mut out[n + m + j * n..n + m + (j + 1) * n];
                for (i, o) in weights.iter_mut().enumerate() {
                    *o += block.q[[i, j]];
                }
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

    fn apply(&mut self, v: &[Complex64], y: &mut [Complex64]) {
        let offset = self.prepare_apply(v);
        let (n, m, scale) = (self.n, self.m, self.scale);
        let (sigma, t, vt) = (&self.sigma, &self.t, &self.vt);
        self.blocks
            .par_iter_mut()
            .zip(y.par_chunks_mut(SAMPLE_BLOCK))
            .enumerate()
            .for_each(|(b, (block, yb))| {
                let rows = b * SAMPLE_BLOCK..b * SAMPLE_BLOCK + yb.len();
                block_apply(
                    sigma.slice(s![rows.clone(), ..]),
                    t.slice(s![rows, ..]),
                    vt,
                    &v[..n],
                    &v[n..n + m],
                    offset,
                    scale,
                    &mut block.u,
                    yb,
                );
            });
    }

    fn apply_adjoint(&mut self, w: &[Complex64], out: &mut [Complex64]) {
        self.blocks_adjoint(w, true);
        self.gather_adjoint(out);
    }

    /// One parallel pass: each block applies `X_b` and then `X_b†` to its own rows.
    fn apply_normal(&mut self, v: &[Complex64], out: &mut [Complex64], _: &mut [Complex64]) {
        let offset = self.prepare_apply(v);
        let (n, m, scale) = (self.n, self.m, self.scale);
        let (sigma, t, vt) = (&self.sigma, &self.t, &self.vt);
        self.blocks
            .par_iter_mut()
            .enumerate()
            .for_each(|(b, block)| {
                let rows = b * SAMPLE_BLOCK..b * SAMPLE_BLOCK + block.y.len();
                let (sigma, t) = (sigma.slice(s![rows.clone(), ..]), t.slice(s![rows, ..]));
                let mut y = std::mem::take(&mut block.y);
                let v_b = &v[n..n + m];
                block_apply(
                    sigma,
                    t,
                    vt,
                    &v[..n],
                    v_b,
                    offset,
                    scale,
                    &mut block.u,
                    &mut y,
                );
                Self::block_adjoint(sigma, t, &y, true, block);
                block.y = y;
            });
        self.gather_adjoint(out);
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
    /// row means of G and `ḡ` their mean; `r_s = O_s·⟨O⟩̄` comes from the factors in
    /// O(N_s N M), `ΣΣᵀ` from bit counts. Work `N_s² M/2` complex multiply-adds (the lower
    /// triangle of TT†) plus `N_s²/2` bit counts; communication: the factors,
    /// `N_s (N + M)` numbers, summed into place.
    fn kernel_builder(&self, comm: &dyn Communicator) -> Option<KernelBuilder<'_>> {
        let (n, m, total) = (self.n, self.m, self.n_total);
        let (sigma, t) = if comm.size() == 1 {
            (
                CowArray::from(self.sigma.view()),
                CowArray::from(self.t.view()),
            )
        } else {
            let mut sigma = Array2::<f64>::zeros((total, n));
            let mut t = Array2::<Complex64>::zeros((total, m));
            let rows = self.first_row..self.first_row + self.n_local();
            sigma.slice_mut(s![rows.clone(), ..]).assign(&self.sigma);
            t.slice_mut(s![rows, ..]).assign(&self.t);
            comm.sum_f64(sigma.as_slice_mut().expect("contiguous"));
            comm.sum_c64(t.as_slice_mut().expect("contiguous"));
            (CowArray::from(sigma), CowArray::from(t))
        };
        let inv = 1.0 / total as f64;
        // Row means of G (zero when uncentred: ⟨O⟩ is stored as zero then).
        let mean_wt = Array2::from_shape_fn((n, m), |(i, j)| self.mean_w[[j, i]].conj());
        let mean_a: Vec<Complex64> = self.mean_a.iter().map(|x| x.conj()).collect();
        let mean_b: Vec<Complex64> = self.mean_b.iter().map(|x| x.conj()).collect();
        let mut u = Array2::<Complex64>::zeros((total, m));
        let mut r = vec![ZERO; total];
        block_apply(
            sigma.view(),
            t.view(),
            &mean_wt,
            &mean_a,
            &mean_b,
            ZERO,
            1.0,
            &mut u,
            &mut r,
        );
        let grand: Complex64 = r.iter().sum::<Complex64>() * inv;
        // Spins as bits (1 for σ = −1): σ_s·σ_s' = N − 2 popcount(b_s ⊕ b_s'), so the Gram
        // matrix of Σ is never stored.
        let words = n.div_ceil(64).max(1);
        let mut bits = vec![0u64; total * words];
        for (row, spins) in bits.chunks_mut(words).zip(sigma.rows()) {
            for (i, &x) in spins.iter().enumerate() {
                if x < 0.0 {
                    row[i / 64] |= 1 << (i % 64);
                }
            }
        }
        Some(Box::new(move |k: &mut Array2<Complex64>| {
            square(k, total);
            linalg::gram_lower(k.view_mut(), t.view());
            k.axis_iter_mut(Axis(0))
                .into_par_iter()
                .enumerate()
                .for_each(|(s, mut row)| {
                    let bits_s = &bits[s * words..(s + 1) * words];
                    for ((sp, k), bits_sp) in row
                        .iter_mut()
                        .enumerate()
                        .zip(bits.chunks(words))
                        .take(s + 1)
                    {
                        let differ: u32 = bits_s
                            .iter()
                            .zip(bits_sp)
                            .map(|(a, b)| (a ^ b).count_ones())
                            .sum();
                        let gs = n as f64 - 2.0 * f64::from(differ);
                        *k = (*k * (1.0 + gs) + gs - r[s] - r[sp].conj() + grand) * inv;
                    }
                });
        }))
    }

    fn representation(&self) -> &'static str {
        "structured RBM"
    }
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
