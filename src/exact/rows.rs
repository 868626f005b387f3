//! Row kernels on bit states: the diagonal element and the connected states of one basis state.
//!
//! [`BitRows`] is what the matrix-free products of [`super::SectorOperator`] and
//! [`super::symmetry::SymmetricOperator`] need. Two implementations:
//! - [`PauliSum`]: any Pauli sum (flip groups with lookup tables), the general path and the
//!   test reference;
//! - [`ExchangeRows`]: `H = Σ_b [J⊥_b (X_iX_j + Y_iY_j) + Jz_b Z_iZ_j] + Σ_i h_i Z_i + c` on any
//!   lattice (Heisenberg, XXZ, J1-J2 in a field), recognized from the Pauli sum: per bond one
//!   mask test and, on anti-aligned bonds, one flipped state; the diagonal from parities.

use crate::linalg::Field;
use crate::operator::{Pauli, PauliSum};

/// The rows of a Hamiltonian on basis states of up to 64 sites (bit i = site i up).
pub trait BitRows: Sync {
    /// `⟨s|H|s⟩`.
    fn diagonal<T: Field>(&self, state: u64) -> T;
    /// Calls `f(s', ⟨s|H|s'⟩)` for every non-zero off-diagonal element of row `s`.
    fn for_each_connected<T: Field>(&self, state: u64, f: impl FnMut(u64, T));
    /// `"exchange"` or `"pauli"`: which kernel, for the log.
    fn kernel_name(&self) -> &'static str;
}

impl BitRows for PauliSum {
    #[inline]
    fn diagonal<T: Field>(&self, state: u64) -> T {
        T::from_c64(self.diagonal_bits(state))
    }

    #[inline]
    fn for_each_connected<T: Field>(&self, state: u64, mut f: impl FnMut(u64, T)) {
        self.for_each_connected_bits(state, |s, e| f(s, T::from_c64(e)));
    }

    fn kernel_name(&self) -> &'static str {
        "pauli"
    }
}

/// `H = c + Σ_i h_i Z_i + Σ_b Jz_b Z_iZ_j + Σ_b J⊥_b (X_iX_j + Y_iY_j)` with real couplings.
///
/// On bit states: `Z_i = 2 bit_i − 1`, `Z_iZ_j = 1 − 2 parity(s ∧ m_b)` with `m_b` the bond's
/// mask, and `(X_iX_j + Y_iY_j)|s⟩ = 2|s ⊕ m_b⟩` when the bond is anti-aligned (`s ∧ m_b` has
/// one bit), else 0.
#[derive(Clone, Debug, PartialEq)]
pub struct ExchangeRows {
    /// `c + Σ_b Jz_b − Σ_i h_i`: the diagonal of the all-down state's parity-free part.
    constant: f64,
    /// `(−2 Jz, masks m_b of the bonds with that Jz)`: added per anti-aligned bond (bonds
    /// grouped by coupling, so the diagonal is integer counts and one product per coupling).
    zz: Vec<(f64, Vec<u64>)>,
    /// `(bit i, 2 h_i)`: added when site i is up.
    fields: Vec<(u64, f64)>,
    /// `(m_b, 2 J⊥_b)`: the element to `s ⊕ m_b` on anti-aligned bonds.
    hops: Vec<(u64, f64)>,
}

