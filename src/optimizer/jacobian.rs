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
/// matrix: half the flops of a complex GEMM. Σ is stored with a column of ones, `Σ₁ = [Σ | 1]`,
/// so the bias blocks ride along in the same GEMMs: `Σ₁ V₁` with `V₁ = [[V_Wᵀ, v_a], [v_bᵀ, 0]]`
/// gives `u + 1 v_bᵀ` and `Σ v_a` at once, and `Σ₁ᵀ R` also gives the column sums of R.
/// Products run over fixed blocks of [`SAMPLE_BLOCK`] rows in parallel, each with its own
/// scratch (allocated once per SR step), and block results are added in block order.
pub struct StructuredRbm {
    n: usize,
    m: usize,
    /// `Σ₁ = [Σ | 1]` (N_s × (N + 1)).
    spins: Array2<f64>,
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
    /// `V₁` ((N + 1) × (M + 1)) of the vector being applied.
    v1: Array2<Complex64>,
    blocks: Vec<BlockScratch>,
    /// `Σ_b q_b` ((N + 1) × (M + 1)).
    q_sum: Array2<Complex64>,
}

/// Scratch of one block of rows.
struct BlockScratch {
    /// `Σ₁ V₁` (rows × (M + 1)).
    u: Array2<Complex64>,
    /// `X_b v` (rows).
    y: Vec<Complex64>,
    /// `R = [diag(w) T̄_b | w]` (rows × (M + 1)).
    r: Array2<Complex64>,
    /// `Σ₁ᵀ R` ((N + 1) × (M + 1)): weights `[..N, ..M]`, visible `[..N, M]`, hidden `[N, ..M]`
    /// and `Σ_s w_s` at `[N, M]`.
    q: Array2<Complex64>,
}

/// `Σ_j a_j b_j` with four independent partial sums per component (so it vectorizes without
/// reassociating one sum).
fn dot(a: &[Complex64], b: &[Complex64]) -> Complex64 {
    let (mut re, mut im) = ([0.0f64; 4], [0.0f64; 4]);
    let chunks = a.len() / 4;
    for c in 0..chunks {
        for l in 0..4 {
            let (x, y) = (a[4 * c + l], b[4 * c + l]);
            re[l] += x.re * y.re - x.im * y.im;
            im[l] += x.re * y.im + x.im * y.re;
        }
    }
    let tail: Complex64 = a[4 * chunks..]
        .iter()
        .zip(&b[4 * chunks..])
        .map(|(x, y)| x * y)
        .sum();
    Complex64::new(re.iter().sum(), im.iter().sum()) + tail
}

/// `y = X_b v` of a block of rows: `(Σ_j t_sj u_sj + u_sM − offset)·scale` with `u = Σ₁ V₁`
/// (a real GEMM on the interleaved view; `u` is scratch, rows × (M + 1)).
fn block_apply(
    spins: ArrayView2<f64>,
    t: ArrayView2<Complex64>,
    v1: &Array2<Complex64>,
    (offset, scale): (Complex64, f64),
    u: &mut Array2<Complex64>,
    y: &mut [Complex64],
) {
    let m = t.ncols();
    linalg::matmul(
        real_view_mut(u),
        false,
        1.0,
        spins,
        Op::Plain,
        real_view(v1),
        Op::Plain,
    );
    for ((ys, t), u) in y.iter_mut().zip(t.rows()).zip(u.rows()) {
        let (t, u) = (
            t.to_slice().expect("row-major"),
            u.to_slice().expect("row-major"),
        );
        *ys = (dot(t, &u[..m]) + u[m] - offset) * scale;
    }
}

