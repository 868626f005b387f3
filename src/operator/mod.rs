//! Operators as sums of Pauli strings, and the built-in spin models.
//!
//! Every operator is a [`PauliSum`] `H = Σ_t c_t P_t` with `P_t` a product of X, Y, Z on distinct
//! sites. Terms that flip the same set of sites F are grouped; for a row configuration σ the
//! matrix element to σ' = σ with F flipped is
//!
//! `⟨σ|H|σ'⟩ = Σ_{t ∈ group F} c_t (−i)^{n_Y(t)} Π_{i ∈ Z(t) ∪ Y(t)} σ_i`,
//!
//! because `X|σ_i⟩ = |−σ_i⟩`, `Z|σ_i⟩ = σ_i|σ_i⟩` and `Y|σ_i⟩ = iσ_i|−σ_i⟩`. The phase factor is
//! folded into a stored coefficient, so a row costs one product of ±1 per Z/Y site and no
//! complex arithmetic beyond one multiply-add per term. Rows are written into a caller-provided
//! [`Row`] buffer; no allocation happens per call once the buffer has grown.

mod model;

pub use model::{
    Hamiltonian, HeisenbergSpec, J1j2Spec, MarshallRotation, ModelKind, ModelSpec, PauliSpec,
    TermSpec, TfiSpec, Units, XxzSpec, COUPLING_LIMIT,
};

use num_complex::Complex64;
use std::collections::BTreeMap;

/// A single-site Pauli matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pauli {
    I,
    X,
    Y,
    Z,
}

impl Pauli {
    pub fn from_letter(c: char) -> Option<Pauli> {
        match c {
            'I' => Some(Pauli::I),
            'X' => Some(Pauli::X),
            'Y' => Some(Pauli::Y),
            'Z' => Some(Pauli::Z),
            _ => None,
        }
    }

    pub fn letter(self) -> char {
        match self {
            Pauli::I => 'I',
            Pauli::X => 'X',
            Pauli::Y => 'Y',
            Pauli::Z => 'Z',
        }
    }

    /// `self · other = phase · product` (e.g. `X·Y = i Z`).
    pub fn times(self, other: Pauli) -> (Complex64, Pauli) {
        use Pauli::*;
        let i = Complex64::i();
        let one = Complex64::new(1.0, 0.0);
        match (self, other) {
            (I, p) | (p, I) => (one, p),
            (a, b) if a == b => (one, I),
            (X, Y) => (i, Z),
            (Y, X) => (-i, Z),
            (Y, Z) => (i, X),
            (Z, Y) => (-i, X),
            (Z, X) => (i, Y),
            (X, Z) => (-i, Y),
            _ => unreachable!("all pairs covered"),
        }
    }
}

/// `coeff · Π_i ops[i]` with at most one non-identity Pauli per site (sorted by site).
#[derive(Clone, Debug, PartialEq)]
pub struct PauliString {
    pub coeff: Complex64,
    pub ops: Vec<(usize, Pauli)>,
}

impl PauliString {
    /// Multiplies out a product of single-site Paulis given in operator order (leftmost acts
    /// last), e.g. `X_0 Y_0 = i Z_0`, with exact phases.
    pub fn new(coeff: Complex64, factors: &[(usize, Pauli)]) -> Self {
        let mut per_site: BTreeMap<usize, Pauli> = BTreeMap::new();
        let mut coeff = coeff;
        for &(site, p) in factors {
            let current = per_site.entry(site).or_insert(Pauli::I);
            let (phase, product) = current.times(p);
            coeff *= phase;
            *current = product;
        }
        let ops = per_site
            .into_iter()
            .filter(|&(_, p)| p != Pauli::I)
            .collect();
        PauliString { coeff, ops }
    }

    /// Parses letters and sites (checked with [`check_pauli_string`]).
    pub fn parse(coeff: Complex64, letters: &str, sites: &[usize]) -> Self {
        let factors: Vec<(usize, Pauli)> = letters
            .chars()
            .zip(sites)
            .map(|(c, &s)| (s, Pauli::from_letter(c).unwrap_or(Pauli::I)))
            .collect();
        Self::new(coeff, &factors)
    }

