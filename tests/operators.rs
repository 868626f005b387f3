//! Every built-in model's matrix, assembled from the connected elements, equals the matrix built
//! independently from Kronecker products of 2×2 Pauli matrices.

use ndarray::Array2;
use nqs::config;
use nqs::hilbert::{spins_from_bits, SectorBasis};
use nqs::lattice::Boundary;
use nqs::lattice::Lattice;
use nqs::operator::{Hamiltonian, Row};
use num_complex::Complex64;
use std::path::Path;

fn c(re: f64, im: f64) -> Complex64 {
    Complex64::new(re, im)
}

/// 2×2 matrix of a Pauli letter in the basis (bit 0 = down, bit 1 = up) used by bit states.
fn pauli(letter: char) -> Array2<Complex64> {
    // Basis index b = bit value; up (σ = +1) is b = 1.
    let m = match letter {
        // X swaps up and down.
        'X' => [[c(0., 0.), c(1., 0.)], [c(1., 0.), c(0., 0.)]],
        // Y = [[0, −i], [i, 0]] in (up, down) order; in (down, up) order: ⟨down|Y|up⟩ = i.
        'Y' => [[c(0., 0.), c(0., 1.)], [c(0., -1.), c(0., 0.)]],
        // Z = diag(+1 up, −1 down) → diag(−1, +1) in (down, up).
        'Z' => [[c(-1., 0.), c(0., 0.)], [c(0., 0.), c(1., 0.)]],
        _ => [[c(1., 0.), c(0., 0.)], [c(0., 0.), c(1., 0.)]],
    };
    Array2::from_shape_fn((2, 2), |(i, j)| m[i][j])
}

fn kron(a: &Array2<Complex64>, b: &Array2<Complex64>) -> Array2<Complex64> {
    let (ra, ca) = a.dim();
    let (rb, cb) = b.dim();
    Array2::from_shape_fn((ra * rb, ca * cb), |(i, j)| {
        a[[i / rb, j / cb]] * b[[i % rb, j % cb]]
    })
}

/// Site N−1 is the most significant factor so that the matrix index equals the bit state.
fn string_matrix(n: usize, ops: &[(usize, char)]) -> Array2<Complex64> {
    let mut m = Array2::from_elem((1, 1), c(1., 0.));
    for site in (0..n).rev() {
        let letter = ops
            .iter()
            .find(|(s, _)| *s == site)
            .map_or('I', |(_, l)| *l);
        m = kron(&m, &pauli(letter));
    }
    m
}

/// The model built independently: bonds and sublattices from the lattice, everything else from
/// the physics conventions of DESIGN.md §3.
fn reference_matrix(
    kind: &str,
    lattice: &Lattice,
    marshall: bool,
    spin_units: bool,
) -> Array2<Complex64> {
    let n = lattice.n_sites();
    let dim = 1 << n;
    let mut h = Array2::<Complex64>::zeros((dim, dim));
    let mut add = |coeff: f64, ops: Vec<(usize, char)>| {
        let mut factor = coeff;
        if spin_units {
            factor *= 0.5f64.powi(ops.len() as i32);
        }
        if marshall {
            let sub = lattice.sublattice().unwrap();
            let flips = ops
                .iter()
                .filter(|(s, l)| sub[*s] == 1 && (*l == 'X' || *l == 'Y'))
                .count();
            if flips % 2 == 1 {
                factor = -factor;
            }
        }
        h.scaled_add(c(factor, 0.), &string_matrix(n, &ops));
    };
    let heis =
        |add: &mut dyn FnMut(f64, Vec<(usize, char)>), j: f64, jz: f64, [a, b]: [usize; 2]| {
            add(j, vec![(a, 'X'), (b, 'X')]);
            add(j, vec![(a, 'Y'), (b, 'Y')]);
            add(jz, vec![(a, 'Z'), (b, 'Z')]);
        };
    match kind {
        "heisenberg" => lattice
            .bonds()
            .iter()
            .for_each(|&b| heis(&mut add, 0.7, 0.7, b)),
        "xxz" => lattice
            .bonds()
            .iter()
            .for_each(|&b| heis(&mut add, 0.7, 1.3, b)),
        "j1j2" => {
            lattice
                .bonds()
                .iter()
                .for_each(|&b| heis(&mut add, 1.0, 1.0, b));
            lattice
                .next_bonds()
                .iter()
                .for_each(|&b| heis(&mut add, 0.4, 0.4, b));
        }
        "tfi" => {
            lattice
                .bonds()
                .iter()
                .for_each(|&[a, b]| add(-0.9, vec![(a, 'Z'), (b, 'Z')]));
            (0..n).for_each(|i| add(-0.6, vec![(i, 'X')]));
        }
        _ => unreachable!(),
    }
    h
}

