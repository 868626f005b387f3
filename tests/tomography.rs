//! Tomography: gradients against finite differences, and round trips through the program's own
//! tools (ED → shots → fit → fidelity).

mod common;

use nqs::ansatz::{Ansatz, Rbm, RbmKind};
use nqs::tomography::{self as t, Measurements, Normalization};
use num_complex::Complex64;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::Path;

/// Runs nqs, asserting success; parses stdout when the call has `--json`.
fn nqs(args: &[&str]) -> serde_json::Value {
    match args.split_first() {
        Some((&"--json", rest)) => common::nqs_json(rest),
        _ => {
            let (code, _, stderr) = common::nqs(args);
            assert_eq!(code, 0, "{args:?}: {stderr}");
            serde_json::Value::Null
        }
    }
}

#[test]
fn likelihood_gradient_matches_finite_differences() {
    let n = 4;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    let shots = 12;
    let outcomes: Vec<u8> = (0..shots * n).map(|_| rng.random_range(0..2u8)).collect();
    let bases: Vec<u8> = (0..shots * n)
        .map(|_| b"XYZZ"[rng.random_range(0..4usize)])
        .collect();
    let data = Measurements {
        n_sites: n,
        outcomes,
        bases,
    };
    let rbm = Rbm::random(n, RbmKind::Dense { alpha: 1 }, 0.4, 5);
    let all: Vec<usize> = (0..shots).collect();
    let (g, _) = t::gradient(&rbm, &data, &all, &mut Normalization::Exact, false);
    let nll_at = |p: &[Complex64]| {
        let mut r = rbm.clone();
        r.set_parameters(p);
        t::nll(&r, &data, &all, t::exact_normalization(&r, None))
    };
    let h = 1e-6;
    for k in 0..rbm.n_parameters() {
        for (direction, expected) in [
            (Complex64::new(h, 0.0), 2.0 * g[k].re),
            (Complex64::new(0.0, h), 2.0 * g[k].im),
        ] {
            let mut plus = rbm.parameters().to_vec();
            let mut minus = plus.clone();
            plus[k] += direction;
            minus[k] -= direction;
            let fd = (nll_at(&plus) - nll_at(&minus)) / (2.0 * h);
            assert!(
                (fd - expected).abs() <= 1e-6 * expected.abs().max(1.0),
                "k={k}: fd {fd} analytic {expected}"
            );
        }
    }
}

#[test]
fn tfi_ground_state_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
    std::fs::write(
        d("tfi.toml"),
        "[lattice]\nkind = \"chain\"\nlength = 10\n[model]\nkind = \"tfi\"\nh = 1.0\n",
    )
    .unwrap();
    nqs(&["ed", &d("tfi.toml"), "--output", &d("ed.h5")]);
    nqs(&[
        "sample",
        &d("ed.h5"),
        "--shots",
        "10000",
        "--output",
        &d("shots"),
    ]);
    let fit = nqs(&[
        "--json",
        "tomo",
        "--samples",
        &d("shots/samples.txt"),
        "--reference",
        &d("shots/state.txt"),
        "--epochs",
        "300",
        "--output",
        &d("fit.h5"),
    ]);
    // Early stopping keeps the last epoch unless an earlier one is better beyond validation
    // noise; here the two candidates (fidelity 0.9945 at epoch 81, 0.9958 at epoch 41) are
    // within that noise.
    let fidelity = fit["fidelity"].as_f64().unwrap();
    assert!(fidelity >= 0.993, "{fit}");
    assert!(
        fit["kept_reason"].as_str().unwrap().contains("epoch"),
        "{fit}"
    );
    // The same data in HDF5 gives the same fit.
    let fit_h5 = nqs(&[
        "--json",
        "tomo",
        "--samples",
        &d("shots/measurements.h5"),
        "--reference",
        &d("shots/state.txt"),
        "--epochs",
        "300",
        "--output",
        &d("fit2.h5"),
    ]);
    assert_eq!(fit["nll"], fit_h5["nll"]);
    assert_eq!(fit["fidelity"], fit_h5["fidelity"]);
    // The fitted state is a regular nqs state file.
    let info = nqs(&["--json", "info", &d("fit.h5")]);
    assert_eq!(info["ansatz"]["kind"], "rbm");
}

#[test]
fn heisenberg_without_marshall_sign_needs_rotated_bases() {
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
    std::fs::write(
        d("h8.toml"),
        "[lattice]\nkind = \"chain\"\nlength = 8\n[model]\nkind = \"heisenberg\"\ntotal_sz = 0\n",
    )
    .unwrap();
    nqs(&["ed", &d("h8.toml"), "--output", &d("ed.h5")]);
    let n = 8;
    let mut bases = vec![vec!["Z"; n]];
    for i in 0..n {
        for a in ["X", "Y"] {
            for b in ["X", "Y"] {
                let mut row = vec!["Z"; n];
                row[i] = a;
                row[(i + 1) % n] = b;
                bases.push(row);
            }
        }
    }
    let text: String = bases
        .iter()
        .flat_map(|b| std::iter::repeat_n(b.join(" ") + "\n", 1000))
        .collect();
    std::fs::write(d("bases.txt"), text).unwrap();
    nqs(&[
        "sample",
        &d("ed.h5"),
        "--bases",
        &d("bases.txt"),
        "--output",
        &d("shots"),
    ]);
    let fit = nqs(&[
        "--json",
        "tomo",
        "--samples",
        &d("shots/samples.txt"),
        "--bases",
        &d("shots/bases.txt"),
        "--reference",
        &d("shots/state.txt"),
        "--alpha",
        "2",
        "--epochs",
        "300",
        "--output",
        &d("fit.h5"),
    ]);
    assert!(fit["fidelity"].as_f64().unwrap() >= 0.99, "{fit}");
}

