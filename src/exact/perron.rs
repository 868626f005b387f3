//! The ground state's symmetry sector by the Perron–Frobenius theorem.
//!
//! If, in some basis `|s'⟩ = U|s⟩` with `U` diagonal of signs `u(s) = ±1` (the identity, or the
//! Marshall rotation `U = Π_{i∈B} Z_i` of a bipartite lattice), the Hamiltonian has no positive
//! off-diagonal element (it is *stoquastic*) and its graph is connected within the sector, then
//! its ground state is unique and positive there: `ψ'(s) > 0`. The physical ground state
//! `ψ(s) = u(s) ψ'(s)` is then an eigenvector of every symmetry `g` of H that permutes basis
//! states (translations, the global spin flip), `ψ(g s) = λ_g ψ(s)`, and since `ψ' > 0`,
//! `λ_g = u(g s) u(s)` — read off at any one state. So the sector is known before solving:
//! for a chain with the Marshall sign at S^z = 0, `k = 0` when L/2 is even and `k = π` when it is
//! odd, and `z = (−1)^{|B|}`.
//!
//! Both conditions are checked, not assumed: stoquasticity on every configuration of the sites
//! each off-diagonal group touches, connectivity by the graph of bonds whose exchange (in an
//! S^z sector) or single flip (in the full space) has a strictly negative element everywhere.

use super::{inversion_invariant, translation_invariant};
use crate::lattice::Lattice;
use crate::operator::{MarshallRotation, PauliSum};

/// A sector of the translation group (one momentum index per lattice dimension) and of the
/// spin flip (when it is a symmetry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroundSector {
    pub momentum: Vec<usize>,
    pub inversion: Option<i8>,
    /// One line: the basis in which H is stoquastic, and the sector it implies.
    pub reason: String,
}

/// The ground state's sector when Perron–Frobenius fixes it, else why not (one line).
pub fn ground_sector(
    physical: &PauliSum,
    n_up: Option<usize>,
    lattice: &Lattice,
) -> Result<GroundSector, String> {
    let n = lattice.n_sites();
    if n > 63 {
        return Err("more than 63 sites".into());
    }
    if lattice.translations().len() < 2 {
        return Err("the lattice has no translations".into());
    }
    if !translation_invariant(physical, lattice) {
        return Err("the Hamiltonian is not translation invariant".into());
    }
    if !physical.conserves_sz() && n_up.is_some() {
        return Err("the Hamiltonian does not conserve S^z".into());
    }
    let scale = physical.max_coefficient().max(f64::MIN_POSITIVE);
    let tolerance = 1e-12 * scale;
    let mut why_not = vec![];
    let plain = (None, "the S^z basis");
    let marshall = MarshallRotation::of(lattice).map(|r| (Some(r), "the Marshall-rotated basis"));
    for (rotation, name) in std::iter::once(plain).chain(marshall) {
        let rotated = match &rotation {
            Some(r) => PauliSum::new(n, physical.strings().iter().map(|s| r.rotate(s))),
            None => physical.clone(),
        };
        match perron_frobenius(&rotated, n_up.is_some(), tolerance) {
            Ok(()) => {
                let sign = |state: u64| rotation.as_ref().map_or(1.0, |r| r.sign_bits(state));
                return characters(physical, n_up, lattice, &sign).map(|(momentum, inversion)| {
                    let z = inversion.map_or(String::new(), |z| format!(", z = {z:+}"));
                    GroundSector {
                        reason: format!(
                            "H is stoquastic in {name} and connected within the {}: by Perron–Frobenius the ground state is unique and lies in k = {momentum:?}{z}",
                            if n_up.is_some() { "S^z sector" } else { "full space" }
                        ),
                        momentum,
                        inversion,
                    }
                });
            }
            Err(e) => why_not.push(format!("in {name}: {e}")),
        }
    }
    Err(why_not.join("; "))
}

/// Ok when `op` is stoquastic and connected (within an S^z sector when `fixed_sz`).
fn perron_frobenius(op: &PauliSum, fixed_sz: bool, tolerance: f64) -> Result<(), String> {
    let n = op.n_sites();
    // Bonds whose move has a strictly negative element everywhere.
    let mut links: Vec<[usize; 2]> = Vec::new();
    let mut single_flips = vec![false; n];
    for g in 1..op.n_groups() {
        let Some(elements) = op.group_elements(g) else {
            return Err("an off-diagonal term touches more than 20 sites".into());
        };
        if let Some((_, e)) = elements
            .iter()
            .find(|(_, e)| e.re > tolerance || e.im.abs() > tolerance)
        {
            return Err(format!(
                "positive or complex off-diagonal element {:.3e}{:+.3e}i (frustration or a sign problem)",
                e.re, e.im
            ));
        }
        let flips = op.flipped_sites(g);
        let active = |state: u64| match flips {
            [i, j] if fixed_sz => (state >> i) & 1 != (state >> j) & 1,
            [_] if !fixed_sz => true,
            _ => false,
        };
        let connects = elements
            .iter()
            .filter(|(s, _)| active(*s))
            .all(|(_, e)| e.re < -tolerance)
            && elements.iter().any(|(s, _)| active(*s));
        if connects {
            match flips {
                [i, j] => links.push([*i, *j]),
                [i] => single_flips[*i] = true,
                _ => {}
            }
        }
    }
    let connected = if fixed_sz {
        crate::lattice::count_components(n, &links) == 1
    } else {
        single_flips.iter().all(|&f| f)
    };
    if connected {
        Ok(())
    } else {
        Err(if fixed_sz {
            "the exchange bonds do not connect all sites".into()
        } else {
            "not every site has a single-spin flip with a negative element".into()
        })
    }
}

