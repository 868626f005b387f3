//! Model files: parsing, `--set` overrides, composition of the modules' settings, validation,
//! and the run identity.
//!
//! Each module owns the settings it reads ([`LatticeSpec`] in `lattice`, [`ModelSpec`] in
//! `operator`, [`AnsatzSpec`], [`SamplerSpec`], [`OptimizerSpec`], [`RunSpec`] in `vmc`,
//! [`ObservableSpec`] in `measure`); this module only parses the TOML, applies overrides,
//! composes the sections and reports errors. [`load`] validates everything a run will use
//! before anything runs: every section, the model on its lattice, the moves against the model,
//! the ansatz against the lattice, the observables' sites and names.
//!
//! Errors name the file, the key and, where the key is in the file, its line and column; an
//! error caused by a `--set` override names the override instead.
//!
//! **Run identity.** The canonical configuration (every key, defaults filled in) is stored in
//! each run file; [`identity`] hashes its physics-defining part ([`is_run_control`] lists the
//! keys that may change on `--resume`), and [`compare`] lists what differs between two
//! configurations.

use crate::ansatz::{AnsatzSpec, Projection, Transform};
use crate::error::{shorten, Error, Invalid, Result};
use crate::lattice::{Lattice, LatticeSpec};
use crate::measure::ObservableSpec;
use crate::operator::{Hamiltonian, ModelSpec};
use crate::optimizer::OptimizerSpec;
use crate::sampler::SamplerSpec;
use crate::vmc::RunSpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A complete model file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Config {
    pub lattice: LatticeSpec,
    pub model: ModelSpec,
    #[serde(default)]
    pub ansatz: AnsatzSpec,
    #[serde(default)]
    pub sampler: SamplerSpec,
    #[serde(default)]
    pub optimizer: OptimizerSpec,
    #[serde(default)]
    pub run: RunSpec,
    /// Pauli strings measured after the optimization (and by `nqs measure`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observables: Vec<ObservableSpec>,
}

/// The sections of a model file.
const SECTIONS: [&str; 7] = [
    "lattice",
    "model",
    "ansatz",
    "sampler",
    "optimizer",
    "run",
    "observables",
];

/// Sections whose `kind` has a default (the first variant).
const DEFAULT_KINDS: [(&str, &str); 2] = [("ansatz", "rbm"), ("optimizer", "sr")];

/// One `--set key=value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// `section.key` (or a top-level key such as `observables`).
    pub key: String,
    pub value: toml::Value,
    /// The argument as given.
    pub text: String,
}

/// A validated model file with the lattice and Hamiltonian it describes.
#[derive(Clone, Debug)]
pub struct Model {
    pub config: Config,
    /// Where it came from (for messages).
    pub path: PathBuf,
    pub overrides: Vec<Override>,
    pub lattice: Lattice,
    pub hamiltonian: Hamiltonian,
    /// The S^z sector the chains sample: `model.total_sz`, or N/2 up spins (rounded down) with
    /// exchange moves and no `total_sz`; None for the whole space (local moves). Symmetry
    /// sectors and the exact reference of a run are those of this sector.
    pub sampled_n_up: Option<usize>,
    /// What the model does to the RBM: the symmetry projection of `[ansatz]
    /// momentum/spin_inversion/point_group` (in the sampled basis), or the spin lowering.
    pub transform: Transform,
    /// Notes for the log (defaults applied, rounding).
    pub notes: Vec<String>,
}

impl Model {
    /// The canonical configuration (TOML, every key).
    pub fn canonical_text(&self) -> String {
        canonical_text(&self.config)
    }

    /// The physical momentum of an `rbm_symm` (translation invariant, k = 0 in the sampled
    /// basis): per direction 0, or L/2 where a unit translation changes the Marshall sign
    /// (`λ_t = u(tσ)u(σ) = −1`, constant in the sampled S^z sector). None for other ansätze, a
    /// Hamiltonian that is not translation invariant, or a rotation without an S^z sector.
    pub fn symmetric_rbm_momentum(&self) -> Option<Vec<usize>> {
        let lattice = &self.lattice;
        if !matches!(self.config.ansatz, AnsatzSpec::RbmSymm(_))
            || lattice.translations().len() < 2
            || !crate::exact::translation_invariant(&self.hamiltonian.physical, lattice)
        {
            return None;
        }
        let Some(rotation) = &self.hamiltonian.rotation else {
            return Some(vec![0; lattice.extent().len()]);
        };
        let (n, up) = (lattice.n_sites(), self.sampled_n_up?);
        let sigma: Vec<i8> = (0..n).map(|i| if i < up { 1 } else { -1 }).collect();
        lattice
            .extent()
            .iter()
            .enumerate()
            .map(|(d, &l)| {
                let unit = lattice.translations().iter().find(|t| {
                    t.shift
                        .iter()
                        .enumerate()
                        .all(|(e, &s)| s == usize::from(e == d))
                })?;
                let lambda = rotation.sign_change(&sigma, &unit.perm, false);
                match (lambda > 0.0, l % 2) {
                    (true, _) => Some(0),
                    (false, 0) => Some(l / 2),
                    (false, _) => None,
                }
            })
            .collect()
    }

