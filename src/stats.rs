//! Monte Carlo statistics of per-sample quantities over several Markov chains.
//!
//! Values are laid out chain-major (`values[c·n + s]` is sample s of chain c). Every quantity is
//! assembled from sums that are reduced over processes with the caller's `reduce` (an
//! all-reduce; the identity in a single process), so statistics do not depend on how the chains
//! are spread over ranks.

use num_complex::Complex64;
use serde::Serialize;

/// Summary of a per-sample quantity.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Stats {
    pub mean: Complex64,
    /// Error of the mean including autocorrelation: `√(Var·(1 + 2τ)/N_s)`.
    pub error: f64,
    /// `⟨|x − x̄|²⟩`.
    pub variance: f64,
    /// Split-R̂ (Gelman–Rubin with each chain cut in two halves); NaN with fewer than 4 samples
    /// per chain, infinite when every half-chain is constant but they differ.
    pub r_hat: f64,
    /// Integrated autocorrelation time `τ = Σ_{t≥1} ρ(t)` with Sokal's automatic window.
    pub tau: f64,
}

/// Half-chain means and variances of the local chains, laid out globally as
/// `[re mean, im mean, variance]` per half (two per chain), for split-R̂.
fn half_chain_moments(
    values: &[Complex64],
    n: usize,
    local: usize,
    first: usize,
    total: usize,
) -> Vec<f64> {
    let half = n / 2;
    let mut halves = vec![0.0; 3 * 2 * total];
    for c in 0..local {
        let x = &values[c * n..(c + 1) * n];
        for (h, part) in [&x[..half], &x[half..2 * half]].into_iter().enumerate() {
            if part.is_empty() {
                continue;
            }
            let m: Complex64 = part.iter().sum::<Complex64>() / part.len() as f64;
            let v = part.iter().map(|z| (z - m).norm_sqr()).sum::<f64>()
                / (part.len() as f64 - 1.0).max(1.0);
            let k = 2 * (first + c) + h;
            halves[3 * k..3 * k + 3].copy_from_slice(&[m.re, m.im, v]);
        }
    }
    halves
}

/// Split-R̂ from the half-chain moments of all chains (`m = 2·chains` halves of `n_half`).
fn split_r_hat(halves: &[f64], n_half: usize) -> f64 {
    if n_half < 2 {
        return f64::NAN;
    }
    let m = halves.len() / 3;
    let means: Vec<Complex64> = (0..m)
        .map(|k| Complex64::new(halves[3 * k], halves[3 * k + 1]))
        .collect();
    let w = (0..m).map(|k| halves[3 * k + 2]).sum::<f64>() / m as f64;
    let grand: Complex64 = means.iter().sum::<Complex64>() / m as f64;
    let b_over_n =
        means.iter().map(|z| (z - grand).norm_sqr()).sum::<f64>() / (m as f64 - 1.0).max(1.0);
    let nh = n_half as f64;
    // Spreads below 1e-9 of the values (or of 1) are rounding: an exact eigenstate's local
    // energies, sums of amplitude ratios that each carry cancellations.
    let rounding = 1e-18 * grand.norm_sqr().max(1.0);
    if w <= rounding && b_over_n <= rounding {
        1.0
    } else if w > 0.0 {
        (((nh - 1.0) / nh * w + b_over_n) / w).sqrt()
    } else if b_over_n > 0.0 {
        // Every chain constant but at different values: frozen chains, not convergence.
        f64::INFINITY
    } else {
        1.0
    }
}

/// Autocovariance around `mean` by lag, summed over the local chains (divided by n).
fn autocovariance(values: &[Complex64], n: usize, local: usize, mean: Complex64) -> Vec<f64> {
    let mut acov = vec![0.0; n];
    for c in 0..local {
        let x = &values[c * n..(c + 1) * n];
        for (t, a) in acov.iter_mut().enumerate() {
            let s: f64 = (0..n - t)
                .map(|i| ((x[i] - mean).conj() * (x[i + t] - mean)).re)
                .sum();
            *a += s / n as f64;
        }
    }
    acov
}

/// `τ = Σ_{t≥1} ρ(t)` with Sokal's automatic window `t ≥ 5(1 + 2τ)/2 + 1`.
fn integrated_time(acov: &[f64]) -> f64 {
    let variance = acov[0];
    let mut tau = 0.0;
    if variance > 0.0 {
        for (t, a) in acov.iter().enumerate().skip(1) {
            tau += a / variance;
            if t as f64 >= 5.0 * (1.0 + 2.0 * tau).max(1.0) / 2.0 + 1.0 {
                break;
            }
        }
    }
    tau.max(0.0)
}

