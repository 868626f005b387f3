//! The `[model]` section and the built-in spin models.
//!
//! Heisenberg `J Σ_<ij> (XX + YY + ZZ)`, XXZ `J Σ (XX + YY) + Jz Σ ZZ`, TFI `−J Σ ZZ − h Σ X`,
//! J1-J2 `J Σ_nn + J2 Σ_nnn` of the Heisenberg bond, and custom Pauli sums. In spin units every
//! Pauli factor *as written* becomes `S = σ/2` (so `ZZ` on sites `[0, 0]` is `S^z_0 S^z_0 = 1/4`).
//!
//! **Marshall sign.** `marshall_sign = true` works in the rotated basis `|σ'⟩ = U|σ⟩`,
//! `U = Π_{i∈B} Z_i` (B the second sublattice), where XX + YY across sublattices changes sign and
//! the ground state of a bipartite antiferromagnet is positive. It is an internal basis only:
//! [`MarshallRotation`] converts operators, amplitudes and symmetry labels, and every state,
//! observable or momentum that leaves the program is in the physical basis.

use super::{check_pauli_string, Pauli, PauliString, PauliSum};
use crate::error::{check_finite, Invalid};
use crate::hilbert::n_up_for_total_sz;
use crate::lattice::Lattice;
use num_complex::Complex64;
use serde::{Deserialize, Serialize};

/// Largest |coupling| accepted: keeps every matrix element, energy and variance finite.
pub const COUPLING_LIMIT: f64 = 1e12;

/// Pauli (σ, eigenvalues ±1) or spin (S = σ/2) units.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Units {
    #[default]
    Pauli,
    Spin,
}

impl Units {
    pub fn name(self) -> &'static str {
        match self {
            Units::Pauli => "pauli",
            Units::Spin => "spin",
        }
    }
    /// The factor each written Pauli letter carries: 1, or ½ for `S = σ/2`.
    pub fn letter_factor(self) -> f64 {
        match self {
            Units::Pauli => 1.0,
            Units::Spin => 0.5,
        }
    }
    /// `Z_i Z_j` in these units: `ZZ` or `S^z S^z = ZZ/4` (the name and the factor).
    pub fn zz(self) -> (&'static str, f64) {
        match self {
            Units::Pauli => ("Z_i Z_j", 1.0),
            Units::Spin => ("S^z_i S^z_j", 0.25),
        }
    }
}

/// The `[model]` section: the kind with its couplings, plus keys every kind shares.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ModelSpec {
    #[serde(flatten)]
    pub kind: ModelKind,
    #[serde(default)]
    pub units: Units,
    #[serde(default)]
    pub marshall_sign: bool,
    /// Total S^z (spin units: (n_up − n_down)/2) of the sector to work in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_sz: Option<f64>,
}

/// The model kinds and their couplings (`kind = "…"`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelKind {
    Heisenberg(HeisenbergSpec),
    Xxz(XxzSpec),
    Tfi(TfiSpec),
    J1j2(J1j2Spec),
    Pauli(PauliSpec),
}

fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}

/// `J Σ_<ij> σ_i·σ_j`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct HeisenbergSpec {
    #[serde(default = "one")]
    pub J: f64,
}

/// `J Σ (XX + YY) + Jz Σ ZZ`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct XxzSpec {
    #[serde(default = "one")]
    pub J: f64,
    #[serde(default = "one")]
    pub Jz: f64,
}

/// `−J Σ ZZ − h Σ X`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct TfiSpec {
    #[serde(default = "one")]
    pub J: f64,
    #[serde(default = "one")]
    pub h: f64,
}

/// `J Σ_nn σ·σ + J2 Σ_nnn σ·σ`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct J1j2Spec {
    #[serde(default = "one")]
    pub J: f64,
    #[serde(default = "half")]
    pub J2: f64,
}

/// A custom sum of Pauli strings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PauliSpec {
    pub terms: Vec<TermSpec>,
}

/// One Pauli string `coeff · Π_k ops[k]_{sites[k]}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TermSpec {
    pub coeff: Coefficient,
    pub ops: String,
    pub sites: Vec<usize>,
}

/// A real coefficient `0.5` or a complex one `[re, im]`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Coefficient {
    Real(f64),
    Complex([f64; 2]),
}

impl Coefficient {
    pub fn value(self) -> Complex64 {
        match self {
            Coefficient::Real(re) => Complex64::new(re, 0.0),
            Coefficient::Complex([re, im]) => Complex64::new(re, im),
        }
    }
}