    /// What the VMC driver reads.
    pub fn problem(&self) -> crate::vmc::Problem<'_> {
        crate::vmc::Problem {
            lattice: &self.lattice,
            hamiltonian: &self.hamiltonian,
            ansatz: &self.config.ansatz,
            sampler: &self.config.sampler,
            optimizer: &self.config.optimizer,
            run: &self.config.run,
            observables: &self.config.observables,
        }
    }

    /// `heisenberg on chain L=16 periodic, pauli units`.
    pub fn describe(&self) -> String {
        format!(
            "{} on {}, {} units",
            self.hamiltonian.kind,
            self.config.lattice.describe(),
            self.config.model.units.name()
        )
    }

    /// `rbm alpha=2`, with the symmetry when there is one: `rbm_symm alpha=8 over the space
    /// group (288 elements)`, `rbm alpha=2 projected on k = [3], z = -1 (16 images)`, `rbm_symm
    /// alpha=2 lowered by S^- (the RBM at total_sz + 1)`.
    pub fn describe_ansatz(&self) -> String {
        let a = &self.config.ansatz;
        let mut text = format!("{} alpha={}", a.name(), a.alpha());
        if a.shares_point_group() {
            let group = self.lattice.space_group().len();
            text += &format!(" over the space group ({group} elements)");
        }
        if self.config.ansatz.spin_lowering() {
            text += " lowered by S^- (the RBM at total_sz + 1)";
        }
        if let Some(p) = self.transform.projection() {
            let k = p
                .momentum
                .as_ref()
                .map_or(String::new(), |k| format!(" k = {k:?}"));
            let z = p.inversion.map_or(String::new(), |z| format!(" z = {z:+}"));
            let point = if p.point_group { " point group" } else { "" };
            text += &format!(" projected on{k}{z}{point} ({} images)", p.elements.len());
        }
        text
    }
}

/// Reads, overrides, parses and validates a model file.
pub fn load(path: &Path, overrides: &[String]) -> Result<Model> {
    let text = read_text(path, "a TOML model file")?;
    if text.trim().is_empty() {
        return Err(Error::input(
            path,
            "empty model file; expected at least [lattice] and [model] sections",
        ));
    }
    parse(&text, path, overrides)
}

