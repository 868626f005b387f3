//! An RBM projected onto a symmetry sector (Choo, Carleo, Regnault & Neupert, PRL 121,
//! 167204 (2018)):
//!
//! `ψ_{k,z}(σ) = Σ_{g∈G} c_g ψ_RBM(gσ)`,  `c_g = χ_{k,z}(g) λ_g`,
//!
//! over the lattice translations (× the point group when asked for, × the global spin flip when
//! a spin-inversion sector is asked for), with `(gσ)_{perm_g(i)} = ±σ_i` and the character
//! `χ(t p, f) = exp(2πi Σ_d k_d t_d/L_d) z^f` of exact diagonalization
//! ([`crate::exact::symmetry`]), extended by 1 on the point-group elements p (their symmetric
//! representation; a homomorphism because p fixes k). Then `ψ(hσ) = χ(h)* ψ(σ)`: the state
//! lies in the sector that `nqs ed --momentum k --inversion z` solves, and the lowest energy it
//! can reach is that sector's lowest. `λ_g = ±1` carries the Marshall rotation: the program
//! samples `ψ' = u ψ` with `u(σ) = Π_{i∈B} σ_i`, and `u(gσ) u(σ) = λ_g` is constant in an S^z
//! sector (−1 for a translation exchanging the sublattices with an odd number of down spins,
//! `(−1)^{|B|}` for the flip), so `k` and `z` always refer to the physical basis.
//!
//! **Evaluation.** Each group element keeps its own image `gσ` and RBM cache, and the terms
//! `ln c_g + ln ψ_RBM(gσ)`; `ln ψ` is their log-sum-exp (one pass, rescaled when a larger term
//! appears). A flip of sites F flips `perm_g(F)` in every image: a proposal costs |G| RBM ratios.
//! The log-derivatives are `O(σ) = Σ_g w_g O_RBM(gσ)` with `w_g = c_g ψ_RBM(gσ)/ψ(σ)`.

use super::{Ansatz, Rbm, RbmCache};
use crate::lattice::{Lattice, Translation};
use num_complex::Complex64;

const ZERO: Complex64 = Complex64::new(0.0, 0.0);

/// One element of the projection group: a site permutation, optionally followed by the global
/// spin flip, and its coefficient `c_g`.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupElement {
    /// `perm[i]`: the site that site i moves to.
    pub perm: Vec<usize>,
    pub flip: bool,
    pub coefficient: Complex64,
}

/// The elements and coefficients of a projection.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    pub elements: Vec<GroupElement>,
    /// The sector: momentum indices (None: no translations in the group), spin-inversion
    /// eigenvalue (None: no flip in the group), and whether the point group is in the group.
    pub momentum: Option<Vec<usize>>,
    pub inversion: Option<i8>,
    pub point_group: bool,
}

impl Projection {
    /// The translations of `lattice` (only the identity when `momentum` is None), after the
    /// point group when `point_group` (which must fix the momentum), × the global flip when
    /// `inversion` is Some, with `c_g = χ(g) · basis_sign(perm, flip)`.
    pub fn new(
        lattice: &Lattice,
        momentum: Option<&[usize]>,
        inversion: Option<i8>,
        point_group: bool,
        basis_sign: &dyn Fn(&[usize], bool) -> f64,
    ) -> Self {
        let identity = Translation {
            shift: vec![0; lattice.extent().len()],
            perm: (0..lattice.n_sites()).collect(),
        };
        let translations = match momentum {
            Some(_) => lattice.translations(),
            None => std::slice::from_ref(&identity),
        };
        let flips: &[bool] = if inversion.is_some() {
            &[false, true]
        } else {
            &[false]
        };
        let identity_point = [identity.perm.clone()];
        let points = if point_group {
            lattice.point_group()
        } else {
            &identity_point
        };
        let mut elements: Vec<GroupElement> = Vec::new();
        for &flip in flips {
            for (t, p) in translations
                .iter()
                .flat_map(|t| points.iter().map(move |p| (t, p)))
            {
                let phase: f64 = t
                    .shift
                    .iter()
                    .zip(momentum.unwrap_or(&[]))
                    .zip(lattice.extent())
                    .map(|((&t, &k), &l)| 2.0 * std::f64::consts::PI * (k * t) as f64 / l as f64)
                    .sum();
                let z = if flip {
                    f64::from(inversion.unwrap_or(1))
                } else {
                    1.0
                };
                let perm: Vec<usize> = p.iter().map(|&i| t.perm[i]).collect();
                let coefficient = Complex64::from_polar(z * basis_sign(&perm, flip), phase);
                elements.push(GroupElement {
                    perm,
                    flip,
                    coefficient,
                });
            }
        }
        Projection {
            elements,
            momentum: momentum.map(<[usize]>::to_vec),
            inversion,
            point_group,
        }
    }

