//! Parameter updates: stochastic reconfiguration (SR), Adam and plain SGD.
//!
//! With the scaled, centred log-derivatives `X = (O − ⟨O⟩)/√N_s` ([`jacobian`]) and local
//! energies `y = (E_loc − ⟨E⟩)/√N_s`, the energy gradient is `F = X†y = ∂E/∂p*`. SR solves
//! `(S + shift) δ = F`, `S = X†X` ([`sr`]); Adam and SGD use F directly; then `p ← p − η δ`
//! with `η(p) = max(η0·decay^p, η_min)`.
//!
//! [`Optimizer::step`] never changes the state it is given: it returns the new state, the step
//! and what it did, so a failed or non-finite step leaves everything as it was.
//!
//! **Adding an SR solver**: implement [`sr::SrSolver`] and map a [`sr::SolverKind`] to it in
//! [`Optimizer::new`].

pub mod jacobian;
pub mod sr;

pub use jacobian::{Centering, Jacobian, Materialized, StructuredRbm};
pub use sr::{Shift, SolveInfo, SolverKind, SrSolver};

use crate::dist::Communicator;
use crate::error::{check_count, check_range, Error, Invalid, Result};
use num_complex::Complex64;
use serde::{Deserialize, Serialize};

const ZERO: Complex64 = Complex64::new(0.0, 0.0);

/// The `[optimizer]` section: the method (`kind`) and the keys every method shares.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct OptimizerSpec {
    #[serde(flatten)]
    pub method: MethodSpec,
    /// η at iteration 0; `η(p) = max(η0·decay^p, learning_rate_min)`.
    #[serde(default = "defaults::learning_rate")]
    pub learning_rate: f64,
    #[serde(default = "defaults::one")]
    pub learning_rate_decay: f64,
    #[serde(default)]
    pub learning_rate_min: f64,
    #[serde(default = "defaults::iterations")]
    pub iterations: usize,
}

/// `kind = "sr" | "adam" | "sgd"` with their own keys.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MethodSpec {
    Sr(SrSpec),
    Adam(AdamSpec),
    Sgd(SgdSpec),
}

/// Stochastic reconfiguration.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SrSpec {
    /// ε0 of the diagonal shift; `ε(p) = max(ε0·b^p, ε_min)`.
    #[serde(default = "defaults::diag_shift")]
    pub diag_shift: f64,
    #[serde(default = "defaults::one")]
    pub diag_shift_decay: f64,
    #[serde(default)]
    pub diag_shift_min: f64,
    #[serde(default)]
    pub diag_shift_kind: ShiftKind,
    #[serde(default)]
    pub solver: SolverKind,
    /// Relative residual at which CG stops.
    #[serde(default = "defaults::cg_tolerance")]
    pub cg_tolerance: f64,
    #[serde(default = "defaults::cg_max_iterations")]
    pub cg_max_iterations: usize,
}

/// Adam on the energy gradient.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdamSpec {
    #[serde(default = "defaults::beta1")]
    pub beta1: f64,
    #[serde(default = "defaults::beta2")]
    pub beta2: f64,
    #[serde(default = "defaults::epsilon")]
    pub epsilon: f64,
}

/// Plain gradient descent (no keys of its own).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SgdSpec {}

/// `diag_shift_kind`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ShiftKind {
    /// `S + ε I`.
    #[default]
    Additive,
    /// `S + ε diag(S)`.
    Multiplicative,
}

mod defaults {
    pub fn learning_rate() -> f64 {
        0.01
    }
    pub fn one() -> f64 {
        1.0
    }
    pub fn iterations() -> usize {
        300
    }
    pub fn diag_shift() -> f64 {
        0.01
    }
    pub fn cg_tolerance() -> f64 {
        1e-8
    }
    pub fn cg_max_iterations() -> usize {
        200
    }
    pub fn beta1() -> f64 {
        0.9
    }
    pub fn beta2() -> f64 {
        0.999
    }
    pub fn epsilon() -> f64 {
        1e-8
    }
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        OptimizerSpec {
            method: MethodSpec::Sr(SrSpec::default()),
            learning_rate: defaults::learning_rate(),
            learning_rate_decay: 1.0,
            learning_rate_min: 0.0,
            iterations: defaults::iterations(),
        }
    }
}

