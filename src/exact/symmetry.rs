//! Symmetry-adapted bases: lattice translations (momentum k) and global spin inversion (z = ±1).
//!
//! A sector is spanned by the normalized projections `|r̂⟩ = P|r⟩/‖P|r⟩‖` of representative
//! states `r` (the smallest integer in their orbit), with `P = (1/|G|) Σ_g χ(g)* g` and the
//! character `χ(t, f) = exp(2πi Σ_d k_d t_d / L_d) · z^f` of translation `t` and flip `f`.
//! `‖P|r⟩‖² = n_r/|G|` with `n_r = Σ_{g ∈ Stab(r)} χ(g)*`; states with `n_r = 0` do not exist in
//! the sector. The Hamiltonian row of a representative is (a "pull" row, using hermiticity)
//!
//! `(H x)_r = Σ_s ⟨r|H|s⟩ χ(g_s) √(n_{rep(s)}/n_r) x_{rep(s)}`,  with `g_s s = rep(s)`.

use crate::exact::lanczos::LinearOperator;
use crate::exact::rows::BitRows;
use crate::exact::RowOperator;
use crate::hilbert::SectorBasis;
use crate::lattice::Lattice;
use crate::linalg::{Field, BLOCK};
use num_complex::Complex64;
use rayon::prelude::*;
use std::f64::consts::PI;

/// How one group element acts on bit states.
#[derive(Clone, Debug)]
enum Action {
    /// Chain translation by `t`: a rotation of the N-bit word.
    Rotate(u32),
    /// General site permutation through byte tables: `table[b][byte]` is the image of byte `b`.
    Tables(Vec<[u64; 256]>),
}

/// A translation sector (with optional spin inversion), its representatives and characters.
#[derive(Clone, Debug)]
pub struct SymmetricBasis {
    n_sites: usize,
    mask: u64,
    actions: Vec<Action>,
    /// χ(g) for every element, translations first (flip = 0), then with flip when inversion is used.
    characters: Vec<Complex64>,
    inversion: Option<i8>,
    representatives: Vec<u64>,
    /// n_r of each representative (real and positive).
    norms: Vec<f64>,
    /// `√n` for n = 0..=|G| (n_r is an integer), for the row elements' `√(n_j/n_r)`.
    sqrt_of: Vec<f64>,
    /// When every translation is a rotation of the N-bit word (chains): the translation index
    /// of the rotation by r, for the fast smallest-rotation search.
    rotation_index: Option<Vec<u32>>,
    /// Representative → index: open addressing with linear probing, load ≤ 2/3.
    index: RepresentativeIndex,
}

/// A hash map from representatives to their index: one cache line per lookup, where the
/// representatives' top bits (mostly zero: they are the smallest images) make range buckets
/// useless. Fibonacci hashing, linear probing, `u64::MAX` marks an empty slot.
#[derive(Clone, Debug, Default)]
struct RepresentativeIndex {
    /// (representative, index, n_r): the norm rides in the slot's padding, so a lookup needs
    /// no second random access.
    slots: Vec<(u64, u32, u32)>,
    shift: u32,
}

impl RepresentativeIndex {
    const EMPTY: u64 = u64::MAX;

    /// Bytes per representative, at most (capacity ≤ 3 × the count, 16 bytes a slot).
    const BYTES_PER_ENTRY: u64 = 48;

    fn new(representatives: &[u64], norms: &[f64]) -> Self {
        let capacity = (representatives.len() + representatives.len() / 2 + 1).next_power_of_two();
        let mut index = RepresentativeIndex {
            slots: vec![(Self::EMPTY, 0, 0); capacity],
            shift: 64 - capacity.trailing_zeros(),
        };
        for (j, &rep) in representatives.iter().enumerate() {
            let mut slot = index.home(rep);
            while index.slots[slot].0 != Self::EMPTY {
                slot = (slot + 1) & (capacity - 1);
            }
            index.slots[slot] = (rep, j as u32, norms[j] as u32);
        }
        index
    }