    /// The sector in words: `momentum [m…], spin inversion ±1, point group (symmetric)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = &self.momentum {
            parts.push(format!("momentum {m:?}"));
        }
        if let Some(z) = self.inversion {
            parts.push(format!("spin inversion {z:+}"));
        }
        if self.point_group {
            parts.push("point group (symmetric)".into());
        }
        parts.join(", ")
    }

    /// The number of states in this sector (with `n_up` up spins, or in the whole space), by
    /// the character formula `dim = (1/|G|) Σ_g c_g tr(g)` — for the physical characters, i.e.
    /// a projection built with `basis_sign = 1`. `tr(g)` counts the configurations g leaves
    /// unchanged: uniform on every cycle of its permutation, or, with the spin flip,
    /// alternating on cycles that all have even length. `None` when a count exceeds 2^52 (then
    /// f64 cannot tell an empty sector from rounding; on such lattices no sector is empty).
    ///
    /// ```
    /// use nqs::ansatz::Projection;
    /// use nqs::lattice::{Boundary, Lattice};
    /// // L = 4, S^z = 0: k = π/2 holds one state, and spin inversion maps it to −itself.
    /// let chain = Lattice::chain(4, Boundary::Periodic);
    /// let sector = |z| Projection::new(&chain, Some(&[1]), Some(z), false, &|_, _| 1.0);
    /// assert_eq!(sector(-1).sector_dimension(Some(2)), Some(1.0));
    /// assert_eq!(sector(1).sector_dimension(Some(2)), Some(0.0));
    /// ```
    pub fn sector_dimension(&self, n_up: Option<usize>) -> Option<f64> {
        let mut sum = Complex64::new(0.0, 0.0);
        for g in &self.elements {
            let fixed = fixed_configurations(&g.perm, g.flip, n_up);
            if fixed > (1u64 << 52) as f64 {
                return None;
            }
            sum += g.coefficient * fixed;
        }
        Some((sum.re / self.elements.len() as f64).round())
    }

    /// Whether the physical sector (`momentum`, `inversion`, symmetric under the point group
    /// when `point_group`) of the lattice has no states with `n_up` up spins (its projected
    /// wavefunction would vanish).
    pub fn sector_is_empty(
        lattice: &Lattice,
        momentum: Option<&[usize]>,
        inversion: Option<i8>,
        point_group: bool,
        n_up: Option<usize>,
    ) -> bool {
        let physical = Projection::new(lattice, momentum, inversion, point_group, &|_, _| 1.0);
        physical.sector_dimension(n_up) == Some(0.0)
    }
}

/// The configurations (with `n_up` up spins, or all) that the permutation, followed by the
/// global flip when `flip`, maps to themselves: a polynomial in the number of up spins, one
/// factor per cycle — `1 + x^c` (all up or all down), or `2 x^{c/2}` with the flip (alternating,
/// so c must be even).
fn fixed_configurations(perm: &[usize], flip: bool, n_up: Option<usize>) -> f64 {
    let n = perm.len();
    let mut seen = vec![false; n];
    let mut counts = vec![0.0; n + 1];
    counts[0] = 1.0;
    for start in 0..n {
        let mut length = 0;
        let mut site = start;
        while !seen[site] {
            seen[site] = true;
            site = perm[site];
            length += 1;
        }
        if length == 0 {
            continue;
        }
        if flip && length % 2 == 1 {
            return 0.0;
        }
        let mut next = vec![0.0; n + 1];
        for (up, &count) in counts.iter().enumerate().filter(|(_, &c)| c != 0.0) {
            if flip {
                next[up + length / 2] += 2.0 * count;
            } else {
                next[up] += count;
                next[up + length] += count;
            }
        }
        counts = next;
    }
    match n_up {
        Some(k) => counts.get(k).copied().unwrap_or(0.0),
        None => counts.iter().sum(),
    }
}

