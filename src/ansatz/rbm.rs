//! Complex restricted Boltzmann machines: `rbm` (dense) and `rbm_symm` (translation-symmetric).
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
//! **Parameter layout** (one flat complex vector):
//! - `rbm`: `[a_0..a_{N−1}, b_0..b_{M−1}, W_{0,0}..W_{0,N−1}, W_{1,0}, …]` (W row-major, M×N),
//!   M = αN.
//! - `rbm_symm`: `[a, b_0..b_{α−1}, w_{0,0}..w_{0,N−1}, w_{1,0}, …]`: one visible bias, α filters
//!   of N weights; hidden unit (f, t) of translation t has `W_{(f,t), t(k)} = w_{f,k}`,
//!   M = α·|T|. Derivatives sum over translations: `O_{w_{f,k}} = Σ_t tanh θ_{f,t} σ_{t(k)}`.

use super::{log_cosh, Ansatz, DenseRbmLayer};
use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const ZERO: Complex64 = Complex64::new(0.0, 0.0);
const ONE: Complex64 = Complex64::new(1.0, 0.0);

/// Dense or translation-symmetric parameterization of the same RBM kernel.
#[derive(Clone, Debug)]
pub enum RbmKind {
    /// Independent `a`, `b`, `W` with `alpha·N` hidden units.
    Dense { alpha: usize },
    /// `alpha` filters shared over the translations `perms` (site k ↦ perms[t][k]).
    Symmetric {
        alpha: usize,
        perms: Vec<Vec<usize>>,
    },
}

