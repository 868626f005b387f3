//! Lattices: chains, rectangular Lx×Ly lattices and custom graphs.
//!
//! A [`Lattice`] holds nearest- and next-nearest-neighbour bonds (each unordered pair once, so a
//! periodic chain of 2 sites has one bond, and custom edges `[0, 1]` and `[1, 0]` are one bond), a
//! two-colouring of the nearest-neighbour graph when it is bipartite, and its translation group as
//! site permutations. Sites of a square lattice are numbered `i = x + Lx·y`.
//!
//! ```
//! use nqs::lattice::{Boundary, Lattice};
//! let chain = Lattice::chain(6, Boundary::Periodic);
//! assert_eq!(chain.bonds().len(), 6);
//! assert_eq!(chain.translations()[1].perm, vec![1, 2, 3, 4, 5, 0]);
//! ```

use crate::error::{check_count, Invalid};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Largest number of sites any lattice may have (VMC cost grows like N² per sweep).
pub const MAX_SITES: usize = 4096;

/// Boundary conditions of chains and square lattices.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Boundary {
    #[default]
    Periodic,
    Open,
}

/// The `[lattice]` section of a model file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LatticeSpec {
    Chain(ChainSpec),
    Square(SquareSpec),
    Custom(CustomSpec),
}

/// `kind = "chain"`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    /// Number of sites.
    pub length: usize,
    #[serde(default)]
    pub boundary: Boundary,
}

/// `kind = "square"`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SquareSpec {
    /// `[Lx, Ly]`.
    pub extent: [usize; 2],
    #[serde(default)]
    pub boundary: Boundary,
}

/// `kind = "custom"`: a graph given by its bonds.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomSpec {
    /// Nearest-neighbour bonds.
    pub edges: Vec<Edge>,
    /// Next-nearest-neighbour bonds (used by `j1j2`).
    #[serde(default)]
    pub next_edges: Vec<Edge>,
    /// Number of sites (default: 1 + the largest site in `edges`).
    pub n_sites: Option<usize>,
}

/// A bond `[i, j]` (exactly two sites).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(try_from = "Vec<usize>", into = "Vec<usize>")]
pub struct Edge(pub [usize; 2]);

impl TryFrom<Vec<usize>> for Edge {
    type Error = String;
    fn try_from(v: Vec<usize>) -> Result<Self, String> {
        match v[..] {
            [a, b] => Ok(Edge([a, b])),
            _ => Err(format!("a bond is a pair [i, j]; got {} numbers", v.len())),
        }
    }
}

impl From<Edge> for Vec<usize> {
    fn from(e: Edge) -> Self {
        e.0.to_vec()
    }
}

impl CustomSpec {
    fn n_sites(&self) -> usize {
        self.n_sites.unwrap_or_else(|| {
            self.edges
                .iter()
                .flat_map(|e| e.0)
                .max()
                .map_or(0, |m| m + 1)
        })
    }
}

