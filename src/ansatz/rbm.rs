//! Complex restricted Boltzmann machines: `rbm` (dense) and `rbm_symm` (weights shared over the
//! translations, or over the whole space group).
//!
//! `log ψ(σ) = Σ_i a_i σ_i + Σ_j ln cosh θ_j`, `θ_j = b_j + Σ_i W_ji σ_i`, all complex.
//!
//! **Fast updates without transcendental functions.** Flipping the sites F changes
//! `θ_j → θ_j + Δ_j`, `Δ_j = −2 Σ_{i∈F} W_ji σ_i`. With `t_j = e^{−2θ_j}` and `r_j = e^{Δ_j}`,
//!
//! `cosh(θ_j + Δ_j)/cosh θ_j = r_j B_j + r_j^{−1} A_j`,  `B_j = 1/(1+t_j)`, `A_j = t_j/(1+t_j)`,
//!
//! and `r_j^{±1} = Π_{i∈F} e^{∓2W_ji σ_i}` come from tables built once per parameter update. A
//! proposal therefore costs a few complex multiplications per hidden unit. The running product
//! is rescaled by exact powers of two so it never under- or overflows. On acceptance
//! `t_j → t_j r_j^{−2}`, i.e. `D_j = B_j + A_j r_j^{−2}`, `B_j → B_j/D_j`, `A_j → A_j r_j^{−2}/D_j`,
//! and `θ_j → θ_j + Δ_j`. `A` and `B` stay bounded for any θ (no overflow as |t| grows), and
//! `tanh θ_j = B_j − A_j` gives the derivatives for free. The cache is rebuilt from σ with
//! [`Ansatz::refresh`] (θ by the definition, A and B by one stable exponential each) whenever
//! the parameters change and periodically to stop drift.
//!
//! **Vector layout.** The per-hidden-unit loops (ratio, update, refresh) run over blocks of
//! [`LANES`] hidden units with real and imaginary parts stored apart ([`Lanes`]), so they compile
//! to vector instructions; M is padded to whole blocks with inert units (`W = 0`, `θ = 0`,
//! whose factor `r B + r^{−1} A = B + A` is exactly 1).
//!
//! **Parameter layout** (one flat complex vector):
//! - `rbm`: `[a_0..a_{N−1}, b_0..b_{M−1}, W_{0,0}..W_{0,N−1}, W_{1,0}, …]` (W row-major, M×N),
//!   M = αN.
//! - `rbm_symm`: `[a, b_0..b_{α−1}, w_{0,0}..w_{0,N−1}, w_{1,0}, …]`: one visible bias, α filters
//!   of N weights; hidden unit (f, g) of group element g (a translation, or a translation
//!   after a point-group element) has `W_{(f,g), g(k)} = w_{f,k}`, M = α·|G|. Derivatives sum
//!   over the group: `O_{w_{f,k}} = Σ_g tanh θ_{f,g} σ_{g(k)}`.

use super::{log_cosh, Ansatz, DenseRbmLayer};
use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const ZERO: Complex64 = Complex64::new(0.0, 0.0);
const ONE: Complex64 = Complex64::new(1.0, 0.0);

/// Dense or symmetric parameterization of the same RBM kernel.
#[derive(Clone, Debug)]
pub enum RbmKind {
    /// Independent `a`, `b`, `W` with `alpha·N` hidden units.
    Dense { alpha: usize },
    /// `alpha` filters shared over a group of site permutations `perms` (site k ↦ perms[g][k]):
    /// `θ_{f,g}(σ) = b_f + Σ_k W_{f,k} σ_{perms[g][k]}`, so `ψ(σ) = ψ(gσ)` for every g.
    Symmetric {
        alpha: usize,
        perms: Vec<Vec<usize>>,
    },
}

impl RbmKind {
    /// `alpha` filters shared over the translations of `lattice`, or over its whole space
    /// group (translations × point group, [`Lattice::space_group`]) when `point_group`.
    ///
    /// [`Lattice::space_group`]: crate::lattice::Lattice::space_group
    pub fn symmetric(alpha: usize, lattice: &crate::lattice::Lattice, point_group: bool) -> Self {
        let perms = if point_group {
            lattice.space_group()
        } else {
            lattice
                .translations()
                .iter()
                .map(|t| t.perm.clone())
                .collect()
        };
        RbmKind::Symmetric { alpha, perms }
    }
}

/// A complex RBM: the flat parameters plus the expanded kernel and exponential tables.
#[derive(Clone, Debug)]
pub struct Rbm {
    kind: RbmKind,
    n: usize,
    m: usize,
    params: Vec<Complex64>,
    a: Vec<Complex64>,
    b: Vec<Complex64>,
    /// `w[j·N + i] = W_ji`.
    w: Vec<Complex64>,
    /// Blocks of [`LANES`] hidden units (M rounded up).
    blocks: usize,
    /// `b` by blocks (padding 0).
    b_lanes: Vec<Lanes>,
    /// `w_lanes[i·blocks + c]`: `W_ji` of the hidden units j of block c (padding 0).
    w_lanes: Vec<Lanes>,
    /// `exp_down[i·blocks + c] = e^{−2W_ji}` (r_j for flipping an up spin i), `exp_up` =
    /// e^{+2W_ji}, by blocks (padding 1).
    exp_down: Vec<Lanes>,
    exp_up: Vec<Lanes>,
    /// `max_ji |Re W_ji|`: with [`TABLE_LIMIT`], whether a move may use the tables.
    max_re_w: f64,
}