    /// Human-readable form, e.g. `0.5·X0 Z3`.
    pub fn label(&self) -> String {
        let ops: Vec<String> = self
            .ops
            .iter()
            .map(|(s, p)| format!("{}{}", p.letter(), s))
            .collect();
        if ops.is_empty() {
            "I".into()
        } else {
            ops.join(" ")
        }
    }
}

/// Checks a Pauli string's letters (X, Y, Z, I) and that it has one site below `n_sites` per
/// letter; `key` names it in the message.
pub fn check_pauli_string(
    key: &str,
    ops: &str,
    sites: &[usize],
    n_sites: usize,
) -> Result<(), crate::error::Invalid> {
    use crate::error::{shorten, Invalid};
    if ops.is_empty() {
        return Err(Invalid::new(
            format!("{key}.ops"),
            "empty Pauli string; expected letters from X, Y, Z, I",
        ));
    }
    if let Some(bad) = ops.chars().find(|c| !"XYZI".contains(*c)) {
        return Err(Invalid::new(
            format!("{key}.ops"),
            format!(
                "bad letter {bad:?} in \"{}\"; expected X, Y, Z or I",
                shorten(ops)
            ),
        ));
    }
    if ops.chars().count() != sites.len() {
        return Err(Invalid::new(
            format!("{key}.sites"),
            format!(
                "has {} sites but ops \"{}\" has {} letters",
                sites.len(),
                shorten(ops),
                ops.chars().count()
            ),
        ));
    }
    if let Some(&bad) = sites.iter().find(|&&s| s >= n_sites) {
        return Err(Invalid::new(
            format!("{key}.sites"),
            format!(
                "site {bad} out of range for a lattice of {n_sites} sites (0..={})",
                n_sites - 1
            ),
        ));
    }
    Ok(())
}

/// The non-zero off-diagonal elements of one row of an operator.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// `⟨σ|H|σ⟩`.
    pub diagonal: Complex64,
    /// Flip-group index of each connected configuration (see [`PauliSum::flipped_sites`]).
    pub groups: Vec<usize>,
    /// `⟨σ|H|σ'⟩` for each connected σ'.
    pub elements: Vec<Complex64>,
}

impl Row {
    pub fn len(&self) -> usize {
        self.elements.len()
    }
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }
}

/// A sum of Pauli strings grouped by the sites they flip. Group 0 is the diagonal (no flips).
#[derive(Clone, Debug)]
pub struct PauliSum {
    n_sites: usize,
    strings: Vec<PauliString>,
    flip_offsets: Vec<usize>,
    flip_sites: Vec<usize>,
    flip_masks: Vec<u64>,
    term_offsets: Vec<usize>,
    term_coeffs: Vec<Complex64>,
    z_offsets: Vec<usize>,
    z_sites: Vec<usize>,
    z_masks: Vec<u64>,
    /// Bit-state fast path for the off-diagonal groups, when every group's element depends on
    /// at most [`TABLE_SITES`] sites (empty otherwise; the term loop is used then).
    fast_groups: Vec<FastGroup>,
    tables: Vec<Complex64>,
}

/// An off-diagonal group whose element is read from a table indexed by the bits of the sites it
/// depends on (flips ∪ Z/Y sites): `element = tables[start + Σ_k bit(site_k)·2^k]`.
#[derive(Clone, Copy, Debug)]
struct FastGroup {
    flip_mask: u64,
    start: u32,
    n_sites: u8,
    sites: [u8; TABLE_SITES],
}

/// Groups whose element depends on at most this many sites get a lookup table.
const TABLE_SITES: usize = 8;