/// The text of a TOML input file (`what` names it in messages): a directory, an unreadable
/// file and invalid UTF-8 (with the offset) are refused.
fn read_text(path: &Path, what: &str) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| {
        if path.is_dir() {
            Error::input(path, format!("is a directory, expected {what}"))
        } else {
            Error::input(path, format!("cannot read {what}: {e}"))
        }
    })?;
    String::from_utf8(bytes).map_err(|e| {
        Error::input(
            path,
            format!(
                "not a UTF-8 text file (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Parses and validates a model file's text (see [`load`]).
pub fn parse(text: &str, path: &Path, overrides: &[String]) -> Result<Model> {
    let overrides: Vec<Override> = overrides
        .iter()
        .map(|o| parse_override(o))
        .collect::<Result<_>>()?;
    let located = Located {
        text,
        path,
        overrides: &overrides,
    };
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| toml_syntax_error(path, text, &e))?;
    for o in &overrides {
        apply_override(&mut table, o)?;
    }
    let config = located.deserialize(table)?;
    let (model, notes) = validate(&config).map_err(|e| located.invalid(e))?;
    Ok(Model {
        config: model.0,
        path: path.to_path_buf(),
        overrides,
        lattice: model.1,
        hamiltonian: model.2,
        sampled_n_up: model.3,
        transform: model.4,
        notes,
    })
}

type Validated = (Config, Lattice, Hamiltonian, Option<usize>, Transform);

/// The projection asked for by `[ansatz] momentum/spin_inversion`, checked against the model:
/// the sector must be one of H's (translation-invariant H for a momentum, flip-invariant H at
/// S^z = 0 for an inversion), and with the Marshall sign the rotation's sign under each group
/// element, `λ_g = u(gσ)u(σ)`, must be the same for every state (an S^z sector when a
/// translation exchanges the sublattices).
fn projection(
    ansatz: &AnsatzSpec,
    lattice: &Lattice,
    h: &Hamiltonian,
) -> std::result::Result<Option<Projection>, Invalid> {
    let n = lattice.n_sites();
    let point_group = ansatz.point_group();
    if point_group && !crate::exact::permutation_invariant(&h.physical, lattice.point_group()) {
        return Err(Invalid::new(
            "ansatz.point_group",
            "the Hamiltonian is not invariant under the lattice's point group",
        ));
    }
    let Some((momentum, inversion)) = ansatz.sector() else {
        return Ok(None);
    };
    if momentum.is_some() && !crate::exact::translation_invariant(&h.physical, lattice) {
        return Err(Invalid::new(
            "ansatz.momentum",
            "the Hamiltonian is not translation invariant on this lattice, so momentum is not a quantum number",
        ));
    }
    if inversion.is_some()
        && !(h.n_up.is_none_or(|k| 2 * k == n) && crate::exact::inversion_invariant(&h.physical))
    {
        return Err(Invalid::new(
            "ansatz.spin_inversion",
            "spin inversion needs total_sz = 0 (or no S^z sector) and a Hamiltonian invariant under flipping all spins",
        ));
    }
    if let Some(rotation) = &h.rotation {
        if h.n_up.is_none()
            && momentum.is_some()
            && lattice
                .translations()
                .iter()
                .any(|t| rotation.swaps_sublattices(&t.perm))
        {
            return Err(Invalid::new(
                "ansatz.momentum",
                "with marshall_sign = true a momentum sector needs total_sz: the rotation's sign under a translation depends on the number of down spins",
            ));
        }
    }
    let momentum: Option<Vec<usize>> = momentum.map(|m| m.iter().map(|&q| q as usize).collect());
    // rbm_symm's shared weights carry the point group with `point_group = true`. (With
    // "projected", the sampled-basis count below uses the point group's characters as 1: every
    // point-group element keeps the Marshall sublattice, so its basis sign λ_p is 1.)
    let point_group = ansatz.projects_point_group();
    let sz = h
        .n_up
        .map_or(String::new(), |k| format!(" with {k} up spins"));
    if Projection::sector_is_empty(lattice, momentum.as_deref(), inversion, false, h.n_up) {
        let key = if momentum.is_some() {
            "ansatz.momentum"
        } else {
            "ansatz.spin_inversion"
        };
        return Err(Invalid::new(
            key,
            format!("this symmetry sector has no states{sz} on this lattice (its projected wavefunction would vanish); `nqs ed --symmetry` lists the sectors"),
        ));
    }
    if point_group
        && Projection::sector_is_empty(lattice, momentum.as_deref(), inversion, true, h.n_up)
    {
        return Err(Invalid::new(
            "ansatz.point_group",
            format!("no state of this sector{sz} is symmetric under the point group (the projected wavefunction would vanish); leave point_group out"),
        ));
    }
    // A reference state of the sector: the first n_up sites up.
    let up = h.n_up.unwrap_or(n / 2);
    let sigma: Vec<i8> = (0..n).map(|i| if i < up { 1 } else { -1 }).collect();
    let basis_sign = |perm: &[usize], flip: bool| match &h.rotation {
        None => 1.0,
        Some(rotation) => rotation.sign_change(&sigma, perm, flip),
    };
    if matches!(ansatz, AnsatzSpec::RbmSymm(_)) {
        // rbm_symm is invariant under its own group in the sampled basis (k = 0 there, and the
        // point group's symmetric representation): with the flip's character z the states left
        // are counted by the sampled-basis characters, `c_g = z^f λ_g` (a sampled-basis trace
        // is λ_g times the physical one).
        let zero = vec![0; lattice.extent().len()];
        let sampled = Projection::new(
            lattice,
            Some(&zero),
            inversion,
            ansatz.point_group(),
            &basis_sign,
        );
        if sampled.sector_dimension(h.n_up) == Some(0.0) {
            return Err(Invalid::new(
                "ansatz.spin_inversion",
                format!("rbm_symm is symmetric under the translations{} (in the sampled basis), and no such state{sz} has this spin-inversion eigenvalue: its projection would vanish", if ansatz.point_group() { " and the point group" } else { "" }),
            ));
        }
    }
    Ok(Some(Projection::new(
        lattice,
        momentum.as_deref(),
        inversion,
        point_group,
        &basis_sign,
    )))
}

/// `ansatz.spin_lowering`: H must conserve the total spin (checked on its Pauli strings:
/// heisenberg, j1j2, xxz with Jz = J, or pauli terms such as the scalar chirality), so that S^- maps its eigenstates to eigenstates; `total_sz = M` must satisfy `0 ≤ M < N/2`.
/// Then the RBM's sector `M + 1` holds the multiplets of total spin `S ≥ M + 1`, and S^- maps
/// them onto exactly those of sector M (for `M < 0` it would reach every state of the sector).
/// The signs are `ε_j = −1` on the Marshall sublattice (`S^-_j → −S^-_j` under the rotation),
/// else 1. An `rbm_symm` is k = 0 in the sampled basis, i.e. physical momentum `λ_t` at `M + 1`
/// (the rotation's sign under a translation depends on the number of down spins): Perron–
/// Frobenius must fix the momentum of the ground state of `M + 1`, and the two must agree.
fn lowering(
    config: &Config,
    lattice: &Lattice,
    h: &Hamiltonian,
) -> std::result::Result<Transform, Invalid> {
    if !config.ansatz.spin_lowering() {
        return Ok(Transform::Plain);
    }
    let refuse = |why: String| Err(Invalid::new("ansatz.spin_lowering", why));
    if !h.physical.commutes_with_total_spin() {
        return refuse("needs a Hamiltonian that conserves the total spin ([H, S^x] = [H, S^y] = 0: heisenberg, j1j2, xxz with Jz = J, or such pauli terms), so that S^- maps eigenstates to eigenstates".into());
    }
    let n = lattice.n_sites();
    let up = match h.n_up {
        None => return refuse(
            "needs model.total_sz (the state's S^z sector; the lowered RBM lives at total_sz + 1)"
                .into(),
        ),
        Some(up) if up >= n || 2 * up < n => {
            return refuse(format!("needs 0 ≤ model.total_sz < {}: the lowered RBM lives at total_sz + 1, and below 0 the lowered state would reach every state of the sector (use the plain RBM there)", n as f64 / 2.0));
        }
        Some(up) => up,
    };
    let mut signs = vec![1.0; n];
    if let Some(rotation) = &h.rotation {
        for j in rotation.sites() {
            signs[j] = -1.0;
        }
    }
    if matches!(config.ansatz, AnsatzSpec::RbmSymm(_)) {
        let mut raised = config.model.clone();
        raised.total_sz = raised.total_sz.map(|sz| sz + 1.0);
        let raised = Hamiltonian::new(&raised, lattice)?;
        let ground = match crate::exact::perron::ground_sector(&raised.physical, raised.n_up, lattice) {
            Ok(ground) => ground,
            Err(why) => return refuse(format!("rbm_symm is translation invariant in the sampled basis, and the momentum of the state to lower (the ground state of total_sz + 1) is not known here (Perron–Frobenius: {why}); use kind = \"rbm\"")),
        };
        // λ_t = u(tσ)u(σ) on a state with up + 1 up spins: the physical character of a
        // translation on a state that is translation invariant in the sampled basis.
        let sigma: Vec<i8> = (0..n).map(|i| if i <= up { 1 } else { -1 }).collect();
        let lambda = |perm: &[usize]| match &h.rotation {
            None => 1.0,
            Some(rotation) => rotation.sign_change(&sigma, perm, false),
        };
        let agrees = lattice.translations().iter().all(|t| {
            let phase: f64 = t
                .shift
                .iter()
                .zip(&ground.momentum)
                .zip(lattice.extent())
                .map(|((&s, &k), &l)| 2.0 * std::f64::consts::PI * (k * s) as f64 / l as f64)
                .sum();
            (num_complex::Complex64::from_polar(1.0, phase) - lambda(&t.perm)).norm() < 1e-9
        });
        if !agrees {
            return refuse(format!("rbm_symm is translation invariant in the sampled basis, which at total_sz + 1 is not the momentum {:?} of that sector's ground state (the state to lower): use kind = \"rbm\"{}", ground.momentum, if h.rotation.is_none() { " or marshall_sign = true" } else { "" }));
        }
    }
    Ok(Transform::Lowering(signs))
}

/// Checks every section and their combination; resolves defaults that depend on the model
/// (the sampler's moves) into the configuration.
fn validate(config: &Config) -> std::result::Result<(Validated, Vec<String>), Invalid> {
    let mut config = config.clone();
    config.lattice.validate()?;
    let lattice = Lattice::new(&config.lattice);
    config.model.validate()?;
    let hamiltonian = Hamiltonian::new(&config.model, &lattice)?;
    config.ansatz.validate(&lattice)?;
    config.sampler.validate()?;
    config.sampler.kind = Some(config.sampler.resolved_kind(&hamiltonian));
    let (settings, notes) = config.sampler.settings(&lattice, &hamiltonian)?;
    // A symmetry sector is one of the sampled S^z sector (exchange moves without total_sz
    // sample N/2 up spins, not the whole space).
    let sampled = hamiltonian.in_sector(settings.n_up);
    let transform = match projection(&config.ansatz, &lattice, &sampled)? {
        Some(p) => Transform::Projection(p),
        None => lowering(&config, &lattice, &hamiltonian)?,
    };
    config.optimizer.validate()?;
    config.run.validate()?;
    crate::measure::validate_observables(&config.observables, lattice.n_sites())?;
    Ok((
        (config, lattice, hamiltonian, settings.n_up, transform),
        notes,
    ))
}

/// The canonical form of a configuration: TOML with every key.
pub fn canonical_text(config: &Config) -> String {
    toml::to_string(config).unwrap_or_default()
}

/// Keys that may change when a run is resumed: iteration counts, schedules, solver settings,
/// samples per iteration, checkpoint cadence, output, final-measurement settings.
pub fn is_run_control(key: &str) -> bool {
    const CONTROL: [&str; 17] = [
        "optimizer.iterations",
        "optimizer.learning_rate",
        "optimizer.learning_rate_decay",
        "optimizer.learning_rate_min",
        "optimizer.diag_shift",
        "optimizer.diag_shift_decay",
        "optimizer.diag_shift_min",
        "optimizer.diag_shift_kind",
        "optimizer.solver",
        "optimizer.cg_tolerance",
        "optimizer.cg_max_iterations",
        "sampler.samples",
        "sampler.thermalization",
        "run.checkpoint_every",
        "run.output",
        "run.observable_samples",
        "observables",
    ];
    CONTROL.iter().any(|c| {
        key == *c || key.starts_with(&format!("{c}[")) || key.starts_with(&format!("{c}."))
    })
}

/// Every key of a configuration as `key → value` (arrays of tables flattened with indices).
pub fn flatten(config: &Config) -> Vec<(String, String)> {
    let value = toml::Value::try_from(config).unwrap_or(toml::Value::Table(Default::default()));
    let mut out = Vec::new();
    flatten_value("", &value, &mut out);
    out.sort();
    out
}

fn flatten_value(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_value(&key, v, out);
            }
        }
        toml::Value::Array(a) if a.iter().any(|v| v.is_table()) => {
            for (i, v) in a.iter().enumerate() {
                flatten_value(&format!("{prefix}[{i}]"), v, out);
            }
            if a.is_empty() {
                out.push((prefix.to_string(), "[]".into()));
            }
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// FNV-1a (64 bit) of the physics-defining keys of a configuration, as 16 hex digits.
pub fn identity(config: &Config) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (key, value) in flatten(config) {
        if is_run_control(&key) {
            continue;
        }
        for byte in key
            .bytes()
            .chain([b'='])
            .chain(value.bytes())
            .chain([b'\n'])
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// One difference between two configurations.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub key: String,
    /// `None` where the key is absent.
    pub before: Option<String>,
    pub after: Option<String>,
}

impl Change {
    pub fn is_run_control(&self) -> bool {
        is_run_control(&self.key)
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<String>| v.as_deref().map_or("(absent)".into(), shorten);
        write!(
            f,
            "{}: {} → {}",
            self.key,
            show(&self.before),
            show(&self.after)
        )
    }
}

/// What differs between a stored and a new configuration, key by key.
pub fn compare(stored: &Config, new: &Config) -> Vec<Change> {
    let (a, b) = (flatten(stored), flatten(new));
    let get = |list: &[(String, String)], key: &str| {
        list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    let mut keys: Vec<&String> = a.iter().chain(&b).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let (before, after) = (get(&a, key), get(&b, key));
            (before != after).then(|| Change {
                key: key.clone(),
                before,
                after,
            })
        })
        .collect()
}

/// Parses a stored canonical configuration (from a run file).
pub fn parse_stored(text: &str) -> std::result::Result<Config, String> {
    toml::from_str(text).map_err(|e| shorten(e.message()))
}

/// A short, file-name-safe suffix naming the physics overrides (`J2=0.45`), for default output
/// names of sweeps; None without such overrides. Long suffixes become a hash.
pub fn override_suffix(overrides: &[Override]) -> Option<String> {
    let parts: Vec<String> = overrides
        .iter()
        .filter(|o| !is_run_control(&o.key))
        .map(|o| {
            let name = o.key.rsplit('.').next().unwrap_or(&o.key);
            let value = match &o.value {
                toml::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            format!("{name}={value}")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "=.-_+".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let joined = parts.join(",");
    if joined.len() <= 48 {
        Some(joined)
    } else {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in joined.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Some(format!("set-{:08x}", hash >> 32))
    }
}

/// Parses `section.key=value` (value as TOML; a bare word that is not valid TOML is a string).
pub fn parse_override(assignment: &str) -> Result<Override> {
    let bad = |why: &str| Error::Input(format!("--set {}: {why}", shorten(assignment)));
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| bad("expected section.key=value"))?;
    let keys: Vec<&str> = path.trim().split('.').map(str::trim).collect();
    let top_level_array = keys.len() == 1 && keys[0] == "observables";
    if (keys.len() < 2 && !top_level_array) || keys.iter().any(|k| k.is_empty()) {
        return Err(bad("expected a key of the form section.key"));
    }
    if !SECTIONS.contains(&keys[0]) {
        return Err(bad(&format!(
            "unknown section `{}`; the sections are {}",
            shorten(keys[0]),
            SECTIONS.join(", ")
        )));
    }
    let raw = raw.trim();
    let value = match toml::from_str::<toml::Table>(&format!("value = {raw}")) {
        Ok(mut t) => t.remove("value").ok_or_else(|| bad("missing value"))?,
        Err(_)
            if !raw.is_empty()
                && raw
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c)) =>
        {
            toml::Value::String(raw.to_string())
        }
        Err(e) => {
            return Err(bad(&format!(
                "value is not valid TOML: {}",
                shorten(e.message().trim())
            )))
        }
    };
    Ok(Override {
        key: keys.join("."),
        value,
        text: assignment.to_string(),
    })
}

/// Sets an override in a parsed file.
fn apply_override(table: &mut toml::Table, o: &Override) -> Result<()> {
    let keys: Vec<&str> = o.key.split('.').collect();
    let mut node = table;
    for key in &keys[..keys.len() - 1] {
        let entry = node
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry.as_table_mut().ok_or_else(|| {
            Error::Input(format!(
                "--set {}: `{key}` is not a section",
                shorten(&o.text)
            ))
        })?;
    }
    node.insert(keys[keys.len() - 1].to_string(), o.value.clone());
    Ok(())
}

/// One-line message for a TOML syntax error: `file:line:column: message (in `that line`)`.
fn toml_syntax_error(path: &Path, text: &str, error: &toml::de::Error) -> Error {
    let message = shorten(error.message().trim());
    match error.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            let source = text.lines().nth(line - 1).unwrap_or("").trim();
            let context = if source.is_empty() {
                String::new()
            } else {
                format!(" (in `{}`)", shorten(source))
            };
            Error::Input(format!(
                "{}:{line}:{column}: {message}{context}",
                path.display()
            ))
        }
        None => Error::input(path, message),
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |p| offset - p - 1) + 1;
    (line, column)
}