/// A factor `r_j B_j + r_j^{−1} A_j` has modulus at most `e^{2 max|Re W|·|F|}`, and
/// [`lane_product`] stays finite for factors up to `2^59 ≈ e^{40.9}`; the flip update's
/// `r_j^{−2}` is then below `e^{80}`. So a move with `max|Re W|·|F| >` this limit takes the
/// log-cosh path instead (exact for any weights, slower; typical weights are far below it).
const TABLE_LIMIT: f64 = 20.0;

/// Hidden units per block of the vectorized loops (two AVX2 or one AVX-512 register of f64).
const LANES: usize = 8;

/// [`LANES`] complex numbers with real and imaginary parts apart, so that lane-wise arithmetic
/// is plain vector arithmetic.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(64))]
struct Lanes {
    re: [f64; LANES],
    im: [f64; LANES],
}

impl Lanes {
    const ZERO: Lanes = Lanes::splat(ZERO);
    const ONE: Lanes = Lanes::splat(ONE);

    const fn splat(z: Complex64) -> Lanes {
        Lanes {
            re: [z.re; LANES],
            im: [z.im; LANES],
        }
    }

    #[inline(always)]
    fn get(&self, l: usize) -> Complex64 {
        Complex64::new(self.re[l], self.im[l])
    }

    #[inline(always)]
    fn set(&mut self, l: usize, z: Complex64) {
        self.re[l] = z.re;
        self.im[l] = z.im;
    }

    /// Lane-wise `self · other`.
    #[inline(always)]
    fn mul(self, other: Lanes) -> Lanes {
        let mut out = Lanes::ZERO;
        for l in 0..LANES {
            out.re[l] = self.re[l] * other.re[l] - self.im[l] * other.im[l];
            out.im[l] = self.re[l] * other.im[l] + self.im[l] * other.re[l];
        }
        out
    }

    /// Lane-wise `self + other`.
    #[inline(always)]
    fn add(self, other: Lanes) -> Lanes {
        let mut out = self;
        for l in 0..LANES {
            out.re[l] += other.re[l];
            out.im[l] += other.im[l];
        }
        out
    }

    /// Lane-wise `self · x` for a real x.
    #[inline(always)]
    fn scale(self, x: f64) -> Lanes {
        let mut out = self;
        for l in 0..LANES {
            out.re[l] *= x;
            out.im[l] *= x;
        }
        out
    }

    /// Lane-wise `1/self = conj(self)/|self|²`.
    #[inline(always)]
    fn inv(self) -> Lanes {
        let mut out = self;
        for l in 0..LANES {
            let norm = self.re[l] * self.re[l] + self.im[l] * self.im[l];
            out.re[l] = self.re[l] / norm;
            out.im[l] = -self.im[l] / norm;
        }
        out
    }

    /// Scales every lane by an exact power of two `2^{−k_l}` that brings its larger component
    /// to binary exponent 0 (k clamped to ±1022, so the scale is a normal number), and adds
    /// `k_l` to `exponent[l]`: branch-free, so it stays vectorized.
    #[inline(always)]
    fn renormalize(&mut self, exponent: &mut [i64; LANES]) {
        for (l, e) in exponent.iter_mut().enumerate() {
            let k = binary_exponent(self.get(l));
            let scale = inverse_power_of_two(k);
            self.re[l] *= scale;
            self.im[l] *= scale;
            *e += k;
        }
    }
}

/// `Π_c Π_l factor(c)_l` as (mantissa, binary exponent): one running product per lane,
/// renormalized every 16 blocks, so no partial product under- or overflows for factors of
/// modulus between 2^-59 and 2^59; the lanes are multiplied together at the end.
#[inline(always)]
fn lane_product(blocks: usize, mut factor: impl FnMut(usize) -> Lanes) -> (Complex64, i32) {
    let mut acc = Lanes::ONE;
    let mut exponents = [0i64; LANES];
    for c in 0..blocks {
        acc = acc.mul(factor(c));
        if c % 16 == 15 {
            acc.renormalize(&mut exponents);
        }
    }
    acc.renormalize(&mut exponents);
    let mut exponent = exponents.iter().sum::<i64>() as i32;
    let mut product = ONE;
    for l in 0..LANES {
        product *= acc.get(l);
        renormalize(&mut product, &mut exponent);
    }
    (product, exponent)
}