impl PauliSum {
    /// Combines equal strings, drops zero ones and groups the rest by flip set.
    pub fn new(n_sites: usize, strings: impl IntoIterator<Item = PauliString>) -> Self {
        let mut combined: BTreeMap<Vec<(usize, Pauli)>, Complex64> = BTreeMap::new();
        for s in strings {
            *combined.entry(s.ops).or_insert(Complex64::new(0.0, 0.0)) += s.coeff;
        }
        let scale = combined.values().map(|c| c.norm()).fold(0.0, f64::max);
        let strings: Vec<PauliString> = combined
            .into_iter()
            .filter(|(_, c)| c.norm() > 1e-14 * scale)
            .map(|(ops, coeff)| PauliString { coeff, ops })
            .collect();
        let mut groups: BTreeMap<Vec<usize>, Vec<&PauliString>> = BTreeMap::new();
        groups.insert(vec![], vec![]);
        for s in &strings {
            let flips: Vec<usize> = s
                .ops
                .iter()
                .filter(|(_, p)| matches!(p, Pauli::X | Pauli::Y))
                .map(|&(i, _)| i)
                .collect();
            groups.entry(flips).or_default().push(s);
        }
        let mask = |sites: &[usize]| {
            sites
                .iter()
                .filter(|&&i| i < 64)
                .fold(0u64, |m, &i| m | (1 << i))
        };
        let mut op = PauliSum {
            n_sites,
            strings: vec![],
            flip_offsets: vec![0],
            flip_sites: vec![],
            flip_masks: vec![],
            term_offsets: vec![0],
            term_coeffs: vec![],
            z_offsets: vec![0],
            z_sites: vec![],
            z_masks: vec![],
            fast_groups: vec![],
            tables: vec![],
        };
        for (flips, terms) in &groups {
            op.flip_sites.extend(flips);
            op.flip_offsets.push(op.flip_sites.len());
            op.flip_masks.push(mask(flips));
            for t in terms {
                let n_y = t.ops.iter().filter(|(_, p)| *p == Pauli::Y).count();
                let phase = Complex64::new(0.0, -1.0).powu(n_y as u32);
                op.term_coeffs.push(t.coeff * phase);
                let zs: Vec<usize> = t
                    .ops
                    .iter()
                    .filter(|(_, p)| matches!(p, Pauli::Z | Pauli::Y))
                    .map(|&(i, _)| i)
                    .collect();
                op.z_sites.extend(&zs);
                op.z_offsets.push(op.z_sites.len());
                op.z_masks.push(mask(&zs));
            }
            op.term_offsets.push(op.term_coeffs.len());
        }
        op.strings = strings;
        if n_sites <= 64 {
            op.build_tables();
        }
        op
    }

    /// Fills the lookup tables of the bit-state fast path (all off-diagonal groups or none).
    fn build_tables(&mut self) {
        let mut fast = Vec::new();
        for g in 1..self.n_groups() {
            let mut support: Vec<usize> = self.flipped_sites(g).to_vec();
            for t in self.term_offsets[g]..self.term_offsets[g + 1] {
                support.extend(&self.z_sites[self.z_offsets[t]..self.z_offsets[t + 1]]);
            }
            support.sort_unstable();
            support.dedup();
            if support.len() > TABLE_SITES {
                self.tables.clear();
                return;
            }
            let mut sites = [0u8; TABLE_SITES];
            for (k, &site) in support.iter().enumerate() {
                sites[k] = site as u8;
            }
            fast.push(FastGroup {
                flip_mask: self.flip_masks[g],
                start: self.tables.len() as u32,
                n_sites: support.len() as u8,
                sites,
            });
            for local in 0u64..1 << support.len() {
                let state = support
                    .iter()
                    .enumerate()
                    .fold(0u64, |acc, (k, &site)| acc | (((local >> k) & 1) << site));
                let value = self.group_element_bits(g, state);
                self.tables.push(value);
            }
        }
        self.fast_groups = fast;
    }