impl RbmKind {
    /// `alpha` filters shared over the translation group of `lattice`.
    pub fn translation_symmetric(alpha: usize, lattice: &crate::lattice::Lattice) -> Self {
        RbmKind::Symmetric {
            alpha,
            perms: lattice
                .translations()
                .iter()
                .map(|t| t.perm.clone())
                .collect(),
        }
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
    /// `exp_down[i·M + j] = e^{−2W_ji}` (r_j for flipping an up spin i), `exp_up` = e^{+2W_ji}.
    exp_down: Vec<Complex64>,
    exp_up: Vec<Complex64>,
}

/// Per-chain cache: θ and the bounded pair (A, B) of every hidden unit.
#[derive(Clone, Debug, Default)]
pub struct RbmCache {
    pub theta: Vec<Complex64>,
    /// `A_j = t_j/(1+t_j)`.
    pub a_t: Vec<Complex64>,
    /// `B_j = 1/(1+t_j)`.
    pub b_t: Vec<Complex64>,
}

/// Splits a nonzero complex number's scale into a power of two: returns k with
/// `|z| 2^{−k}` of order one.
#[inline]
fn binary_exponent(z: Complex64) -> i32 {
    let m = z.re.abs().max(z.im.abs());
    ((m.to_bits() >> 52) & 0x7ff) as i32 - 1023
}

/// Multiplies `z` by a power of two so that its binary exponent is 0; adds the power to `exponent`.
#[inline]
fn renormalize(z: &mut Complex64, exponent: &mut i32) {
    let k = binary_exponent(*z);
    if k.abs() > 64 {
        *z *= f64::powi(2.0, -k);
        *exponent += k;
    }
}

/// `Π_{j<m} factor(j)` as (mantissa, binary exponent) of a factor expression in `j`: four
/// independent running products (so the multiplications pipeline and vectorize instead of
/// forming one dependency chain), each renormalized by an exact power of two every 16 factors,
/// so no partial product under- or overflows for factors of modulus between 2^-59 and 2^59.
/// A macro, not a function taking a closure: the factor must be inlined into the loop.
macro_rules! product_of {
    ($m:expr, |$j:ident| $factor:expr) => {{
        let m = $m;
        let mut acc = [ONE; 4];
        let mut exponent = 0i32;
        let chunks = m / 4;
        for c in 0..chunks {
            let base = 4 * c;
            for (l, a) in acc.iter_mut().enumerate() {
                let $j = base + l;
                *a *= $factor;
            }
            if c % 4 == 3 {
                acc.iter_mut().for_each(|a| renormalize(a, &mut exponent));
            }
        }
        for $j in 4 * chunks..m {
            acc[0] *= $factor;
        }
        let mut product = ONE;
        for mut a in acc {
            renormalize(&mut a, &mut exponent);
            product *= a;
            renormalize(&mut product, &mut exponent);
        }
        (product, exponent)
    }};
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
        let mut rbm = Rbm {
            kind,
            n,
            m,
            params: vec![ZERO; p],
            a: vec![ZERO; n],
            b: vec![ZERO; m],
            w: vec![ZERO; m * n],
            exp_down: vec![ONE; m * n],
            exp_up: vec![ONE; m * n],
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

    /// Expands the flat parameters into a, b, W and the exponential tables.
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
        for j in 0..m {
            for i in 0..n {
                let w = self.w[j * n + i];
                self.exp_down[i * m + j] = (-2.0 * w).exp();
                self.exp_up[i * m + j] = (2.0 * w).exp();
            }
        }
    }

    /// `(r_j, r_j^{−1})` tables for flipping site i with spin `sigma_i`.
    #[inline]
    fn tables(&self, i: usize, sigma_i: i8) -> (&[Complex64], &[Complex64]) {
        let range = i * self.m..(i + 1) * self.m;
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
        let (a_t, b_t) = (&cache.a_t[..self.m], &cache.b_t[..self.m]);
        let (product, exponent) = match flips {
            [] => (ONE, 0),
            [i] => {
                let (r, ri) = self.tables(*i, sigma[*i]);
                product_of!(self.m, |j| r[j] * b_t[j] + ri[j] * a_t[j])
            }
            [i, k] => {
                let (r1, ri1) = self.tables(*i, sigma[*i]);
                let (r2, ri2) = self.tables(*k, sigma[*k]);
                product_of!(self.m, |j| r1[j] * r2[j] * b_t[j]
                    + ri1[j] * ri2[j] * a_t[j])
            }
            _ => product_of!(self.m, |j| {
                let (mut r, mut ri) = (ONE, ONE);
                for &i in flips {
                    let (t, ti) = self.tables(i, sigma[i]);
                    r *= t[j];
                    ri *= ti[j];
                }
                r * b_t[j] + ri * a_t[j]
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
            sum += log_cosh(cache.theta[j] + delta) - log_cosh(cache.theta[j]);
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
        for ((o, &b), &a) in out.iter_mut().zip(&cache.b_t).zip(&cache.a_t) {
            *o = b - a;
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
    fn parameters(&self) -> &[Complex64] {
        &self.params
    }
    fn set_parameters(&mut self, parameters: &[Complex64]) {
        self.params.copy_from_slice(parameters);
        self.expand();
    }

    fn new_cache(&self) -> RbmCache {
        RbmCache {
            theta: vec![ZERO; self.m],
            a_t: vec![ZERO; self.m],
            b_t: vec![ZERO; self.m],
        }
    }

    fn refresh(&self, sigma: &[i8], cache: &mut RbmCache) {
        for j in 0..self.m {
            let row = &self.w[j * self.n..(j + 1) * self.n];
            let theta = row
                .iter()
                .zip(sigma)
                .fold(self.b[j], |acc, (&w, &s)| acc + w * f64::from(s));
            cache.theta[j] = theta;
            let (a, b) = bounded_pair(theta);
            cache.a_t[j] = a;
            cache.b_t[j] = b;
        }
    }

    fn log_psi(&self, sigma: &[i8], cache: &RbmCache) -> Complex64 {
        let visible: Complex64 = self
            .a
            .iter()
            .zip(sigma)
            .map(|(&a, &s)| a * f64::from(s))
            .sum();
        cache
            .theta
            .iter()
            .fold(visible, |acc, &t| acc + log_cosh(t))
    }

    fn log_ratio(&self, sigma: &[i8], cache: &RbmCache, flips: &[usize]) -> Complex64 {
        let (product, exponent, visible) = self.ratio_parts(sigma, cache, flips);
        product.ln() + f64::from(exponent) * std::f64::consts::LN_2 + visible
    }

    fn log_modulus_ratio(&self, sigma: &[i8], cache: &RbmCache, flips: &[usize]) -> f64 {
        let (product, exponent, visible) = self.ratio_parts(sigma, cache, flips);
        0.5 * product.norm_sqr().ln() + f64::from(exponent) * std::f64::consts::LN_2 + visible.re
    }

    fn ratio(&self, sigma: &[i8], cache: &RbmCache, flips: &[usize]) -> Complex64 {
        let (product, exponent, visible) = self.ratio_parts(sigma, cache, flips);
        product * f64::powi(2.0, exponent) * visible.exp()
    }

    fn flip(&self, sigma: &mut [i8], cache: &mut RbmCache, flips: &[usize]) {
        for j in 0..self.m {
            let mut delta = ZERO;
            let mut ri = ONE;
            for &i in flips {
                delta += self.w[j * self.n + i] * (-2.0 * f64::from(sigma[i]));
                ri *= self.tables(i, sigma[i]).1[j];
            }
            cache.theta[j] += delta;
            let shifted = cache.a_t[j] * ri * ri;
            let d = (cache.b_t[j] + shifted).inv();
            cache.b_t[j] *= d;
            cache.a_t[j] = shifted * d;
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
                    let tanh = weight * (cache.b_t[j] - cache.a_t[j]);
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
                        let tanh = weight * (cache.b_t[j] - cache.a_t[j]);
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
        vec![
            RbmKind::Dense { alpha: 2 },
            RbmKind::Symmetric {
                alpha: 3,
                perms: chain_perms(n),
            },
        ]
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
            for j in 0..rbm.n_hidden() {
                assert!((cache.a_t[j] - fresh.a_t[j]).norm() < 1e-10);
                assert!((cache.b_t[j] - fresh.b_t[j]).norm() < 1e-10);
            }
        }
    }

    #[test]
    fn ratio_survives_huge_weights() {
        let n = 6;
        let mut rbm = Rbm::new(n, RbmKind::Dense { alpha: 40 });
        let p: Vec<Complex64> = (0..rbm.n_parameters())
            .map(|k| Complex64::new(30.0 * ((k % 7) as f64 - 3.0), 0.1 * k as f64))
            .collect();
        rbm.set_parameters(&p);
        let sigma = vec![1, -1, 1, 1, -1, -1];
        let mut cache = rbm.new_cache();
        rbm.refresh(&sigma, &mut cache);
        let fast = rbm.log_ratio(&sigma, &cache, &[2]);
        let slow = rbm.log_ratio_logcosh(&sigma, &cache, &[2]);
        assert!(
            fast.re.is_finite() && (fast.re - slow.re).abs() < 1e-8 * slow.re.abs().max(1.0),
            "{fast} {slow}"
        );
    }
}