#[test]
fn random_two_qubit_state_in_all_pauli_bases() {
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    let psi: Vec<Complex64> = (0..4)
        .map(|_| Complex64::new(rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5))
        .collect();
    std::fs::write(
        d("state.txt"),
        psi.iter()
            .map(|z| format!("{} {}\n", z.re, z.im))
            .collect::<String>(),
    )
    .unwrap();
    let (mut samples, mut bases) = (String::new(), String::new());
    for a in [b'X', b'Y', b'Z'] {
        for b in [b'X', b'Y', b'Z'] {
            let p = t::metrics::basis_probabilities(&psi, &[a, b]);
            for _ in 0..2000 {
                let u: f64 = rng.random();
                let mut acc = 0.0;
                let index = p.iter().position(|x| {
                    acc += x;
                    u < acc
                });
                let index = index.unwrap_or(3);
                samples.push_str(&format!("{} {}\n", index >> 1, index & 1));
                bases.push_str(&format!("{} {}\n", a as char, b as char));
            }
        }
    }
    std::fs::write(d("samples.txt"), samples).unwrap();
    std::fs::write(d("bases.txt"), bases).unwrap();
    let fit = nqs(&[
        "--json",
        "tomo",
        "--samples",
        &d("samples.txt"),
        "--bases",
        &d("bases.txt"),
        "--reference",
        &d("state.txt"),
        "--alpha",
        "2",
        "--epochs",
        "300",
        "--output",
        &d("fit.h5"),
    ]);
    assert!(fit["fidelity"].as_f64().unwrap() >= 0.995, "{fit}");
    // The same fit from a [tomography] file (paths relative to the file).
    std::fs::write(
        d("tomo.toml"),
        "[tomography]\nsamples = \"samples.txt\"\nbases = \"bases.txt\"\nreference = \"state.txt\"\nalpha = 2\nepochs = 300\noutput = \"fit_from_file.h5\"\n",
    )
    .unwrap();
    let from_file = nqs(&["--json", "tomo", "--config", &d("tomo.toml")]);
    assert_eq!(fit["fidelity"], from_file["fidelity"]);
    // The natural-gradient (SR) option fits the same data.
    let sr = nqs(&[
        "--json",
        "tomo",
        "--samples",
        &d("samples.txt"),
        "--bases",
        &d("bases.txt"),
        "--reference",
        &d("state.txt"),
        "--alpha",
        "2",
        "--optimizer",
        "sr",
        "--learning-rate",
        "0.05",
        "--epochs",
        "100",
        "--output",
        &d("fit_sr.h5"),
    ]);
    assert!(sr["fidelity"].as_f64().unwrap() >= 0.995, "{sr}");
    std::fs::write(
        d("typo.toml"),
        "[tomography]\nsamples = \"samples.txt\"\nepoch = 3\n",
    )
    .unwrap();
    common::expect_input_error(&["tomo", "--config", &d("typo.toml")], "epoch");
}

#[test]
fn bad_measurement_files_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
    let write = |f: &str, s: &str| std::fs::write(dir.path().join(f), s).unwrap();
    write("good.txt", "0 1 0\n1 1 0\n");
    write("ragged.txt", "0 1 0\n1 1\n");
    write("values.txt", "0 2 0\n");
    write("empty.txt", "");
    write("bases_bad.txt", "Z Q Z\nZ Z Z\n");
    write("bases_rows.txt", "Z Z Z\n");
    write("ref.txt", "1 0\n0 0\n");
    for (mut args, needle) in [
        (vec!["tomo", "--samples", &d("ragged.txt")], "ragged"),
        (
            vec!["tomo", "--samples", &d("values.txt")],
            "expected 0 or 1",
        ),
        (vec!["tomo", "--samples", &d("empty.txt")], "no shots"),
        (
            vec![
                "tomo",
                "--samples",
                &d("good.txt"),
                "--bases",
                &d("bases_bad.txt"),
            ],
            "bad basis letter",
        ),
        (
            vec![
                "tomo",
                "--samples",
                &d("good.txt"),
                "--bases",
                &d("bases_rows.txt"),
            ],
            "basis rows",
        ),
        (
            vec![
                "tomo",
                "--samples",
                &d("good.txt"),
                "--reference",
                &d("ref.txt"),
            ],
            "expected 2^3",
        ),
        (vec!["tomo", "--samples", &d("missing.txt")], "cannot read"),
    ] {
        let output = d("o.h5");
        args.extend(["--output", &output]);
        common::expect_input_error(&args, needle);
    }
    assert!(!Path::new(&d("o.h5")).exists());
}