    pub fn n_sites(&self) -> usize {
        self.n_sites
    }
    /// The combined Pauli strings of the sum.
    pub fn strings(&self) -> &[PauliString] {
        &self.strings
    }
    /// Number of flip groups including the diagonal group 0.
    pub fn n_groups(&self) -> usize {
        self.flip_masks.len()
    }
    /// Sites flipped by group `g`.
    #[inline]
    pub fn flipped_sites(&self, g: usize) -> &[usize] {
        &self.flip_sites[self.flip_offsets[g]..self.flip_offsets[g + 1]]
    }
    /// Bit mask of the sites flipped by group `g` (N ≤ 64).
    #[inline]
    pub fn flip_mask(&self, g: usize) -> u64 {
        self.flip_masks[g]
    }
    /// Largest number of connected configurations of any row (the number of flip groups).
    pub fn max_connections(&self) -> usize {
        self.n_groups() - 1
    }

    /// `Σ_{t∈g} c_t Π_{i∈Z(t)} σ_i` for a configuration given as spins.
    #[inline]
    fn group_element(&self, g: usize, sigma: &[i8]) -> Complex64 {
        let mut sum = Complex64::new(0.0, 0.0);
        for t in self.term_offsets[g]..self.term_offsets[g + 1] {
            let sign = self.z_sites[self.z_offsets[t]..self.z_offsets[t + 1]]
                .iter()
                .fold(1i8, |s, &i| s * sigma[i]);
            sum += self.term_coeffs[t] * f64::from(sign);
        }
        sum
    }

    /// The same for a basis state given as bits (N ≤ 64): `Π σ_i = (−1)^{popcount(Z ∧ ¬s)}`.
    #[inline]
    fn group_element_bits(&self, g: usize, state: u64) -> Complex64 {
        let mut sum = Complex64::new(0.0, 0.0);
        for t in self.term_offsets[g]..self.term_offsets[g + 1] {
            let odd = (self.z_masks[t] & !state).count_ones() & 1;
            sum += self.term_coeffs[t] * (1.0 - 2.0 * f64::from(odd));
        }
        sum
    }

    /// Row σ: the diagonal element and every non-zero `⟨σ|H|σ'⟩` into `row` (cleared first).
    pub fn row(&self, sigma: &[i8], row: &mut Row) {
        row.groups.clear();
        row.elements.clear();
        row.diagonal = self.group_element(0, sigma);
        for g in 1..self.n_groups() {
            let e = self.group_element(g, sigma);
            if e.re != 0.0 || e.im != 0.0 {
                row.groups.push(g);
                row.elements.push(e);
            }
        }
    }

    /// Diagonal element `⟨s|H|s⟩` of a bit state.
    #[inline]
    pub fn diagonal_bits(&self, state: u64) -> Complex64 {
        self.group_element_bits(0, state)
    }

    /// Calls `f(s', ⟨s|H|s'⟩)` for every non-zero off-diagonal element of row `s` (N ≤ 64).
    #[inline]
    pub fn for_each_connected_bits(&self, state: u64, mut f: impl FnMut(u64, Complex64)) {
        if !self.fast_groups.is_empty() {
            for group in &self.fast_groups {
                let mut local = 0usize;
                for k in 0..group.n_sites as usize {
                    local |= (((state >> group.sites[k]) & 1) as usize) << k;
                }
                let e = self.tables[group.start as usize + local];
                if e.re != 0.0 || e.im != 0.0 {
                    f(state ^ group.flip_mask, e);
                }
            }
            return;
        }
        for g in 1..self.n_groups() {
            let e = self.group_element_bits(g, state);
            if e.re != 0.0 || e.im != 0.0 {
                f(state ^ self.flip_masks[g], e);
            }
        }
    }

    /// True when every matrix element is real (no odd number of Y with a real coefficient etc.).
    pub fn is_real(&self) -> bool {
        self.term_coeffs.iter().all(|c| c.im == 0.0)
    }

    /// `max |c|` over the strings: the scale of relative tolerances (0 for an empty sum).
    pub fn max_coefficient(&self) -> f64 {
        self.strings
            .iter()
            .map(|s| s.coeff.norm())
            .fold(0.0, f64::max)
    }

    /// True when every string has a real coefficient (Pauli strings are Hermitian).
    pub fn is_hermitian(&self) -> bool {
        let scale = self.max_coefficient();
        self.strings
            .iter()
            .all(|s| s.coeff.im.abs() <= 1e-12 * scale.max(1.0))
    }