/// `R = [diag(w) T̄_b | w]` (T instead of T̄ with `conjugate = false`) and `q = Σ₁ᵀ R` of a block
/// of rows.
fn block_adjoint(
    spins: ArrayView2<f64>,
    t: ArrayView2<Complex64>,
    w: &[Complex64],
    conjugate: bool,
    r: &mut Array2<Complex64>,
    q: &mut Array2<Complex64>,
) {
    let m = t.ncols();
    let sign = if conjugate { -1.0 } else { 1.0 };
    for ((mut row, t), &ws) in r.rows_mut().into_iter().zip(t.rows()).zip(w) {
        let (row, t) = (
            row.as_slice_mut().expect("row-major"),
            t.to_slice().expect("row-major"),
        );
        for (x, tj) in row[..m].iter_mut().zip(t) {
            let tj = Complex64::new(tj.re, sign * tj.im);
            *x = ws * tj;
        }
        row[m] = ws;
    }
    linalg::matmul(
        real_view_mut(q),
        false,
        1.0,
        spins,
        Op::Transpose,
        real_view(r),
        Op::Plain,
    );
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
        let spins = Array2::from_shape_fn((ns, n + 1), |(s, i)| {
            samples
                .configuration(s)
                .get(i)
                .map_or(1.0, |&x| f64::from(x))
        });
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
                    u: Array2::zeros((rows, m + 1)),
                    y: vec![ZERO; rows],
                    r: Array2::zeros((rows, m + 1)),
                    q: Array2::zeros((n + 1, m + 1)),
                }
            })
            .collect();
        let mut jacobian = StructuredRbm {
            n,
            m,
            spins,
            t,
            mean_a: Array1::zeros(n),
            mean_b: Array1::zeros(m),
            mean_w: Array2::zeros((m, n)),
            local_tw: Array2::zeros((m, n)),
            scale: (1.0 / n_total as f64).sqrt(),
            first_row,
            n_total,
            v1: Array2::zeros((n + 1, m + 1)),
            blocks,
            q_sum: Array2::zeros((n + 1, m + 1)),
        };
        // Σ₁ᵀ [T | 1]: Σᵀ T (its transpose is Σ_s t_sj σ_si), Σᵀ 1 and the column sums of T.
        let ones = vec![ONE; ns];
        jacobian.blocks_adjoint(&ones, false);
        jacobian.sum_blocks();
        let q = &jacobian.q_sum;
        jacobian.local_tw = Array2::from_shape_fn((m, n), |(j, i)| q[[i, j]]);
        // One reduction for all of ⟨O⟩: [Σσ, Σt, Σ t⊗σ].
        let mut sums: Vec<Complex64> = (0..n).map(|i| q[[i, m]]).collect();
        sums.extend((0..m).map(|j| q[[n, j]]));
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

    /// The factors `(Σ₁, T)` of block b, which holds `rows` samples.
    fn block_factors(
        &self,
        b: usize,
        rows: usize,
    ) -> (ArrayView2<'_, f64>, ArrayView2<'_, Complex64>) {
        let range = b * SAMPLE_BLOCK..b * SAMPLE_BLOCK + rows;
        (
            self.spins.slice(s![range.clone(), ..]),
            self.t.slice(s![range, ..]),
        )
    }

    /// Fills `V₁` from v and returns `⟨O⟩·v`.
    fn prepare_apply(&mut self, v: &[Complex64]) -> Complex64 {
        fill_v1(&mut self.v1, self.n, self.m, v);
        self.mean_dot(v)
    }

    /// Runs [`block_adjoint`] on every block with its rows of `w`.
    fn blocks_adjoint(&mut self, w: &[Complex64], conjugate: bool) {
        let mut blocks = std::mem::take(&mut self.blocks);
        blocks
            .par_iter_mut()
            .zip(w.par_chunks(SAMPLE_BLOCK))
            .enumerate()
            .for_each(|(b, (block, wb))| {
                let (spins, t) = self.block_factors(b, wb.len());
                linalg::sequential(|| {
                    block_adjoint(spins, t, wb, conjugate, &mut block.r, &mut block.q)
                });
            });
        self.blocks = blocks;
    }

    /// `q_sum = Σ_b q_b` in block order.
    fn sum_blocks(&mut self) {
        self.q_sum.fill(ZERO);
        for block in &self.blocks {
            self.q_sum += &block.q;
        }
    }

    /// `X† w` from the block results `q = Σ₁ᵀ R`: weights `q[i, j]`, visible `q[i, M]`, hidden
    /// `q[N, j]`, minus `⟨O⟩̄ Σ_s w_s` (`Σ_s w_s = q[N, M]`), times `1/√N_s`.
    fn gather_adjoint(&mut self, out: &mut [Complex64]) {
        let (n, m) = (self.n, self.m);
        self.sum_blocks();
        let q = &self.q_sum;
        for (i, o) in out[..n].iter_mut().enumerate() {
            *o = q[[i, m]];
        }
        for (j, o) in out[n..n + m].iter_mut().enumerate() {
            *o = q[[n, j]];
        }
        for (j, weights) in out[n + m..].chunks_mut(n).enumerate() {
            for (i, o) in weights.iter_mut().enumerate() {
                *o = q[[i, j]];
            }
        }
        let w_sum = q[[n, m]];
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

/// `V₁ = [[V_Wᵀ, v_a], [v_bᵀ, 0]]` ((N + 1) × (M + 1)) of a parameter-space vector v.
fn fill_v1(v1: &mut Array2<Complex64>, n: usize, m: usize, v: &[Complex64]) {
    for j in 0..m {
        for i in 0..n {
            v1[[i, j]] = v[n + m + j * n + i];
        }
        v1[[n, j]] = v[n + j];
    }
    for i in 0..n {
        v1[[i, m]] = v[i];
    }
    v1[[n, m]] = ZERO;
}

impl Jacobian for StructuredRbm {
    fn n_parameters(&self) -> usize {
        self.n + self.m + self.n * self.m
    }
    fn n_local(&self) -> usize {
        self.spins.nrows()
    }
    fn first_row(&self) -> usize {
        self.first_row
    }
    fn n_total(&self) -> usize {
        self.n_total
    }

    fn apply(&mut self, v: &[Complex64], y: &mut [Complex64]) {
        let factors = (self.prepare_apply(v), self.scale);
        let mut blocks = std::mem::take(&mut self.blocks);
        blocks
            .par_iter_mut()
            .zip(y.par_chunks_mut(SAMPLE_BLOCK))
            .enumerate()
            .for_each(|(b, (block, yb))| {
                let (spins, t) = self.block_factors(b, yb.len());
                linalg::sequential(|| block_apply(spins, t, &self.v1, factors, &mut block.u, yb));
            });
        self.blocks = blocks;
    }

    fn apply_adjoint(&mut self, w: &[Complex64], out: &mut [Complex64]) {
        self.blocks_adjoint(w, true);
        self.gather_adjoint(out);
    }

    /// One parallel pass: each block applies `X_b` and then `X_b†` to its own rows.
    fn apply_normal(&mut self, v: &[Complex64], out: &mut [Complex64], _: &mut [Complex64]) {
        let factors = (self.prepare_apply(v), self.scale);
        let mut blocks = std::mem::take(&mut self.blocks);
        blocks.par_iter_mut().enumerate().for_each(|(b, block)| {
            let (spins, t) = self.block_factors(b, block.y.len());
            linalg::sequential(|| {
                block_apply(spins, t, &self.v1, factors, &mut block.u, &mut block.y);
                block_adjoint(spins, t, &block.y, true, &mut block.r, &mut block.q);
            });
        });
        self.blocks = blocks;
        self.gather_adjoint(out);
    }

    fn column_norms(&mut self, out: &mut [f64]) {
        let (n, m) = (self.n, self.m);
        let ns = self.n_local() as f64;
        let s2 = self.scale * self.scale;
        for (i, o) in out[..n].iter_mut().enumerate() {
            let mean = self.mean_a[i];
            *o = self
                .spins
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
                row[i] = (Complex64::new(self.spins[[s, i]], 0.0) - self.mean_a[i]) * self.scale;
            }
            for j in 0..m {
                let tj = self.t[[s, j]];
                row[n + j] = (tj - self.mean_b[j]) * self.scale;
                for i in 0..n {
                    row[n + m + j * n + i] =
                        (tj * self.spins[[s, i]] - self.mean_w[[j, i]]) * self.scale;
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
        let (spins, t) = if comm.size() == 1 {
            (
                CowArray::from(self.spins.view()),
                CowArray::from(self.t.view()),
            )
        } else {
            let mut spins = Array2::<f64>::zeros((total, n + 1));
            let mut t = Array2::<Complex64>::zeros((total, m));
            let rows = self.first_row..self.first_row + self.n_local();
            spins.slice_mut(s![rows.clone(), ..]).assign(&self.spins);
            t.slice_mut(s![rows, ..]).assign(&self.t);
            comm.sum_f64(spins.as_slice_mut().expect("contiguous"));
            comm.sum_c64(t.as_slice_mut().expect("contiguous"));
            (CowArray::from(spins), CowArray::from(t))
        };
        let inv = 1.0 / total as f64;
        // Row means of G, r = O ⟨O⟩̄ (zero when uncentred: ⟨O⟩ is stored as zero then).
        let mut mean = self.mean_a.to_vec();
        mean.extend(self.mean_b.iter());
        mean.extend(self.mean_w.iter());
        mean.iter_mut().for_each(|x| *x = x.conj());
        let mut v1 = Array2::zeros((n + 1, m + 1));
        fill_v1(&mut v1, n, m, &mean);
        let mut u = Array2::<Complex64>::zeros((total, m + 1));
        let mut r = vec![ZERO; total];
        block_apply(spins.view(), t.view(), &v1, (ZERO, 1.0), &mut u, &mut r);
        let grand: Complex64 = r.iter().sum::<Complex64>() * inv;
        // Spins as bits (1 for σ = −1): σ_s·σ_s' = N − 2 popcount(b_s ⊕ b_s'), so the Gram
        // matrix of Σ is never stored.
        let words = n.div_ceil(64).max(1);
        let mut bits = vec![0u64; total * words];
        for (row, spins) in bits.chunks_mut(words).zip(spins.rows()) {
            for (i, &x) in spins.iter().take(n).enumerate() {
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