/// An RBM projected onto a symmetry sector (see the module documentation): a dense RBM, or an
/// `rbm_symm` (already translation invariant) projected onto a spin-inversion sector.
#[derive(Clone, Debug)]
pub struct ProjectedRbm {
    rbm: Rbm,
    projection: Projection,
    /// `ln c_g` (|c_g| = 1: purely imaginary).
    log_coefficients: Vec<Complex64>,
}

/// Per chain: every image `gσ` (|G| × N spins), its RBM cache, the terms
/// `ln c_g + ln ψ_RBM(gσ)` and their log-sum-exp `ln ψ(σ)`.
#[derive(Clone, Debug, Default)]
pub struct ProjectedCache {
    images: Vec<i8>,
    caches: Vec<RbmCache>,
    terms: Vec<Complex64>,
    log_psi: Complex64,
}

/// `ln Σ_t e^{t}` accumulated in one pass: the sum is kept relative to the largest real part
/// seen, and rescaled when a larger one arrives.
#[derive(Clone, Copy, Debug)]
pub(super) struct LogSumExp {
    max: f64,
    sum: Complex64,
}

impl LogSumExp {
    pub(super) const EMPTY: Self = LogSumExp {
        max: f64::NEG_INFINITY,
        sum: ZERO,
    };

    pub(super) fn add(&mut self, t: Complex64) {
        if t.re > self.max {
            let rescale = if self.max == f64::NEG_INFINITY {
                0.0
            } else {
                (self.max - t.re).exp()
            };
            self.sum = self.sum * rescale + Complex64::from_polar(1.0, t.im);
            self.max = t.re;
        } else if t.re > f64::NEG_INFINITY {
            self.sum += (t - self.max).exp();
        }
    }

    /// The logarithm of the sum; `−∞` when every term was `−∞` (a zero amplitude).
    pub(super) fn value(self) -> Complex64 {
        if self.max == f64::NEG_INFINITY {
            return Complex64::new(f64::NEG_INFINITY, 0.0);
        }
        Complex64::new(self.max, 0.0) + self.sum.ln()
    }
}

/// `ln Σ_t e^{t}` (see [`LogSumExp`]).
pub(super) fn log_sum_exp(terms: impl Iterator<Item = Complex64>) -> Complex64 {
    let mut acc = LogSumExp::EMPTY;
    terms.for_each(|t| acc.add(t));
    acc.value()
}

/// At most this many flipped sites are mapped on the stack.
const MAX_FLIPS: usize = 16;

impl ProjectedRbm {
    /// Projects `rbm` (dense, or symmetric under a group that the projection's group
    /// normalizes) with `projection`.
    pub fn new(rbm: Rbm, projection: Projection) -> Self {
        let log_coefficients = projection
            .elements
            .iter()
            .map(|g| g.coefficient.ln())
            .collect();
        ProjectedRbm {
            rbm,
            projection,
            log_coefficients,
        }
    }

    pub fn projection(&self) -> &Projection {
        &self.projection
    }

    fn n_elements(&self) -> usize {
        self.projection.elements.len()
    }

    /// The image of σ under element g.
    fn image_of(&self, g: &GroupElement, sigma: &[i8], image: &mut [i8]) {
        for (i, &s) in sigma.iter().enumerate() {
            image[g.perm[i]] = if g.flip { -s } else { s };
        }
    }

    /// Calls `f(g, image, cache, mapped flips)` for every element.
    fn for_each_image<'c>(
        &self,
        cache: &'c ProjectedCache,
        flips: &[usize],
        mut f: impl FnMut(usize, &'c [i8], &'c RbmCache, &[usize]),
    ) {
        let n = self.rbm.n_sites();
        let mut sites = SiteBuffer::default();
        for (g, element) in self.projection.elements.iter().enumerate() {
            f(
                g,
                &cache.images[g * n..(g + 1) * n],
                &cache.caches[g],
                sites.map(&element.perm, flips),
            );
        }
    }
}