/// The momentum and spin-flip eigenvalue of the ground state `ψ = u ψ'` with `ψ' > 0`:
/// `λ_g = u(g s) u(s)` for every translation `g` (and the flip), checked to be a character.
fn characters(
    physical: &PauliSum,
    n_up: Option<usize>,
    lattice: &Lattice,
    sign: &dyn Fn(u64) -> f64,
) -> Result<(Vec<usize>, Option<i8>), String> {
    let n = lattice.n_sites();
    let mask = (1u64 << n) - 1;
    // Reference states of the sector: the lowest and the highest k bits, and the first k sites
    // of the order 0, 2, 4, …, 1, 3, 5, … (a checkerboard-like state).
    let k = n_up.unwrap_or(n / 2);
    let order: Vec<usize> = (0..n).step_by(2).chain((1..n).step_by(2)).collect();
    let reference = [
        (1u64 << k) - 1,
        ((1u64 << k) - 1) << (n - k),
        order[..k].iter().fold(0u64, |s, &i| s | 1 << i),
    ];
    let apply = |perm: &[usize], state: u64| {
        (0..n).fold(0u64, |acc, i| acc | (((state >> i) & 1) << perm[i]))
    };
    let extent = lattice.extent();
    let mut momentum = vec![0usize; extent.len()];
    for t in lattice.translations() {
        let values: Vec<f64> = reference
            .iter()
            .map(|&s| sign(apply(&t.perm, s)) * sign(s))
            .collect();
        if values.iter().any(|&v| v != values[0]) {
            return Err("the sign of a translation differs between states".into());
        }
        // Generators (unit shift in one dimension) fix k_d: λ = −1 ⇔ k_d = L_d/2.
        let unit: Vec<usize> = t
            .shift
            .iter()
            .enumerate()
            .filter(|(_, &s)| s != 0)
            .map(|(d, _)| d)
            .collect();
        if let [d] = unit.as_slice() {
            if t.shift[*d] == 1 && values[0] < 0.0 {
                if extent[*d] % 2 != 0 {
                    return Err("a translation has eigenvalue −1 on an odd extent".into());
                }
                momentum[*d] = extent[*d] / 2;
            }
        }
    }
    // Every translation's λ must equal the character of that momentum.
    for t in lattice.translations() {
        let phase: usize = t
            .shift
            .iter()
            .zip(&momentum)
            .zip(extent)
            .map(|((&s, &k), &l)| 2 * k * s / l)
            .sum();
        let expected = if phase % 2 == 0 { 1.0 } else { -1.0 };
        if sign(apply(&t.perm, reference[0])) * sign(reference[0]) != expected {
            return Err("the translation signs are not a momentum character".into());
        }
    }
    let inversion = if n_up.is_none_or(|k| 2 * k == n) && inversion_invariant(physical) {
        let z = sign(!reference[0] & mask) * sign(reference[0]);
        Some(if z > 0.0 { 1 } else { -1 })
    } else {
        None
    };
    Ok((momentum, inversion))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lattice::{Boundary, Lattice};
    use crate::operator::{Pauli, PauliString};
    use num_complex::Complex64;

    fn heisenberg(lattice: &Lattice, j2: f64) -> PauliSum {
        let n = lattice.n_sites();
        let mut strings = vec![];
        for &[i, j] in lattice.bonds() {
            for p in [Pauli::X, Pauli::Y, Pauli::Z] {
                strings.push(PauliString::new(
                    Complex64::new(1.0, 0.0),
                    &[(i, p), (j, p)],
                ));
            }
        }
        for i in 0..n {
            for p in [Pauli::X, Pauli::Y, Pauli::Z] {
                strings.push(PauliString::new(
                    Complex64::new(j2, 0.0),
                    &[(i, p), ((i + 2) % n, p)],
                ));
            }
        }
        PauliSum::new(n, strings)
    }

    #[test]
    fn the_marshall_sign_fixes_the_chain_sector() {
        for n in [8, 10, 12, 14] {
            let lattice = Lattice::chain(n, Boundary::Periodic);
            let s = ground_sector(&heisenberg(&lattice, 0.0), Some(n / 2), &lattice).unwrap();
            let k = if (n / 2) % 2 == 0 { 0 } else { n / 2 };
            let z: i8 = if (n / 2) % 2 == 0 { 1 } else { -1 };
            assert_eq!((s.momentum, s.inversion), (vec![k], Some(z)), "L={n}");
            assert!(s.reason.contains("Marshall"));
        }
    }

    #[test]
    fn frustration_falls_back_with_a_reason() {
        let lattice = Lattice::chain(12, Boundary::Periodic);
        let why = ground_sector(&heisenberg(&lattice, 0.5), Some(6), &lattice).unwrap_err();
        assert!(why.contains("positive"), "{why}");
        let open = Lattice::chain(12, Boundary::Open);
        assert!(ground_sector(&heisenberg(&open, 0.0), Some(6), &open).is_err());
    }
}
