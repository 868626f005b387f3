use super::jacobian::{Centering, Jacobian, Materialized, StructuredRbm};
use super::sr::{self, ConjugateGradient, Dense, Kernel, Shift, SrSolver};
use super::*;
use crate::ansatz::{Ansatz, Rbm, RbmKind};
use crate::dist::Serial;
use crate::sampler::SampleSet;
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn random_samples(rbm: &Rbm, ns: usize, seed: u64) -> SampleSet<crate::ansatz::RbmCache> {
    let n = rbm.n_sites();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let sigma: Vec<i8> = (0..ns * n)
        .map(|_| if rng.random::<bool>() { 1 } else { -1 })
        .collect();
    let caches = (0..ns)
        .map(|s| {
            let mut c = rbm.new_cache();
            rbm.refresh(&sigma[s * n..(s + 1) * n], &mut c);
            c
        })
        .collect();
    SampleSet {
        n_sites: n,
        samples_per_chain: ns,
        sigma,
        caches,
    }
}

fn random_vector(len: usize, seed: u64) -> Vec<Complex64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..len)
        .map(|_| Complex64::new(rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5))
        .collect()
}

fn relative_difference(a: &[Complex64], b: &[Complex64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (x - y).norm_sqr()).sum();
    let scale: f64 = b.iter().map(|y| y.norm_sqr()).sum();
    (diff / scale.max(1e-300)).sqrt()
}

fn solve(
    solver: &dyn SrSolver,
    x: &mut dyn Jacobian,
    y: &[Complex64],
    shift: Shift,
) -> (Vec<Complex64>, SolveInfo) {
    let f = sr::adjoint_product(x, y, &Serial);
    solver.solve(x, &f, y, shift, &[], &Serial).unwrap()
}

/// Structured and materialized X give the same products, kernel and SR steps (both shifts,
/// centred and uncentred, complex parameters) for N = 4..24, α = 1..4.
#[test]
fn structured_sr_equals_materialized_sr() {
    let cg = ConjugateGradient {
        tolerance: 1e-14,
        max_iterations: 20_000,
    };
    for (case, &(n, alpha, ns)) in [
        (4, 1, 40),
        (7, 2, 60),
        (12, 3, 90),
        (17, 2, 300),
        (24, 4, 150),
    ]
    .iter()
    .enumerate()
    {
        let rbm = Rbm::random(n, RbmKind::Dense { alpha }, 0.3, case as u64 + 11);
        let samples = random_samples(&rbm, ns, case as u64 + 5);
        let y = random_vector(ns, case as u64 + 7);
        let p = rbm.n_parameters();
        for centering in [Centering::Centred, Centering::Uncentred] {
            let mut reference = Materialized::new(&rbm, &samples, 0, ns, centering, &Serial);
            let layer = rbm.dense_rbm_layer().unwrap();
            let mut structured = StructuredRbm::new(layer, &samples, 0, ns, centering, &Serial);
            // Products.
            let v = random_vector(p, 3);
            let (mut a, mut b) = (vec![ZERO; ns], vec![ZERO; ns]);
            reference.apply(&v, &mut a);
            structured.apply(&v, &mut b);
            assert!(relative_difference(&b, &a) < 1e-12, "X v, case {case}");
            let (mut a, mut b) = (vec![ZERO; p], vec![ZERO; p]);
            reference.apply_adjoint(&y, &mut a);
            structured.apply_adjoint(&y, &mut b);
            assert!(relative_difference(&b, &a) < 1e-12, "X† w, case {case}");
            let (mut a, mut b) = (vec![0.0; p], vec![0.0; p]);
            reference.column_norms(&mut a);
            structured.column_norms(&mut b);
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x - y).abs() <= 1e-11 * x.abs().max(1e-3),
                    "diag S, case {case}"
                );
            }
            // Kernels: lower triangles, against the GEMM of the materialized rows.
            let (mut k_ref, mut k) = (Array2::zeros((0, 0)), Array2::zeros((0, 0)));
            reference.kernel_builder(&Serial).unwrap()(&mut k_ref);
            structured.kernel_builder(&Serial).unwrap()(&mut k);
            let scale = k_ref.iter().map(|z| z.norm()).fold(0.0, f64::max);
            for s in 0..ns {
                for sp in 0..=s {
                    assert!(
                        (k[[s, sp]] - k_ref[[s, sp]]).norm() < 1e-12 * scale,
                        "kernel, case {case}"
                    );
                }
            }
            // Steps: the materialized dense solve is the reference.
            for shift in [Shift::Additive(0.05), Shift::Multiplicative(0.05)] {
                let (exact, info) = solve(&Dense, &mut reference, &y, shift);
                assert!(info.residual < 1e-10, "{info:?}");
                let mut candidates: Vec<(&str, Vec<Complex64>)> = vec![
                    (
                        "dense/structured",
                        solve(&Dense, &mut structured, &y, shift).0,
                    ),
                    ("cg/structured", solve(&cg, &mut structured, &y, shift).0),
                    ("cg/materialized", solve(&cg, &mut reference, &y, shift).0),
                ];
                if matches!(shift, Shift::Additive(_)) {
                    candidates.push((
                        "sample/structured",
                        solve(&Kernel::default(), &mut structured, &y, shift).0,
                    ));
                    candidates.push((
                        "sample/materialized",
                        solve(&Kernel::default(), &mut reference, &y, shift).0,
                    ));
                }
                for (name, delta) in candidates {
                    let d = relative_difference(&delta, &exact);
                    assert!(
                        d < 1e-10,
                        "{name}, case {case}, {centering:?}, {shift:?}: {d:e}"
                    );
                }
            }
        }
    }
}