fn model_toml(kind: &str, lattice: &str, marshall: bool, spin: bool, sz: Option<f64>) -> String {
    let couplings = match kind {
        "heisenberg" => "J = 0.7",
        "xxz" => "J = 0.7\nJz = 1.3",
        "j1j2" => "J = 1.0\nJ2 = 0.4",
        "tfi" => "J = 0.9\nh = 0.6",
        _ => "",
    };
    let units = if spin { "spin" } else { "pauli" };
    let sz = sz.map_or(String::new(), |s| format!("total_sz = {s}\n"));
    format!("{lattice}\n[model]\nkind = \"{kind}\"\n{couplings}\nunits = \"{units}\"\nmarshall_sign = {marshall}\n{sz}")
}

/// The matrix of a Hamiltonian in a basis from its connected elements (spin-configuration rows).
fn assembled(h: &Hamiltonian, basis: &SectorBasis) -> Array2<Complex64> {
    let states: Vec<u64> = basis.states().collect();
    let n = h.operator.n_sites();
    let mut m = Array2::<Complex64>::zeros((states.len(), states.len()));
    let mut row = Row::default();
    let mut sigma = vec![0i8; n];
    for (r, &s) in states.iter().enumerate() {
        spins_from_bits(s, &mut sigma);
        h.operator.row(&sigma, &mut row);
        m[[r, r]] += row.diagonal;
        for (&g, &e) in row.groups.iter().zip(&row.elements) {
            let target = s ^ h.operator.flip_mask(g);
            assert!(basis.contains(target), "connection leaves the sector");
            m[[r, basis.rank(target) as usize]] += e;
        }
        // The bit-state path must agree with the spin path.
        let mut diag_bits = h.operator.diagonal_bits(s);
        diag_bits -= row.diagonal;
        assert!(diag_bits.norm() < 1e-12);
        let mut k = 0;
        h.operator.for_each_connected_bits(s, |t, e| {
            assert_eq!(t, s ^ h.operator.flip_mask(row.groups[k]));
            assert!((e - row.elements[k]).norm() < 1e-12);
            k += 1;
        });
        assert_eq!(k, row.len());
    }
    m
}

fn check(kind: &str, lattice_toml: &str, marshall: bool, spin: bool, sectors: bool) {
    let text = model_toml(kind, lattice_toml, marshall, spin, None);
    let loaded = config::parse(&text, Path::new("test.toml"), &[]).unwrap();
    let lattice = loaded.lattice.clone();
    let n = lattice.n_sites();
    let h = Hamiltonian::new(&loaded.config.model, &lattice).unwrap();
    let reference = reference_matrix(kind, &lattice, marshall, spin);
    let full = assembled(&h, &SectorBasis::new(n, None).unwrap());
    let diff = (&full - &reference)
        .iter()
        .map(|z| z.norm())
        .fold(0.0, f64::max);
    assert!(
        diff < 1e-12,
        "{kind} {lattice_toml} marshall={marshall}: max deviation {diff}"
    );
    let herm = (&full - &full.t().mapv(|z| z.conj()))
        .iter()
        .map(|z| z.norm())
        .fold(0.0, f64::max);
    assert!(herm < 1e-12, "not Hermitian");
    if sectors && kind != "tfi" {
        for n_up in 0..=n {
            let sz = n_up as f64 - n as f64 / 2.0;
            let text = model_toml(kind, lattice_toml, marshall, spin, Some(sz));
            let loaded = config::parse(&text, Path::new("test.toml"), &[]).unwrap();
            let h = Hamiltonian::new(&loaded.config.model, &lattice).unwrap();
            assert_eq!(h.n_up, Some(n_up));
            let basis = SectorBasis::new(n, Some(n_up)).unwrap();
            let block = assembled(&h, &basis);
            let states: Vec<usize> = basis.states().map(|s| s as usize).collect();
            let sub = Array2::from_shape_fn((states.len(), states.len()), |(i, j)| {
                reference[[states[i], states[j]]]
            });
            let diff = (&block - &sub).iter().map(|z| z.norm()).fold(0.0, f64::max);
            assert!(diff < 1e-12, "{kind} sector n_up={n_up}: deviation {diff}");
        }
    }
}

