//! The spin-lowered RBM: the `S^z` member of a spin multiplet, from an RBM one step up,
//!
//! `ψ(σ) = ⟨σ|S^-|ψ_RBM⟩ = Σ_{j: σ_j = ↓} ε_j ψ_RBM(σ^{j↑})`,
//!
//! where `σ^{j↑}` is σ with spin j raised, so the RBM lives at `S^z + 1`. In the physical basis
//! `ε_j = 1`. Under the Marshall rotation `S^-_j → −S^-_j` on the rotated sublattice B, so
//! `ε_j = −1` there. When H conserves the total spin, `[H, S^-] = 0`: S^- maps the lowest state
//! of `S^z + 1` onto a state of `S^z` with the same energy, the lowest one with total spin
//! above `S^z`. The RBM only has to learn the `S^z + 1` state, which for a bipartite
//! antiferromagnet is positive in the Marshall basis. The signs of the `S^z` member then come
//! from the ε_j exactly. (In the Marshall basis they roughly follow the staggered magnetization.
//! A momentum projection at `S^z` would have to build them by cancellation, see the README.)
//!
//! **Evaluation.** Each site j keeps the raised configuration `σ^{j↑}`, its RBM cache, and the
//! term `ln ε_j + ln ψ_RBM(σ^{j↑})` (`−∞` for an up spin). `ln ψ` is the log-sum-exp of the
//! terms. A move flipping the sites F updates the terms of the spins that stay down by the RBM
//! ratio of F. A spin j that goes down starts from the raised configuration of a spin k of F
//! that goes up: the two configurations differ on `F ∖ {j, k}` only. So an exchange costs one
//! RBM ratio per down spin, and nothing is computed from scratch. The log-derivatives are
//! `O(σ) = Σ_j w_j O_RBM(σ^{j↑})`, with `w_j = ε_j ψ_RBM(σ^{j↑})/ψ(σ)`. A cache holds N RBM
//! caches: N times the memory of the RBM's own.

use super::projected::{log_sum_exp, LogSumExp, SiteBuffer};
use super::{Ansatz, Rbm, RbmCache};
use num_complex::Complex64;

const ZERO: Complex64 = Complex64::new(0.0, 0.0);
/// The term of an up spin: `ln 0`.
const NO_TERM: Complex64 = Complex64::new(f64::NEG_INFINITY, 0.0);

/// `S^-` applied to an RBM (see the module documentation).
#[derive(Clone, Debug)]
pub struct SpinLowered {
    rbm: Rbm,
    /// `ln ε_j`: 0, or iπ on the Marshall sublattice.
    log_signs: Vec<Complex64>,
}

/// Per chain: every raised configuration `σ^{j↑}` (N × N spins; rows of up spins are unused),
/// its RBM cache, the terms `ln ε_j + ln ψ_RBM(σ^{j↑})` and their log-sum-exp `ln ψ(σ)`.
#[derive(Clone, Debug, Default)]
pub struct LoweredCache {
    raised: Vec<i8>,
    caches: Vec<RbmCache>,
    terms: Vec<Complex64>,
    log_psi: Complex64,
}

impl SpinLowered {
    /// `S^-` with the signs `ε_j = ±1` applied to `rbm`.
    pub fn new(rbm: Rbm, signs: &[f64]) -> Self {
        assert_eq!(signs.len(), rbm.n_sites(), "one sign per site");
        assert!(signs.iter().all(|e| e.abs() == 1.0), "signs are ±1");
        let log_signs = signs.iter().map(|&e| Complex64::new(e, 0.0).ln()).collect();
        SpinLowered { rbm, log_signs }
    }

    fn raised<'c>(&self, cache: &'c LoweredCache, j: usize) -> &'c [i8] {
        let n = self.rbm.n_sites();
        &cache.raised[j * n..(j + 1) * n]
    }

    /// `ln ψ` after flipping `flips`, from scratch. This allocates. It is only for moves with no
    /// spin going up, which lower S^z: no sampler of an S^z sector proposes them.
    fn log_psi_after(&self, sigma: &[i8], flips: &[usize]) -> Complex64 {
        let mut flipped = sigma.to_vec();
        for &i in flips {
            flipped[i] = -flipped[i];
        }
        let mut cache = self.new_cache();
        self.refresh(&flipped, &mut cache);
        cache.log_psi
    }
}

