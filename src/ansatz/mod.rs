//! Wavefunctions: the [`Ansatz`] trait, the `[ansatz]` section and the RBM family.
//!
//! An ansatz gives `log ψ(σ)`, fast ratios `ψ(σ')/ψ(σ)` after flipping a set of sites using a
//! per-chain cache, and the log-derivatives `O_k = ∂ log ψ / ∂p_k` with respect to its flat
//! complex parameter vector.
//!
//! **Adding a wavefunction.** Implement [`Ansatz`] in a file of this module (its parameter
//! layout documented there), give it a `kind` in [`AnsatzSpec`] and one arm in [`visit`]: the
//! driver, the checkpoints (parameters are stored as a flat vector with the kind) and every
//! command then work with it.

/// The [`Ansatz`] methods of a wavefunction built on an RBM (field `rbm`) whose parameters are
/// the RBM's own: kind, sites, parameter vector and widening delegate to it.
macro_rules! delegate_parameters_to_rbm {
    () => {
        fn kind(&self) -> &'static str {
            self.rbm.kind()
        }
        fn n_sites(&self) -> usize {
            self.rbm.n_sites()
        }
        fn n_parameters(&self) -> usize {
            self.rbm.n_parameters()
        }
        fn n_hidden(&self) -> usize {
            Ansatz::n_hidden(&self.rbm)
        }
        fn parameters(&self) -> &[Complex64] {
            self.rbm.parameters()
        }
        fn set_parameters(&mut self, parameters: &[Complex64]) {
            self.rbm.set_parameters(parameters);
        }
        fn widened(&self, narrower: &[Complex64], alpha: usize) -> Result<Vec<Complex64>, String> {
            self.rbm.widened(narrower, alpha)
        }
    };
}

mod lowered;
mod projected;
mod rbm;

pub use lowered::{LoweredCache, SpinLowered};
pub use projected::{GroupElement, ProjectedCache, ProjectedRbm, Projection};
pub use rbm::{Rbm, RbmCache, RbmKind};

use crate::error::{check_count, check_range, Invalid};
use crate::lattice::Lattice;
use num_complex::Complex64;
use serde::{Deserialize, Serialize};

/// `ln cosh z`, stable for any |z|: cosh is even, so map `z → −z` when `Re z < 0`, then
/// `ln cosh z = z + ln(1 + e^{−2z}) − ln 2` (the exponential has modulus ≤ 1).
///
/// ```
/// use num_complex::Complex64;
/// let z = nqs::ansatz::log_cosh(Complex64::new(-1000.0, 0.5));
/// assert!((z.re - (1000.0 - std::f64::consts::LN_2)).abs() < 1e-9);
/// ```
#[inline]
pub fn log_cosh(z: Complex64) -> Complex64 {
    let z = if z.re < 0.0 { -z } else { z };
    z + (1.0 + (-2.0 * z).exp()).ln() - std::f64::consts::LN_2
}

/// A variational wavefunction with a per-chain cache for fast updates.
pub trait Ansatz: Clone + Send + Sync {
    /// What a Markov chain keeps between moves (e.g. the RBM's θ).
    type Cache: Clone + Send + Sync;

    /// The `kind` stored with the parameters (`rbm`, `rbm_symm`, …).
    fn kind(&self) -> &'static str;
    fn n_sites(&self) -> usize;
    fn n_parameters(&self) -> usize;
    /// The RBM's hidden units (α·N dense; α·|G| with filters shared over a group G), stored
    /// with the parameters.
    fn n_hidden(&self) -> usize;
    /// The flat parameter vector (layout documented by each implementation).
    fn parameters(&self) -> &[Complex64];
    /// Replaces the parameters and rebuilds every derived table.
    fn set_parameters(&mut self, parameters: &[Complex64]);
    /// These parameters with the visible part and the first `alpha` hidden units replaced by
    /// `narrower`, the parameter vector of the same ansatz on the same sites with `alpha` ≤
    /// this one's (`run.init_from` into a wider network; equal `alpha` gives `narrower`). The
    /// extra units keep their current values: at `W = b = 0` a unit adds `ln cosh 0 = 0` to
    /// `log ψ`, so small initial values start near the narrower state. Err when the length
    /// does not match `alpha` or `alpha` is wider.
    fn widened(&self, narrower: &[Complex64], alpha: usize) -> Result<Vec<Complex64>, String>;