/// Per-chain cache: θ and the bounded pair (A, B) of every hidden unit, by blocks of
/// `LANES` = 8 (padding units: θ = 0, A = B = 1/2).
#[derive(Clone, Debug, Default)]
pub struct RbmCache {
    theta: Vec<Lanes>,
    /// `A_j = t_j/(1+t_j)`.
    a_t: Vec<Lanes>,
    /// `B_j = 1/(1+t_j)`.
    b_t: Vec<Lanes>,
}

impl RbmCache {
    /// `(A, B)` of block `c` from its θ, one bounded exponential per unit ([`bounded_pair`]).
    fn pairs_from_theta(&mut self, c: usize) {
        for l in 0..LANES {
            let (a, b) = bounded_pair(self.theta[c].get(l));
            self.a_t[c].set(l, a);
            self.b_t[c].set(l, b);
        }
    }

    /// `θ_j`.
    pub fn theta(&self, j: usize) -> Complex64 {
        self.theta[j / LANES].get(j % LANES)
    }
    /// `tanh θ_j = B_j − A_j`.
    pub fn tanh(&self, j: usize) -> Complex64 {
        self.b_t[j / LANES].get(j % LANES) - self.a_t[j / LANES].get(j % LANES)
    }
}

/// The binary exponent k of the larger component of z, clamped to ±1022 so that `2^{−k}` is
/// a normal number: `|z| 2^{−k}` is of order one (zero stays zero).
#[inline(always)]
fn binary_exponent(z: Complex64) -> i64 {
    let larger = z.re.abs().max(z.im.abs());
    (((larger.to_bits() >> 52) & 0x7ff) as i64 - 1023).clamp(-1022, 1022)
}

/// `2^{−k}` for |k| ≤ 1022, exactly, from its bits (no `powi`, whose call LLVM may hoist out of
/// a branch).
#[inline(always)]
fn inverse_power_of_two(k: i64) -> f64 {
    f64::from_bits(((1023 - k) as u64) << 52)
}

/// Multiplies `z` by a power of two so that its binary exponent is 0; adds the power to `exponent`.
#[inline]
fn renormalize(z: &mut Complex64, exponent: &mut i32) {
    let k = binary_exponent(*z);
    *z *= inverse_power_of_two(k);
    *exponent += k as i32;
}

/// Gaussian pair by Box–Muller.
fn gaussian(rng: &mut Xoshiro256PlusPlus) -> (f64, f64) {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    let r = (-2.0 * u1.ln()).sqrt();
    let phi = 2.0 * std::f64::consts::PI * u2;
    (r * phi.cos(), r * phi.sin())
}

impl Rbm {
    /// An RBM on `n` sites with zero parameters.
    pub fn new(n: usize, kind: RbmKind) -> Self {
        let (m, p) = match &kind {
            RbmKind::Dense { alpha } => (alpha * n, n + alpha * n + alpha * n * n),
            RbmKind::Symmetric { alpha, perms } => (alpha * perms.len(), 1 + alpha + alpha * n),
        };
        let blocks = m.div_ceil(LANES);
        let mut rbm = Rbm {
            kind,
            n,
            m,
            params: vec![ZERO; p],
            a: vec![ZERO; n],
            b: vec![ZERO; m],
            w: vec![ZERO; m * n],
            blocks,
            b_lanes: vec![Lanes::ZERO; blocks],
            w_lanes: vec![Lanes::ZERO; n * blocks],
            exp_down: vec![Lanes::ONE; n * blocks],
            exp_up: vec![Lanes::ONE; n * blocks],
            max_re_w: 0.0,
        };
        rbm.expand();
        rbm
    }

    /// Parameters with independent real and imaginary parts drawn from N(0, std²), reproducible
    /// from `seed`.
    pub fn random(n: usize, kind: RbmKind, std: f64, seed: u64) -> Self {
        let mut rbm = Self::new(n, kind);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let params: Vec<Complex64> = (0..rbm.params.len())
            .map(|_| {
                let (x, y) = gaussian(&mut rng);
                Complex64::new(std * x, std * y)
            })
            .collect();
        rbm.set_parameters(&params);
        rbm
    }

    pub fn rbm_kind(&self) -> &RbmKind {
        &self.kind
    }
    pub fn n_hidden(&self) -> usize {
        self.m
    }