/// A site of F whose spin goes up (down in σ).
fn rising(sigma: &[i8], flips: &[usize]) -> Option<usize> {
    flips.iter().copied().find(|&k| sigma[k] < 0)
}

/// `F ∖ {j, k}`.
fn without<'b>(buffer: &'b mut SiteBuffer, flips: &[usize], j: usize, k: usize) -> &'b [usize] {
    buffer.fill(
        flips.len(),
        flips.iter().copied().filter(|&i| i != j && i != k),
    )
}

/// `(&v[a], &mut v[b])` for `a ≠ b`.
fn pair_mut<T>(v: &mut [T], a: usize, b: usize) -> (&T, &mut T) {
    assert_ne!(a, b);
    if a < b {
        let (low, high) = v.split_at_mut(b);
        (&low[a], &mut high[0])
    } else {
        let (low, high) = v.split_at_mut(a);
        (&high[0], &mut low[b])
    }
}

impl Ansatz for SpinLowered {
    type Cache = LoweredCache;

    delegate_parameters_to_rbm!();

    fn cache_bytes(&self) -> u64 {
        let n = self.rbm.n_sites() as u64;
        n * (self.rbm.cache_bytes() + n + 16)
    }

    fn new_cache(&self) -> LoweredCache {
        let n = self.rbm.n_sites();
        LoweredCache {
            raised: vec![1; n * n],
            caches: (0..n).map(|_| self.rbm.new_cache()).collect(),
            terms: vec![NO_TERM; n],
            log_psi: ZERO,
        }
    }

    fn refresh(&self, sigma: &[i8], cache: &mut LoweredCache) {
        let n = self.rbm.n_sites();
        for (j, &s) in sigma.iter().enumerate() {
            if s > 0 {
                cache.terms[j] = NO_TERM;
                continue;
            }
            let row = &mut cache.raised[j * n..(j + 1) * n];
            row.copy_from_slice(sigma);
            row[j] = 1;
            self.rbm.refresh(row, &mut cache.caches[j]);
            cache.terms[j] = self.log_signs[j] + self.rbm.log_psi(row, &cache.caches[j]);
        }
        cache.log_psi = log_sum_exp(cache.terms.iter().copied());
    }

    fn log_psi(&self, _sigma: &[i8], cache: &LoweredCache) -> Complex64 {
        cache.log_psi
    }

    fn log_ratio(&self, sigma: &[i8], cache: &LoweredCache, flips: &[usize]) -> Complex64 {
        if flips.is_empty() {
            return ZERO;
        }
        let Some(k) = rising(sigma, flips) else {
            return self.log_psi_after(sigma, flips) - cache.log_psi;
        };
        let mut remaining = SiteBuffer::default();
        let mut acc = LogSumExp::EMPTY;
        for (j, &s) in sigma.iter().enumerate() {
            let flipped = flips.contains(&j);
            if (s < 0) == flipped {
                continue; // up after the move
            }
            let term = if flipped {
                let sites = without(&mut remaining, flips, j, k);
                let from_k = cache.terms[k] - self.log_signs[k] + self.log_signs[j];
                if sites.is_empty() {
                    from_k
                } else {
                    from_k
                        + self
                            .rbm
                            .log_ratio(self.raised(cache, k), &cache.caches[k], sites)
                }
            } else {
                cache.terms[j]
                    + self
                        .rbm
                        .log_ratio(self.raised(cache, j), &cache.caches[j], flips)
            };
            acc.add(term);
        }
        acc.value() - cache.log_psi
    }

    fn ratio(&self, sigma: &[i8], cache: &LoweredCache, flips: &[usize]) -> Complex64 {
        self.log_ratio(sigma, cache, flips).exp()
    }