impl ModelKind {
    /// `heisenberg`, `xxz`, …
    pub fn name(&self) -> &'static str {
        match self {
            ModelKind::Heisenberg(_) => "heisenberg",
            ModelKind::Xxz(_) => "xxz",
            ModelKind::Tfi(_) => "tfi",
            ModelKind::J1j2(_) => "j1j2",
            ModelKind::Pauli(_) => "pauli",
        }
    }

    /// The named couplings, for checks and messages.
    pub fn couplings(&self) -> Vec<(&'static str, f64)> {
        match self {
            ModelKind::Heisenberg(s) => vec![("J", s.J)],
            ModelKind::Xxz(s) => vec![("J", s.J), ("Jz", s.Jz)],
            ModelKind::Tfi(s) => vec![("J", s.J), ("h", s.h)],
            ModelKind::J1j2(s) => vec![("J", s.J), ("J2", s.J2)],
            ModelKind::Pauli(_) => vec![],
        }
    }
}

impl ModelSpec {
    /// Checks couplings and terms (site ranges need the lattice: see [`Hamiltonian::new`]).
    pub fn validate(&self) -> Result<(), Invalid> {
        for (name, value) in self.kind.couplings() {
            check_finite(&format!("model.{name}"), value, COUPLING_LIMIT)?;
        }
        if let ModelKind::Pauli(p) = &self.kind {
            if p.terms.is_empty() {
                return Err(Invalid::new(
                    "model.terms",
                    "kind = \"pauli\" needs at least one [[model.terms]] entry",
                ));
            }
            for (k, term) in p.terms.iter().enumerate() {
                let c = term.coeff.value();
                check_finite(&format!("model.terms[{k}].coeff"), c.re, COUPLING_LIMIT)?;
                check_finite(&format!("model.terms[{k}].coeff"), c.im, COUPLING_LIMIT)?;
            }
        }
        if let Some(sz) = self.total_sz {
            check_finite("model.total_sz", sz, 1e6)?;
        }
        Ok(())
    }
}

/// The Marshall rotation `U = Π_{i∈B} Z_i` between the physical and the sampled basis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarshallRotation {
    /// `in_b[i]`: site i is on sublattice B (where U acts).
    in_b: Vec<bool>,
}

impl MarshallRotation {
    /// The rotation of a bipartite lattice (None when it has odd loops).
    pub fn of(lattice: &Lattice) -> Option<Self> {
        lattice.sublattice().map(|sub| MarshallRotation {
            in_b: sub.iter().map(|&s| s == 1).collect(),
        })
    }

    /// The sites of sublattice B.
    pub fn sites(&self) -> Vec<usize> {
        (0..self.in_b.len()).filter(|&i| self.in_b[i]).collect()
    }

    /// `U P U†`: X and Y on B change sign, Z does not.
    pub fn rotate(&self, s: &PauliString) -> PauliString {
        let odd = s
            .ops
            .iter()
            .filter(|&&(i, p)| self.in_b[i] && matches!(p, Pauli::X | Pauli::Y))
            .count()
            % 2
            == 1;
        PauliString {
            coeff: if odd { -s.coeff } else { s.coeff },
            ops: s.ops.clone(),
        }
    }

    /// `⟨σ|U|σ⟩ = Π_{i∈B} σ_i = (−1)^{down spins on B}`: ψ_physical(σ) = sign · ψ_rotated(σ).
    pub fn sign(&self, sigma: &[i8]) -> f64 {
        let down = sigma
            .iter()
            .zip(&self.in_b)
            .filter(|(&s, &b)| b && s < 0)
            .count();
        if down % 2 == 0 {
            1.0
        } else {
            -1.0
        }
    }

    /// `λ = u(gσ)u(σ)`: the sign the rotation picks up under the site permutation `perm`
    /// (`(gσ)_{perm[i]} = σ_i`), composed with the global flip when `flip`.
    pub fn sign_change(&self, sigma: &[i8], perm: &[usize], flip: bool) -> f64 {
        let mut image = vec![0i8; sigma.len()];
        for (i, &s) in sigma.iter().enumerate() {
            image[perm[i]] = if flip { -s } else { s };
        }
        self.sign(&image) * self.sign(sigma)
    }

    /// The same for a bit state (bit i = site i up).
    pub fn sign_bits(&self, state: u64) -> f64 {
        let down = (0..self.in_b.len())
            .filter(|&i| self.in_b[i] && (state >> i) & 1 == 0)
            .count();
        if down % 2 == 0 {
            1.0
        } else {
            -1.0
        }
    }