/// Turns errors at a key into messages that name the file position or the override.
struct Located<'a> {
    text: &'a str,
    path: &'a Path,
    overrides: &'a [Override],
}

/// serde names a Rust type where an unsigned integer key gets another value ("invalid value:
/// integer `-1`, expected usize"); validation knows the accepted range. `validate_with` checks
/// the configuration with the key set to the type's largest value (None when it cannot). When
/// validation refuses it at `key` (`expected an integer in 1..=4096, got …`), that range
/// replaces the type's name; when it accepts it, any non-negative integer is accepted. None for
/// other messages.
pub(crate) fn with_integer_range(
    message: &str,
    key: &str,
    validate_with: impl FnOnce(toml::Value) -> Option<std::result::Result<(), Invalid>>,
) -> Option<String> {
    let (given, rust_type) = message.rsplit_once(", expected ")?;
    let largest = match rust_type {
        "usize" | "u64" => i64::MAX,
        "u32" => i64::from(u32::MAX),
        "u16" => i64::from(u16::MAX),
        "u8" => i64::from(u8::MAX),
        _ => return None,
    };
    match validate_with(toml::Value::Integer(largest))? {
        Ok(()) => Some(format!("{given}, expected a non-negative integer")),
        Err(e) if e.key == key => Some(format!("{given}, {}", e.message.split(", got ").next()?)),
        Err(_) => None,
    }
}