    /// Expands the flat parameters into a, b, W and the blocked tables.
    fn expand(&mut self) {
        let (n, m) = (self.n, self.m);
        match &self.kind {
            RbmKind::Dense { .. } => {
                self.a.copy_from_slice(&self.params[..n]);
                self.b.copy_from_slice(&self.params[n..n + m]);
                self.w.copy_from_slice(&self.params[n + m..]);
            }
            RbmKind::Symmetric { alpha, perms } => {
                let n_t = perms.len();
                self.a.iter_mut().for_each(|x| *x = self.params[0]);
                for f in 0..*alpha {
                    let filter = &self.params[1 + alpha + f * n..1 + alpha + (f + 1) * n];
                    for (t, perm) in perms.iter().enumerate() {
                        let j = f * n_t + t;
                        self.b[j] = self.params[1 + f];
                        for (k, &site) in perm.iter().enumerate() {
                            self.w[j * n + site] = filter[k];
                        }
                    }
                }
            }
        }
        let blocks = self.blocks;
        for j in 0..m {
            let (c, l) = (j / LANES, j % LANES);
            self.b_lanes[c].set(l, self.b[j]);
            for i in 0..n {
                let w = self.w[j * n + i];
                self.w_lanes[i * blocks + c].set(l, w);
                self.exp_down[i * blocks + c].set(l, (-2.0 * w).exp());
                self.exp_up[i * blocks + c].set(l, (2.0 * w).exp());
            }
        }
        self.max_re_w = self.w.iter().fold(0.0, |m, w| m.max(w.re.abs()));
    }

    /// Whether flipping `flips` sites may use the exponential tables ([`TABLE_LIMIT`]).
    #[inline]
    fn tables_hold(&self, flips: &[usize]) -> bool {
        self.max_re_w * flips.len() as f64 <= TABLE_LIMIT
    }

    /// `(r, r^{−1})` tables (by blocks) for flipping site i with spin `sigma_i`.
    #[inline]
    fn tables(&self, i: usize, sigma_i: i8) -> (&[Lanes], &[Lanes]) {
        let range = i * self.blocks..(i + 1) * self.blocks;
        if sigma_i > 0 {
            (&self.exp_down[range.clone()], &self.exp_up[range])
        } else {
            (&self.exp_up[range.clone()], &self.exp_down[range])
        }
    }

    /// `Π_j (r_j B_j + r_j^{−1} A_j)` as (mantissa, binary exponent), plus the visible part
    /// `−2 Σ_{i∈F} a_i σ_i`.
    #[inline]
    fn ratio_parts(
        &self,
        sigma: &[i8],
        cache: &RbmCache,
        flips: &[usize],
    ) -> (Complex64, i32, Complex64) {
        let visible: Complex64 = flips
            .iter()
            .map(|&i| self.a[i] * (-2.0 * f64::from(sigma[i])))
            .sum();
        let (a_t, b_t) = (&cache.a_t[..self.blocks], &cache.b_t[..self.blocks]);
        let (product, exponent) = match flips {
            [] => (ONE, 0),
            [i] => {
                let (r, ri) = self.tables(*i, sigma[*i]);
                lane_product(self.blocks, |c| r[c].mul(b_t[c]).add(ri[c].mul(a_t[c])))
            }
            [i, k] => {
                let (r1, ri1) = self.tables(*i, sigma[*i]);
                let (r2, ri2) = self.tables(*k, sigma[*k]);
                lane_product(self.blocks, |c| {
                    r1[c]
                        .mul(r2[c])
                        .mul(b_t[c])
                        .add(ri1[c].mul(ri2[c]).mul(a_t[c]))
                })
            }
            _ => lane_product(self.blocks, |c| {
                let (mut r, mut ri) = (Lanes::ONE, Lanes::ONE);
                for &i in flips {
                    let (t, ti) = self.tables(i, sigma[i]);
                    r = r.mul(t[c]);
                    ri = ri.mul(ti[c]);
                }
                r.mul(b_t[c]).add(ri.mul(a_t[c]))
            }),
        };
        (product, exponent, visible)
    }

    /// The plain log-cosh evaluation of `log ψ(σ') − log ψ(σ)` (reference path for tests):
    /// `Σ_j [ln cosh(θ_j + Δ_j) − ln cosh θ_j] − 2 Σ_{i∈F} a_i σ_i`.
    pub fn log_ratio_logcosh(&self, sigma: &[i8], cache: &RbmCache, flips: &[usize]) -> Complex64 {
        let mut sum: Complex64 = flips
            .iter()
            .map(|&i| self.a[i] * (-2.0 * f64::from(sigma[i])))
            .sum();
        for j in 0..self.m {
            let delta: Complex64 = flips
                .iter()
                .map(|&i| self.w[j * self.n + i] * (-2.0 * f64::from(sigma[i])))
                .sum();
            sum += log_cosh(cache.theta(j) + delta) - log_cosh(cache.theta(j));
        }
        sum
    }
}

/// `(A, B) = (t/(1+t), 1/(1+t))` of `t = e^{−2θ}`, evaluated with the exponential of modulus ≤ 1.
#[inline]
fn bounded_pair(theta: Complex64) -> (Complex64, Complex64) {
    if theta.re >= 0.0 {
        let t = (-2.0 * theta).exp();
        let b = (ONE + t).inv();
        (t * b, b)
    } else {
        let u = (2.0 * theta).exp();
        let a = (ONE + u).inv();
        (a, u * a)
    }
}

impl DenseRbmLayer<RbmCache> for Rbm {
    fn n_hidden(&self) -> usize {
        self.m
    }
    fn activations(&self, cache: &RbmCache, out: &mut [Complex64]) {
        for (j, o) in out[..self.m].iter_mut().enumerate() {
            *o = cache.tanh(j);
        }
    }
}