/// A short list of sites (flipped sites mapped or filtered): on the stack up to [`MAX_FLIPS`]
/// sites, on the heap beyond.
#[derive(Default)]
pub(super) struct SiteBuffer {
    stack: [usize; MAX_FLIPS],
    heap: Vec<usize>,
}

impl SiteBuffer {
    /// The `sites`, of which there are at most `bound`.
    pub(super) fn fill(&mut self, bound: usize, sites: impl Iterator<Item = usize>) -> &[usize] {
        if bound <= MAX_FLIPS {
            let mut len = 0;
            for i in sites {
                self.stack[len] = i;
                len += 1;
            }
            &self.stack[..len]
        } else {
            self.heap.clear();
            self.heap.extend(sites);
            &self.heap
        }
    }

    /// `perm(F)` of a set of flipped sites F.
    fn map(&mut self, perm: &[usize], flips: &[usize]) -> &[usize] {
        self.fill(flips.len(), flips.iter().map(|&i| perm[i]))
    }
}

impl Ansatz for ProjectedRbm {
    type Cache = ProjectedCache;

    delegate_parameters_to_rbm!();

    fn cache_bytes(&self) -> u64 {
        let (g, n) = (self.n_elements() as u64, self.rbm.n_sites() as u64);
        g * (self.rbm.cache_bytes() + n + 16)
    }

    fn new_cache(&self) -> ProjectedCache {
        let g = self.n_elements();
        ProjectedCache {
            images: vec![1; g * self.rbm.n_sites()],
            caches: (0..g).map(|_| self.rbm.new_cache()).collect(),
            terms: vec![ZERO; g],
            log_psi: ZERO,
        }
    }

    fn refresh(&self, sigma: &[i8], cache: &mut ProjectedCache) {
        let n = self.rbm.n_sites();
        for (g, element) in self.projection.elements.iter().enumerate() {
            let image = &mut cache.images[g * n..(g + 1) * n];
            self.image_of(element, sigma, image);
            self.rbm.refresh(image, &mut cache.caches[g]);
            cache.terms[g] = self.log_coefficients[g] + self.rbm.log_psi(image, &cache.caches[g]);
        }
        cache.log_psi = log_sum_exp(cache.terms.iter().copied());
    }

    fn log_psi(&self, _sigma: &[i8], cache: &ProjectedCache) -> Complex64 {
        cache.log_psi
    }

    fn log_ratio(&self, _sigma: &[i8], cache: &ProjectedCache, flips: &[usize]) -> Complex64 {
        if flips.is_empty() {
            return ZERO;
        }
        let mut acc = LogSumExp::EMPTY;
        self.for_each_image(cache, flips, |g, image, rbm_cache, sites| {
            acc.add(cache.terms[g] + self.rbm.log_ratio(image, rbm_cache, sites));
        });
        acc.value() - cache.log_psi
    }

    fn ratio(&self, sigma: &[i8], cache: &ProjectedCache, flips: &[usize]) -> Complex64 {
        self.log_ratio(sigma, cache, flips).exp()
    }

    fn flip(&self, sigma: &mut [i8], cache: &mut ProjectedCache, flips: &[usize]) {
        let n = self.rbm.n_sites();
        let mut mapped = SiteBuffer::default();
        for (g, element) in self.projection.elements.iter().enumerate() {
            let sites = mapped.map(&element.perm, flips);
            let image = &mut cache.images[g * n..(g + 1) * n];
            cache.terms[g] += self.rbm.log_ratio(image, &cache.caches[g], sites);
            self.rbm.flip(image, &mut cache.caches[g], sites);
        }
        cache.log_psi = log_sum_exp(cache.terms.iter().copied());
        for &i in flips {
            sigma[i] = -sigma[i];
        }
    }

    fn cancelled_digits(&self, cache: &ProjectedCache) -> f64 {
        super::digits_lost(&cache.terms, cache.log_psi)
    }