impl Default for SrSpec {
    fn default() -> Self {
        SrSpec {
            diag_shift: defaults::diag_shift(),
            diag_shift_decay: 1.0,
            diag_shift_min: 0.0,
            diag_shift_kind: ShiftKind::Additive,
            solver: SolverKind::Auto,
            cg_tolerance: defaults::cg_tolerance(),
            cg_max_iterations: defaults::cg_max_iterations(),
        }
    }
}

impl Default for AdamSpec {
    fn default() -> Self {
        AdamSpec {
            beta1: defaults::beta1(),
            beta2: defaults::beta2(),
            epsilon: defaults::epsilon(),
        }
    }
}

/// Largest number of iterations of one run.
pub const MAX_ITERATIONS: usize = 100_000_000;

impl OptimizerSpec {
    /// Checks every value's range.
    pub fn validate(&self) -> std::result::Result<(), Invalid> {
        check_range("optimizer.learning_rate", self.learning_rate, 1e-300, 1e6)
            .and_then(|v| positive("optimizer.learning_rate", v))?;
        check_range(
            "optimizer.learning_rate_decay",
            self.learning_rate_decay,
            0.0,
            1.0,
        )
        .and_then(|v| positive("optimizer.learning_rate_decay", v))?;
        check_range(
            "optimizer.learning_rate_min",
            self.learning_rate_min,
            0.0,
            1e6,
        )?;
        check_count("optimizer.iterations", self.iterations, 0, MAX_ITERATIONS)?;
        match &self.method {
            MethodSpec::Sr(s) => {
                check_range("optimizer.diag_shift", s.diag_shift, 0.0, 1e6)?;
                check_range("optimizer.diag_shift_decay", s.diag_shift_decay, 0.0, 1.0)
                    .and_then(|v| positive("optimizer.diag_shift_decay", v))?;
                check_range("optimizer.diag_shift_min", s.diag_shift_min, 0.0, 1e6)?;
                check_range("optimizer.cg_tolerance", s.cg_tolerance, 0.0, 0.5)
                    .and_then(|v| positive("optimizer.cg_tolerance", v))?;
                check_count(
                    "optimizer.cg_max_iterations",
                    s.cg_max_iterations,
                    1,
                    1 << 20,
                )?;
                if s.solver == SolverKind::Sample && s.diag_shift_kind == ShiftKind::Multiplicative
                {
                    return Err(Invalid::new("optimizer.solver", "\"sample\" solves with the additive shift only (the kernel X diag(S)⁻¹ X† does not factor); use \"cg\" or \"dense\" with diag_shift_kind = \"multiplicative\""));
                }
            }
            MethodSpec::Adam(a) => {
                for (key, beta) in [("optimizer.beta1", a.beta1), ("optimizer.beta2", a.beta2)] {
                    if !(beta.is_finite() && (0.0..1.0).contains(&beta)) {
                        return Err(Invalid::new(
                            key,
                            format!("expected a number in [0, 1), got {beta}"),
                        ));
                    }
                }
                check_range("optimizer.epsilon", a.epsilon, 0.0, 1.0)
                    .and_then(|v| positive("optimizer.epsilon", v))?;
            }
            MethodSpec::Sgd(_) => {}
        }
        Ok(())
    }

    /// `sr`, `adam`, `sgd`.
    pub fn name(&self) -> &'static str {
        match self.method {
            MethodSpec::Sr(_) => "sr",
            MethodSpec::Adam(_) => "adam",
            MethodSpec::Sgd(_) => "sgd",
        }
    }

    /// η at `iteration`.
    pub fn learning_rate_at(&self, iteration: usize) -> f64 {
        schedule(
            self.learning_rate,
            self.learning_rate_decay,
            self.learning_rate_min,
            iteration,
        )
    }
}

fn positive(key: &str, v: f64) -> std::result::Result<f64, Invalid> {
    if v > 0.0 {
        Ok(v)
    } else {
        Err(Invalid::new(key, format!("expected a number > 0, got {v}")))
    }
}