#[test]
fn chains_match_kronecker_products() {
    for kind in ["heisenberg", "xxz", "tfi", "j1j2"] {
        for n in [4usize, 5, 6, 8] {
            for boundary in [Boundary::Periodic, Boundary::Open] {
                let b = if boundary == Boundary::Periodic {
                    "periodic"
                } else {
                    "open"
                };
                let lat = format!("[lattice]\nkind = \"chain\"\nlength = {n}\nboundary = \"{b}\"");
                let bipartite = Lattice::chain(n, boundary).is_bipartite();
                for marshall in [false, true] {
                    if marshall && !bipartite {
                        continue;
                    }
                    check(kind, &lat, marshall, n == 6, n <= 6);
                }
            }
        }
    }
}

#[test]
fn squares_match_kronecker_products() {
    for kind in ["heisenberg", "xxz", "tfi", "j1j2"] {
        for (lx, ly) in [(2usize, 2usize), (2, 3)] {
            for b in ["periodic", "open"] {
                let lat = format!(
                    "[lattice]\nkind = \"square\"\nextent = [{lx}, {ly}]\nboundary = \"{b}\""
                );
                let bipartite = Lattice::square(
                    lx,
                    ly,
                    if b == "open" {
                        Boundary::Open
                    } else {
                        Boundary::Periodic
                    },
                )
                .is_bipartite();
                for marshall in [false, true] {
                    if marshall && !bipartite {
                        continue;
                    }
                    check(kind, &lat, marshall, false, true);
                }
            }
        }
    }
}

#[test]
fn pauli_strings_with_y_and_complex_coefficients() {
    // 0.5 X0 Y2 + 0.25 Z1 Z3 + [0, 1]·(X1 Y1 = i Z1) = −Z1, and 0.3 Y0 Y1 Y2 Y3.
    let text = r#"
[lattice]
kind = "chain"
length = 4
boundary = "open"
[model]
kind = "pauli"
[[model.terms]]
coeff = 0.5
ops = "XY"
sites = [0, 2]
[[model.terms]]
coeff = 0.25
ops = "ZZ"
sites = [1, 3]
[[model.terms]]
coeff = [0.0, 1.0]
ops = "XY"
sites = [1, 1]
[[model.terms]]
coeff = 0.3
ops = "YYYY"
sites = [0, 1, 2, 3]
"#;
    let loaded = config::parse(text, Path::new("p.toml"), &[]).unwrap();
    let lattice = loaded.lattice.clone();
    let h = Hamiltonian::new(&loaded.config.model, &lattice).unwrap();
    let mut reference = string_matrix(4, &[(0, 'X'), (2, 'Y')]) * c(0.5, 0.);
    reference = reference + string_matrix(4, &[(1, 'Z'), (3, 'Z')]) * c(0.25, 0.);
    reference = reference + string_matrix(4, &[(1, 'Z')]) * c(-1., 0.);
    reference =
        reference + string_matrix(4, &[(0, 'Y'), (1, 'Y'), (2, 'Y'), (3, 'Y')]) * c(0.3, 0.);
    let full = assembled(&h, &SectorBasis::new(4, None).unwrap());
    let diff = (&full - &reference)
        .iter()
        .map(|z| z.norm())
        .fold(0.0, f64::max);
    assert!(diff < 1e-12, "deviation {diff}");
    assert!(!h.operator.is_real());
}