/// The structured CG gives the same bits outside a pool, on one thread and on a team of
/// workers kept awake (`pool::with_awake_workers`): only who runs a block changes.
#[test]
fn cg_steps_do_not_depend_on_the_threads() {
    let rbm = Rbm::random(24, RbmKind::Dense { alpha: 2 }, 0.3, 41);
    let ns = 300;
    let samples = random_samples(&rbm, ns, 42);
    let y = random_vector(ns, 43);
    let cg = ConjugateGradient {
        tolerance: 1e-10,
        max_iterations: 1000,
    };
    let step = || {
        let layer = rbm.dense_rbm_layer().unwrap();
        let mut x = StructuredRbm::new(layer, &samples, 0, ns, Centering::Centred, &Serial);
        solve(&cg, &mut x, &y, Shift::Additive(0.01))
    };
    let (reference, info) = step();
    assert!(info.converged && info.iterations > 10, "{info:?}");
    for threads in [1, 2, 3] {
        let (delta, again) = crate::pool::build(threads).unwrap().install(step);
        assert_eq!(again.iterations, info.iterations, "{threads} threads");
        assert!(delta == reference, "{threads} threads: other bits");
    }
}

#[test]
fn singular_s_falls_back_to_the_pseudo_inverse() {
    let ns = 20;
    let mut o = ndarray::Array2::from_shape_vec((ns, 10), random_vector(ns * 10, 4)).unwrap();
    o.column_mut(3).fill(ZERO);
    o.column_mut(7).fill(ZERO);
    let mut x = Materialized::from_log_derivatives(o, 0, ns, Centering::Uncentred, &Serial);
    let y = random_vector(ns, 5);
    let (delta, info) = solve(&Dense, &mut x, &y, Shift::Additive(0.0));
    assert!(
        info.fallback.as_deref().unwrap().contains("pseudo-inverse"),
        "{info:?}"
    );
    assert!(delta[3].norm() < 1e-12 && delta[7].norm() < 1e-12);
}

#[test]
fn cg_reports_its_cap_and_non_finite_inputs_are_errors() {
    let ns = 50;
    let o = ndarray::Array2::from_shape_vec((ns, 40), random_vector(ns * 40, 6)).unwrap();
    let mut x = Materialized::from_log_derivatives(o.clone(), 0, ns, Centering::Centred, &Serial);
    let y = random_vector(ns, 7);
    let capped = ConjugateGradient {
        tolerance: 1e-14,
        max_iterations: 3,
    };
    let (_, info) = solve(&capped, &mut x, &y, Shift::Additive(1e-4));
    assert!(!info.converged && info.iterations == 3, "{info:?}");
    assert!(info.summary().contains("(cap)"));
    let mut bad = o;
    bad[[2, 2]] = Complex64::new(f64::NAN, 0.0);
    let mut x = Materialized::from_log_derivatives(bad, 0, ns, Centering::Centred, &Serial);
    let f = sr::adjoint_product(&mut x, &y, &Serial);
    let cg = ConjugateGradient {
        tolerance: 1e-8,
        max_iterations: 100,
    };
    assert!(cg
        .solve(&mut x, &f, &y, Shift::Additive(0.01), &[], &Serial)
        .is_err());
    assert!(Dense
        .solve(&mut x, &f, &y, Shift::Additive(0.01), &[], &Serial)
        .is_err());
}

#[test]
fn auto_prefers_the_kernel_when_samples_are_fewer_than_parameters() {
    let size = sr::ProblemSize {
        samples: 1008,
        parameters: 4032,
        rbm: Some((36, 108)),
        ranks: 1,
        memory: 8 << 30,
        multiplicative: false,
        cg_max_iterations: 200,
    };
    // The direct solver auto uses (from the start, or once CG gets expensive).
    let direct = |c: &sr::AutoChoice| c.switch.map_or(c.start, |(kind, _)| kind);
    let choice = sr::choose(&size);
    assert_eq!(direct(&choice), SolverKind::Sample, "{}", choice.reason);
    assert!(choice.reason.contains("structured"));
    let choice = sr::choose(&sr::ProblemSize {
        multiplicative: true,
        ..size
    });
    assert_ne!(direct(&choice), SolverKind::Sample, "{}", choice.reason);
}