    #[inline]
    fn home(&self, rep: u64) -> usize {
        if self.shift == 64 {
            0
        } else {
            (rep.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
        }
    }

    /// Starts loading the slot where `rep` would be.
    #[inline]
    fn prefetch(&self, rep: u64) {
        crate::exact::prefetch(self.slots.as_ptr().wrapping_add(self.home(rep)));
    }

    /// The index and n_r of a representative.
    #[inline]
    fn get(&self, rep: u64) -> Option<(usize, u32)> {
        let mask = self.slots.len() - 1;
        let mut slot = self.home(rep);
        loop {
            let (key, value, norm) = self.slots[slot];
            if key == rep {
                return Some((value as usize, norm));
            }
            if key == Self::EMPTY {
                return None;
            }
            slot = (slot + 1) & mask;
        }
    }
}

impl SymmetricBasis {
    /// The sector with momentum `momentum` (one integer per lattice dimension) and, at
    /// S^z = 0 only, spin inversion eigenvalue `inversion`, inside the S^z sector `sector`.
    pub fn new(
        lattice: &Lattice,
        sector: &SectorBasis,
        momentum: &[usize],
        inversion: Option<i8>,
    ) -> Self {
        let n = lattice.n_sites();
        let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
        let extent = lattice.extent();
        let mut actions = Vec::new();
        let mut characters = Vec::new();
        for t in lattice.translations() {
            let phase: f64 = t
                .shift
                .iter()
                .zip(momentum)
                .zip(extent)
                .map(|((&s, &k), &l)| 2.0 * PI * (k * s) as f64 / l as f64)
                .sum();
            characters.push(Complex64::from_polar(1.0, phase));
            let rotation = t.perm.first().copied().unwrap_or(0);
            let is_rotation = t
                .perm
                .iter()
                .enumerate()
                .all(|(i, &p)| p == (i + rotation) % n);
            actions.push(if is_rotation {
                Action::Rotate(rotation as u32)
            } else {
                let n_bytes = n.div_ceil(8);
                Action::Tables(
                    (0..n_bytes)
                        .map(|b| {
                            let mut table = [0u64; 256];
                            for (byte, entry) in table.iter_mut().enumerate() {
                                for bit in 0..8 {
                                    let site = 8 * b + bit;
                                    if site < n && (byte >> bit) & 1 == 1 {
                                        *entry |= 1 << t.perm[site];
                                    }
                                }
                            }
                            table
                        })
                        .collect(),
                )
            });
        }
        if let Some(z) = inversion {
            let flipped: Vec<Complex64> = characters.iter().map(|c| c * f64::from(z)).collect();
            characters.extend(flipped);
        }
        let rotation_index = (actions.len() == n).then(|| {
            let mut index = vec![u32::MAX; n];
            for (t, action) in actions.iter().enumerate() {
                if let Action::Rotate(r) = action {
                    index[*r as usize] = t as u32;
                }
            }
            index
        });
        let rotation_index = rotation_index.filter(|index| index.iter().all(|&t| t != u32::MAX));
        let mut basis = SymmetricBasis {
            n_sites: n,
            mask,
            actions,
            characters,
            inversion,
            representatives: vec![],
            norms: vec![],
            sqrt_of: vec![],
            rotation_index,
            index: RepresentativeIndex::default(),
        };
        basis.enumerate(sector);
        basis
    }

    /// Image of `state` under translation `t` (no flip).
    #[inline]
    fn translate(&self, t: usize, state: u64) -> u64 {
        match &self.actions[t] {
            Action::Rotate(0) => state,
            Action::Rotate(r) => ((state << r) | (state >> (self.n_sites as u32 - r))) & self.mask,
            Action::Tables(tables) => tables.iter().enumerate().fold(0u64, |acc, (b, table)| {
                acc | table[((state >> (8 * b)) & 0xff) as usize]
            }),
        }
    }

    /// Number of group elements (translations × flips).
    pub fn group_order(&self) -> usize {
        self.characters.len()
    }

    /// The smallest rotation of an N-bit word and the rotation r (site i ↦ i + r) giving it.
    ///
    /// The smallest rotation has the longest cyclic run of zeros on top, so only rotations
    /// that move the start of a longest zero run there are candidates. Runs by binary lifting:
    /// `y_p` has bit i set when bits i..i+p of the word are all zero, `y_{m+p} = y_m ∧ y_p ≫ m`
    /// (cyclic) — O(log N) word operations instead of N rotations.
    #[inline]
    fn smallest_rotation(&self, state: u64) -> (u64, u32) {
        let n = self.n_sites as u32;
        let mask = self.mask;
        // Cyclic right rotation of the N-bit word by 0 ≤ k ≤ N, without branches or division
        // (wrapping shifts make k = 0 and k = N = 64 come out right).
        let rotr = |x: u64, k: u32| (x.wrapping_shr(k) | x.wrapping_shl(n - k)) & mask;
        let zeros = !state & mask;
        if zeros == mask || zeros == 0 {
            return (state, 0);
        }
        let mut powers = [0u64; 7];
        powers[0] = zeros;
        let mut levels = 1;
        while (1u32 << levels) < n && levels < 7 {
            let p = powers[levels - 1];
            powers[levels] = p & rotr(p, 1 << (levels - 1));
            levels += 1;
        }
        let (mut starts, mut run) = (mask, 0u32);
        for level in (0..levels).rev() {
            let next = starts & rotr(powers[level], run);
            if next != 0 {
                starts = next;
                run += 1 << level;
            }
        }
        // `starts`: first sites of the longest zero runs (length `run`); put one on top.
        let mut best = (u64::MAX, 0);
        while starts != 0 {
            let i = starts.trailing_zeros();
            // r = (N − run − i) mod N, with 1 ≤ run < N and i < N.
            let r = if run + i <= n {
                n - run - i
            } else {
                2 * n - run - i
            };
            let image = rotr(state, n - r);
            if image < best.0 {
                best = (image, r);
            }
            starts &= starts - 1;
        }
        best
    }