impl ExchangeRows {
    /// The exchange form of `op`, when it has one: every string is a constant, `Z_i`, `Z_iZ_j`,
    /// or `X_iX_j`/`Y_iY_j` with equal real coefficients on the same bond. None otherwise
    /// (then the general [`PauliSum`] rows are used).
    pub fn recognize(op: &PauliSum) -> Option<Self> {
        if op.n_sites() > 64 {
            return None;
        }
        let scale = op.max_coefficient().max(f64::MIN_POSITIVE);
        let mut rows = ExchangeRows {
            constant: 0.0,
            zz: vec![],
            fields: vec![],
            hops: vec![],
        };
        let mut xx = std::collections::BTreeMap::<(usize, usize), f64>::new();
        let mut yy = std::collections::BTreeMap::<(usize, usize), f64>::new();
        for s in op.strings() {
            if s.coeff.im.abs() > 1e-15 * scale {
                return None;
            }
            let c = s.coeff.re;
            match s.ops.as_slice() {
                [] => rows.constant += c,
                [(i, Pauli::Z)] => {
                    rows.constant -= c;
                    rows.fields.push((1 << i, 2.0 * c));
                }
                [(i, Pauli::Z), (j, Pauli::Z)] => {
                    rows.constant += c;
                    let mask = (1 << i) | (1 << j);
                    match rows.zz.iter_mut().find(|(value, _)| *value == -2.0 * c) {
                        Some((_, masks)) => masks.push(mask),
                        None => rows.zz.push((-2.0 * c, vec![mask])),
                    }
                }
                [(i, Pauli::X), (j, Pauli::X)] => {
                    xx.insert((*i, *j), c);
                }
                [(i, Pauli::Y), (j, Pauli::Y)] => {
                    yy.insert((*i, *j), c);
                }
                _ => return None,
            }
        }
        if xx.len() != yy.len() {
            return None;
        }
        for ((bond, cx), (other, cy)) in xx.iter().zip(&yy) {
            if bond != other || (cx - cy).abs() > 1e-15 * scale {
                return None;
            }
            rows.hops.push(((1 << bond.0) | (1 << bond.1), cx + cy));
        }
        Some(rows)
    }

    /// Largest number of connected states of a row.
    pub fn max_connections(&self) -> usize {
        self.hops.len()
    }
}

/// Exactly one of the two bits of `mask` is set in `state` (no popcount: baseline x86-64 has
/// no POPCNT instruction).
#[inline]
fn anti_aligned(state: u64, mask: u64) -> bool {
    let t = state & mask;
    (t != 0) & (t != mask)
}

impl BitRows for ExchangeRows {
    #[inline]
    fn diagonal<T: Field>(&self, state: u64) -> T {
        let mut d = self.constant;
        for (value, masks) in &self.zz {
            let count: u32 = masks
                .iter()
                .map(|&mask| u32::from(anti_aligned(state, mask)))
                .sum();
            d += value * f64::from(count);
        }
        for &(bit, value) in &self.fields {
            d += value * f64::from(u8::from(state & bit != 0));
        }
        T::from_re(d)
    }

    #[inline]
    fn for_each_connected<T: Field>(&self, state: u64, mut f: impl FnMut(u64, T)) {
        // The anti-aligned bonds as a bit set, built without branches (the test is a coin flip
        // for the branch predictor), then visited by trailing zeros.
        for (c, chunk) in self.hops.chunks(64).enumerate() {
            let mut active = 0u64;
            for (b, &(mask, _)) in chunk.iter().enumerate() {
                active |= u64::from(anti_aligned(state, mask)) << b;
            }
            while active != 0 {
                let (mask, value) = self.hops[64 * c + active.trailing_zeros() as usize];
                f(state ^ mask, T::from_re(value));
                active &= active - 1;
            }
        }
    }

    fn kernel_name(&self) -> &'static str {
        "exchange"
    }
}

/// The fastest kernel that represents an operator: [`ExchangeRows`] when it has the exchange
/// form, else the general [`PauliSum`] rows (one predictable branch per row).
#[derive(Clone, Debug)]
pub enum Rows<'a> {
    Exchange(ExchangeRows),
    Pauli(&'a PauliSum),
}

impl<'a> Rows<'a> {
    pub fn of(op: &'a PauliSum) -> Self {
        ExchangeRows::recognize(op).map_or(Rows::Pauli(op), Rows::Exchange)
    }
}