    /// An empty cache of the right size.
    fn new_cache(&self) -> Self::Cache;
    /// Recomputes the cache of configuration σ from scratch.
    fn refresh(&self, sigma: &[i8], cache: &mut Self::Cache);
    /// `log ψ(σ)` of the configuration whose cache is given.
    fn log_psi(&self, sigma: &[i8], cache: &Self::Cache) -> Complex64;
    /// `log ψ(σ') − log ψ(σ)` for σ' = σ with `flips` flipped; no allocation.
    fn log_ratio(&self, sigma: &[i8], cache: &Self::Cache, flips: &[usize]) -> Complex64;
    /// `ln |ψ(σ')/ψ(σ)|` = `Re log_ratio`: all the Metropolis test needs (no complex logarithm).
    fn log_modulus_ratio(&self, sigma: &[i8], cache: &Self::Cache, flips: &[usize]) -> f64 {
        self.log_ratio(sigma, cache, flips).re
    }
    /// `ψ(σ')/ψ(σ)` (same as `exp(log_ratio)`, cheaper when no logarithm is needed).
    fn ratio(&self, sigma: &[i8], cache: &Self::Cache, flips: &[usize]) -> Complex64;
    /// Flips `flips` in σ and updates the cache accordingly.
    fn flip(&self, sigma: &mut [i8], cache: &mut Self::Cache, flips: &[usize]);
    /// `O_k(σ) = ∂ log ψ(σ)/∂p_k` into `out` (length `n_parameters`).
    fn log_derivatives(&self, sigma: &[i8], cache: &Self::Cache, out: &mut [Complex64]);
    /// The heap bytes of one cache (every stored sample keeps one: checked against the memory
    /// before a run starts).
    fn cache_bytes(&self) -> u64;

    /// The dense-RBM structure of the log-derivatives, when they have it: then structured SR
    /// never forms the samples × parameters matrix.
    fn dense_rbm_layer(&self) -> Option<&dyn DenseRbmLayer<Self::Cache>> {
        None
    }

    /// For an amplitude that is a sum of terms (a projection, a lowering), the decimal digits
    /// the sum lost to cancellation, `log₁₀(max_t |term_t| / |ψ(σ)|)`; 0 for a single RBM.
    /// Beyond [`ROUNDING_DIGITS`] ψ(σ) is rounding noise: zero in exact arithmetic.
    fn cancelled_digits(&self, _cache: &Self::Cache) -> f64 {
        0.0
    }
}

/// Cancelled digits ([`Ansatz::cancelled_digits`]) beyond which an amplitude is rounding noise
/// (double precision carries 15–16).
pub const ROUNDING_DIGITS: f64 = 10.0;

/// `log₁₀(max_t |e^{term_t}| / |e^{log ψ}|)`: the digits `log ψ = ln Σ_t e^{term_t}` lost.
fn digits_lost(terms: &[Complex64], log_psi: Complex64) -> f64 {
    let largest = terms.iter().map(|t| t.re).fold(f64::NEG_INFINITY, f64::max);
    if largest == f64::NEG_INFINITY {
        return 0.0;
    }
    ((largest - log_psi.re) / std::f64::consts::LN_10).max(0.0)
}

/// Whether the state of `ansatz` vanishes in the S^z sector with `n_up` up spins (None: all
/// configurations): its amplitude is rounding noise ([`ROUNDING_DIGITS`]) on each of `tries`
/// random configurations drawn from `seed`. A projection of an RBM symmetric the other way
/// does (e.g. every parameter 0, or an even RBM projected on odd parity): its optimization
/// would follow the noise.
pub fn vanishes<A: Ansatz>(ansatz: &A, n_up: Option<usize>, tries: usize, seed: u64) -> bool {
    use rand::SeedableRng;
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut cache = ansatz.new_cache();
    (0..tries).all(|_| {
        let sigma = crate::sampler::random_configuration(ansatz.n_sites(), n_up, &mut rng);
        ansatz.refresh(&sigma, &mut cache);
        ansatz.cancelled_digits(&cache) > ROUNDING_DIGITS
    })
}

/// Log-derivatives of the dense-RBM form `O(σ) = (σ, t, t ⊗ σ)`: visible biases (N), hidden
/// biases (M), weights `W_ji` row-major (M × N), with `t_j = tanh θ_j(σ)`.
pub trait DenseRbmLayer<C>: Sync {
    fn n_hidden(&self) -> usize;
    /// `t_j = tanh θ_j` of the configuration whose cache is given.
    fn activations(&self, cache: &C, out: &mut [Complex64]);
}

