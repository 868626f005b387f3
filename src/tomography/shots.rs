//! Synthetic shots of a known state: one outcome per basis row, drawn from the exact outcome
//! distribution of that basis.

use super::data::Measurements;
use super::metrics::basis_probabilities;
use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use std::collections::HashMap;

/// One shot per row of `bases` of the normalized state `psi` (qubit ordering: index
/// `Σ_j s_j 2^(N−1−j)`), reproducible from `seed`.
pub fn sample_shots(psi: &[Complex64], bases: &[Vec<u8>], seed: u64) -> Measurements {
    let n = psi.len().trailing_zeros() as usize;
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut cdfs: HashMap<&[u8], Vec<f64>> = HashMap::new();
    let mut outcomes = Vec::with_capacity(bases.len() * n);
    for b in bases {
        let cdf = cdfs.entry(b.as_slice()).or_insert_with(|| {
            basis_probabilities(psi, b)
                .iter()
                .scan(0.0, |acc, x| {
                    *acc += x;
                    Some(*acc)
                })
                .collect()
        });
        let u: f64 = rng.random::<f64>() * cdf[cdf.len() - 1];
        let index = cdf.partition_point(|&c| c < u).min(cdf.len() - 1);
        outcomes.extend((0..n).map(|j| ((index >> (n - 1 - j)) & 1) as u8));
    }
    Measurements {
        n_sites: n,
        outcomes,
        bases: bases.concat(),
    }
}