impl Located<'_> {
    /// Deserializes the sections one by one, so that every error knows its section.
    fn deserialize(&self, mut table: toml::Table) -> Result<Config> {
        if let Some(unknown) = table.keys().find(|k| !SECTIONS.contains(&k.as_str())) {
            return Err(self.at(
                unknown,
                &format!("unknown section; the sections are {}", SECTIONS.join(", ")),
            ));
        }
        for (section, kind) in DEFAULT_KINDS {
            if let Some(toml::Value::Table(t)) = table.get_mut(section) {
                t.entry("kind")
                    .or_insert_with(|| toml::Value::String(kind.into()));
            }
        }
        for required in ["lattice", "model"] {
            if !table.contains_key(required) {
                return Err(Error::input(
                    self.path,
                    format!("missing section [{required}]"),
                ));
            }
        }
        for section in SECTIONS {
            if let Some(value) = table.get(section) {
                self.check_section(section, value.clone(), &table)?;
            }
        }
        toml::Value::Table(table)
            .try_into::<Config>()
            .map_err(|e| Error::input(self.path, shorten(e.message().trim())))
    }

    /// Deserializes one section; an error names its key, with the accepted range where serde
    /// names only a type ([`with_integer_range`], by validating `table` with that key changed).
    fn check_section(&self, section: &str, value: toml::Value, table: &toml::Table) -> Result<()> {
        let value_copy = value.clone();
        check_any(section, value).map_err(|e| {
            let message = e.message().trim().to_string();
            // toml names the nested path as "in `a.b`" after the message.
            let display = e.to_string();
            let nested = display
                .rsplit_once("in `")
                .and_then(|(_, rest)| rest.split_once('`'))
                .map(|(p, _)| p.to_string())
                .filter(|p| !p.is_empty() && display.trim_end().ends_with('`'));
            let mut key = match nested {
                Some(p) if p.starts_with('[') => format!("{section}{p}"),
                Some(p) => format!("{section}.{p}"),
                None => section.to_string(),
            };
            for marker in ["unknown field `", "missing field `"] {
                if let Some(field) = message
                    .split_once(marker)
                    .and_then(|(_, rest)| rest.split_once('`'))
                    .map(|(f, _)| f)
                {
                    key = format!("{key}.{field}");
                    if marker.starts_with("missing") {
                        return Error::key(self.path, &key, "missing (required here)");
                    }
                }
            }
            if key == section {
                if let Some(culprit) = culprit_key(section, &value_copy, &message, check_any) {
                    key = format!("{section}.{culprit}");
                }
            }
            let message = key
                .strip_prefix(&format!("{section}."))
                .filter(|name| !name.contains(['.', '[']))
                .and_then(|name| {
                    with_integer_range(&message, &key, |largest| {
                        let mut probe = table.clone();
                        probe
                            .get_mut(section)?
                            .as_table_mut()?
                            .insert(name.to_string(), largest);
                        let quiet = Located {
                            overrides: &[],
                            ..*self
                        };
                        Some(validate(&quiet.deserialize(probe).ok()?).map(|_| ()))
                    })
                })
                .unwrap_or(message);
            let kind_note = if message.starts_with("unknown field") {
                " (keys depend on `kind`; see the README)"
            } else {
                ""
            };
            self.at(&key, &format!("{}{kind_note}", shorten(&message)))
        })
    }

    /// An error at `key`: blamed on the override that set it, else placed in the file.
    fn at(&self, key: &str, message: &str) -> Error {
        let base = |k: &str| k.split('[').next().unwrap_or(k).to_string();
        let key_base = base(key);
        let blamed = self.overrides.iter().rev().find(|o| {
            key_base == o.key
                || key_base.starts_with(&format!("{}.", o.key))
                || o.key.starts_with(&format!("{key_base}."))
        });
        if let Some(o) = blamed {
            return Error::Input(format!(
                "{}: --set {}: key `{key}`: {message}",
                self.path.display(),
                shorten(&o.text)
            ));
        }
        let touched_section = self
            .overrides
            .iter()
            .any(|o| o.key.split('.').next() == key.split(['.', '[']).next());
        let note = if touched_section {
            " (this section also has --set overrides)"
        } else {
            ""
        };
        match key_position(self.text, key) {
            Some(offset) => {
                let (line, column) = line_column(self.text, offset);
                Error::Input(format!(
                    "{}:{line}:{column}: key `{key}`: {message}{note}",
                    self.path.display()
                ))
            }
            None => Error::key(self.path, key, format!("{message}{note}")),
        }
    }

    fn invalid(&self, e: Invalid) -> Error {
        self.at(&e.key, &e.message)
    }
}