impl BitRows for Rows<'_> {
    #[inline]
    fn diagonal<T: Field>(&self, state: u64) -> T {
        match self {
            Rows::Exchange(k) => k.diagonal(state),
            Rows::Pauli(k) => k.diagonal(state),
        }
    }

    #[inline]
    fn for_each_connected<T: Field>(&self, state: u64, f: impl FnMut(u64, T)) {
        match self {
            Rows::Exchange(k) => k.for_each_connected(state, f),
            Rows::Pauli(k) => k.for_each_connected(state, f),
        }
    }

    fn kernel_name(&self) -> &'static str {
        match self {
            Rows::Exchange(k) => k.kernel_name(),
            Rows::Pauli(k) => k.kernel_name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::PauliString;
    use num_complex::Complex64;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn string(c: f64, ops: &[(usize, Pauli)]) -> PauliString {
        PauliString::new(Complex64::new(c, 0.0), ops)
    }

    /// Random XXZ-type operators on random bonds, with fields and a constant.
    fn random_exchange(n: usize, rng: &mut Xoshiro256PlusPlus) -> PauliSum {
        let mut strings = vec![string(rng.random::<f64>() - 0.5, &[])];
        for _ in 0..2 * n {
            let i = rng.random_range(0..n);
            let j = (i + 1 + rng.random_range(0..n - 1)) % n;
            let (jxy, jz) = (rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5);
            strings.push(string(jxy, &[(i, Pauli::X), (j, Pauli::X)]));
            strings.push(string(jxy, &[(i, Pauli::Y), (j, Pauli::Y)]));
            strings.push(string(jz, &[(i, Pauli::Z), (j, Pauli::Z)]));
        }
        for i in 0..n {
            strings.push(string(rng.random::<f64>() - 0.5, &[(i, Pauli::Z)]));
        }
        PauliSum::new(n, strings)
    }

    fn row<K: BitRows>(k: &K, state: u64) -> (f64, Vec<(u64, f64)>) {
        let mut connected = vec![];
        k.for_each_connected::<f64>(state, |s, e| connected.push((s, e)));
        // Repeated targets are summed by the products; compare sums.
        connected.sort_by_key(|c| c.0);
        let mut merged: Vec<(u64, f64)> = vec![];
        for (s, e) in connected {
            match merged.last_mut() {
                Some(last) if last.0 == s => last.1 += e,
                _ => merged.push((s, e)),
            }
        }
        merged.retain(|c| c.1.abs() > 1e-13);
        (k.diagonal::<f64>(state), merged)
    }

    #[test]
    fn exchange_rows_equal_the_pauli_rows() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        for n in [2, 3, 7, 12, 20] {
            let op = random_exchange(n, &mut rng);
            let fast = ExchangeRows::recognize(&op).expect("an exchange operator");
            for _ in 0..200 {
                let state = rng.random::<u64>() & ((1 << n) - 1);
                let (d_fast, c_fast) = row(&fast, state);
                let (d_ref, c_ref) = row(&op, state);
                assert!((d_fast - d_ref).abs() < 1e-12, "n={n} diagonal");
                assert_eq!(c_fast.len(), c_ref.len(), "n={n}");
                for (a, b) in c_fast.iter().zip(&c_ref) {
                    assert_eq!(a.0, b.0);
                    assert!((a.1 - b.1).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn other_operators_keep_the_pauli_rows() {
        let x = |c| string(c, &[(0, Pauli::X)]);
        let anisotropic = [
            string(1.0, &[(0, Pauli::X), (1, Pauli::X)]),
            string(0.5, &[(0, Pauli::Y), (1, Pauli::Y)]),
        ];
        let three_site = [string(1.0, &[(0, Pauli::Z), (1, Pauli::Z), (2, Pauli::Z)])];
        let imaginary = [PauliString::new(
            Complex64::new(0.0, 1.0),
            &[(0, Pauli::Z), (1, Pauli::Z)],
        )];
        assert!(ExchangeRows::recognize(&PauliSum::new(3, [x(1.0)])).is_none());
        assert!(ExchangeRows::recognize(&PauliSum::new(3, anisotropic)).is_none());
        assert!(ExchangeRows::recognize(&PauliSum::new(3, three_site)).is_none());
        assert!(ExchangeRows::recognize(&PauliSum::new(3, imaginary)).is_none());
    }
}
