//! Wavefunctions: the [`Ansatz`] trait and the RBM family.
//!
//! An ansatz gives `log ψ(σ)`, fast ratios `ψ(σ')/ψ(σ)` after flipping a set of sites using a
//! per-chain cache, and the log-derivatives `O_k = ∂ log ψ / ∂p_k` with respect to its flat
//! complex parameter vector.

mod rbm;

pub use rbm::{Rbm, RbmCache, RbmKind};

use num_complex::Complex64;

/// `ln cosh z`, stable for any |z|: cosh is even, so map `z → −z` when `Re z < 0`, then
/// `ln cosh z = z + ln(1 + e^{−2z}) − ln 2` (the exponential has modulus ≤ 1).
#[inline]
pub fn log_cosh(z: Complex64) -> Complex64 {
    let z = if z.re < 0.0 { -z } else { z };
    z + (1.0 + (-2.0 * z).exp()).ln() - std::f64::consts::LN_2
}

/// A variational wavefunction with a per-chain cache for fast updates.
pub trait Ansatz: Sync {
    /// What a Markov chain keeps between moves (e.g. the RBM's θ).
    type Cache: Clone + Send + Sync;

    fn n_sites(&self) -> usize;
    fn n_parameters(&self) -> usize;
    /// The flat parameter vector (layout documented by each implementation).
    fn parameters(&self) -> &[Complex64];
    /// Replaces the parameters and rebuilds every derived table.
    fn set_parameters(&mut self, parameters: &[Complex64]);

    /// An empty cache of the right size.
    fn new_cache(&self) -> Self::Cache;
    /// Recomputes the cache of configuration σ from scratch.
    fn refresh(&self, sigma: &[i8], cache: &mut Self::Cache);
    /// `log ψ(σ)` of the configuration whose cache is given.
    fn log_psi(&self, sigma: &[i8], cache: &Self::Cache) -> Complex64;
    /// `log ψ(σ') − log ψ(σ)` for σ' = σ with `flips` flipped; O(|flips|·M), no allocation.
    fn log_ratio(&self, sigma: &[i8], cache: &Self::Cache, flips: &[usize]) -> Complex64;
    /// `ψ(σ')/ψ(σ)` (same as `exp(log_ratio)`, cheaper when no logarithm is needed).
    fn ratio(&self, sigma: &[i8], cache: &Self::Cache, flips: &[usize]) -> Complex64;
    /// Flips `flips` in σ and updates the cache accordingly.
    fn flip(&self, sigma: &mut [i8], cache: &mut Self::Cache, flips: &[usize]);
    /// `O_k(σ) = ∂ log ψ(σ)/∂p_k` into `out` (length `n_parameters`).
    fn log_derivatives(&self, sigma: &[i8], cache: &Self::Cache, out: &mut [Complex64]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_cosh_is_stable_and_accurate() {
        for &(re, im) in &[
            (0.3, -0.2),
            (-1.7, 0.4),
            (5.0, 3.0),
            (-12.0, -1.0),
            (0.0, 1.2),
        ] {
            let z = Complex64::new(re, im);
            let naive = z.cosh().ln();
            assert!((log_cosh(z) - naive).norm() < 1e-13, "{z}");
        }
        for &re in &[1e3, -1e3, 700.0, -750.0] {
            let z = Complex64::new(re, 0.37);
            let v = log_cosh(z);
            assert!(v.re.is_finite() && v.im.is_finite());
            // ln cosh z → |Re z| − ln 2 + i·Im z·sign(Re z) for large |Re z|.
            assert!((v.re - (re.abs() - std::f64::consts::LN_2)).abs() < 1e-9);
            assert!((v.im - 0.37 * re.signum()).abs() < 1e-12);
        }
    }
}