/// The `[ansatz]` section.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnsatzSpec {
    /// Dense RBM: `alpha·N` hidden units.
    Rbm(RbmSpec),
    /// Symmetric RBM: `alpha` filters shared over the lattice translations (and the point
    /// group with `point_group = true`).
    RbmSymm(RbmSpec),
}

impl Default for AnsatzSpec {
    fn default() -> Self {
        AnsatzSpec::Rbm(RbmSpec::default())
    }
}

/// Keys of both RBM kinds.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RbmSpec {
    /// Hidden-unit density M/N (filters per site for rbm_symm).
    #[serde(default = "default_alpha")]
    pub alpha: usize,
    /// Standard deviation of the random initial parameters (real and imaginary parts); with
    /// `run.init_from` from a narrower network, that of the extra hidden units only.
    #[serde(default = "default_init_std")]
    pub init_std: f64,
    /// Project a dense RBM onto this momentum sector: `m` (k = 2πm/L) on a chain, `[mx, my]`
    /// on a rectangular lattice (physical basis, like `nqs ed --momentum`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<Momentum>,
    /// Project onto this spin-inversion sector (±1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spin_inversion: Option<i8>,
    /// The point group too (reflection of a chain, C4v/C2v of a square lattice), in its
    /// symmetric representation: see [`PointGroup`].
    #[serde(default, skip_serializing_if = "PointGroup::is_off")]
    pub point_group: PointGroup,
    /// The state is `S^-` applied to the RBM, which lives at `total_sz + 1`
    /// ([`SpinLowered`]): the `total_sz` member of the lowest multiplet above it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub spin_lowering: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// `point_group = true | false | "projected"`: how the point group P enters.
/// - `true`: `rbm_symm` shares its filters over the whole space group (a product over the
///   images, `ψ(σ) = Π_{p∈P} ψ_T(pσ)` for the translation-shared RBM ψ_T); a dense RBM is
///   projected onto it (with a momentum the point group fixes).
/// - `"projected"`: the RBM (for `rbm_symm` shared over the translations only) is projected,
///   `ψ(σ) = Σ_{p∈P} λ_p ψ_T(pσ)` — a sum of the images, as in Nomura's symmetry-restored RBM;
///   the same as `true` for a dense RBM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "PointGroupValue", into = "PointGroupValue")]
pub enum PointGroup {
    #[default]
    Off,
    On,
    Projected,
}

impl PointGroup {
    pub fn is_off(&self) -> bool {
        *self == PointGroup::Off
    }
}

/// The TOML form of [`PointGroup`].
#[derive(Deserialize, Serialize)]
#[serde(untagged, expecting = "expected true, false or \"projected\"")]
enum PointGroupValue {
    Flag(bool),
    Word(String),
}

impl TryFrom<PointGroupValue> for PointGroup {
    type Error = String;
    fn try_from(value: PointGroupValue) -> Result<Self, String> {
        match value {
            PointGroupValue::Flag(false) => Ok(PointGroup::Off),
            PointGroupValue::Flag(true) => Ok(PointGroup::On),
            PointGroupValue::Word(w) if w == "projected" => Ok(PointGroup::Projected),
            PointGroupValue::Word(w) => Err(format!(
                "\"{}\": expected true, false or \"projected\"",
                crate::error::shorten(&w)
            )),
        }
    }
}

impl From<PointGroup> for PointGroupValue {
    fn from(value: PointGroup) -> Self {
        match value {
            PointGroup::Off => PointGroupValue::Flag(false),
            PointGroup::On => PointGroupValue::Flag(true),
            PointGroup::Projected => PointGroupValue::Word("projected".into()),
        }
    }
}

/// `momentum = m` or `momentum = [mx, my]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(
    untagged,
    expecting = "an integer m (k = 2πm/L) or a list [mx, my] of integers"
)]
pub enum Momentum {
    One(i64),
    Many(Vec<i64>),
}

impl Momentum {
    pub fn components(&self) -> Vec<i64> {
        match self {
            Momentum::One(m) => vec![*m],
            Momentum::Many(m) => m.clone(),
        }
    }
}

fn default_alpha() -> usize {
    2
}
fn default_init_std() -> f64 {
    0.01
}

impl Default for RbmSpec {
    fn default() -> Self {
        RbmSpec {
            alpha: default_alpha(),
            init_std: default_init_std(),
            momentum: None,
            spin_inversion: None,
            point_group: PointGroup::Off,
            spin_lowering: false,
        }
    }
}

/// Largest `hidden units × sites` of an RBM (its weight tables).
const MAX_WEIGHTS: u64 = 50_000_000;