/// `max(initial · decay^p, minimum)`.
pub fn schedule(initial: f64, decay: f64, minimum: f64, iteration: usize) -> f64 {
    (initial * decay.powi(iteration.min(i32::MAX as usize) as i32)).max(minimum)
}

/// First and second moments of Adam.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdamMoments {
    pub m: Vec<Complex64>,
    pub v: Vec<f64>,
}

/// Adam (Kingma & Ba): `m ← β1 m + (1−β1) g`, `v ← β2 v + (1−β2)|g|²`, direction
/// `m̂/(√v̂ + ε)` with the bias corrections `m̂ = m/(1−β1^t)`, `v̂ = v/(1−β2^t)`. Shared by VMC
/// and tomography.
#[derive(Clone, Copy, Debug)]
pub struct Adam {
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
}

impl Adam {
    /// The direction of step `t` (counting from 1) for `gradient`, updating `moments`.
    pub fn direction(
        &self,
        moments: &mut AdamMoments,
        t: usize,
        gradient: &[Complex64],
    ) -> Vec<Complex64> {
        let p = gradient.len();
        if moments.m.len() != p {
            moments.m = vec![ZERO; p];
            moments.v = vec![0.0; p];
        }
        let t = t.min(i32::MAX as usize) as i32;
        let (c1, c2) = (1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t));
        (0..p)
            .map(|k| {
                let g = gradient[k];
                moments.m[k] = moments.m[k] * self.beta1 + g * (1.0 - self.beta1);
                moments.v[k] = moments.v[k] * self.beta2 + g.norm_sqr() * (1.0 - self.beta2);
                (moments.m[k] / c1) / ((moments.v[k] / c2).sqrt() + self.epsilon)
            })
            .collect()
    }
}

/// Everything an optimizer carries from one iteration to the next (part of a checkpoint).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimizerState {
    /// Updates done so far.
    pub iteration: usize,
    pub adam: AdamMoments,
    /// The last SR solution δ (the CG warm start).
    pub warm_start: Vec<Complex64>,
    /// `solver = "auto"` has changed from CG to its direct solver (for good).
    pub direct: bool,
}

impl OptimizerState {
    /// Checks the lengths against the number of parameters (a checkpoint's state).
    pub fn check(&self, n_parameters: usize) -> std::result::Result<(), String> {
        let lengths = [
            ("adam_m", self.adam.m.len()),
            ("adam_v", self.adam.v.len()),
            ("last_solution", self.warm_start.len()),
        ];
        for (name, len) in lengths {
            if len != 0 && len != n_parameters {
                return Err(format!(
                    "optimizer/{name} has {len} entries for {n_parameters} parameters"
                ));
            }
        }
        if self.adam.m.len() != self.adam.v.len() {
            return Err("optimizer/adam_m and adam_v differ in length".into());
        }
        let finite = self
            .adam
            .m
            .iter()
            .chain(&self.warm_start)
            .all(|z| z.re.is_finite() && z.im.is_finite())
            && self.adam.v.iter().all(|v| v.is_finite() && *v >= 0.0);
        if !finite {
            return Err("optimizer state holds non-finite numbers".into());
        }
        Ok(())
    }
}

/// What one update did (goes to the log and the history).
#[derive(Clone, Debug, Default, Serialize)]
pub struct UpdateInfo {
    /// `sr`, `adam` or `sgd`.
    pub method: &'static str,
    pub learning_rate: f64,
    pub diag_shift: f64,
    /// The SR solve (None for Adam and SGD).
    pub solve: Option<SolveInfo>,
    /// ‖F‖.
    pub gradient_norm: f64,
}

/// One accepted update: the parameter change, the optimizer's new state, and what was done.
pub struct Update {
    pub delta: Vec<Complex64>,
    pub state: OptimizerState,
    pub info: UpdateInfo,
}

