//! Variational Monte Carlo against the program's own exact diagonalization.

mod common;

use nqs::ansatz::{Ansatz, Rbm, RbmKind};
use nqs::dist::Serial;
use nqs::measure::{self, ChainLayout};
use nqs::sampler::MetropolisSampler;
use nqs::vmc::{Driver, RunState, StopFlag, Termination};
use std::path::Path;

#[test]
fn heisenberg_chain_16_reaches_1e4_against_ed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("h16.h5");
    let model = common::shipped("heisenberg_chain_16.toml");
    let v = common::nqs_json(&[
        "run",
        &model.to_string_lossy(),
        "--output",
        &out.to_string_lossy(),
    ]);
    let rel = v["relative_error"].as_f64().unwrap();
    assert!(
        v["exact"]["method"].as_str().unwrap().starts_with("ed"),
        "{v}"
    );
    assert!(rel <= 1e-4, "relative error {rel}: {v}");
    assert_eq!(v["n_parameters"], 560);
    assert_eq!(v["iterations"], 400);
    assert_eq!(v["status"], "finished");
    assert_eq!(common::history(&out, "energy").len(), 400);
    assert_eq!(common::parameters(&out).len(), 560);
}

#[test]
fn final_error_bar_is_honest() {
    let text = r#"
[lattice]
kind = "chain"
length = 12
[model]
kind = "heisenberg"
marshall_sign = true
total_sz = 0
[ansatz]
alpha = 1
[sampler]
chains = 8
samples = 400
[optimizer]
learning_rate = 0.05
iterations = 60
"#;
    let model = nqs::config::parse(text, Path::new("t.toml"), &[]).unwrap();
    let problem = model.problem();
    let ansatz = Rbm::random(12, RbmKind::Dense { alpha: 1 }, 0.01, 5);
    let state = RunState::new(&problem, ansatz, &Serial);
    let mut driver = Driver::new(&problem, &Serial, state, 1 << 30);
    let stop = StopFlag::default();
    let end = driver.run(60, &mut [], &mut |_| Ok(()), &stop).unwrap();
    assert_eq!(end, Termination::Finished);
    // The run's own final estimate, then a long independent re-sampling with other chains.
    let short = driver.measure(250, &stop).unwrap().energy;
    let (settings, _) = model
        .config
        .sampler
        .settings(&model.lattice, &model.hamiltonian)
        .unwrap();
    let ansatz = &driver.state.ansatz;
    let mut fresh = MetropolisSampler::new(ansatz, settings, 999, 0, 32);
    let mut samples = fresh.sample_set_of(ansatz, 2500);
    fresh.sample(ansatz, &mut samples);
    let layout = ChainLayout {
        local: 32,
        first: 0,
        total: 32,
    };
    let long = measure::measure(
        ansatz,
        &samples,
        layout,
        &model.hamiltonian,
        &model.lattice,
        &[],
        &Serial,
    )
    .energy;
    let diff = (short.mean - long.mean).abs();
    let sigma = (short.error.powi(2) + long.error.powi(2)).sqrt();
    assert!(diff <= 3.0 * sigma, "short {short:?} long {long:?}");
    assert!(ansatz.n_parameters() > 0);
}