impl AnsatzSpec {
    /// `rbm`, `rbm_symm`.
    pub fn name(&self) -> &'static str {
        match self {
            AnsatzSpec::Rbm(_) => "rbm",
            AnsatzSpec::RbmSymm(_) => "rbm_symm",
        }
    }

    fn rbm(&self) -> &RbmSpec {
        match self {
            AnsatzSpec::Rbm(s) | AnsatzSpec::RbmSymm(s) => s,
        }
    }

    /// Hidden-unit density.
    pub fn alpha(&self) -> usize {
        self.rbm().alpha
    }

    /// Whether the point group is part of the symmetry (shared weights or projection).
    pub fn point_group(&self) -> bool {
        !self.rbm().point_group.is_off()
    }

    /// Whether `rbm_symm` shares its filters over the space group (`point_group = true`).
    pub fn shares_point_group(&self) -> bool {
        matches!(self, AnsatzSpec::RbmSymm(_)) && self.rbm().point_group == PointGroup::On
    }

    /// Whether the wavefunction is projected onto the point group: a dense RBM with
    /// `point_group`, an `rbm_symm` with `point_group = "projected"`.
    pub fn projects_point_group(&self) -> bool {
        self.point_group() && !self.shares_point_group()
    }

    /// Whether the state is the RBM lowered by `S^-` (`spin_lowering = true`).
    pub fn spin_lowering(&self) -> bool {
        self.rbm().spin_lowering
    }

    /// The symmetry sector a projection is asked for: (momentum indices, inversion); None when
    /// the ansatz is not projected (one projected onto the point group alone: `(None, None)`).
    pub fn sector(&self) -> Option<(Option<Vec<i64>>, Option<i8>)> {
        let s = self.rbm();
        (s.momentum.is_some() || s.spin_inversion.is_some() || self.projects_point_group()).then(
            || {
                (
                    s.momentum.as_ref().map(Momentum::components),
                    s.spin_inversion,
                )
            },
        )
    }

    /// Checks the keys against each other and the lattice.
    pub fn validate(&self, lattice: &Lattice) -> Result<(), Invalid> {
        let s = self.rbm();
        check_count("ansatz.alpha", s.alpha, 1, 1024)?;
        self.validate_sector(lattice)?;
        check_range("ansatz.init_std", s.init_std, 0.0, 10.0)?;
        let n = lattice.n_sites();
        let hidden = match self {
            AnsatzSpec::Rbm(_) => s.alpha * n,
            AnsatzSpec::RbmSymm(_) => {
                if lattice.translations().len() < 2 {
                    return Err(Invalid::new("ansatz.kind", "rbm_symm needs a periodic chain or square lattice (it shares weights over translations)"));
                }
                let points = if self.shares_point_group() {
                    lattice.point_group().len()
                } else {
                    1
                };
                s.alpha * lattice.translations().len() * points
            }
        };
        if hidden as u64 * n as u64 > MAX_WEIGHTS {
            return Err(Invalid::new(
                "ansatz.alpha",
                format!(
                    "{hidden} hidden units × {n} sites exceed the limit of {MAX_WEIGHTS} weights"
                ),
            ));
        }
        Ok(())
    }
}