/// The optimizer of a run: its specification and, for SR, the chosen solver.
pub struct Optimizer {
    spec: OptimizerSpec,
    solver: Option<Box<dyn SrSolver>>,
    /// `auto` only: the direct solver it changes to once a CG solve needs more than the given
    /// number of iterations ([`sr::choose`]).
    switch: Option<(Box<dyn SrSolver>, &'static str, usize)>,
}

fn sr_solver(kind: SolverKind, s: &SrSpec) -> Box<dyn SrSolver> {
    match kind {
        SolverKind::Dense => Box::new(sr::Dense),
        SolverKind::Sample => Box::new(sr::Kernel::default()),
        SolverKind::Cg | SolverKind::Auto => Box::new(sr::ConjugateGradient {
            tolerance: s.cg_tolerance,
            max_iterations: s.cg_max_iterations,
        }),
    }
}

impl Optimizer {
    /// The optimizer for problems of `size`; for `solver = "auto"` also says what it chose.
    pub fn new(spec: &OptimizerSpec, size: &sr::ProblemSize) -> (Self, Option<String>) {
        let mut optimizer = Optimizer {
            spec: spec.clone(),
            solver: None,
            switch: None,
        };
        let MethodSpec::Sr(s) = &spec.method else {
            return (optimizer, None);
        };
        let mut note = None;
        let kind = match s.solver {
            SolverKind::Auto => {
                let choice = sr::choose(size);
                optimizer.switch = choice
                    .switch
                    .map(|(kind, k)| (sr_solver(kind, s), sr::solver_name(kind), k));
                note = Some(choice.reason);
                choice.start
            }
            kind => kind,
        };
        optimizer.solver = Some(sr_solver(kind, s));
        (optimizer, note)
    }

    /// One update from the Jacobian and this process's rows `y` of the right-hand side. The
    /// given state is not changed; a non-finite step is an error.
    pub fn step(
        &self,
        state: &OptimizerState,
        x: &mut dyn Jacobian,
        y: &[Complex64],
        comm: &dyn Communicator,
    ) -> Result<Update> {
        let it = state.iteration;
        let lr = self.spec.learning_rate_at(it);
        let f = sr::adjoint_product(x, y, comm);
        let gradient_norm = f.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
        if !gradient_norm.is_finite() {
            return Err(Error::Numerical(format!(
                "iteration {it}: the energy gradient is not finite"
            )));
        }
        let mut next = state.clone();
        let mut info = UpdateInfo {
            method: self.spec.name(),
            learning_rate: lr,
            gradient_norm,
            ..Default::default()
        };
        let direction = match (&self.spec.method, &self.solver) {
            (MethodSpec::Sgd(_), _) => f,
            (MethodSpec::Adam(a), _) => Adam {
                beta1: a.beta1,
                beta2: a.beta2,
                epsilon: a.epsilon,
            }
            .direction(&mut next.adam, it + 1, &f),
            (MethodSpec::Sr(s), Some(solver)) => {
                let eps = schedule(s.diag_shift, s.diag_shift_decay, s.diag_shift_min, it);
                info.diag_shift = eps;
                let shift = match s.diag_shift_kind {
                    ShiftKind::Additive => Shift::Additive(eps),
                    ShiftKind::Multiplicative => Shift::Multiplicative(eps),
                };
                let solver = match &self.switch {
                    Some((direct, ..)) if state.direct => direct,
                    _ => solver,
                };
                let (delta, mut solve) = solver.solve(x, &f, y, shift, &state.warm_start, comm)?;
                // A cold start (no previous solution) says little about CG's cost later.
                if let Some((_, name, k)) = &self.switch {
                    if !state.direct && !state.warm_start.is_empty() && solve.iterations > *k {
                        next.direct = true;
                        solve.fallback = Some(format!(
                            "auto: CG needed more than {k} iterations, {name} from the next step on"
                        ));
                    }
                }
                next.warm_start.clone_from(&delta);
                info.solve = Some(solve);
                delta
            }
            (MethodSpec::Sr(_), None) => unreachable!("an SR optimizer always has a solver"),
        };
        if !direction
            .iter()
            .all(|z| z.re.is_finite() && z.im.is_finite())
        {
            return Err(Error::Numerical(format!(
                "iteration {it} ({}): the parameter update is not finite",
                info.method
            )));
        }
        next.iteration += 1;
        Ok(Update {
            delta: direction.iter().map(|d| -d * lr).collect(),
            state: next,
            info,
        })
    }
}

#[cfg(test)]
mod tests;