impl Ansatz for Rbm {
    type Cache = RbmCache;

    fn kind(&self) -> &'static str {
        match self.kind {
            RbmKind::Dense { .. } => "rbm",
            RbmKind::Symmetric { .. } => "rbm_symm",
        }
    }
    fn dense_rbm_layer(&self) -> Option<&dyn DenseRbmLayer<RbmCache>> {
        match self.kind {
            RbmKind::Dense { .. } => Some(self),
            RbmKind::Symmetric { .. } => None,
        }
    }

    fn n_sites(&self) -> usize {
        self.n
    }
    fn n_parameters(&self) -> usize {
        self.params.len()
    }
    fn n_hidden(&self) -> usize {
        self.m
    }
    fn parameters(&self) -> &[Complex64] {
        &self.params
    }
    fn set_parameters(&mut self, parameters: &[Complex64]) {
        self.params.copy_from_slice(parameters);
        self.expand();
    }

    /// The first `alpha` units are filters of `rbm_symm` or groups of N hidden units of `rbm`;
    /// in the layout above every block grows at its end: `[a | b_old, b_new | W_old, W_new]`.
    fn widened(&self, narrower: &[Complex64], alpha: usize) -> Result<Vec<Complex64>, String> {
        let n = self.n;
        // (visible biases, hidden biases per unit of alpha, weights per unit of alpha, alpha)
        let (visible, biases, weights, own) = match &self.kind {
            RbmKind::Dense { alpha } => (n, n, n * n, *alpha),
            RbmKind::Symmetric { alpha, .. } => (1, 1, n, *alpha),
        };
        let expected = visible + alpha * (biases + weights);
        if narrower.len() != expected {
            return Err(format!(
                "ansatz/parameters has {} entries; {} alpha = {alpha} on {n} sites has {expected}",
                narrower.len(),
                self.kind()
            ));
        }
        if alpha > own {
            return Err(format!(
                "the stored alpha = {alpha} is wider than this ansatz's alpha = {own}"
            ));
        }
        let mut out = self.params.clone();
        let (old_b, old_w) = (alpha * biases, alpha * weights);
        out[..visible + old_b].copy_from_slice(&narrower[..visible + old_b]);
        let w_start = visible + own * biases;
        out[w_start..w_start + old_w].copy_from_slice(&narrower[visible + old_b..]);
        Ok(out)
    }

    fn cache_bytes(&self) -> u64 {
        3 * (self.blocks * std::mem::size_of::<Lanes>()) as u64
    }

    fn new_cache(&self) -> RbmCache {
        let half = Lanes::splat(Complex64::new(0.5, 0.0));
        RbmCache {
            theta: vec![Lanes::ZERO; self.blocks],
            a_t: vec![half; self.blocks],
            b_t: vec![half; self.blocks],
        }
    }

    /// `θ = b + Σ_i σ_i W_{·i}` by blocks, then `(A, B)` of every unit (padding: θ = 0 gives
    /// A = B = 1/2).
    fn refresh(&self, sigma: &[i8], cache: &mut RbmCache) {
        let blocks = self.blocks;
        cache.theta.copy_from_slice(&self.b_lanes);
        for (i, &s) in sigma.iter().enumerate() {
            let column = &self.w_lanes[i * blocks..(i + 1) * blocks];
            for (theta, w) in cache.theta.iter_mut().zip(column) {
                *theta = theta.add(w.scale(f64::from(s)));
            }
        }
        for c in 0..blocks {
            cache.pairs_from_theta(c);
        }
    }

    fn log_psi(&self, sigma: &[i8], cache: &RbmCache) -> Complex64 {
        let visible: Complex64 = self
            .a
            .iter()
            .zip(sigma)
            .map(|(&a, &s)| a * f64::from(s))
            .sum();
        (0..self.m).fold(visible, |acc, j| acc + log_cosh(cache.theta(j)))
    }

    fn log_ratio(&self, sigma: &[i8], cache: &RbmCache, flips: &[usize]) -> Complex64 {
        if !self.tables_hold(flips) {
            return self.log_ratio_logcosh(sigma, cache, flips);
        }
        let (product, exponent, visible) = self.ratio_parts(sigma, cache, flips);
        product.ln() + f64::from(exponent) * std::f64::consts::LN_2 + visible
    }

    fn log_modulus_ratio(&self, sigma: &[i8], cache: &RbmCache, flips: &[usize]) -> f64 {
        if !self.tables_hold(flips) {
            return self.log_ratio_logcosh(sigma, cache, flips).re;
        }
        let (product, exponent, visible) = self.ratio_parts(sigma, cache, flips);
        0.5 * product.norm_sqr().ln() + f64::from(exponent) * std::f64::consts::LN_2 + visible.re
    }

    fn ratio(&self, sigma: &[i8], cache: &RbmCache, flips: &[usize]) -> Complex64 {
        if !self.tables_hold(flips) {
            return self.log_ratio_logcosh(sigma, cache, flips).exp();
        }
        let (product, exponent, visible) = self.ratio_parts(sigma, cache, flips);
        // 2^exponent · e^visible as one exponential: no integer power.
        product * (visible + f64::from(exponent) * std::f64::consts::LN_2).exp()
    }

    fn flip(&self, sigma: &mut [i8], cache: &mut RbmCache, flips: &[usize]) {
        let blocks = self.blocks;
        if !self.tables_hold(flips) {
            // θ by its increment, (A, B) by one bounded exponential per unit, as in refresh.
            for c in 0..blocks {
                for &i in flips {
                    let w = self.w_lanes[i * blocks + c];
                    cache.theta[c] = cache.theta[c].add(w.scale(-2.0 * f64::from(sigma[i])));
                }
                cache.pairs_from_theta(c);
            }
            for &i in flips {
                sigma[i] = -sigma[i];
            }
            return;
        }
        for c in 0..blocks {
            let mut delta = Lanes::ZERO;
            let mut ri = Lanes::ONE;
            for &i in flips {
                delta = delta.add(self.w_lanes[i * blocks + c].scale(-2.0 * f64::from(sigma[i])));
                ri = ri.mul(self.tables(i, sigma[i]).1[c]);
            }
            cache.theta[c] = cache.theta[c].add(delta);
            let shifted = cache.a_t[c].mul(ri).mul(ri);
            let d = cache.b_t[c].add(shifted).inv();
            cache.b_t[c] = cache.b_t[c].mul(d);
            cache.a_t[c] = shifted.mul(d);
        }
        for &i in flips {
            sigma[i] = -sigma[i];
        }
    }

    fn log_derivatives(&self, sigma: &[i8], cache: &RbmCache, out: &mut [Complex64]) {
        out.iter_mut().for_each(|o| *o = ZERO);
        self.add_log_derivatives(sigma, cache, ONE, out);
    }
}

