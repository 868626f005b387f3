//! Variational Monte Carlo against the program's own exact diagonalization.

use nqs::config;
use nqs::lattice::Lattice;
use nqs::operator::Hamiltonian;
use nqs::sampler::MetropolisSampler;
use nqs::vmc::{self, Driver, VmcState};
use std::path::Path;
use std::process::Command;

#[test]
fn heisenberg_chain_16_reaches_1e4_against_ed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("h16.h5");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("hamiltonians/heisenberg_chain_16.toml");
    let result = Command::new(env!("CARGO_BIN_EXE_nqs"))
        .args([
            "--json",
            "run",
            &model.to_string_lossy(),
            "--output",
            &out.to_string_lossy(),
        ])
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    let rel = v["relative_error"].as_f64().unwrap();
    assert!(
        v["exact"]["method"].as_str().unwrap().starts_with("ed"),
        "{v}"
    );
    assert!(rel <= 1e-4, "relative error {rel}: {v}");
    assert_eq!(v["n_parameters"], 560);
    assert_eq!(v["iterations"], 400);
    let file = hdf5::File::open(&out).unwrap();
    let energy: Vec<f64> = file.dataset("history/energy").unwrap().read_raw().unwrap();
    assert_eq!(energy.len(), 400);
    let params: Vec<num_complex::Complex64> = file
        .dataset("ansatz/parameters")
        .unwrap()
        .read_raw()
        .unwrap();
    assert_eq!(params.len(), 560);
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
    let loaded = config::parse(text, Path::new("t.toml"), &[]).unwrap();
    let c = &loaded.config;
    let lattice = Lattice::from_config(&c.lattice);
    let h = Hamiltonian::from_config(&c.model, &lattice, Path::new("t.toml")).unwrap();
    let ansatz = vmc::build_ansatz(c, &lattice, Path::new("t.toml")).unwrap();
    let (settings, _) = vmc::sampler_settings(c, &lattice, &h, Path::new("t.toml")).unwrap();
    let sampler = MetropolisSampler::new(&ansatz, settings.clone(), 5, 0, 8);
    let state = VmcState {
        ansatz,
        optimizer: Default::default(),
        sampler,
        history: vec![],
    };
    let mut driver = Driver::new(c, &h, &nqs::dist::Serial, state, 1 << 30);
    for _ in 0..60 {
        driver.step().unwrap();
    }
    // The run's own final estimate, then a long independent re-sampling with other chains.
    let short = driver.observe(250).energy;
    let fresh = MetropolisSampler::new(&driver.state.ansatz, settings, 999, 0, 32);
    driver.state.sampler = fresh;
    let long = driver.observe(2500).energy;
    let diff = (short.mean.re - long.mean.re).abs();
    let sigma = (short.error.powi(2) + long.error.powi(2)).sqrt();
    assert!(diff <= 3.0 * sigma, "short {short:?} long {long:?}");
}
