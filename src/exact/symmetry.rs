//! Symmetry-adapted bases: lattice translations (momentum k) and global spin inversion (z = ±1).
//!
//! A sector is spanned by the normalized projections `|r̂⟩ = P|r⟩/‖P|r⟩‖` of representative
//! states `r` (the smallest integer in their orbit), with `P = (1/|G|) Σ_g χ(g)* g` and the
//! character `χ(t, f) = exp(2πi Σ_d k_d t_d / L_d) · z^f` of translation `t` and flip `f`.
//! `‖P|r⟩‖² = n_r/|G|` with `n_r = Σ_{g ∈ Stab(r)} χ(g)*`; states with `n_r = 0` do not exist in
//! the sector. The Hamiltonian row of a representative is (a "pull" row, using hermiticity)
//!
//! `(H x)_r = Σ_s ⟨r|H|s⟩ χ(g_s) √(n_{rep(s)}/n_r) x_{rep(s)}`,  with `g_s s = rep(s)`.

use crate::exact::RowOperator;
use crate::hilbert::SectorBasis;
use crate::lattice::Lattice;
use crate::linalg::{Field, BLOCK};
use crate::operator::PauliSum;
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
    /// `bucket[b]` = first representative whose top bits are ≥ b.
    bucket: Vec<u32>,
    bucket_shift: u32,
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
        let mut basis = SymmetricBasis {
            n_sites: n,
            mask,
            actions,
            characters,
            inversion,
            representatives: vec![],
            norms: vec![],
            bucket: vec![],
            bucket_shift: 0,
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

    /// The representative of `state` and the index of a group element mapping it there.
    #[inline]
    pub fn representative(&self, state: u64) -> (u64, usize) {
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

    /// `n_r = Σ_{g: g r = r} χ(g)*` (real for one-dimensional characters).
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
        sum.re
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
        let bits = (self.n_sites as u32).min(24);
        self.bucket_shift = self.n_sites as u32 - bits;
        let n_buckets = 1usize << bits;
        self.bucket = vec![0; n_buckets + 1];
        let mut i = 0usize;
        for b in 0..=n_buckets {
            while i < self.representatives.len()
                && ((self.representatives[i] >> self.bucket_shift) as usize) < b
            {
                i += 1;
            }
            self.bucket[b] = i as u32;
        }
    }

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
        let b = (rep >> self.bucket_shift) as usize;
        let (lo, hi) = (self.bucket[b] as usize, self.bucket[b + 1] as usize);
        self.representatives[lo..hi]
            .binary_search(&rep)
            .ok()
            .map(|i| lo + i)
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
pub struct SymmetricOperator<'a> {
    pub operator: &'a PauliSum,
    pub basis: &'a SymmetricBasis,
}

impl<T: Field> RowOperator<T> for SymmetricOperator<'_> {
    fn dim(&self) -> usize {
        self.basis.dimension()
    }

    #[inline]
    fn row(&self, r: usize, mut f: impl FnMut(usize, T)) {
        let b = self.basis;
        let state = b.representatives[r];
        let inv_norm = 1.0 / b.norms[r];
        f(r, T::from_c64(self.operator.diagonal_bits(state)));
        self.operator.for_each_connected_bits(state, |s, element| {
            let (rep, g) = b.representative(s);
            if let Some(j) = b.index(rep) {
                f(
                    j,
                    T::from_c64(element * b.characters[g] * (b.norms[j] * inv_norm).sqrt()),
                );
            }
        });
    }
}
