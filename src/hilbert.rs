//! The Hilbert space of N spins-1/2: configurations, total-S^z sectors and their ranking.
//!
//! Conventions (DESIGN.md §3): a spin `σ_i ∈ {+1, −1}`; `+1` = up = bit 1 = measurement outcome
//! `0` in the Z basis. A basis state of up to 64 sites is a `u64` whose bit `i` is site `i`.
//! The only place outcomes and spins are converted is [`spin_from_outcome`] / [`outcome_from_spin`].

use crate::error::{Error, Result};

/// Measurement outcome (0 or 1) of a spin in the Z basis: `σ = +1 ↦ 0`, `σ = −1 ↦ 1`.
#[inline]
pub fn outcome_from_spin(sigma: i8) -> u8 {
    u8::from(sigma < 0)
}

/// Spin of a Z-basis measurement outcome: `0 ↦ +1`, `1 ↦ −1`.
#[inline]
pub fn spin_from_outcome(outcome: u8) -> i8 {
    1 - 2 * (outcome as i8)
}

/// Writes the spins `σ_i = 2·bit_i − 1` of a basis state into `out` (length N).
#[inline]
pub fn spins_from_bits(state: u64, out: &mut [i8]) {
    for (i, s) in out.iter_mut().enumerate() {
        *s = if (state >> i) & 1 == 1 { 1 } else { -1 };
    }
}

/// The basis state of a spin configuration (N ≤ 64).
#[inline]
pub fn bits_from_spins(spins: &[i8]) -> u64 {
    spins
        .iter()
        .enumerate()
        .fold(0u64, |acc, (i, &s)| acc | (u64::from(s > 0) << i))
}

/// Index of a basis state in the QuCumber/qubit ordering `Σ_j s_j 2^(N−1−j)`, `s_j` the outcome of
/// site j (site 0 is the most significant bit).
pub fn qubit_index(state: u64, n_sites: usize) -> usize {
    (0..n_sites).fold(0usize, |acc, j| {
        (acc << 1) | usize::from((state >> j) & 1 == 0)
    })
}

/// Number of up spins for a total S^z (spin units) on `n_sites`, if that sector exists.
pub fn n_up_for_total_sz(n_sites: usize, total_sz: f64) -> Option<usize> {
    let twice = 2.0 * total_sz;
    if !twice.is_finite() || twice.fract() != 0.0 {
        return None;
    }
    let n_up2 = n_sites as f64 + twice; // 2·n_up
    if n_up2 < 0.0 || n_up2 > 2.0 * n_sites as f64 || n_up2 % 2.0 != 0.0 {
        return None;
    }
    Some((n_up2 / 2.0) as usize)
}

/// Binomial coefficients C(n, k) for n ≤ 64 as a table (saturating at u64::MAX).
#[derive(Clone, Debug)]
pub struct Binomials {
    table: Vec<[u64; 65]>,
}

impl Default for Binomials {
    fn default() -> Self {
        let mut table = vec![[0u64; 65]; 65];
        for n in 0..=64 {
            table[n][0] = 1;
            for k in 1..=n {
                table[n][k] = table[n - 1][k - 1].saturating_add(table[n - 1][k]);
            }
        }
        Binomials { table }
    }
}

impl Binomials {
    #[inline]
    pub fn get(&self, n: usize, k: usize) -> u64 {
        if k > n || n > 64 {
            0
        } else {
            self.table[n][k]
        }
    }
}

/// A basis of N spins, either the full space (2^N states) or one total-S^z sector, with states
/// ordered increasingly as integers. Ranking in a sector uses the combinatorial number system:
/// `rank(s) = Σ_k C(p_k, k)` over the positions `p_1 < p_2 < …` of the set bits (k from 1).
///
/// For speed the rank is assembled from two tables (H. Q. Lin, PRB 42, 6561 (1990)): with the
/// state split into its low `h` bits and the rest,
/// `rank = low[lo] + high[popcount(lo)][hi]`, two lookups instead of one per set bit.
#[derive(Clone, Debug)]
pub struct SectorBasis {
    n_sites: usize,
    n_up: Option<usize>,
    dimension: u64,
    binomials: Binomials,
    low_bits: usize,
    /// `low[lo]`: the rank contribution of the low bits (< 2^32) in the low half and the
    /// start `c · 2^(N−h)` of the high table's row in the high half, `c = popcount(lo)` (no
    /// popcount instruction needed: baseline x86-64 has none).
    low: Vec<u64>,
    /// `high[c · 2^(N−h) + hi]`.
    high: Vec<u64>,
}

impl SectorBasis {
    /// The full space (`n_up = None`) or the sector with `n_up` up spins; N ≤ 63.
    pub fn new(n_sites: usize, n_up: Option<usize>) -> Result<Self> {
        if n_sites == 0 || n_sites > 63 {
            return Err(Error::Input(format!(
                "a basis of bit states needs 1..=63 sites, got {n_sites}"
            )));
        }
        let binomials = Binomials::default();
        let dimension = match n_up {
            Some(k) if k > n_sites => {
                return Err(Error::Input(format!("{k} up spins on {n_sites} sites")))
            }
            Some(k) => binomials.get(n_sites, k),
            None => 1u64 << n_sites,
        };
        let mut basis = SectorBasis {
            n_sites,
            n_up,
            dimension,
            binomials,
            low_bits: 0,
            low: vec![],
            high: vec![],
        };
        if n_up.is_some() && n_sites <= 40 {
            let h = n_sites / 2;
            let high_bits = n_sites - h;
            basis.low = (0..1u64 << h)
                .map(|lo| {
                    let row = u64::from(lo.count_ones()) << high_bits;
                    basis.rank_by_bits(lo, 0, 1) | row << 32
                })
                .collect();
            basis.high = (0..=h)
                .flat_map(|c| (0..1u64 << high_bits).map(move |hi| (c, hi)))
                .map(|(c, hi)| basis.rank_by_bits(hi, h, c + 1))
                .collect();
            basis.low_bits = h;
        }
        Ok(basis)
    }