impl AnsatzSpec {
    /// `momentum`, `spin_inversion` and `point_group`: a periodic chain or square lattice, one
    /// momentum index per dimension in `0..L_d` (dense RBM only: rbm_symm is k = 0), inversion
    /// ±1, a momentum the point group fixes. (Their compatibility with the model is checked
    /// with the Hamiltonian, in the configuration.)
    fn validate_sector(&self, lattice: &Lattice) -> Result<(), Invalid> {
        if self.point_group() && lattice.point_group().len() < 2 {
            return Err(Invalid::new(
                "ansatz.point_group",
                "this lattice has no point-group symmetry besides the identity (periodic chains of 3 or more sites and periodic square lattices have)",
            ));
        }
        let Some((momentum, inversion)) = self.sector() else {
            return Ok(());
        };
        if self.spin_lowering() {
            return Err(Invalid::new(
                "ansatz.spin_lowering",
                "not together with a projection (momentum, spin_inversion, point_group on a dense rbm or \"projected\"): the lowered RBM lives at total_sz + 1, where these sectors are other ones",
            ));
        }
        let key = if momentum.is_some() {
            "ansatz.momentum"
        } else if inversion.is_some() {
            "ansatz.spin_inversion"
        } else {
            "ansatz.point_group"
        };
        if matches!(self, AnsatzSpec::RbmSymm(_)) && momentum.is_some() {
            return Err(Invalid::new(key, "a momentum projection is for kind = \"rbm\" (rbm_symm is already the k = 0 sector)"));
        }
        if lattice.translations().len() < 2 {
            return Err(Invalid::new(
                key,
                "a symmetry projection needs a periodic chain or square lattice",
            ));
        }
        if let Some(m) = momentum {
            let extent = lattice.extent();
            if m.len() != extent.len()
                || m.iter().zip(extent).any(|(&q, &l)| q < 0 || q >= l as i64)
            {
                let range: Vec<String> = extent.iter().map(|l| format!("0..={}", l - 1)).collect();
                return Err(Invalid::new(
                    "ansatz.momentum",
                    format!(
                        "{m:?}: expected {} integer(s) in {} (k = 2πm/L)",
                        extent.len(),
                        range.join(" × ")
                    ),
                ));
            }
            let m: Vec<usize> = m.iter().map(|&q| q as usize).collect();
            if self.point_group() && !lattice.point_group_fixes(&m) {
                return Err(Invalid::new(
                    "ansatz.point_group",
                    format!("the point group does not fix momentum {m:?}: with point_group use k = 0 or π in each direction (equal components on an Lx = Ly lattice)"),
                ));
            }
        }
        if let Some(z) = inversion {
            if z != 1 && z != -1 {
                return Err(Invalid::new(
                    "ansatz.spin_inversion",
                    format!("{z}: expected +1 or -1"),
                ));
            }
        }
        Ok(())
    }
}

/// Something to do with the concrete ansatz of a specification (see [`visit`]).
pub trait AnsatzVisitor {
    type Output;
    fn visit<A: Ansatz + 'static>(self, ansatz: A) -> Self::Output;
}

/// What the configuration does to the RBM of a specification, built from the model (its
/// basis and sector).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Transform {
    /// The RBM itself.
    #[default]
    Plain,
    /// From `momentum`/`spin_inversion`/`point_group`: a [`ProjectedRbm`].
    Projection(Projection),
    /// From `spin_lowering`: a [`SpinLowered`] with these signs ε_j.
    Lowering(Vec<f64>),
}

impl Transform {
    /// The projection, if that is the transform.
    pub fn projection(&self) -> Option<&Projection> {
        match self {
            Transform::Projection(p) => Some(p),
            _ => None,
        }
    }
}

/// Builds the ansatz of a validated specification with random initial parameters from `seed`
/// and hands it to `visitor`: the one place where kinds map to types. The `transform` (built by
/// the configuration from the model's basis and sector) makes the RBM a [`ProjectedRbm`] or a
/// [`SpinLowered`].
pub fn visit<V: AnsatzVisitor>(
    spec: &AnsatzSpec,
    lattice: &Lattice,
    transform: &Transform,
    seed: u64,
    visitor: V,
) -> V::Output {
    let s = spec.rbm();
    let n = lattice.n_sites();
    let kind = match spec {
        AnsatzSpec::Rbm(_) => RbmKind::Dense { alpha: s.alpha },
        AnsatzSpec::RbmSymm(_) => RbmKind::symmetric(s.alpha, lattice, spec.shares_point_group()),
    };
    let rbm = Rbm::random(n, kind, s.init_std, seed);
    match transform {
        Transform::Projection(p) => visitor.visit(ProjectedRbm::new(rbm, p.clone())),
        Transform::Lowering(signs) => visitor.visit(SpinLowered::new(rbm, signs)),
        Transform::Plain => visitor.visit(rbm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_cosh_is_stable_and_accurate() {
        for &(re, im) in &[
            (0.3, -0.2),
            (-1.7, 0.4),
            (5.0, 3.0),
            (-12.0, -1.0),
            (0.0, 1.2),
        ] {
            let z = Complex64::new(re, im);
            let naive = z.cosh().ln();
            assert!((log_cosh(z) - naive).norm() < 1e-13, "{z}");
        }
        for &re in &[1e3, -1e3, 700.0, -750.0] {
            let z = Complex64::new(re, 0.37);
            let v = log_cosh(z);
            assert!(v.re.is_finite() && v.im.is_finite());
            // ln cosh z → |Re z| − ln 2 + i·Im z·sign(Re z) for large |Re z|.
            assert!((v.re - (re.abs() - std::f64::consts::LN_2)).abs() < 1e-9);
            assert!((v.im - 0.37 * re.signum()).abs() < 1e-12);
        }
    }
}