/// Deserializes a section into its type (errors only).
fn check_any(section: &str, value: toml::Value) -> std::result::Result<(), toml::de::Error> {
    fn check<T: serde::de::DeserializeOwned>(
        v: toml::Value,
    ) -> std::result::Result<(), toml::de::Error> {
        v.try_into::<T>().map(|_| ())
    }
    match section {
        "lattice" => check::<LatticeSpec>(value),
        "model" => check::<ModelSpec>(value),
        "ansatz" => check::<AnsatzSpec>(value),
        "sampler" => check::<SamplerSpec>(value),
        "optimizer" => check::<OptimizerSpec>(value),
        "run" => check::<RunSpec>(value),
        _ => check::<Vec<ObservableSpec>>(value),
    }
}

/// The key of a section whose value causes `message` (kind-tagged sections lose the key in
/// serde's errors), by removing one key at a time: the first whose removal makes the section
/// valid; else whose removal changes the error to another than a missing required key (removing
/// an innocent required key also changes it); else whose removal changes the error at all.
pub(crate) fn culprit_key(
    section: &str,
    value: &toml::Value,
    message: &str,
    check: fn(&str, toml::Value) -> std::result::Result<(), toml::de::Error>,
) -> Option<String> {
    let table = value.as_table()?;
    let outcomes: Vec<(&String, Option<String>)> = table
        .keys()
        .filter(|k| k.as_str() != "kind")
        .map(|k| {
            let mut probe = table.clone();
            probe.remove(k);
            let error = check(section, toml::Value::Table(probe))
                .err()
                .map(|e| e.message().trim().to_string());
            (k, error)
        })
        .collect();
    let changed = |e: &Option<String>| e.as_deref() != Some(message);
    let first = |accept: &dyn Fn(&Option<String>) -> bool| {
        outcomes
            .iter()
            .find(|(_, e)| accept(e))
            .map(|(k, _)| k.to_string())
    };
    first(&|e| e.is_none())
        .or_else(|| {
            first(&|e| changed(e) && !e.as_deref().is_some_and(|m| m.starts_with("missing field")))
        })
        .or_else(|| first(&changed))
}