    /// Every value of off-diagonal group `g`'s element: `(s, ⟨s|H|s ⊕ flips⟩)` for each
    /// configuration `s` of the sites the group touches (flips and Z/Y sites; other bits 0).
    /// None when it touches more than 20 sites.
    pub fn group_elements(&self, g: usize) -> Option<Vec<(u64, Complex64)>> {
        let mut touched: Vec<usize> = self.flipped_sites(g).to_vec();
        for t in self.term_offsets[g]..self.term_offsets[g + 1] {
            touched.extend(&self.z_sites[self.z_offsets[t]..self.z_offsets[t + 1]]);
        }
        touched.sort_unstable();
        touched.dedup();
        if touched.len() > 20 || touched.iter().any(|&i| i >= 64) {
            return None;
        }
        Some(
            (0u64..1 << touched.len())
                .map(|local| {
                    let state = touched
                        .iter()
                        .enumerate()
                        .fold(0u64, |acc, (k, &site)| acc | (((local >> k) & 1) << site));
                    (state, self.group_element_bits(g, state))
                })
                .collect(),
        )
    }

    /// True when the operator commutes with total S^z: every flip group's element vanishes on
    /// every configuration where the flip changes the magnetization. Checked by enumerating the
    /// sites a group touches (groups touching more than 20 sites are assumed not to conserve).
    pub fn conserves_sz(&self) -> bool {
        (1..self.n_groups()).all(|g| {
            let flips = self.flipped_sites(g);
            let mut touched: Vec<usize> = flips.to_vec();
            for t in self.term_offsets[g]..self.term_offsets[g + 1] {
                touched.extend(&self.z_sites[self.z_offsets[t]..self.z_offsets[t + 1]]);
            }
            touched.sort_unstable();
            touched.dedup();
            if touched.len() > 20 {
                return false;
            }
            let mut sigma = vec![1i8; self.n_sites];
            (0u32..1 << touched.len()).all(|bits| {
                for (k, &site) in touched.iter().enumerate() {
                    sigma[site] = if (bits >> k) & 1 == 1 { 1 } else { -1 };
                }
                let up_flipped = flips.iter().filter(|&&i| sigma[i] > 0).count();
                2 * up_flipped == flips.len() || self.group_element(g, &sigma).norm() < 1e-14
            })
        })
    }