    /// `Σ C(p + offset, k)` over the set bits p of `bits`, k counting from `first_k`.
    fn rank_by_bits(&self, bits: u64, offset: usize, first_k: usize) -> u64 {
        let mut rank = 0u64;
        let mut rest = bits;
        let mut k = first_k;
        while rest != 0 {
            let p = rest.trailing_zeros() as usize + offset;
            rank = rank.saturating_add(self.binomials.get(p, k));
            k += 1;
            rest &= rest - 1;
        }
        rank
    }

    pub fn n_sites(&self) -> usize {
        self.n_sites
    }
    pub fn n_up(&self) -> Option<usize> {
        self.n_up
    }
    pub fn dimension(&self) -> u64 {
        self.dimension
    }

    /// Position of `state` in the basis (the state must belong to it).
    #[inline]
    pub fn rank(&self, state: u64) -> u64 {
        match self.n_up {
            None => state,
            Some(_) if !self.low.is_empty() => {
                let lo = state & ((1u64 << self.low_bits) - 1);
                let hi = state >> self.low_bits;
                let entry = self.low[lo as usize];
                (entry & 0xffff_ffff) + self.high[(entry >> 32) as usize + hi as usize]
            }
            Some(_) => self.rank_by_bits(state, 0, 1),
        }
    }

    /// The state at position `rank` (inverse of [`rank`](Self::rank)).
    pub fn unrank(&self, rank: u64) -> u64 {
        match self.n_up {
            None => rank,
            Some(n_up) => {
                let mut state = 0u64;
                let mut rest = rank;
                for k in (1..=n_up).rev() {
                    // Largest p with C(p, k) <= rest.
                    let mut p = k - 1;
                    while p + 1 < self.n_sites && self.binomials.get(p + 1, k) <= rest {
                        p += 1;
                    }
                    rest -= self.binomials.get(p, k);
                    state |= 1 << p;
                }
                state
            }
        }
    }

    /// All states in increasing order.
    pub fn states(&self) -> impl Iterator<Item = u64> + '_ {
        let first = self.unrank(0);
        (0..self.dimension).scan(first, move |state, i| {
            let current = *state;
            if i + 1 < self.dimension {
                *state = self.successor(current);
            }
            Some(current)
        })
    }

    /// The next state of the basis after `state` (which must not be the last one).
    #[inline]
    pub fn successor(&self, state: u64) -> u64 {
        match self.n_up {
            None => state + 1,
            Some(_) => next_same_popcount(state),
        }
    }

    /// Does `state` belong to this basis?
    pub fn contains(&self, state: u64) -> bool {
        state >> self.n_sites == 0 && self.n_up.is_none_or(|k| state.count_ones() as usize == k)
    }
}

/// Next larger integer with the same number of set bits (Gosper's hack).
#[inline]
pub fn next_same_popcount(v: u64) -> u64 {
    let t = v | (v - 1);
    let w = (!t & (t + 1)).wrapping_sub(1);
    (t + 1) | (w >> (v.trailing_zeros() + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sector_enumeration_and_ranking_agree() {
        for n in 1..=12 {
            for k in 0..=n {
                let basis = SectorBasis::new(n, Some(k)).unwrap();
                let states: Vec<u64> = basis.states().collect();
                assert_eq!(states.len() as u64, basis.dimension());
                assert!(states.windows(2).all(|w| w[0] < w[1]));
                for (i, &s) in states.iter().enumerate() {
                    assert_eq!(s.count_ones() as usize, k);
                    assert_eq!(basis.rank(s), i as u64);
                    assert_eq!(basis.unrank(i as u64), s);
                }
            }
        }
        assert_eq!(
            SectorBasis::new(32, Some(16)).unwrap().dimension(),
            601_080_390
        );
    }

    #[test]
    fn conversions() {
        let mut spins = [0i8; 4];
        spins_from_bits(0b0101, &mut spins);
        assert_eq!(spins, [1, -1, 1, -1]);
        assert_eq!(bits_from_spins(&spins), 0b0101);
        // outcomes 0,1,0,1 → index 0b0101 with site 0 most significant.
        assert_eq!(qubit_index(0b0101, 4), 0b0101);
        assert_eq!(qubit_index(0b0001, 4), 0b0111);
        assert_eq!(spin_from_outcome(outcome_from_spin(-1)), -1);
        assert_eq!(n_up_for_total_sz(8, 0.0), Some(4));
        assert_eq!(n_up_for_total_sz(7, 0.0), None);
        assert_eq!(n_up_for_total_sz(7, 0.5), Some(4));
        assert_eq!(n_up_for_total_sz(4, 3.0), None);
    }
}
