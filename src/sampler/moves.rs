//! Proposal rules of the Metropolis sampler: which sites a move flips.
//!
//! A rule must be symmetric (`T(σ→σ') = T(σ'→σ)`), so the acceptance is `min(1, |ψ(σ')/ψ(σ)|²)`.
//! **Adding a move**: implement [`ProposalRule`] here and construct it in
//! [`super::SamplerSpec::settings`].

use rand::RngExt;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// The `sampler.kind` key.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    /// Flip one random site.
    Local,
    /// Exchange the spins of a random nearest-neighbour bond (conserves S^z).
    Exchange,
}

impl MoveKind {
    pub fn name(self) -> &'static str {
        match self {
            MoveKind::Local => "local",
            MoveKind::Exchange => "exchange",
        }
    }
}

/// A symmetric Metropolis proposal.
pub trait ProposalRule: Send + Sync + std::fmt::Debug {
    /// Writes the sites to flip into `flips` (cleared first); returns false for a null move.
    fn propose(&self, sigma: &[i8], rng: &mut Xoshiro256PlusPlus, flips: &mut Vec<usize>) -> bool;
    /// Does every move keep the total S^z?
    fn conserves_sz(&self) -> bool;
    /// The most sites one move flips (for scratch buffers).
    fn max_flips(&self) -> usize;
    fn kind(&self) -> MoveKind;
}

/// Flip one uniformly random site.
#[derive(Clone, Debug)]
pub struct LocalFlip;

impl ProposalRule for LocalFlip {
    #[inline]
    fn propose(&self, sigma: &[i8], rng: &mut Xoshiro256PlusPlus, flips: &mut Vec<usize>) -> bool {
        flips.clear();
        flips.push(rng.random_range(0..sigma.len()));
        true
    }
    fn conserves_sz(&self) -> bool {
        false
    }
    fn max_flips(&self) -> usize {
        1
    }
    fn kind(&self) -> MoveKind {
        MoveKind::Local
    }
}

/// Exchange the spins of a uniformly random pair of `bonds` (the lattice bonds, or every pair
/// of sites when the bonds do not connect them); a null move when they are aligned.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub bonds: Vec<[usize; 2]>,
}

impl ProposalRule for Exchange {
    #[inline]
    fn propose(&self, sigma: &[i8], rng: &mut Xoshiro256PlusPlus, flips: &mut Vec<usize>) -> bool {
        let [i, j] = self.bonds[rng.random_range(0..self.bonds.len())];
        if sigma[i] == sigma[j] {
            return false;
        }
        flips.clear();
        flips.extend([i, j]);
        true
    }
    fn conserves_sz(&self) -> bool {
        true
    }
    fn max_flips(&self) -> usize {
        2
    }
    fn kind(&self) -> MoveKind {
        MoveKind::Exchange
    }
}