    /// The representative of `state` and the index of a group element mapping it there.
    #[inline]
    pub fn representative(&self, state: u64) -> (u64, usize) {
        let n_t = self.actions.len();
        if let Some(index) = &self.rotation_index {
            let (rep, r) = self.smallest_rotation(state);
            let mut best = (rep, index[r as usize] as usize);
            if self.inversion.is_some() {
                let (rep, r) = self.smallest_rotation(state ^ self.mask);
                if rep < best.0 {
                    best = (rep, n_t + index[r as usize] as usize);
                }
            }
            return best;
        }
        self.representative_by_search(state)
    }

    /// [`Self::representative`] by applying every group element.
    fn representative_by_search(&self, state: u64) -> (u64, usize) {
        let n_t = self.actions.len();
        let mut best = (state, 0);
        for t in 1..n_t {
            let s = self.translate(t, state);
            if s < best.0 {
                best = (s, t);
            }
        }
        if self.inversion.is_some() {
            let flipped = state ^ self.mask;
            for t in 0..n_t {
                let s = self.translate(t, flipped);
                if s < best.0 {
                    best = (s, n_t + t);
                }
            }
        }
        best
    }

    /// Is `state` the smallest element of its orbit? (early exit on the first smaller image)
    fn is_representative(&self, state: u64) -> bool {
        let n_t = self.actions.len();
        if (1..n_t).any(|t| self.translate(t, state) < state) {
            return false;
        }
        self.inversion.is_none() || (0..n_t).all(|t| self.translate(t, state ^ self.mask) >= state)
    }

    /// `n_r = Σ_{g: g r = r} χ(g)*`: the character restricted to the stabilizer is a character
    /// of that subgroup, so the sum is its order or 0 — an integer, returned rounded.
    fn orbit_norm(&self, state: u64) -> f64 {
        let n_t = self.actions.len();
        let mut sum = Complex64::new(0.0, 0.0);
        for (g, chi) in self.characters.iter().enumerate() {
            let image = if g < n_t {
                self.translate(g, state)
            } else {
                self.translate(g - n_t, state ^ self.mask)
            };
            if image == state {
                sum += chi.conj();
            }
        }
        sum.re.round()
    }

    fn enumerate(&mut self, sector: &SectorBasis) {
        let dim = sector.dimension();
        let chunk = 1u64 << 16;
        let n_chunks = dim.div_ceil(chunk);
        let found: Vec<Vec<(u64, f64)>> = (0..n_chunks)
            .into_par_iter()
            .map(|c| {
                let start = c * chunk;
                let end = (start + chunk).min(dim);
                let mut state = sector.unrank(start);
                let mut out = Vec::new();
                for r in start..end {
                    if self.is_representative(state) {
                        let norm = self.orbit_norm(state);
                        if norm > 0.5 {
                            out.push((state, norm));
                        }
                    }
                    if r + 1 < end {
                        state = sector.successor(state);
                    }
                }
                out
            })
            .collect();
        let total: usize = found.iter().map(Vec::len).sum();
        self.representatives = Vec::with_capacity(total);
        self.norms = Vec::with_capacity(total);
        for part in found {
            for (s, nr) in part {
                self.representatives.push(s);
                self.norms.push(nr);
            }
        }
        self.index = RepresentativeIndex::new(&self.representatives, &self.norms);
        self.sqrt_of = (0..=self.characters.len())
            .map(|n| (n as f64).sqrt())
            .collect();
    }

    /// Bytes per representative of a basis (representative, n_r, √n_r, index).
    pub const BYTES_PER_STATE: u64 = 24 + RepresentativeIndex::BYTES_PER_ENTRY;

    pub fn dimension(&self) -> usize {
        self.representatives.len()
    }
    /// χ(g) of group element `g`.
    pub fn character(&self, g: usize) -> Complex64 {
        self.characters[g]
    }
    /// n_r of the representative with index `j`.
    pub fn norm(&self, j: usize) -> f64 {
        self.norms[j]
    }
    pub fn representatives(&self) -> &[u64] {
        &self.representatives
    }

    /// Index of a representative, if it belongs to the sector.
    #[inline]
    pub fn index(&self, rep: u64) -> Option<usize> {
        self.index.get(rep).map(|(j, _)| j)
    }