    fn log_derivatives(&self, _sigma: &[i8], cache: &ProjectedCache, out: &mut [Complex64]) {
        out.iter_mut().for_each(|o| *o = ZERO);
        self.for_each_image(cache, &[], |g, image, rbm_cache, _| {
            let weight = (cache.terms[g] - cache.log_psi).exp();
            self.rbm.add_log_derivatives(image, rbm_cache, weight, out);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ansatz::RbmKind;
    use crate::lattice::Boundary;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn projected(n: usize, momentum: usize, inversion: Option<i8>, seed: u64) -> ProjectedRbm {
        let lattice = Lattice::chain(n, Boundary::Periodic);
        let projection =
            Projection::new(&lattice, Some(&[momentum]), inversion, false, &|_, _| 1.0);
        ProjectedRbm::new(
            Rbm::random(n, RbmKind::Dense { alpha: 2 }, 0.3, seed),
            projection,
        )
    }

    fn spins(n: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<i8> {
        (0..n)
            .map(|_| if rng.random::<bool>() { 1 } else { -1 })
            .collect()
    }

    fn log_psi(a: &ProjectedRbm, sigma: &[i8]) -> Complex64 {
        let mut cache = a.new_cache();
        a.refresh(sigma, &mut cache);
        a.log_psi(sigma, &cache)
    }

    /// Whether ψ(σ) = 0 by symmetry: some element fixes σ with a coefficient ≠ 1 (then the
    /// terms of σ's orbit cancel exactly, and ln ψ is rounding noise).
    fn vanishes_by_symmetry(a: &ProjectedRbm, sigma: &[i8]) -> bool {
        let mut image = vec![0; sigma.len()];
        a.projection().elements.iter().any(|g| {
            a.image_of(g, sigma, &mut image);
            image == sigma && (g.coefficient - 1.0).norm() > 1e-9
        })
    }

    /// Whether ψ(σ) is a cancellation to rounding level: |ψ| below 1e-6 of its largest term.
    /// (With a symmetric RBM inside, ψ can vanish through the RBM's own group, e.g. when the
    /// flip of σ is a translation of σ and z = −1.)
    fn cancels(a: &ProjectedRbm, sigma: &[i8]) -> bool {
        let mut cache = a.new_cache();
        a.refresh(sigma, &mut cache);
        let largest = cache.terms.iter().map(|t| t.re).fold(f64::MIN, f64::max);
        cache.log_psi.re < largest - 6.0 * std::f64::consts::LN_10
    }

    /// `(ln a − ln b)` with the imaginary part reduced to (−π, π].
    fn difference(a: Complex64, b: Complex64) -> Complex64 {
        let d = a - b;
        let tau = 2.0 * std::f64::consts::PI;
        Complex64::new(d.re, d.im - tau * (d.im / tau).round())
    }

    #[test]
    fn the_amplitude_transforms_with_the_character() {
        // ψ(Tσ) = χ(T)* ψ(σ), χ(T) = e^{2πi m t/N}: the convention of `nqs ed --momentum m`.
        let n = 8;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        for (m, z) in [(0, None), (3, None), (4, Some(-1)), (1, Some(1))] {
            let a = projected(n, m, z, 5 + m as u64);
            for _ in 0..20 {
                let sigma = spins(n, &mut rng);
                if vanishes_by_symmetry(&a, &sigma) {
                    continue;
                }
                let mut shifted = vec![0; n];
                for i in 0..n {
                    shifted[(i + 1) % n] = sigma[i];
                }
                let expected =
                    Complex64::from_polar(1.0, -2.0 * std::f64::consts::PI * m as f64 / n as f64);
                let d = difference(log_psi(&a, &shifted), log_psi(&a, &sigma) + expected.ln());
                assert!(d.norm() < 1e-10, "m={m}: {d}");
                if let Some(z) = z {
                    let flipped: Vec<i8> = sigma.iter().map(|s| -s).collect();
                    let d = difference(
                        log_psi(&a, &flipped),
                        log_psi(&a, &sigma) + Complex64::new(f64::from(z), 0.0).ln(),
                    );
                    assert!(d.norm() < 1e-10, "z={z}: {d}");
                }
            }
        }
    }

    #[test]
    fn cached_updates_equal_full_recomputation() {
        let n = 10;
        let lattice = Lattice::chain(n, Boundary::Periodic);
        let with_reflection = ProjectedRbm::new(
            Rbm::random(n, RbmKind::Dense { alpha: 2 }, 0.3, 10),
            Projection::new(&lattice, Some(&[5]), Some(-1), true, &|_, _| 1.0),
        );
        let symmetric_with_flip = ProjectedRbm::new(
            Rbm::random(n, RbmKind::symmetric(2, &lattice, true), 0.3, 11),
            Projection::new(&lattice, None, Some(1), false, &|_, _| 1.0),
        );
        // `point_group = "projected"`: translation-shared filters, the reflection projected.
        let symmetric_projected_reflection = ProjectedRbm::new(
            Rbm::random(n, RbmKind::symmetric(2, &lattice, false), 0.3, 12),
            Projection::new(&lattice, None, Some(1), true, &|_, _| 1.0),
        );
        for a in [
            projected(n, 2, Some(1), 9),
            with_reflection,
            symmetric_with_flip,
            symmetric_projected_reflection,
        ] {
            cached_updates_follow_a_walk(&a);
        }
    }

    fn cached_updates_follow_a_walk(a: &ProjectedRbm) {
        let n = a.n_sites();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let mut sigma = spins(n, &mut rng);
        let mut cache = a.new_cache();
        a.refresh(&sigma, &mut cache);
        for step in 0..300 {
            let i = rng.random_range(0..n);
            let flips: Vec<usize> = if step % 3 == 0 {
                vec![i]
            } else {
                vec![i, (i + 1 + rng.random_range(0..n - 1)) % n]
            };
            let fast = a.log_ratio(&sigma, &cache, &flips);
            let mut next = sigma.clone();
            for &f in &flips {
                next[f] = -next[f];
            }
            if vanishes_by_symmetry(a, &sigma) || vanishes_by_symmetry(a, &next) {
                // Ratios to or from a zero amplitude are not numbers; the cache must still
                // follow the walk through it.
                a.flip(&mut sigma, &mut cache, &flips);
                continue;
            }
            let slow = log_psi(a, &next) - log_psi(a, &sigma);
            assert!(difference(fast, slow).norm() < 1e-9, "step {step}");
            let r = a.ratio(&sigma, &cache, &flips);
            assert!((r - slow.exp()).norm() < 1e-9 * slow.exp().norm().max(1.0));
            a.flip(&mut sigma, &mut cache, &flips);
            assert_eq!(sigma, next);
            assert!(difference(a.log_psi(&sigma, &cache), log_psi(a, &sigma)).norm() < 1e-9);
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let n = 6;
        let mut a = projected(n, 1, Some(-1), 4);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let sigma = spins(n, &mut rng);
        derivatives_match_at(&mut a, &sigma, 1);
    }

    /// `O_k` of every `stride`-th parameter at σ against central differences of `ln ψ`
    /// (holomorphic in the parameters: the real-direction difference is `O_k`).
    fn derivatives_match_at(a: &mut ProjectedRbm, sigma: &[i8], stride: usize) {
        let mut cache = a.new_cache();
        a.refresh(sigma, &mut cache);
        let mut analytic = vec![ZERO; a.n_parameters()];
        a.log_derivatives(sigma, &cache, &mut analytic);
        let base = a.parameters().to_vec();
        let h = 1e-6;
        for k in (0..base.len()).step_by(stride) {
            let mut p = base.clone();
            p[k] += h;
            a.set_parameters(&p);
            let plus = log_psi(a, sigma);
            p[k] = base[k] - h;
            a.set_parameters(&p);
            let minus = log_psi(a, sigma);
            let numeric = difference(plus, minus) / (2.0 * h);
            assert!(
                (numeric - analytic[k]).norm() < 1e-6 * (1.0 + analytic[k].norm()),
                "parameter {k}: {numeric} vs {}",
                analytic[k]
            );
        }
        a.set_parameters(&base);
    }

    /// With the point group, the dense projection on a 4 × 4 lattice is symmetric under C4v and
    /// carries the momentum's character under translations (k = (0,0) and (π,π), both fixed by
    /// C4v); the symmetric RBM projected on a spin-inversion sector is even or odd under the
    /// flip; the translation-shared RBM projected on C4v × flip is symmetric under both.
    /// Derivatives of all against finite differences.
    #[test]
    fn point_group_and_flip_projections_transform_and_differentiate() {
        let lattice = Lattice::square(4, 4, Boundary::Periodic);
        let n = 16;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let cases = [
            (
                Rbm::random(n, RbmKind::Dense { alpha: 1 }, 0.3, 1),
                Projection::new(&lattice, Some(&[0, 0]), None, true, &|_, _| 1.0),
            ),
            (
                Rbm::random(n, RbmKind::Dense { alpha: 1 }, 0.3, 2),
                Projection::new(&lattice, Some(&[2, 2]), Some(-1), true, &|_, _| 1.0),
            ),
            (
                Rbm::random(n, RbmKind::symmetric(2, &lattice, true), 0.3, 3),
                Projection::new(&lattice, None, Some(-1), false, &|_, _| 1.0),
            ),
            // `point_group = "projected"`: translation-shared filters, C4v × flip projected.
            (
                Rbm::random(n, RbmKind::symmetric(2, &lattice, false), 0.3, 4),
                Projection::new(&lattice, None, Some(1), true, &|_, _| 1.0),
            ),
        ];
        let expected_sizes = [128, 256, 2, 16];
        for (case, ((rbm, projection), size)) in cases.into_iter().zip(expected_sizes).enumerate() {
            assert_eq!(projection.elements.len(), size);
            let (momentum, inversion) = (projection.momentum.clone(), projection.inversion);
            let mut a = ProjectedRbm::new(rbm, projection);
            for _ in 0..10 {
                let sigma = spins(n, &mut rng);
                if vanishes_by_symmetry(&a, &sigma) || cancels(&a, &sigma) {
                    continue;
                }
                let reference = log_psi(&a, &sigma);
                let transformed = |perm: &[usize], flip: bool| {
                    let mut image = vec![0; n];
                    for (i, &s) in sigma.iter().enumerate() {
                        image[perm[i]] = if flip { -s } else { s };
                    }
                    log_psi(&a, &image)
                };
                for p in lattice.point_group() {
                    let d = difference(transformed(p, false), reference);
                    assert!(d.norm() < 1e-9, "case {case}, point group: {d}");
                }
                if let Some(m) = &momentum {
                    let t = &lattice.translations()[1];
                    let phase: f64 = m
                        .iter()
                        .zip(&t.shift)
                        .map(|(&k, &s)| -2.0 * std::f64::consts::PI * (k * s) as f64 / 4.0)
                        .sum();
                    let d = difference(transformed(&t.perm, false), reference);
                    assert!(difference(d, Complex64::new(0.0, phase)).norm() < 1e-9);
                }
                if let Some(z) = inversion {
                    let identity: Vec<usize> = (0..n).collect();
                    let d = difference(transformed(&identity, true), reference);
                    let expected = Complex64::new(f64::from(z), 0.0).ln();
                    assert!(difference(d, expected).norm() < 1e-9, "flip: {d}");
                }
            }
            let sigma = loop {
                let sigma = spins(n, &mut rng);
                if !vanishes_by_symmetry(&a, &sigma) && !cancels(&a, &sigma) {
                    break sigma;
                }
            };
            derivatives_match_at(&mut a, &sigma, 7);
        }
    }

    #[test]
    fn log_sum_exp_is_stable() {
        let terms = [
            Complex64::new(800.0, 0.3),
            Complex64::new(799.0, -1.0),
            Complex64::new(f64::NEG_INFINITY, 0.0),
        ];
        let direct =
            (Complex64::new(0.0, 0.3).exp() + Complex64::new(-1.0, -1.0).exp()).ln() + 800.0;
        assert!((log_sum_exp(terms.into_iter()) - direct).norm() < 1e-12);
        assert_eq!(log_sum_exp(std::iter::empty()).re, f64::NEG_INFINITY);
    }
}