    /// Does the site permutation `perm` exchange the sublattices?
    pub fn swaps_sublattices(&self, perm: &[usize]) -> bool {
        perm.first()
            .is_some_and(|&image| self.in_b[image] != self.in_b[0])
    }
}

/// A validated model: the operator in the sampled basis, the physical one, its sector and
/// units.
#[derive(Clone, Debug)]
pub struct Hamiltonian {
    /// The operator in the basis the program samples in (Marshall-rotated when requested).
    pub operator: PauliSum,
    /// The operator in the physical basis (the same as `operator` without a rotation).
    pub physical: PauliSum,
    /// Number of up spins of the S^z sector to work in, if restricted.
    pub n_up: Option<usize>,
    pub units: Units,
    /// `heisenberg`, `xxz`, …
    pub kind: &'static str,
    /// The Marshall rotation, when `marshall_sign = true`.
    pub rotation: Option<MarshallRotation>,
}

impl Hamiltonian {
    /// The sites whose down spins carry the sampled basis's Marshall sign, as stored in
    /// `ansatz/marshall_sites` (empty without the rotation).
    pub fn marshall_sites(&self) -> Vec<u64> {
        self.rotation.as_ref().map_or(vec![], |r| {
            r.sites().into_iter().map(|s| s as u64).collect()
        })
    }

    /// The same operator restricted to the S^z sector with `n_up` up spins (None: the whole
    /// space).
    pub fn in_sector(&self, n_up: Option<usize>) -> Hamiltonian {
        Hamiltonian {
            n_up,
            ..self.clone()
        }
    }

    /// Builds and validates the Hamiltonian of a model on a lattice.
    pub fn new(model: &ModelSpec, lattice: &Lattice) -> Result<Self, Invalid> {
        let n = lattice.n_sites();
        let strings = model_strings(&model.kind, lattice)?;
        let factor = model.units.letter_factor();
        let strings: Vec<PauliString> = strings
            .into_iter()
            .map(|(mut s, letters)| {
                s.coeff *= factor.powi(letters as i32);
                s
            })
            .collect();
        let rotation = if model.marshall_sign {
            Some(MarshallRotation::of(lattice).ok_or_else(|| {
                Invalid::new(
                    "model.marshall_sign",
                    "the Marshall sign needs a bipartite lattice, and this one has odd loops",
                )
            })?)
        } else {
            None
        };
        let physical = PauliSum::new(n, strings.iter().cloned());
        if !physical.is_hermitian() {
            return Err(Invalid::new("model.terms", "the Hamiltonian is not Hermitian: after combining equal Pauli strings every coefficient must be real"));
        }
        let operator = match &rotation {
            Some(r) => PauliSum::new(n, strings.iter().map(|s| r.rotate(s))),
            None => physical.clone(),
        };
        let n_up = match model.total_sz {
            None => None,
            Some(sz) => {
                if !physical.conserves_sz() {
                    return Err(Invalid::new(
                        "model.total_sz",
                        "this model does not conserve total S^z, so it has no S^z sectors",
                    ));
                }
                Some(n_up_for_total_sz(n, sz).ok_or_else(|| {
                    Invalid::new("model.total_sz", format!("no sector with total S^z = {sz} on {n} sites (need N/2 + S^z to be an integer in 0..={n})"))
                })?)
            }
        };
        Ok(Hamiltonian {
            operator,
            physical,
            n_up,
            units: model.units,
            kind: model.kind.name(),
            rotation,
        })
    }

    /// A Pauli string observable `Π ops[k]_{sites[k]}` in the model's units, in the sampled basis
    /// (each written letter carries ½ in spin units; the Marshall rotation is applied).
    pub fn observable(&self, ops: &str, sites: &[usize]) -> PauliSum {
        let letters = ops.chars().filter(|&l| l != 'I').count();
        let coeff = Complex64::new(self.units.letter_factor().powi(letters as i32), 0.0);
        let s = PauliString::parse(coeff, ops, sites);
        let s = match &self.rotation {
            Some(r) => r.rotate(&s),
            None => s,
        };
        PauliSum::new(self.operator.n_sites(), [s])
    }
}