    fn flip(&self, sigma: &mut [i8], cache: &mut LoweredCache, flips: &[usize]) {
        let n = self.rbm.n_sites();
        let Some(k) = rising(sigma, flips) else {
            for &i in flips {
                sigma[i] = -sigma[i];
            }
            self.refresh(sigma, cache);
            return;
        };
        let mut remaining = SiteBuffer::default();
        // Spins that go down start from k's raised configuration and cache, before anything
        // changes them (k goes up: its own entry is unused after the move).
        for &j in flips {
            if sigma[j] < 0 {
                continue;
            }
            cache.raised.copy_within(k * n..(k + 1) * n, j * n);
            let (source, target) = pair_mut(&mut cache.caches, k, j);
            target.clone_from(source);
            let mut term = cache.terms[k] - self.log_signs[k] + self.log_signs[j];
            let sites = without(&mut remaining, flips, j, k);
            if !sites.is_empty() {
                let row = &mut cache.raised[j * n..(j + 1) * n];
                term += self.rbm.log_ratio(row, &cache.caches[j], sites);
                self.rbm.flip(row, &mut cache.caches[j], sites);
            }
            cache.terms[j] = term;
        }
        for (j, &s) in sigma.iter().enumerate() {
            if s > 0 || flips.contains(&j) {
                continue;
            }
            let row = &mut cache.raised[j * n..(j + 1) * n];
            cache.terms[j] += self.rbm.log_ratio(row, &cache.caches[j], flips);
            self.rbm.flip(row, &mut cache.caches[j], flips);
        }
        for &i in flips {
            if sigma[i] < 0 {
                cache.terms[i] = NO_TERM;
            }
            sigma[i] = -sigma[i];
        }
        cache.log_psi = log_sum_exp(cache.terms.iter().copied());
    }

    fn cancelled_digits(&self, cache: &LoweredCache) -> f64 {
        super::digits_lost(&cache.terms, cache.log_psi)
    }