    /// Translation-averaged correlation `C(t) = (1/N) Σ_i ⟨Z_i Z_{t(i)}⟩` for every translation t
    /// of a sector eigenvector (every orbit member has the same translation-averaged value).
    pub fn translation_correlations<T: Field>(&self, lattice: &Lattice, vector: &[T]) -> Vec<f64> {
        let n = self.n_sites;
        let perms: Vec<&[usize]> = lattice
            .translations()
            .iter()
            .map(|t| t.perm.as_slice())
            .collect();
        let partial: Vec<Vec<f64>> = self
            .representatives
            .par_chunks(BLOCK)
            .zip(vector.par_chunks(BLOCK))
            .map(|(reps, amps)| {
                let mut acc = vec![0.0; perms.len()];
                for (&r, a) in reps.iter().zip(amps) {
                    let w = a.abs2();
                    for (t, perm) in perms.iter().enumerate() {
                        let same = (0..n)
                            .filter(|&i| ((r >> i) & 1) == ((r >> perm[i]) & 1))
                            .count() as f64;
                        acc[t] += w * (2.0 * same - n as f64) / n as f64;
                    }
                }
                acc
            })
            .collect();
        partial
            .into_iter()
            .fold(vec![0.0; perms.len()], |mut a, p| {
                a.iter_mut().zip(p).for_each(|(x, y)| *x += y);
                a
            })
    }
}

/// The Hamiltonian restricted to a [`SymmetricBasis`].
pub struct SymmetricOperator<'a, K: BitRows> {
    pub rows: &'a K,
    pub basis: &'a SymmetricBasis,
}

impl<T: Field, K: BitRows> LinearOperator<T> for SymmetricOperator<'_, K> {
    fn dim(&self) -> usize {
        self.basis.dimension()
    }

    fn apply(&self, x: &[T], y: &mut [T]) {
        crate::exact::batched_pull_product(self, x, y);
    }
}

impl<T: Field, K: BitRows> RowOperator<T> for SymmetricOperator<'_, K> {
    fn dim(&self) -> usize {
        self.basis.dimension()
    }

    /// In two passes over at most 64 connected states: representatives with their index slots
    /// prefetched, then the lookups (whose cache misses then overlap).
    #[inline]
    fn row(&self, r: usize, mut f: impl FnMut(usize, T)) {
        let b = self.basis;
        let state = b.representatives[r];
        let inv_sqrt_norm = 1.0 / b.norms[r].sqrt();
        f(r, self.rows.diagonal(state));
        let mut pending = [(0u64, 0usize, T::ZERO); 64];
        let mut count = 0;
        let mut resolve = |pending: &[(u64, usize, T)]| {
            for &(rep, g, element) in pending {
                if let Some((j, norm)) = b.index.get(rep) {
                    // For f64 (real characters) only the real part is formed.
                    let ratio = b.sqrt_of[norm as usize] * inv_sqrt_norm;
                    f(j, element * T::from_c64(b.characters[g] * ratio));
                }
            }
        };
        self.rows.for_each_connected(state, |s, element: T| {
            let (rep, g) = b.representative(s);
            b.index.prefetch(rep);
            pending[count] = (rep, g, element);
            count += 1;
            if count == pending.len() {
                resolve(&pending);
                count = 0;
            }
        });
        resolve(&pending[..count]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lattice::Boundary;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn smallest_rotation_equals_the_search() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        for n in [2, 3, 4, 5, 8, 13, 24, 31, 32, 40, 63] {
            let lattice = Lattice::chain(n, Boundary::Periodic);
            // One up spin: a cheap sector; the search does not depend on it.
            let sector = SectorBasis::new(n, Some(1)).unwrap();
            for inversion in [None, Some(1)] {
                let basis = SymmetricBasis::new(&lattice, &sector, &[0], inversion);
                assert!(basis.rotation_index.is_some());
                let mask = basis.mask;
                let mut states = vec![
                    0,
                    mask,
                    1,
                    mask ^ 1,
                    0b1010 & mask,
                    mask & 0x5555_5555_5555_5555,
                ];
                for _ in 0..2000 {
                    states.push(rng.random::<u64>() & mask);
                    let sparse = rng.random::<u64>() & rng.random::<u64>();
                    states.push(sparse & mask);
                }
                for state in states {
                    let fast = basis.representative(state);
                    let slow = basis.representative_by_search(state);
                    assert_eq!(fast.0, slow.0, "n={n} state={state:b}");
                    let n_t = basis.actions.len();
                    let image = if fast.1 < n_t {
                        basis.translate(fast.1, state)
                    } else {
                        basis.translate(fast.1 - n_t, state ^ mask)
                    };
                    assert_eq!(
                        image, fast.0,
                        "n={n}: the group element maps to the representative"
                    );
                }
            }
        }
    }
}