/// The Pauli strings of a model kind on a lattice, each with the number of Pauli letters it was
/// written with (spin units scale by ½ per letter).
fn model_strings(
    kind: &ModelKind,
    lattice: &Lattice,
) -> Result<Vec<(PauliString, usize)>, Invalid> {
    let n = lattice.n_sites();
    let c = |v: f64| Complex64::new(v, 0.0);
    let bond =
        |coeff: f64, [a, b]: [usize; 2], p: Pauli| PauliString::new(c(coeff), &[(a, p), (b, p)]);
    let heisenberg =
        |coeff: f64, b: [usize; 2]| [Pauli::X, Pauli::Y, Pauli::Z].map(|p| bond(coeff, b, p));
    // (string, number of Pauli letters as written) — spin units scale by ½ per letter.
    let mut strings: Vec<(PauliString, usize)> = Vec::new();
    match kind {
        ModelKind::Heisenberg(s) => {
            for &b in lattice.bonds() {
                strings.extend(heisenberg(s.J, b).map(|p| (p, 2)));
            }
        }
        ModelKind::Xxz(s) => {
            for &b in lattice.bonds() {
                strings.extend(
                    [
                        bond(s.J, b, Pauli::X),
                        bond(s.J, b, Pauli::Y),
                        bond(s.Jz, b, Pauli::Z),
                    ]
                    .map(|p| (p, 2)),
                );
            }
        }
        ModelKind::Tfi(s) => {
            for &b in lattice.bonds() {
                strings.push((bond(-s.J, b, Pauli::Z), 2));
            }
            for i in 0..n {
                strings.push((PauliString::new(c(-s.h), &[(i, Pauli::X)]), 1));
            }
        }
        ModelKind::J1j2(s) => {
            if lattice.next_bonds().is_empty() {
                return Err(Invalid::new("model.kind", "j1j2 needs next-nearest-neighbour bonds (give lattice.next_edges for a custom lattice)"));
            }
            for &b in lattice.bonds() {
                strings.extend(heisenberg(s.J, b).map(|p| (p, 2)));
            }
            for &b in lattice.next_bonds() {
                strings.extend(heisenberg(s.J2, b).map(|p| (p, 2)));
            }
        }
        ModelKind::Pauli(p) => {
            for (k, term) in p.terms.iter().enumerate() {
                check_pauli_string(&format!("model.terms[{k}]"), &term.ops, &term.sites, n)?;
                let letters = term.ops.chars().filter(|&l| l != 'I').count();
                strings.push((
                    PauliString::parse(term.coeff.value(), &term.ops, &term.sites),
                    letters,
                ));
            }
        }
    }
    Ok(strings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lattice::Boundary;

    fn spec(text: &str) -> ModelSpec {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn spin_units_apply_one_half_per_written_letter() {
        // ZZ on [0, 0] is S^z_0 S^z_0 = 1/4; X on [1] is S^x_1 with eigenvalues ±1/2.
        let lattice = Lattice::chain(2, Boundary::Open);
        let m = spec(
            "kind = \"pauli\"\nunits = \"spin\"\n[[terms]]\ncoeff = 1.0\nops = \"ZZ\"\nsites = [0, 0]\n[[terms]]\ncoeff = 1.0\nops = \"X\"\nsites = [1]\n",
        );
        let h = Hamiltonian::new(&m, &lattice).unwrap();
        let mut row = super::super::Row::default();
        h.operator.row(&[1, 1], &mut row);
        assert!((row.diagonal.re - 0.25).abs() < 1e-15);
        assert_eq!(row.elements, vec![Complex64::new(0.5, 0.0)]);
    }

    #[test]
    fn marshall_rotation_flips_cross_sublattice_hopping() {
        let lattice = Lattice::chain(4, Boundary::Periodic);
        let m = spec("kind = \"heisenberg\"\nmarshall_sign = true\n");
        let h = Hamiltonian::new(&m, &lattice).unwrap();
        let mut row = super::super::Row::default();
        h.operator.row(&[1, -1, 1, -1], &mut row);
        assert!(row.elements.iter().all(|e| e.re < 0.0));
        h.physical.row(&[1, -1, 1, -1], &mut row);
        assert!(row.elements.iter().all(|e| e.re > 0.0));
        let r = h.rotation.unwrap();
        assert_eq!(r.sites(), vec![1, 3]);
        assert_eq!(r.sign(&[1, -1, 1, 1]), -1.0);
        assert_eq!(r.sign_bits(0b1101), -1.0);
        assert!(r.swaps_sublattices(&[1, 2, 3, 0]));
        assert!(!r.swaps_sublattices(&[2, 3, 0, 1]));
    }
}