/// Byte offset of the deepest part of `key` (`section.key`, `section.list[2].key`) found in the
/// file text, for error positions.
fn key_position(text: &str, key: &str) -> Option<usize> {
    let document = toml::de::DeTable::parse(text).ok()?;
    let mut segments: Vec<(String, Option<usize>)> = Vec::new();
    for part in key.split('.') {
        match part.split_once('[') {
            Some((name, rest)) => {
                let index = rest.trim_end_matches(']').parse().ok();
                segments.push((name.to_string(), index));
            }
            None => segments.push((part.to_string(), None)),
        }
    }
    let mut table = document.get_ref();
    let mut found = None;
    for (name, index) in segments {
        let (k, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name)?;
        found = Some(k.span().start);
        let mut value = v.get_ref();
        if let Some(i) = index {
            match value {
                toml::de::DeValue::Array(items) => match items.get(i) {
                    Some(item) => {
                        found = Some(item.span().start);
                        value = item.get_ref();
                    }
                    None => return found,
                },
                _ => return found,
            }
        }
        match value {
            toml::de::DeValue::Table(t) => table = t,
            _ => return found,
        }
    }
    found
}

/// A TOML file holding one section `[name]`, read as a table, with its text for error
/// positions (the `[tomography]` file of `nqs tomo`).
pub struct SectionFile {
    pub path: PathBuf,
    pub name: &'static str,
    text: String,
    pub table: toml::Table,
}