    /// True when the operator commutes with the total spin: `[H, Σ_i X_i] = [H, Σ_i Y_i] = 0`
    /// (then also `[H, Σ_i Z_i] = 0`, by `[S^x, S^y] = i S^z`). Exact algebra on the strings: a
    /// string anticommutes with `X_i` where it has Y or Z on site `i`, and then
    /// `[P, X_i] = 2 P X_i`; the products are collected and must cancel to rounding.
    pub fn commutes_with_total_spin(&self) -> bool {
        let tolerance = 1e-12 * self.max_coefficient();
        [Pauli::X, Pauli::Y].into_iter().all(|generator| {
            let mut commutator: BTreeMap<Vec<(usize, Pauli)>, Complex64> = BTreeMap::new();
            for string in &self.strings {
                for &(site, p) in &string.ops {
                    if p != generator {
                        let mut factors = string.ops.clone();
                        factors.push((site, generator));
                        let product = PauliString::new(string.coeff * 2.0, &factors);
                        *commutator.entry(product.ops).or_default() += product.coeff;
                    }
                }
            }
            commutator.values().all(|c| c.norm() <= tolerance)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauli_products_have_exact_phases() {
        let s = PauliString::new(Complex64::new(1.0, 0.0), &[(0, Pauli::X), (0, Pauli::Y)]);
        assert_eq!(s.ops, vec![(0, Pauli::Z)]);
        assert_eq!(s.coeff, Complex64::i());
        let s = PauliString::new(
            Complex64::new(2.0, 0.0),
            &[(1, Pauli::Z), (1, Pauli::Z), (0, Pauli::X)],
        );
        assert_eq!(s.ops, vec![(0, Pauli::X)]);
        assert_eq!(s.coeff, Complex64::new(2.0, 0.0));
    }

    #[test]
    fn single_y_matrix_elements() {
        let op = PauliSum::new(
            1,
            [PauliString::new(Complex64::new(1.0, 0.0), &[(0, Pauli::Y)])],
        );
        let mut row = Row::default();
        op.row(&[1], &mut row); // ⟨up|Y|down⟩ = −i
        assert_eq!(row.elements, vec![Complex64::new(0.0, -1.0)]);
        op.row(&[-1], &mut row); // ⟨down|Y|up⟩ = +i
        assert_eq!(row.elements, vec![Complex64::new(0.0, 1.0)]);
        let mut seen = vec![];
        op.for_each_connected_bits(1, |s, e| seen.push((s, e)));
        assert_eq!(seen, vec![(0, Complex64::new(0.0, -1.0))]);
    }

    #[test]
    fn heisenberg_bond_row() {
        let op = PauliSum::new(
            2,
            [Pauli::X, Pauli::Y, Pauli::Z]
                .map(|p| PauliString::new(Complex64::new(1.0, 0.0), &[(0, p), (1, p)])),
        );
        assert!(op.conserves_sz());
        assert!(op.is_real());
        let mut row = Row::default();
        op.row(&[1, -1], &mut row);
        assert_eq!(row.diagonal, Complex64::new(-1.0, 0.0));
        assert_eq!(row.elements, vec![Complex64::new(2.0, 0.0)]);
        op.row(&[1, 1], &mut row);
        assert!(row.is_empty());
        let tfi = PauliSum::new(
            1,
            [PauliString::new(Complex64::new(1.0, 0.0), &[(0, Pauli::X)])],
        );
        assert!(!tfi.conserves_sz());
    }

    /// Σ over pairs of `c · (X_i X_j + Y_i Y_j + jz · Z_i Z_j)`.
    fn bonds(pairs: &[(usize, usize)], jz: f64) -> Vec<PauliString> {
        let one = Complex64::new(1.0, 0.0);
        pairs
            .iter()
            .flat_map(|&(i, j)| {
                [(Pauli::X, one), (Pauli::Y, one), (Pauli::Z, one * jz)]
                    .map(|(p, c)| PauliString::new(c, &[(i, p), (j, p)]))
            })
            .collect()
    }

    #[test]
    fn total_spin_commutation_is_exact_algebra() {
        let chain: Vec<(usize, usize)> = (0..4).map(|i| (i, (i + 1) % 4)).collect();
        assert!(PauliSum::new(4, bonds(&chain, 1.0)).commutes_with_total_spin());
        // XXZ away from the isotropic point, and a field, break SU(2) (the field keeps S^z).
        assert!(!PauliSum::new(4, bonds(&chain, 0.5)).commutes_with_total_spin());
        let mut field = bonds(&chain, 1.0);
        field.push(PauliString::new(Complex64::new(0.3, 0.0), &[(2, Pauli::Z)]));
        let field = PauliSum::new(4, field);
        assert!(field.conserves_sz() && !field.commutes_with_total_spin());
        // The scalar chirality σ_0 · (σ_1 × σ_2) = Σ ε_abc σ^a_0 σ^b_1 σ^c_2 is SU(2) invariant;
        // one of its six terms alone is not.
        use Pauli::{X, Y, Z};
        let chirality: Vec<PauliString> = [
            (X, Y, Z, 1.0),
            (Y, Z, X, 1.0),
            (Z, X, Y, 1.0),
            (X, Z, Y, -1.0),
            (Z, Y, X, -1.0),
            (Y, X, Z, -1.0),
        ]
        .map(|(a, b, c, sign)| {
            PauliString::new(Complex64::new(sign, 0.0), &[(0, a), (1, b), (2, c)])
        })
        .to_vec();
        assert!(PauliSum::new(3, chirality.clone()).commutes_with_total_spin());
        assert!(!PauliSum::new(3, chirality[..5].to_vec()).commutes_with_total_spin());
    }
}