/// Statistics of `values` from `local_chains` chains here out of `total_chains` overall;
/// `first_chain` is the global index of the first local chain.
pub fn statistics(
    values: &[Complex64],
    local_chains: usize,
    first_chain: usize,
    total_chains: usize,
    reduce: &dyn Fn(&mut [f64]),
) -> Stats {
    // Every chain has the same number of samples (the sampler guarantees it).
    let n = values.len().checked_div(local_chains).unwrap_or(0);
    if n == 0 {
        return Stats {
            r_hat: f64::NAN,
            ..Stats::default()
        };
    }
    let mut halves = half_chain_moments(values, n, local_chains, first_chain, total_chains);
    let local_sum: Complex64 = values[..n * local_chains].iter().sum();
    let mut sums = [local_sum.re, local_sum.im];
    reduce(&mut sums);
    let total = (n * total_chains) as f64;
    let mean = Complex64::new(sums[0], sums[1]) / total;
    let mut acov = autocovariance(values, n, local_chains, mean);
    reduce(&mut acov);
    acov.iter_mut().for_each(|a| *a /= total_chains as f64);
    reduce(&mut halves);
    let variance = acov[0];
    let tau = integrated_time(&acov);
    Stats {
        mean,
        error: (variance * (1.0 + 2.0 * tau) / total).sqrt(),
        variance,
        r_hat: split_r_hat(&halves, n / 2),
        tau,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// AR(1) chains x_{t+1} = φ x_t + noise have τ = φ/(1−φ): the error bar must cover the
    /// spread of independent repetitions.
    #[test]
    fn error_bar_is_honest_for_correlated_chains() {
        let phi = 0.8;
        let (chains, n) = (16, 500);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut means = vec![];
        let mut errors = vec![];
        let mut taus = vec![];
        for _ in 0..200 {
            let mut values = Vec::with_capacity(chains * n);
            for _ in 0..chains {
                let mut x = rng.random::<f64>() - 0.5;
                for _ in 0..n {
                    x = phi * x + (rng.random::<f64>() - 0.5);
                    values.push(Complex64::new(x, 0.0));
                }
            }
            let s = statistics(&values, chains, 0, chains, &|_| {});
            means.push(s.mean.re);
            errors.push(s.error);
            taus.push(s.tau);
            assert!((s.r_hat - 1.0).abs() < 0.05, "{}", s.r_hat);
        }
        let m = means.iter().sum::<f64>() / means.len() as f64;
        let spread =
            (means.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (means.len() - 1) as f64).sqrt();
        let error = errors.iter().sum::<f64>() / errors.len() as f64;
        let tau = taus.iter().sum::<f64>() / taus.len() as f64;
        assert!((tau - phi / (1.0 - phi)).abs() < 0.6, "tau {tau}");
        assert!(
            (error / spread - 1.0).abs() < 0.2,
            "error {error} spread {spread}"
        );
    }

    #[test]
    fn r_hat_detects_chains_stuck_apart() {
        let values: Vec<Complex64> = (0..4)
            .flat_map(|c| {
                (0..100).map(move |s| Complex64::new(c as f64 + 0.01 * (s % 3) as f64, 0.0))
            })
            .collect();
        let s = statistics(&values, 4, 0, 4, &|_| {});
        assert!(s.r_hat > 2.0, "{}", s.r_hat);
        // Frozen chains: no variance within any chain, different values between them.
        let frozen: Vec<Complex64> = (0..4)
            .flat_map(|c| (0..10).map(move |_| Complex64::new(c as f64, 0.0)))
            .collect();
        assert_eq!(statistics(&frozen, 4, 0, 4, &|_| {}).r_hat, f64::INFINITY);
        // All chains constant at the same value (an exact eigenstate): R̂ = 1.
        let exact = vec![Complex64::new(-3.0, 0.0); 40];
        assert_eq!(statistics(&exact, 4, 0, 4, &|_| {}).r_hat, 1.0);
        // The same up to rounding (an eigenvalue 0 evaluated as sums of ratios): R̂ = 1, not
        // a ratio of two rounding errors.
        let rounded: Vec<Complex64> = (0..40)
            .map(|k| Complex64::new(if k % 7 == 0 { 1e-10 } else { 0.0 }, 0.0))
            .collect();
        assert_eq!(statistics(&rounded, 4, 0, 4, &|_| {}).r_hat, 1.0);
    }
}