impl LatticeSpec {
    /// Checks sizes and bonds.
    pub fn validate(&self) -> Result<(), Invalid> {
        match self {
            LatticeSpec::Chain(c) => {
                check_count("lattice.length", c.length, 2, MAX_SITES)?;
            }
            LatticeSpec::Square(s) => {
                for &l in &s.extent {
                    check_count("lattice.extent", l, 1, MAX_SITES)?;
                }
                check_count("lattice.extent", s.extent[0] * s.extent[1], 2, MAX_SITES)
                    .map_err(|e| Invalid::new(e.key, format!("Lx·Ly: {}", e.message)))?;
            }
            LatticeSpec::Custom(c) => {
                let n = c.n_sites();
                check_count("lattice.n_sites", n, 1, MAX_SITES)?;
                for (key, list) in [
                    ("lattice.edges", &c.edges),
                    ("lattice.next_edges", &c.next_edges),
                ] {
                    for (k, &Edge([a, b])) in list.iter().enumerate() {
                        if a >= n || b >= n {
                            return Err(Invalid::new(
                                format!("{key}[{k}]"),
                                format!("site out of range: [{a}, {b}] with n_sites = {n}"),
                            ));
                        }
                        if a == b {
                            return Err(Invalid::new(
                                format!("{key}[{k}]"),
                                format!("a bond joins site {a} to itself"),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Number of sites.
    pub fn n_sites(&self) -> usize {
        match self {
            LatticeSpec::Chain(c) => c.length,
            LatticeSpec::Square(s) => s.extent[0] * s.extent[1],
            LatticeSpec::Custom(c) => c.n_sites(),
        }
    }

    /// `chain L=16 periodic`, `square 4x4 open`, `custom graph N=12`.
    pub fn describe(&self) -> String {
        let b = |b: Boundary| {
            if b == Boundary::Periodic {
                "periodic"
            } else {
                "open"
            }
        };
        match self {
            LatticeSpec::Chain(c) => format!("chain L={} {}", c.length, b(c.boundary)),
            LatticeSpec::Square(s) => {
                format!("square {}x{} {}", s.extent[0], s.extent[1], b(s.boundary))
            }
            LatticeSpec::Custom(c) => format!("custom graph N={}", c.n_sites()),
        }
    }
}

/// One element of the translation group: `site i → perm[i]`, shifting by `shift` lattice vectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    pub shift: Vec<usize>,
    pub perm: Vec<usize>,
}

/// A finite lattice with its bonds and symmetries.
#[derive(Clone, Debug)]
pub struct Lattice {
    n_sites: usize,
    /// `[L]` for chains, `[Lx, Ly]` for square lattices, empty for custom graphs.
    extent: Vec<usize>,
    periodic: bool,
    bonds: Vec<[usize; 2]>,
    next_bonds: Vec<[usize; 2]>,
    sublattice: Option<Vec<u8>>,
    translations: Vec<Translation>,
    /// The point group about site 0 (identity first), see [`Lattice::point_group`].
    point_group: Vec<Vec<usize>>,
}

fn normalized(pairs: impl IntoIterator<Item = [usize; 2]>) -> Vec<[usize; 2]> {
    let set: BTreeSet<[usize; 2]> = pairs
        .into_iter()
        .filter(|[a, b]| a != b)
        .map(|[a, b]| [a.min(b), a.max(b)])
        .collect();
    set.into_iter().collect()
}

impl Lattice {
    /// A chain of `length` sites.
    pub fn chain(length: usize, boundary: Boundary) -> Self {
        Self::rectangular(&[length], boundary)
    }

    /// An `lx × ly` square lattice.
    pub fn square(lx: usize, ly: usize, boundary: Boundary) -> Self {
        Self::rectangular(&[lx, ly], boundary)
    }

    /// Hypercubic lattice in 1 or 2 dimensions: site index `Σ_d x_d Π_{d'<d} L_d'`.
    fn rectangular(extent: &[usize], boundary: Boundary) -> Self {
        let periodic = boundary == Boundary::Periodic;
        let n: usize = extent.iter().product();
        let coords = |i: usize| -> Vec<usize> {
            let mut rest = i;
            extent
                .iter()
                .map(|&l| {
                    let x = rest % l;
                    rest /= l;
                    x
                })
                .collect()
        };
        let index = |x: &[usize]| -> usize {
            x.iter()
                .zip(extent)
                .rev()
                .fold(0, |acc, (&xi, &l)| acc * l + xi)
        };
        // Neighbour of `x` displaced by `d` (components in −1..=1); None across an open boundary.
        let displaced = |x: &[usize], d: &[isize]| -> Option<usize> {
            let mut y = Vec::with_capacity(x.len());
            for ((&xi, &di), &l) in x.iter().zip(d).zip(extent) {
                let v = xi as isize + di;
                if (0..l as isize).contains(&v) {
                    y.push(v as usize);
                } else if periodic {
                    y.push(v.rem_euclid(l as isize) as usize);
                } else {
                    return None;
                }
            }
            Some(index(&y))
        };
        let (nn, nnn): (Vec<Vec<isize>>, Vec<Vec<isize>>) = if extent.len() == 1 {
            (vec![vec![1]], vec![vec![2]])
        } else {
            (vec![vec![1, 0], vec![0, 1]], vec![vec![1, 1], vec![1, -1]])
        };
        let bonds_for = |ds: &[Vec<isize>]| {
            normalized((0..n).flat_map(|i| {
                let x = coords(i);
                ds.iter()
                    .filter_map(move |d| displaced(&x, d).map(|j| [i, j]))
                    .collect::<Vec<_>>()
            }))
        };
        let bonds = bonds_for(&nn);
        let next_bonds = bonds_for(&nnn);
        let translations = if periodic {
            let mut shifts = vec![vec![]];
            for &l in extent {
                shifts = shifts
                    .into_iter()
                    .flat_map(|s| (0..l).map(move |t| [s.clone(), vec![t]].concat()))
                    .collect();
            }
            shifts
                .into_iter()
                .map(|shift| {
                    let d: Vec<isize> = shift.iter().map(|&s| s as isize).collect();
                    let perm = (0..n)
                        .map(|i| displaced(&coords(i), &d).expect("periodic"))
                        .collect();
                    Translation { shift, perm }
                })
                .collect()
        } else {
            vec![Translation {
                shift: vec![0; extent.len()],
                perm: (0..n).collect(),
            }]
        };
        // The linear maps x ↦ Rx (mod L) of the point group: the reflection of a chain; the
        // eight signed permutations of the axes (C4v) of a square lattice with Lx = Ly, the
        // four sign changes (C2v) otherwise.
        let linear_maps: Vec<[[isize; 2]; 2]> = match (periodic, extent) {
            (false, _) => vec![],
            (true, [_]) => vec![[[-1, 0], [0, 1]]],
            (true, [lx, ly]) => {
                let signs = [[1, 1], [-1, 1], [1, -1], [-1, -1]];
                let mut maps: Vec<_> = signs.iter().map(|&[a, b]| [[a, 0], [0, b]]).collect();
                if lx == ly {
                    maps.extend(signs.iter().map(|&[a, b]| [[0, a], [b, 0]]));
                }
                maps
            }
            _ => vec![],
        };
        let mut point_group = vec![(0..n).collect::<Vec<usize>>()];
        for r in linear_maps {
            let perm: Vec<usize> = (0..n)
                .map(|i| {
                    let x = coords(i);
                    let y: Vec<usize> = (0..x.len())
                        .map(|d| {
                            let v: isize = (0..x.len()).map(|e| r[d][e] * x[e] as isize).sum();
                            v.rem_euclid(extent[d] as isize) as usize
                        })
                        .collect();
                    index(&y)
                })
                .collect();
            if !point_group.contains(&perm) {
                point_group.push(perm);
            }
        }
        let sublattice = two_colouring(n, &bonds);
        Lattice {
            n_sites: n,
            extent: extent.to_vec(),
            periodic,
            bonds,
            next_bonds,
            sublattice,
            translations,
            point_group,
        }
    }

    /// A custom graph; its only symmetry is the identity.
    pub fn custom(n_sites: usize, edges: &[[usize; 2]], next_edges: &[[usize; 2]]) -> Self {
        let bonds = normalized(edges.iter().copied());
        let next_bonds = normalized(next_edges.iter().copied());
        let sublattice = two_colouring(n_sites, &bonds);
        Lattice {
            n_sites,
            extent: vec![],
            periodic: false,
            bonds,
            next_bonds,
            sublattice,
            translations: vec![Translation {
                shift: vec![],
                perm: (0..n_sites).collect(),
            }],
            point_group: vec![(0..n_sites).collect()],
        }
    }

    /// Builds the lattice of a validated specification.
    pub fn new(spec: &LatticeSpec) -> Self {
        match spec {
            LatticeSpec::Chain(c) => Self::chain(c.length, c.boundary),
            LatticeSpec::Square(s) => Self::square(s.extent[0], s.extent[1], s.boundary),
            LatticeSpec::Custom(c) => {
                let pairs = |list: &[Edge]| list.iter().map(|e| e.0).collect::<Vec<_>>();
                Self::custom(c.n_sites(), &pairs(&c.edges), &pairs(&c.next_edges))
            }
        }
    }

    pub fn n_sites(&self) -> usize {
        self.n_sites
    }
    /// `[L]`, `[Lx, Ly]`, or empty for custom graphs.
    pub fn extent(&self) -> &[usize] {
        &self.extent
    }
    pub fn is_periodic(&self) -> bool {
        self.periodic
    }
    /// Nearest-neighbour bonds `[i, j]` with `i < j`, each pair once.
    pub fn bonds(&self) -> &[[usize; 2]] {
        &self.bonds
    }
    /// Next-nearest-neighbour bonds (chain: distance 2; square: diagonals).
    pub fn next_bonds(&self) -> &[[usize; 2]] {
        &self.next_bonds
    }
    /// Sublattice (0 or 1) of every site if the nearest-neighbour graph is bipartite.
    pub fn sublattice(&self) -> Option<&[u8]> {
        self.sublattice.as_deref()
    }
    pub fn is_bipartite(&self) -> bool {
        self.sublattice.is_some()
    }
    /// The translation group (identity only for open boundaries and custom graphs).
    pub fn translations(&self) -> &[Translation] {
        &self.translations
    }
    /// The point group about site 0 of a periodic lattice, as site permutations `i ↦ p[i]`
    /// (identity first): the reflection `x ↦ −x` of a chain; for a square lattice the sign
    /// changes of the axes (C2v, 4 elements) and, when `Lx = Ly`, the axis exchanges too (C4v,
    /// 8 elements). Identity only for open boundaries and custom graphs.
    pub fn point_group(&self) -> &[Vec<usize>] {
        &self.point_group
    }

    /// The space group `{t ∘ p}`: every point-group element followed by every translation,
    /// `i ↦ t[p[i]]`, ordered by translation then point element. (The elements are distinct:
    /// a point-group element fixes site 0, so `t ∘ p` sends 0 where t does, and t acts freely.)
    pub fn space_group(&self) -> Vec<Vec<usize>> {
        self.translations
            .iter()
            .flat_map(|t| {
                self.point_group
                    .iter()
                    .map(move |p| p.iter().map(|&i| t.perm[i]).collect())
            })
            .collect()
    }

    /// Whether every point-group element p maps momentum `m` to itself (mod the reciprocal
    /// lattice), so that `χ(t ∘ p) = χ_k(t)` is a character of the space group: checked as
    /// `χ_k(p t p⁻¹) = χ_k(t)` for every translation t.
    pub fn point_group_fixes(&self, m: &[usize]) -> bool {
        let n = self.n_sites;
        let phase = |shift: &[usize]| -> usize {
            // Σ_d m_d s_d / L_d in units of 1 / Π L, mod 1.
            let total: usize = self.extent.iter().product();
            shift
                .iter()
                .zip(m)
                .zip(&self.extent)
                .map(|((&s, &k), &l)| s * k * (total / l))
                .sum::<usize>()
                % total
        };
        self.point_group.iter().all(|p| {
            let mut inverse = vec![0; n];
            for (i, &j) in p.iter().enumerate() {
                inverse[j] = i;
            }
            self.translations.iter().all(|t| {
                let conjugate: Vec<usize> = (0..n).map(|i| p[t.perm[inverse[i]]]).collect();
                self.translations
                    .iter()
                    .find(|u| u.perm == conjugate)
                    .is_some_and(|u| phase(&u.shift) == phase(&t.shift))
            })
        })
    }

    /// The momentum grid `m` (one integer per dimension, `q_d = 2π m_d / L_d`) of a chain or
    /// square lattice; empty for custom graphs.
    pub fn momentum_indices(&self) -> Vec<Vec<usize>> {
        if self.extent.is_empty() {
            return vec![];
        }
        let mut momenta = vec![vec![]];
        for &l in &self.extent {
            momenta = momenta
                .into_iter()
                .flat_map(|k: Vec<usize>| (0..l).map(move |q| [k.clone(), vec![q]].concat()))
                .collect();
        }
        momenta
    }

    /// `q_d = 2π m_d / L_d`.
    pub fn momentum(&self, m: &[usize]) -> Vec<f64> {
        m.iter()
            .zip(&self.extent)
            .map(|(&k, &l)| 2.0 * std::f64::consts::PI * k as f64 / l as f64)
            .collect()
    }

    /// Position of site `i` (empty for custom graphs).
    pub fn coordinates(&self, i: usize) -> Vec<usize> {
        let mut rest = i;
        self.extent
            .iter()
            .map(|&l| {
                let x = rest % l;
                rest /= l;
                x
            })
            .collect()
    }
}

/// Two-colouring of a graph by breadth-first search, or None if it has an odd cycle.
fn two_colouring(n: usize, bonds: &[[usize; 2]]) -> Option<Vec<u8>> {
    let mut adjacency = vec![Vec::new(); n];
    for &[a, b] in bonds {
        adjacency[a].push(b);
        adjacency[b].push(a);
    }
    let mut colour = vec![u8::MAX; n];
    let mut queue = std::collections::VecDeque::new();
    for start in 0..n {
        if colour[start] != u8::MAX {
            continue;
        }
        colour[start] = 0;
        queue.push_back(start);
        while let Some(i) = queue.pop_front() {
            for &j in &adjacency[i] {
                if colour[j] == u8::MAX {
                    colour[j] = 1 - colour[i];
                    queue.push_back(j);
                } else if colour[j] == colour[i] {
                    return None;
                }
            }
        }
    }
    Some(colour)
}

/// The number of connected components of the graph on `n` sites with edges `edges` (isolated
/// sites count). Transpositions along the edges generate every permutation of the sites exactly
/// when it is 1: exchange moves are then ergodic within an S^z sector, and a stoquastic
/// exchange Hamiltonian is irreducible there.
pub fn count_components(n: usize, edges: &[[usize; 2]]) -> usize {
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut groups = n;
    for &[i, j] in edges {
        let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
        if ri != rj {
            parent[ri] = rj;
            groups -= 1;
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_chain_bonds_and_translations() {
        let l = Lattice::chain(6, Boundary::Periodic);
        assert_eq!(l.bonds().len(), 6);
        assert_eq!(l.next_bonds().len(), 6);
        assert!(l.bonds().contains(&[0, 5]));
        assert_eq!(l.translations().len(), 6);
        assert_eq!(l.translations()[1].perm, vec![1, 2, 3, 4, 5, 0]);
        assert_eq!(l.sublattice().unwrap(), &[0, 1, 0, 1, 0, 1]);
    }

    #[test]
    fn odd_periodic_chain_is_not_bipartite_open_is() {
        assert!(!Lattice::chain(5, Boundary::Periodic).is_bipartite());
        let open = Lattice::chain(5, Boundary::Open);
        assert!(open.is_bipartite());
        assert_eq!(open.bonds().len(), 4);
        assert_eq!(open.next_bonds().len(), 3);
        assert_eq!(open.translations().len(), 1);
    }

    #[test]
    fn square_lattice_counts() {
        let l = Lattice::square(4, 3, Boundary::Periodic);
        assert_eq!(l.n_sites(), 12);
        assert_eq!(l.bonds().len(), 24);
        assert_eq!(l.next_bonds().len(), 24);
        assert_eq!(l.translations().len(), 12);
        assert!(!l.is_bipartite()); // Ly = 3 periodic has odd cycles
        let o = Lattice::square(3, 2, Boundary::Open);
        assert_eq!(o.bonds().len(), 7);
        assert_eq!(o.next_bonds().len(), 4);
        assert!(o.is_bipartite());
        // Every translation preserves the bond set.
        let l = Lattice::square(4, 4, Boundary::Periodic);
        for t in l.translations() {
            let mapped = normalized(l.bonds().iter().map(|&[a, b]| [t.perm[a], t.perm[b]]));
            assert_eq!(mapped, l.bonds());
        }
    }

    /// The space group is a group of |T|·|P| lattice automorphisms (bond and next-bond sets
    /// preserved, closed under composition); the point group keeps the sublattices.
    #[test]
    fn space_groups_are_groups_of_automorphisms() {
        for (lattice, points) in [
            (Lattice::chain(8, Boundary::Periodic), 2),
            (Lattice::square(4, 4, Boundary::Periodic), 8),
            (Lattice::square(6, 4, Boundary::Periodic), 4),
            (Lattice::square(3, 3, Boundary::Open), 1),
        ] {
            assert_eq!(lattice.point_group().len(), points);
            let group = lattice.space_group();
            assert_eq!(group.len(), lattice.translations().len() * points);
            for g in &group {
                for bonds in [lattice.bonds(), lattice.next_bonds()] {
                    let mapped = normalized(bonds.iter().map(|&[a, b]| [g[a], g[b]]));
                    assert_eq!(mapped, bonds);
                }
                for h in &group {
                    let product: Vec<usize> = h.iter().map(|&i| g[i]).collect();
                    assert!(group.contains(&product));
                }
            }
            if let Some(colour) = lattice.sublattice() {
                for p in lattice.point_group() {
                    assert!((0..lattice.n_sites()).all(|i| colour[p[i]] == colour[i]));
                }
            }
        }
        let square = Lattice::square(4, 4, Boundary::Periodic);
        assert!(square.point_group_fixes(&[0, 0]) && square.point_group_fixes(&[2, 2]));
        assert!(!square.point_group_fixes(&[2, 0]) && !square.point_group_fixes(&[1, 1]));
        let rectangle = Lattice::square(6, 4, Boundary::Periodic);
        assert!(rectangle.point_group_fixes(&[3, 0]));
        let chain = Lattice::chain(8, Boundary::Periodic);
        assert!(chain.point_group_fixes(&[4]) && !chain.point_group_fixes(&[1]));
        // 2 × 2: the sign changes are trivial mod 2, the axis exchange is not.
        let tiny = Lattice::square(2, 2, Boundary::Periodic);
        assert_eq!(tiny.point_group().len(), 2);
        assert!(tiny.point_group_fixes(&[1, 1]) && !tiny.point_group_fixes(&[1, 0]));
    }
}