impl Rbm {
    /// `out += weight · O(σ)`: the log-derivatives scaled and accumulated (projected ansätze sum
    /// them over group images).
    pub fn add_log_derivatives(
        &self,
        sigma: &[i8],
        cache: &RbmCache,
        weight: Complex64,
        out: &mut [Complex64],
    ) {
        let (n, m) = (self.n, self.m);
        match &self.kind {
            RbmKind::Dense { .. } => {
                for (o, &s) in out[..n].iter_mut().zip(sigma) {
                    *o += weight * f64::from(s);
                }
                for j in 0..m {
                    let tanh = weight * cache.tanh(j);
                    out[n + j] += tanh;
                    let row = &mut out[n + m + j * n..n + m + (j + 1) * n];
                    for (o, &s) in row.iter_mut().zip(sigma) {
                        *o += tanh * f64::from(s);
                    }
                }
            }
            RbmKind::Symmetric { alpha, perms } => {
                let n_t = perms.len();
                out[0] += weight * sigma.iter().map(|&s| f64::from(s)).sum::<f64>();
                for f in 0..*alpha {
                    for (t, perm) in perms.iter().enumerate() {
                        let j = f * n_t + t;
                        let tanh = weight * cache.tanh(j);
                        out[1 + f] += tanh;
                        let filter = &mut out[1 + alpha + f * n..1 + alpha + (f + 1) * n];
                        for (o, &site) in filter.iter_mut().zip(perm) {
                            *o += tanh * f64::from(sigma[site]);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_sigma(n: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<i8> {
        (0..n)
            .map(|_| if rng.random::<bool>() { 1 } else { -1 })
            .collect()
    }

    fn chain_perms(n: usize) -> Vec<Vec<usize>> {
        (0..n)
            .map(|t| (0..n).map(|k| (k + t) % n).collect())
            .collect()
    }

    fn kinds(n: usize) -> Vec<RbmKind> {
        let chain = crate::lattice::Lattice::chain(n, crate::lattice::Boundary::Periodic);
        vec![
            RbmKind::Dense { alpha: 2 },
            RbmKind::Symmetric {
                alpha: 3,
                perms: chain_perms(n),
            },
            // Translations and the reflection: 2N hidden units per filter.
            RbmKind::symmetric(2, &chain, true),
        ]
    }

    /// Filters shared over the space group make ψ invariant under every element of it (here
    /// the 128 of a periodic 4 × 4 lattice: translations × C4v).
    #[test]
    fn space_group_sharing_makes_psi_invariant() {
        use crate::lattice::{Boundary, Lattice};
        let lattice = Lattice::square(4, 4, Boundary::Periodic);
        let rbm = Rbm::random(16, RbmKind::symmetric(2, &lattice, true), 0.4, 3);
        assert_eq!(rbm.n_parameters(), 1 + 2 + 2 * 16);
        let group = lattice.space_group();
        assert_eq!(group.len(), 128);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        let log_psi = |sigma: &[i8]| {
            let mut cache = rbm.new_cache();
            rbm.refresh(sigma, &mut cache);
            rbm.log_psi(sigma, &cache)
        };
        for _ in 0..10 {
            let sigma = random_sigma(16, &mut rng);
            let reference = log_psi(&sigma);
            for g in &group {
                let mut image = vec![0; 16];
                for (i, &s) in sigma.iter().enumerate() {
                    image[g[i]] = s;
                }
                let d = log_psi(&image) - reference;
                let tau = 2.0 * std::f64::consts::PI;
                assert!(d.re.abs() < 1e-10 && (d.im - tau * (d.im / tau).round()).abs() < 1e-10);
            }
        }
    }

    /// `run.init_from` into a wider network: with the extra units at zero, the widened RBM is
    /// the narrower one (ψ equal on random configurations); otherwise the extra units keep
    /// their values. Equal `alpha` is the identity; a wider source or a wrong length is refused.
    #[test]
    fn widening_keeps_the_narrower_state() {
        let n = 8;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        let log_psi = |rbm: &Rbm, sigma: &[i8]| {
            let mut cache = rbm.new_cache();
            rbm.refresh(sigma, &mut cache);
            rbm.log_psi(sigma, &cache)
        };
        for kind in kinds(n) {
            let (alpha, wider) = match &kind {
                RbmKind::Dense { alpha } => (*alpha, RbmKind::Dense { alpha: alpha + 2 }),
                RbmKind::Symmetric { alpha, perms } => (
                    *alpha,
                    RbmKind::Symmetric {
                        alpha: alpha + 2,
                        perms: perms.clone(),
                    },
                ),
            };
            let narrow = Rbm::random(n, kind, 0.5, 9);
            let mut wide = Rbm::new(n, wider.clone());
            let p = wide.widened(narrow.parameters(), alpha).unwrap();
            wide.set_parameters(&p);
            for _ in 0..20 {
                let sigma = random_sigma(n, &mut rng);
                let d = log_psi(&wide, &sigma) - log_psi(&narrow, &sigma);
                assert!(d.norm() < 1e-12, "{}: {d}", narrow.kind());
            }
            let fresh = Rbm::random(n, wider, 0.5, 10);
            let p = fresh.widened(narrow.parameters(), alpha).unwrap();
            let changed = p
                .iter()
                .zip(fresh.parameters())
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(changed, narrow.n_parameters(), "{}", narrow.kind());
            assert_eq!(
                narrow.widened(narrow.parameters(), alpha).unwrap(),
                narrow.parameters()
            );
            assert!(narrow.widened(fresh.parameters(), alpha + 2).is_err());
            assert!(fresh.widened(&narrow.parameters()[1..], alpha).is_err());
        }
    }

    /// Log-derivatives against central finite differences `(log ψ(p + h e_k) − log ψ(p − h e_k))/2h`
    /// (holomorphic: the real direction suffices).
    #[test]
    fn derivatives_match_finite_differences() {
        let n = 8;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        for kind in kinds(n) {
            let rbm = Rbm::random(n, kind, 0.5, 9);
            let sigma = random_sigma(n, &mut rng);
            let mut cache = rbm.new_cache();
            rbm.refresh(&sigma, &mut cache);
            let mut o = vec![ZERO; rbm.n_parameters()];
            rbm.log_derivatives(&sigma, &cache, &mut o);
            let h = 1e-5;
            for k in 0..rbm.n_parameters() {
                let mut shifted = rbm.clone();
                let mut p = rbm.parameters().to_vec();
                p[k] += h;
                shifted.set_parameters(&p);
                let mut c = shifted.new_cache();
                shifted.refresh(&sigma, &mut c);
                let plus = shifted.log_psi(&sigma, &c);
                p[k] -= 2.0 * h;
                shifted.set_parameters(&p);
                shifted.refresh(&sigma, &mut c);
                let minus = shifted.log_psi(&sigma, &c);
                let fd = (plus - minus) / (2.0 * h);
                assert!(
                    (fd - o[k]).norm() <= 1e-7 * o[k].norm().max(1.0),
                    "k={k}: fd {fd} analytic {}",
                    o[k]
                );
            }
        }
    }

    #[test]
    fn cached_updates_equal_full_recomputation() {
        let n = 12;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        for kind in kinds(n) {
            let rbm = Rbm::random(n, kind, 0.6, 17);
            let mut sigma = random_sigma(n, &mut rng);
            let mut cache = rbm.new_cache();
            rbm.refresh(&sigma, &mut cache);
            let mut fresh = rbm.new_cache();
            for step in 0..100_000 {
                let k = 1 + rng.random_range(0..3usize);
                let mut flips = [0usize; 3];
                for f in flips.iter_mut().take(k) {
                    *f = rng.random_range(0..n);
                }
                flips[..k].sort_unstable();
                let unique: Vec<usize> = {
                    let mut v = flips[..k].to_vec();
                    v.dedup();
                    v
                };
                if step % 10_000 == 0 {
                    let fast = rbm.log_ratio(&sigma, &cache, &unique);
                    let slow = rbm.log_ratio_logcosh(&sigma, &cache, &unique);
                    let modulus = rbm.log_modulus_ratio(&sigma, &cache, &unique);
                    assert!((modulus - fast.re).abs() < 1e-9 * (1.0 + fast.re.abs()));
                    let d = fast - slow;
                    let d = Complex64::new(
                        d.re,
                        (d.im / (2.0 * std::f64::consts::PI)).fract() * 2.0 * std::f64::consts::PI,
                    );
                    assert!(
                        d.re.abs() < 1e-9
                            && (d.im.abs() < 1e-9
                                || (d.im.abs() - 2.0 * std::f64::consts::PI).abs() < 1e-9),
                        "{fast} vs {slow}"
                    );
                }
                rbm.flip(&mut sigma, &mut cache, &unique);
            }
            rbm.refresh(&sigma, &mut fresh);
            let cached = rbm.log_psi(&sigma, &cache);
            let full = rbm.log_psi(&sigma, &fresh);
            assert!((cached - full).norm() < 1e-10, "{cached} vs {full}");
            // Relative: near a zero of cosh θ (|A|, |B| ≫ 1) the rounding is magnified.
            for (c, (cached, fresh)) in cache.a_t.iter().zip(&fresh.a_t).enumerate() {
                for l in 0..LANES {
                    assert!(
                        (cached.get(l) - fresh.get(l)).norm() < 1e-10 * (1.0 + fresh.get(l).norm()),
                        "A in block {c}: {} vs {}",
                        cached.get(l),
                        fresh.get(l)
                    );
                }
            }
            for (c, (cached, fresh)) in cache.b_t.iter().zip(&fresh.b_t).enumerate() {
                for l in 0..LANES {
                    assert!(
                        (cached.get(l) - fresh.get(l)).norm() < 1e-10 * (1.0 + fresh.get(l).norm()),
                        "B in block {c}"
                    );
                }
            }
        }
    }

    /// Ratios and updates for any weights: up to [`TABLE_LIMIT`] by the tables (here at the
    /// limit, max|Re W|·|F| = 20, over 30 blocks of units that all take the largest factor),
    /// beyond it by the log-cosh path (weights up to 1000, where `e^{2W}` overflows). Every
    /// ratio equals the log-cosh evaluation, and after the moves the cache equals a refresh.
    #[test]
    fn ratios_and_updates_hold_for_any_weights() {
        let n = 6;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(12);
        for scale in [2.0, 10.0, 30.0, 180.0, 1000.0] {
            let mut rbm = Rbm::new(n, RbmKind::Dense { alpha: 40 });
            let p: Vec<Complex64> = (0..rbm.n_parameters())
                .map(|k| Complex64::new(scale * ((k % 3) as f64 - 1.0), 0.1 * k as f64))
                .collect();
            rbm.set_parameters(&p);
            let mut sigma = vec![1, -1, 1, 1, -1, -1];
            let mut cache = rbm.new_cache();
            rbm.refresh(&sigma, &mut cache);
            for _ in 0..200 {
                let k = [1, 2, 4][rng.random_range(0..3usize)];
                let mut flips: Vec<usize> = (0..n).collect();
                flips.sort_by_key(|_| rng.random::<u32>());
                flips.truncate(k);
                flips.sort_unstable();
                let slow = rbm.log_ratio_logcosh(&sigma, &cache, &flips);
                let fast = rbm.log_ratio(&sigma, &cache, &flips);
                let tolerance = 1e-9 * slow.re.abs().max(1.0);
                let phase =
                    ((fast - slow).im / std::f64::consts::TAU).round() * std::f64::consts::TAU;
                assert!(
                    (fast.re - slow.re).abs() < tolerance
                        && ((fast - slow).im - phase).abs() < 1e-6,
                    "scale {scale}, {flips:?}: {fast} vs {slow}"
                );
                let modulus = rbm.log_modulus_ratio(&sigma, &cache, &flips);
                assert!((modulus - slow.re).abs() < tolerance, "{modulus} vs {slow}");
                if slow.re < 700.0 {
                    let ratio = rbm.ratio(&sigma, &cache, &flips);
                    let expected = slow.exp();
                    assert!(
                        (ratio - expected).norm() <= 1e-6 * expected.norm(),
                        "{ratio} vs {expected}"
                    );
                }
                rbm.flip(&mut sigma, &mut cache, &flips);
            }
            let mut fresh = rbm.new_cache();
            rbm.refresh(&sigma, &mut fresh);
            let (cached, full) = (rbm.log_psi(&sigma, &cache), rbm.log_psi(&sigma, &fresh));
            assert!(
                (cached.re - full.re).abs() < 1e-9 * full.re.abs().max(1.0),
                "scale {scale}: {cached} vs {full}"
            );
        }
    }
}
