//! Exact quantities of small states: the Gray-code walk over all 2^N configurations, the
//! normalized amplitudes of an ansatz, fidelity, outcome probabilities in any basis and the
//! KL divergence.

use super::rotation;
use crate::ansatz::Ansatz;
use crate::hilbert::{bits_from_spins, qubit_index};
use num_complex::Complex64;

/// Visits every configuration of N spins in Gray-code order (one flip, O(M), per step):
/// `visit(sigma, cache, log|ψ(σ)|² − log|ψ(σ_0)|²)`; returns `log|ψ(σ_0)|²` of the first
/// configuration (all up).
pub fn gray_walk<A: Ansatz>(ansatz: &A, mut visit: impl FnMut(&[i8], &A::Cache, f64)) -> f64 {
    let n = ansatz.n_sites();
    let mut sigma = vec![1i8; n];
    let mut cache = ansatz.new_cache();
    ansatz.refresh(&sigma, &mut cache);
    let log0 = 2.0 * ansatz.log_psi(&sigma, &cache).re;
    let mut log_rel = 0.0;
    for k in 0usize..1 << n {
        if k > 0 {
            let bit = k.trailing_zeros() as usize;
            log_rel += 2.0 * ansatz.log_ratio(&sigma, &cache, &[bit]).re;
            ansatz.flip(&mut sigma, &mut cache, &[bit]);
        }
        visit(&sigma, &cache, log_rel);
    }
    log0
}

/// Normalized amplitudes of an ansatz in the qubit ordering of reference files (N ≤ 20), times
/// `factor(σ)` ∈ {+1, −1, 0}: the Marshall sign of a rotated basis, and 0 outside the S^z
/// sector a run sampled (its state is the ansatz restricted to that sector). None when the
/// state vanishes there: every amplitude is rounding noise ([`crate::ansatz::ROUNDING_DIGITS`]),
/// as for a projection of an RBM symmetric the other way, or none is finite.
pub fn normalized_state<A: Ansatz>(
    ansatz: &A,
    factor: impl Fn(&[i8]) -> f64,
) -> Option<Vec<Complex64>> {
    let n = ansatz.n_sites();
    let mut logs: Vec<(usize, Complex64)> = Vec::with_capacity(1 << n);
    let mut resolved = false;
    gray_walk(ansatz, |sigma, cache, _| {
        let f = factor(sigma);
        if f == 0.0 {
            return;
        }
        resolved |= ansatz.cancelled_digits(cache) <= crate::ansatz::ROUNDING_DIGITS;
        let log = ansatz.log_psi(sigma, cache);
        let log = if f < 0.0 {
            log + Complex64::new(0.0, std::f64::consts::PI)
        } else {
            log
        };
        logs.push((qubit_index(bits_from_spins(sigma), n), log));
    });
    let max = logs
        .iter()
        .map(|(_, l)| l.re)
        .fold(f64::NEG_INFINITY, f64::max);
    if !(resolved && max.is_finite()) {
        return None;
    }
    let mut psi = vec![Complex64::new(0.0, 0.0); 1 << n];
    for (i, l) in logs {
        psi[i] = (l - max).exp();
    }
    let norm = psi.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
    psi.iter_mut().for_each(|z| *z /= norm);
    psi.iter()
        .all(|z| z.re.is_finite() && z.im.is_finite())
        .then_some(psi)
}

/// Fidelity and KL divergence (over `bases`) of an ansatz's state to a reference state; None
/// when the ansatz's state vanishes ([`normalized_state`]).
pub fn against_reference<A: Ansatz>(
    reference: &[Complex64],
    ansatz: &A,
    bases: &[Vec<u8>],
) -> (Option<f64>, Option<f64>) {
    normalized_state(ansatz, |_| 1.0).map_or((None, None), |psi| {
        (
            Some(fidelity(reference, &psi)),
            Some(kl_divergence(reference, &psi, bases)),
        )
    })
}

/// `|⟨a|b⟩|² / (‖a‖² ‖b‖²)`.
pub fn fidelity(a: &[Complex64], b: &[Complex64]) -> f64 {
    let overlap: Complex64 = a.iter().zip(b).map(|(x, y)| x.conj() * y).sum();
    let na: f64 = a.iter().map(|z| z.norm_sqr()).sum();
    let nb: f64 = b.iter().map(|z| z.norm_sqr()).sum();
    overlap.norm_sqr() / (na * nb)
}

/// Outcome probabilities of a state vector (qubit ordering) measured in `basis`.
pub fn basis_probabilities(psi: &[Complex64], basis: &[u8]) -> Vec<f64> {
    let n = basis.len();
    let mut v = psi.to_vec();
    for (j, &b) in basis.iter().enumerate() {
        if b == b'Z' {
            continue;
        }
        let u = rotation(b);
        let stride = 1 << (n - 1 - j);
        for i in 0..v.len() {
            if i & stride == 0 {
                let (x0, x1) = (v[i], v[i | stride]);
                v[i] = u[0][0] * x0 + u[0][1] * x1;
                v[i | stride] = u[1][0] * x0 + u[1][1] * x1;
            }
        }
    }
    let total: f64 = v.iter().map(|z| z.norm_sqr()).sum();
    v.iter().map(|z| z.norm_sqr() / total).collect()
}

/// Basis-averaged KL divergence `mean_b Σ_s P_ref,b(s) ln(P_ref,b(s)/P_b(s))` over `bases`.
pub fn kl_divergence(reference: &[Complex64], model: &[Complex64], bases: &[Vec<u8>]) -> f64 {
    let total: f64 = bases
        .iter()
        .map(|b| {
            let p = basis_probabilities(reference, b);
            let q = basis_probabilities(model, b);
            p.iter()
                .zip(&q)
                .filter(|(x, _)| **x > 0.0)
                .map(|(x, y)| x * (x / y.max(1e-300)).ln())
                .sum::<f64>()
        })
        .sum();
    total / bases.len().max(1) as f64
}