    fn log_derivatives(&self, sigma: &[i8], cache: &LoweredCache, out: &mut [Complex64]) {
        out.iter_mut().for_each(|o| *o = ZERO);
        for (j, &s) in sigma.iter().enumerate() {
            if s > 0 {
                continue;
            }
            let weight = (cache.terms[j] - cache.log_psi).exp();
            self.rbm
                .add_log_derivatives(self.raised(cache, j), &cache.caches[j], weight, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ansatz::RbmKind;
    use crate::lattice::{Boundary, Lattice};
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    const N: usize = 8;

    /// A dense and a translation-shared RBM, lowered with the Marshall signs of a chain.
    fn lowered(seed: u64) -> Vec<SpinLowered> {
        let chain = Lattice::chain(N, Boundary::Periodic);
        let signs: Vec<f64> = (0..N)
            .map(|j| if j % 2 == 1 { -1.0 } else { 1.0 })
            .collect();
        [
            RbmKind::Dense { alpha: 2 },
            RbmKind::symmetric(2, &chain, false),
        ]
        .into_iter()
        .map(|kind| SpinLowered::new(Rbm::random(N, kind, 0.3, seed), &signs))
        .collect()
    }

    /// A configuration with `up` up spins.
    fn spins(up: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<i8> {
        let mut sigma = vec![-1i8; N];
        let mut placed = 0;
        while placed < up {
            let i = rng.random_range(0..N);
            if sigma[i] < 0 {
                sigma[i] = 1;
                placed += 1;
            }
        }
        sigma
    }

    fn log_psi(a: &SpinLowered, sigma: &[i8]) -> Complex64 {
        let mut cache = a.new_cache();
        a.refresh(sigma, &mut cache);
        a.log_psi(sigma, &cache)
    }

    #[test]
    fn the_amplitude_is_the_lowering_operator_applied_to_the_rbm() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        for a in lowered(7) {
            let mut rbm_cache = a.rbm.new_cache();
            for _ in 0..20 {
                let sigma = spins(N / 2, &mut rng);
                let mut sum = ZERO;
                for j in (0..N).filter(|&j| sigma[j] < 0) {
                    let mut raised = sigma.clone();
                    raised[j] = 1;
                    a.rbm.refresh(&raised, &mut rbm_cache);
                    let sign = if j % 2 == 1 { -1.0 } else { 1.0 };
                    sum += sign * a.rbm.log_psi(&raised, &rbm_cache).exp();
                }
                let psi = log_psi(&a, &sigma).exp();
                assert!(
                    (psi - sum).norm() < 1e-12 * sum.norm().max(1e-300),
                    "{psi} vs {sum}"
                );
            }
        }
    }

    #[test]
    fn fast_updates_match_a_full_recomputation() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        for a in lowered(8) {
            let mut sigma = spins(N / 2, &mut rng);
            let mut cache = a.new_cache();
            a.refresh(&sigma, &mut cache);
            let mut compared = 0;
            for step in 0..200 {
                // Exchanges (S^z kept), an exchange of four sites, and S^z-changing single flips
                // (the recomputing path of a lowering, the fast one of a raising).
                let flips: Vec<usize> = match step % 5 {
                    0 => {
                        // Never the last down spin: ψ of the all-up configuration is 0.
                        let i = rng.random_range(0..N);
                        if sigma[i] < 0 && sigma.iter().filter(|&&s| s < 0).count() == 1 {
                            continue;
                        }
                        vec![i]
                    }
                    3 => {
                        let up: Vec<usize> = (0..N).filter(|&i| sigma[i] > 0).collect();
                        let down: Vec<usize> = (0..N).filter(|&i| sigma[i] < 0).collect();
                        if up.len() < 2 || down.len() < 2 {
                            continue;
                        }
                        vec![up[0], down[1], up[1], down[0]]
                    }
                    _ => {
                        let up: Vec<usize> = (0..N).filter(|&i| sigma[i] > 0).collect();
                        let down: Vec<usize> = (0..N).filter(|&i| sigma[i] < 0).collect();
                        if up.is_empty() || down.is_empty() {
                            continue;
                        }
                        vec![
                            up[rng.random_range(0..up.len())],
                            down[rng.random_range(0..down.len())],
                        ]
                    }
                };
                let before = cache.log_psi;
                let ratio = a.log_ratio(&sigma, &cache, &flips);
                a.flip(&mut sigma, &mut cache, &flips);
                let exact = log_psi(&a, &sigma);
                // ψ can vanish by cancellation (with the shared RBM, two terms of images under
                // a lattice symmetry with opposite ε): then ln ψ is rounding noise.
                let largest = cache.terms.iter().map(|t| t.re).fold(f64::MIN, f64::max);
                if exact.re < largest - 6.0 * std::f64::consts::LN_10 {
                    continue;
                }
                let d = |x: Complex64, y: Complex64| (x.exp() - y.exp()).norm() / y.exp().norm();
                assert!(
                    d(cache.log_psi, exact) < 1e-10,
                    "step {step}: flip {flips:?}"
                );
                assert!(
                    d(before + ratio, exact) < 1e-10,
                    "step {step}: ratio {flips:?}"
                );
                compared += 1;
            }
            assert!(compared > 100, "only {compared} moves compared");
        }
    }

    #[test]
    fn log_derivatives_match_finite_differences() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        for mut a in lowered(9) {
            let sigma = spins(N / 2, &mut rng);
            let mut cache = a.new_cache();
            a.refresh(&sigma, &mut cache);
            let mut analytic = vec![ZERO; a.n_parameters()];
            a.log_derivatives(&sigma, &cache, &mut analytic);
            let p0 = a.parameters().to_vec();
            let h = 1e-6;
            for (k, expected) in analytic.iter().enumerate() {
                // ψ is holomorphic in the parameters: a real step gives the derivative.
                let mut p = p0.clone();
                p[k] += h;
                a.set_parameters(&p);
                let plus = log_psi(&a, &sigma);
                p[k] -= 2.0 * h;
                a.set_parameters(&p);
                let minus = log_psi(&a, &sigma);
                let mut difference = plus - minus;
                let tau = 2.0 * std::f64::consts::PI;
                difference.im -= tau * (difference.im / tau).round();
                let numeric = difference / (2.0 * h);
                assert!(
                    (numeric - expected).norm() < 1e-6,
                    "{k}: {numeric} vs {expected}"
                );
            }
            a.set_parameters(&p0);
        }
    }
}