#[test]
fn auto_starts_with_cg_and_changes_to_the_direct_solver_for_good() {
    // L = 24, α = 2, 1008 samples: the kernel costs about 140 CG iterations. Early solves are
    // cheap for CG; the first one above the break-even switches, and the switch persists.
    let size = sr::ProblemSize {
        samples: 1008,
        parameters: 24 + 48 + 24 * 48,
        rbm: Some((24, 48)),
        ranks: 1,
        memory: 8 << 30,
        multiplicative: false,
        cg_max_iterations: 200,
    };
    let choice = sr::choose(&size);
    assert_eq!(choice.start, SolverKind::Cg, "{}", choice.reason);
    let (direct, k) = choice.switch.expect("a break-even below the cap");
    assert_eq!(direct, SolverKind::Sample);
    assert!((100..200).contains(&k), "break-even {k}");
    // L = 16: the direct solves cost ~290 CG iterations, beyond the cap of 200 but within
    // twice it: the change comes when a CG solve stops at its cap (an inexact step).
    let l16 = sr::choose(&sr::ProblemSize {
        parameters: 16 + 32 + 16 * 32,
        rbm: Some((16, 32)),
        ..size
    });
    assert_eq!(l16.start, SolverKind::Cg, "{}", l16.reason);
    assert_eq!(l16.switch.map(|s| s.1), Some(199), "{}", l16.reason);
    // Far beyond the cap (a huge dense problem) CG stays.
    let huge = sr::choose(&sr::ProblemSize {
        samples: 20_000,
        parameters: 13_040,
        rbm: None,
        ..size
    });
    assert_eq!(
        (huge.start, huge.switch),
        (SolverKind::Cg, None),
        "{}",
        huge.reason
    );
    // The optimizer follows such a plan: 100 samples × 1000 parameters break even at 10 CG
    // iterations; a tight tolerance needs more. The cold first solve does not count; the
    // second (warm-started) one changes the plan.
    let size = sr::ProblemSize {
        samples: 100,
        parameters: 1000,
        rbm: None,
        ..size
    };
    let plan = sr::choose(&size);
    assert_eq!(
        plan.switch,
        Some((SolverKind::Sample, 10)),
        "{}",
        plan.reason
    );
    let spec: OptimizerSpec =
        toml::from_str("kind = \"sr\"\nsolver = \"auto\"\ncg_tolerance = 1e-14").unwrap();
    let (optimizer, note) = Optimizer::new(&spec, &size);
    assert!(note.unwrap().contains("then sample"));
    let o = ndarray::Array2::from_shape_vec((100, 1000), random_vector(100_000, 3)).unwrap();
    let y = random_vector(100, 4);
    let mut x = Materialized::from_log_derivatives(o, 0, 100, Centering::Centred, &Serial);
    let cold = optimizer
        .step(&OptimizerState::default(), &mut x, &y, &Serial)
        .unwrap();
    assert!(!cold.state.direct);
    let mut warm = cold.state.clone();
    warm.warm_start.iter_mut().for_each(|z| *z *= 0.5);
    let first = optimizer.step(&warm, &mut x, &y, &Serial).unwrap();
    let solve = first.info.solve.as_ref().unwrap();
    assert!(
        solve.path.starts_with("cg") && solve.iterations > 10,
        "{solve:?}"
    );
    assert!(first.state.direct && solve.fallback.is_some());
    let second = optimizer.step(&first.state, &mut x, &y, &Serial).unwrap();
    let solve = second.info.solve.as_ref().unwrap();
    assert!(solve.path.starts_with("sample"), "{solve:?}");
    assert!(second.state.direct);
    // Both solve the same equation.
    let (a, b) = (&first.delta, &second.delta);
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(p, q)| (p - q).norm_sqr())
        .sum::<f64>()
        .sqrt();
    let scale: f64 = a.iter().map(|p| p.norm_sqr()).sum::<f64>().sqrt();
    assert!(diff < 1e-6 * scale, "{diff} vs {scale}");
}

#[test]
fn a_failed_step_leaves_the_state_unchanged() {
    let spec: OptimizerSpec = toml::from_str("kind = \"adam\"").unwrap();
    let size = sr::ProblemSize {
        samples: 10,
        parameters: 4,
        rbm: None,
        ranks: 1,
        memory: 1 << 30,
        multiplicative: false,
        cg_max_iterations: 200,
    };
    let (optimizer, _) = Optimizer::new(&spec, &size);
    let mut o = ndarray::Array2::from_shape_vec((10, 4), random_vector(40, 8)).unwrap();
    let mut x = Materialized::from_log_derivatives(o.clone(), 0, 10, Centering::Centred, &Serial);
    let state = OptimizerState::default();
    let good = optimizer
        .step(&state, &mut x, &random_vector(10, 9), &Serial)
        .unwrap();
    assert_eq!(good.state.iteration, 1);
    assert_eq!(good.state.adam.m.len(), 4);
    o[[0, 0]] = Complex64::new(f64::INFINITY, 0.0);
    let mut x = Materialized::from_log_derivatives(o, 0, 10, Centering::Centred, &Serial);
    let before = good.state.clone();
    assert!(optimizer
        .step(&good.state, &mut x, &random_vector(10, 9), &Serial)
        .is_err());
    assert_eq!(good.state, before);
}