impl SectionFile {
    /// Reads `path`, which must hold the section `[name]` and no other.
    pub fn read(path: &Path, name: &'static str) -> Result<Self> {
        let text = read_text(path, "a TOML file")?;
        let mut table: toml::Table =
            toml::from_str(&text).map_err(|e| toml_syntax_error(path, &text, &e))?;
        if let Some(other) = table.keys().find(|k| k.as_str() != name) {
            return Err(Error::input(
                path,
                format!("unknown section [{}]; expected [{name}]", shorten(other)),
            ));
        }
        let table = match table.remove(name) {
            Some(toml::Value::Table(t)) => t,
            Some(_) => {
                return Err(Error::input(
                    path,
                    format!("`{name}` must be a section [{name}]"),
                ))
            }
            None => return Err(Error::input(path, format!("missing section [{name}]"))),
        };
        Ok(SectionFile {
            path: path.to_path_buf(),
            name,
            text,
            table,
        })
    }

    /// An error about the section's `key`, placed at its line in the file.
    pub fn at(&self, key: &str, message: &str) -> Error {
        Located {
            text: &self.text,
            path: &self.path,
            overrides: &[],
        }
        .at(&format!("{}.{key}", self.name), message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "[lattice]\nkind = \"chain\"\nlength = 8\n[model]\nkind = \"heisenberg\"\n";

    fn err(text: &str, overrides: &[&str]) -> String {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        parse(text, Path::new("m.toml"), &o)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let m = parse(MINIMAL, Path::new("m.toml"), &[]).unwrap();
        assert_eq!(m.config.sampler.chains, 16);
        assert_eq!(m.lattice.n_sites(), 8);
        assert_eq!(m.config.optimizer.name(), "sr");
        assert!(m.canonical_text().contains("kind = \"exchange\""));
    }

    #[test]
    fn overrides_parse_toml_values_and_bare_words() {
        let m = parse(
            MINIMAL,
            Path::new("m.toml"),
            &[
                "lattice.length=12".into(),
                "model.kind=xxz".into(),
                "model.Jz=0.5".into(),
            ],
        )
        .unwrap();
        assert_eq!(m.lattice.n_sites(), 12);
        assert_eq!(m.hamiltonian.kind, "xxz");
    }

    #[test]
    fn errors_name_the_line_or_the_override() {
        let e = err(&format!("{MINIMAL}foo = 1\n"), &[]);
        assert!(e.starts_with("m.toml:6:1: key `model.foo`"), "{e}");
        // A file error is not blamed on an unrelated override, and keeps its line.
        let bad = MINIMAL.replace("\"chain\"", "\"ring\"");
        let e = err(&bad, &["optimizer.iterations=2"]);
        assert!(e.starts_with("m.toml:2:1: key `lattice.kind`"), "{e}");
        assert!(e.contains("ring"), "{e}");
        // An override's own error names the override.
        let e = err(MINIMAL, &["lattice.length=0"]);
        assert!(e.contains("--set lattice.length=0"), "{e}");
        let e = err(MINIMAL, &["model.J=1e300"]);
        assert!(
            e.contains("--set model.J=1e300") && e.contains("1e12"),
            "{e}"
        );
        // Validation errors of keys in the file carry their position.
        let e = err(&MINIMAL.replace("length = 8", "length = 1"), &[]);
        assert!(e.starts_with("m.toml:3:1: key `lattice.length`"), "{e}");
    }

    #[test]
    fn bonds_must_be_pairs_and_sampler_must_fit_the_model() {
        let custom =
            "[lattice]\nkind = \"custom\"\nedges = [[0, 1, 2]]\n[model]\nkind = \"heisenberg\"\n";
        assert!(err(custom, &[]).contains("pair"), "{}", err(custom, &[]));
        let tfi = "[lattice]\nkind = \"chain\"\nlength = 4\n[model]\nkind = \"tfi\"\n[sampler]\nkind = \"exchange\"\n";
        assert!(err(tfi, &[]).contains("sampler.kind"), "{}", err(tfi, &[]));
    }

    #[test]
    fn identity_ignores_run_control_keys() {
        let a = parse(MINIMAL, Path::new("m.toml"), &[]).unwrap().config;
        let b = parse(
            MINIMAL,
            Path::new("m.toml"),
            &["optimizer.iterations=7".into()],
        )
        .unwrap()
        .config;
        let c = parse(MINIMAL, Path::new("m.toml"), &["model.J=2.0".into()])
            .unwrap()
            .config;
        assert_eq!(identity(&a), identity(&b));
        assert_ne!(identity(&a), identity(&c));
        let changes = compare(&a, &c);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].key, "model.J");
        assert!(!changes[0].is_run_control());
        assert!(compare(&a, &b).iter().all(Change::is_run_control));
    }

    #[test]
    fn sweep_suffix_names_physics_overrides() {
        let o = vec![
            parse_override("model.J2=0.45").unwrap(),
            parse_override("optimizer.iterations=10").unwrap(),
        ];
        assert_eq!(override_suffix(&o).as_deref(), Some("J2=0.45"));
        assert_eq!(override_suffix(&o[1..]), None);
    }
}
