//! Symmetry-projected RBMs against exact diagonalization of the same sector: `nqs spectrum`,
//! `nqs run --set ansatz.momentum=m` and `nqs ed --spectrum`, with the Marshall sign on (the
//! momentum always refers to the physical basis, also where the rotation shifts it by π).

mod common;

use common::{expect_input_error, nqs, nqs_json, write};
use serde_json::Value;
use std::collections::HashMap;

/// A periodic Heisenberg chain at S^z = 0 with the Marshall sign, a dense α = 2 RBM and a short,
/// well-converging optimization.
fn model(length: usize) -> String {
    format!(
        "{}units = \"pauli\"\n[ansatz]\nkind = \"rbm\"\nalpha = 2\ninit_std = 0.01\n\
         [sampler]\nkind = \"exchange\"\nchains = 16\nsamples = 512\nthermalization = 100\n\
         [optimizer]\nkind = \"sr\"\nlearning_rate = 0.05\ndiag_shift = 0.01\n\
         diag_shift_decay = 0.99\ndiag_shift_min = 0.0001\niterations = 200\n\
         [run]\nseed = 7\nobservable_samples = 10000\n",
        common::heisenberg_chain(length)
    )
}

/// `nqs ed --spectrum`: the exact lowest energy of every (momentum, inversion) sector.
fn exact_sectors(model: &std::path::Path, dir: &std::path::Path) -> HashMap<(u64, i64), f64> {
    let ed = nqs_json(&[
        "ed",
        model.to_str().unwrap(),
        "--spectrum",
        "--output",
        dir.join("ed.h5").to_str().unwrap(),
    ]);
    ed["sectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let key = (
                s["sector"]["momentum"][0].as_u64().unwrap(),
                s["sector"]["inversion"].as_i64().unwrap(),
            );
            (key, s["energies"][0].as_f64().unwrap())
        })
        .collect()
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// A lowered run's reference is the exact triplet energy, and its final energy is within 1e-4 of
/// it and never below it by more than three error bars.
fn assert_reaches_the_triplet(run: &Value, triplet: f64) {
    let reported = run["exact"]["energy"].as_f64().unwrap();
    assert!(
        relative(reported, triplet) < 1e-10,
        "{reported} vs {triplet}"
    );
    let energy = run["energy"]["mean"].as_f64().unwrap();
    let error = run["energy"]["error"].as_f64().unwrap();
    assert!(
        energy > triplet - 3.0 * error - 1e-9,
        "{energy} below {triplet}"
    );
    assert!(relative(energy, triplet) < 1e-4, "{energy} vs {triplet}");
}

/// The lowest triplet as `S^-` applied to an `rbm_symm` at S^z = 1 (`ansatz.spin_lowering`):
/// sampled at S^z = 0, it reaches the exact lowest energy of the k = π, z = −1 sector (L/2
/// even), and the run's reference is that energy (the ground state of S^z = 1). The
/// combinations that do not make sense exit 2, naming the key.
#[test]
fn the_spin_lowered_rbm_reaches_the_lowest_triplet() {
    let dir = tempfile::tempdir().unwrap();
    let length = 8;
    let path = write(dir.path(), "chain8.toml", &model(length));
    let p = path.to_str().unwrap();
    let exact = exact_sectors(&path, dir.path());
    let triplet = exact[&(4, -1)];
    assert!(
        triplet > exact[&(0, 1)] + 0.1,
        "the triplet is an excited state"
    );
    let lowered = [
        "--set",
        "ansatz.kind=\"rbm_symm\"",
        "--set",
        "ansatz.spin_lowering=true",
    ];
    let output = dir.path().join("triplet.h5");
    let run = nqs_json(
        &[
            &["run", p, "--output", output.to_str().unwrap()][..],
            &lowered[..],
        ]
        .concat(),
    );
    assert_eq!(run["spin_lowering"], Value::Bool(true));
    assert_reaches_the_triplet(&run, triplet);
    let tfi = write(
        dir.path(),
        "tfi.toml",
        "[lattice]\nkind = \"chain\"\nlength = 8\nboundary = \"periodic\"\n\
         [model]\nkind = \"tfi\"\n[ansatz]\nspin_lowering = true\n",
    );
    expect_input_error(
        &["check", tfi.to_str().unwrap()],
        "conserves the total spin",
    );
    // An rbm_symm must have the momentum of the state it lowers: without the Marshall sign it
    // is k = 0, and the ground state of S^z = 1 has k = π.
    for (sets, needle) in [
        (&["ansatz.momentum=4"][..], "not together with a projection"),
        (&["model.total_sz=4"][..], "0 ≤ model.total_sz < 4"),
        (&["model.total_sz=-1"][..], "0 ≤ model.total_sz < 4"),
        (
            &["ansatz.kind=\"rbm_symm\"", "model.marshall_sign=false"][..],
            "not the momentum [4]",
        ),
        // Frustrated: Perron–Frobenius does not fix the momentum of the state to lower.
        (
            &[
                "ansatz.kind=\"rbm_symm\"",
                "model.kind=\"j1j2\"",
                "model.J2=0.8",
            ][..],
            "is not known here",
        ),
    ] {
        let mut args = vec!["check", p, "--set", "ansatz.spin_lowering=true"];
        for s in sets {
            args.extend(["--set", s]);
        }
        expect_input_error(&args, needle);
    }
}

/// `spin_lowering` on a `pauli` model, taken because its strings commute with the total spin:
/// the Heisenberg chain plus the scalar chirality `Σ_i σ_i · (σ_{i+1} × σ_{i+2})`, complex and
/// not stoquastic in any basis. The lowered RBM reaches the lowest triplet: the ground state of
/// S^z = 1 (the run's reference) and the second S^z = 0 level, both from ED. A field on one site
/// breaks SU(2) and is refused.
#[test]
fn the_spin_lowered_rbm_reaches_the_triplet_of_a_chiral_pauli_model() {
    let dir = tempfile::tempdir().unwrap();
    let length = 8;
    let mut terms = String::new();
    let mut term = |coeff: f64, ops: &str, sites: [usize; 3]| {
        let sites = &sites[..ops.len()];
        terms += &format!("[[model.terms]]\ncoeff = {coeff}\nops = \"{ops}\"\nsites = {sites:?}\n");
    };
    for i in 0..length {
        let next = [i, (i + 1) % length, (i + 2) % length];
        for ops in ["XX", "YY", "ZZ"] {
            term(1.0, ops, next);
        }
        for (ops, sign) in [
            ("XYZ", 1.0),
            ("YZX", 1.0),
            ("ZXY", 1.0),
            ("XZY", -1.0),
            ("ZYX", -1.0),
            ("YXZ", -1.0),
        ] {
            term(0.3 * sign, ops, next);
        }
    }
    let text = format!(
        "[lattice]\nkind = \"chain\"\nlength = {length}\n[model]\nkind = \"pauli\"\n\
         total_sz = 0\n{terms}[ansatz]\nkind = \"rbm\"\nalpha = 2\nspin_lowering = true\n\
         [sampler]\nsamples = 1008\n[optimizer]\nkind = \"sr\"\nlearning_rate = 0.05\n\
         iterations = 400\n[run]\nseed = 3\nobservable_samples = 10000\n"
    );
    let path = write(dir.path(), "chiral.toml", &text);
    let p = path.to_str().unwrap();
    let ed = |sz: &str, states: &str| {
        let output = dir.path().join(format!("ed{sz}.h5"));
        let set = format!("model.total_sz={sz}");
        let ed = nqs_json(&[
            "ed",
            p,
            "--set",
            &set,
            "--states",
            states,
            "--output",
            output.to_str().unwrap(),
        ]);
        ed["energies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_f64().unwrap())
            .collect::<Vec<f64>>()
    };
    let triplet = ed("1", "1")[0];
    let singlet_sector = ed("0", "2");
    assert!(relative(singlet_sector[1], triplet) < 1e-10 && singlet_sector[0] < triplet - 0.5);
    let output = dir.path().join("chiral.h5");
    let run = nqs_json(&["run", p, "--output", output.to_str().unwrap()]);
    assert_reaches_the_triplet(&run, triplet);
    let field = write(
        dir.path(),
        "field.toml",
        &format!("{text}[[model.terms]]\ncoeff = 0.1\nops = \"Z\"\nsites = [3]\n"),
    );
    expect_input_error(
        &["check", field.to_str().unwrap()],
        "conserves the total spin",
    );
}

#[test]
fn every_momentum_sector_reaches_its_exact_lowest_energy() {
    let dir = tempfile::tempdir().unwrap();
    let length = 8;
    let path = write(dir.path(), "chain8.toml", &model(length));
    let exact = exact_sectors(&path, dir.path());
    let spectrum = nqs_json(&[
        "spectrum",
        path.to_str().unwrap(),
        "--output",
        dir.path().join("spectrum.h5").to_str().unwrap(),
    ]);
    let sectors = spectrum["sectors"].as_array().unwrap();
    assert_eq!(sectors.len(), length);
    let lowest = |m: u64| exact[&(m, 1)].min(exact[&(m, -1)]);
    for (m, s) in sectors.iter().enumerate() {
        let m = m as u64;
        assert_eq!(s["momentum"], serde_json::json!([m]));
        assert_eq!(s["spin_inversion"], Value::Null);
        let energy = s["energy"]["mean"].as_f64().unwrap();
        let error = s["energy"]["error"].as_f64().unwrap();
        let reported = s["exact"].as_f64().expect("ED fits: `exact` is set");
        assert!(relative(reported, lowest(m)) < 1e-10, "k index {m}");
        // Variational: never below the exact sector minimum by more than the error bar.
        assert!(
            energy > lowest(m) - 3.0 * error - 1e-9,
            "k index {m}: {energy} below"
        );
        assert!(
            relative(energy, lowest(m)) < 1e-4,
            "k index {m}: {energy} vs {}",
            lowest(m)
        );
        for key in ["relative_error", "v_score", "wall_time_s"] {
            assert!(s[key].as_f64().unwrap().is_finite(), "{key}");
        }
    }
    // The finite-size gap is open: the ground state sits at k = 0 only (L/2 even).
    let ground = sectors
        .iter()
        .min_by(|a, b| {
            let e = |s: &Value| s["energy"]["mean"].as_f64().unwrap();
            e(a).total_cmp(&e(b))
        })
        .unwrap();
    assert_eq!(ground["momentum"], serde_json::json!([0]));
    assert!(dir.path().join("spectrum.png").exists());
    assert!(dir.path().join("spectrum.k5.h5").exists());
}

#[test]
fn projections_refer_to_the_physical_momentum_and_inversion() {
    // L = 6: L/2 is odd, the Marshall rotation shifts momenta by π and flips the inversion
    // eigenvalue; the physical ground state is at k = π with z = −1.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "chain6.toml", &model(6));
    let exact = exact_sectors(&path, dir.path());
    let (ground_key, _) = exact
        .iter()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(k, e)| (*k, *e))
        .unwrap();
    assert_eq!(ground_key, (3, -1));
    for (m, z) in [(3, -1), (3, 1), (1, 1), (0, -1)] {
        let out = dir.path().join(format!("k{m}z{z}.h5"));
        let run = nqs_json(&[
            "run",
            path.to_str().unwrap(),
            "--set",
            &format!("ansatz.momentum={m}"),
            "--set",
            &format!("ansatz.spin_inversion={z}"),
            "--set",
            "optimizer.iterations=120",
            "--output",
            out.to_str().unwrap(),
        ]);
        assert_eq!(run["sector"]["momentum"], serde_json::json!([m]));
        assert_eq!(run["sector"]["spin_inversion"], serde_json::json!(z));
        let energy = run["energy"]["mean"].as_f64().unwrap();
        let want = exact[&(m, z)];
        assert!(
            relative(energy, want) < 1e-4,
            "k index {m}, z {z}: {energy} vs {want}"
        );
    }
}

#[test]
fn both_parities_give_two_sectors_per_momentum() {
    // `--spin-inversion both`: each momentum projected on z = +1 and on z = −1, each compared
    // with the exact lowest energy of its own (k, z) sector; a parity without states is left
    // out, not refused.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "chain8.toml", &model(8));
    let exact = exact_sectors(&path, dir.path());
    let summary = dir.path().join("s.h5");
    let spectrum = nqs_json(&[
        "spectrum",
        path.to_str().unwrap(),
        "--momenta",
        "2,4",
        "--spin-inversion",
        "both",
        "--output",
        summary.to_str().unwrap(),
    ]);
    let sectors = spectrum["sectors"].as_array().unwrap();
    let labels: Vec<(u64, i64)> = sectors
        .iter()
        .map(|s| {
            (
                s["momentum"][0].as_u64().unwrap(),
                s["spin_inversion"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(labels, [(2, 1), (2, -1), (4, 1), (4, -1)]);
    let mut lowest: HashMap<u64, f64> = HashMap::new();
    for (s, key) in sectors.iter().zip(&labels) {
        let energy = s["energy"]["mean"].as_f64().unwrap();
        let error = s["energy"]["error"].as_f64().unwrap();
        // Each sector is compared with its own (k, z) ED, and stays above it.
        assert!(relative(s["exact"].as_f64().unwrap(), exact[key]) < 1e-10);
        assert!(
            energy > exact[key] - 3.0 * error - 1e-9,
            "{key:?}: {energy}"
        );
        let best = lowest.entry(key.0).or_insert(f64::INFINITY);
        *best = best.min(energy);
    }
    // The lower parity of each momentum is its lowest state. (At L = 8 the z = +1 sector of
    // k = π, an excited singlet above the triplet, converges more slowly: 1.5e-3 after these
    // 200 iterations.)
    for (m, energy) in lowest {
        let want = exact[&(m, 1)].min(exact[&(m, -1)]);
        assert!(
            relative(energy, want) < 1e-4,
            "k index {m}: {energy} vs {want}"
        );
    }
    assert!(dir.path().join("s.k4.z-1.h5").exists());
    // L = 4, S^z = 0: k = π/2 has one state, odd under inversion. Asked for both parities, or
    // with the parity set in the model itself (no --spin-inversion), the sector is z = −1, in
    // the JSON and in the sector file's name.
    let small = write(dir.path(), "chain4.toml", &model(4));
    for (parity, summary) in [
        (["--spin-inversion", "both"], "small.h5"),
        (["--set", "ansatz.spin_inversion=-1"], "model_z.h5"),
    ] {
        let mut args = vec!["spectrum", small.to_str().unwrap(), "--momenta", "1"];
        args.extend(parity);
        let output = dir.path().join(summary);
        args.extend(["--set", "optimizer.iterations=30", "--output"]);
        args.push(output.to_str().unwrap());
        let spectrum = nqs_json(&args);
        let sectors = spectrum["sectors"].as_array().unwrap();
        assert_eq!(sectors.len(), 1, "{parity:?}");
        assert_eq!(sectors[0]["spin_inversion"], serde_json::json!(-1));
    }
    assert!(dir.path().join("model_z.k1.z-1.h5").exists());
    assert!(dir.path().join("small.k1.z-1.h5").exists());
}

#[test]
fn sectors_without_total_sz_are_those_the_exchange_moves_sample() {
    // Without model.total_sz, exchange moves sample S^z = 0 (N/2 up spins): the symmetry
    // sector, its emptiness check and the exact reference are those of S^z = 0, not of the
    // whole space. (With the Marshall sign a momentum needs a fixed S^z, which the moves give.)
    let dir = tempfile::tempdir().unwrap();
    let fixed = write(dir.path(), "chain4.toml", &model(4));
    let free_text = model(4).replace("total_sz = 0\n", "");
    assert_ne!(free_text, model(4));
    let free = write(dir.path(), "chain4_free.toml", &free_text);
    let free = free.to_str().unwrap();
    let (code, out, stderr) = nqs(&["check", free]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains("sector n_up: Some(2)"), "{out}");
    // k = π/2, z = +1 has a state in the whole space (in S^z = ±1) but none at S^z = 0.
    let empty = [
        "--set",
        "ansatz.momentum=1",
        "--set",
        "ansatz.spin_inversion=1",
    ];
    expect_input_error(&[&["run", free][..], &empty[..]].concat(), "no states");
    expect_input_error(&["spectrum", free, "--spin-inversion", "1"], "no states");
    // k = π, z = +1: the reference is the S^z = 0 sector's lowest energy (in the whole space
    // the S^z = ±1 triplet members lie lower), as `nqs ed --spectrum` at total_sz = 0 gives it.
    let exact = exact_sectors(&fixed, dir.path());
    let k_pi = |output: &str| -> Vec<String> {
        let sector = [
            "run",
            free,
            "--set",
            "ansatz.momentum=2",
            "--set",
            "ansatz.spin_inversion=1",
            "--set",
            "optimizer.iterations=30",
            "--output",
        ];
        let output = dir.path().join(output).display().to_string();
        sector
            .iter()
            .map(|a| a.to_string())
            .chain([output])
            .collect()
    };
    let args = k_pi("k2.h5");
    let run = nqs_json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let reference = run["exact"]["energy"].as_f64().unwrap();
    assert!(
        (reference - exact[&(2, 1)]).abs() < 1e-10,
        "{reference} vs {}",
        exact[&(2, 1)]
    );
    // That lowest energy is 0 (a singlet): no relative error is reported, the absolute one is.
    assert!(reference.abs() < 1e-10, "{reference}");
    assert!(run["relative_error"].is_null(), "{run}");
    let args = k_pi("k2_text.h5");
    let (code, out, stderr) = nqs(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains("no relative error at E_exact = 0"), "{out}");
}

#[test]
fn sector_keys_are_validated_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "chain6.toml", &model(6));
    let p = path.to_str().unwrap();
    for (set, needle) in [
        ("ansatz.momentum=6", "0..=5"),
        ("ansatz.momentum=-1", "0..=5"),
        ("ansatz.momentum=[1, 2]", "ansatz.momentum"),
        ("ansatz.momentum=1.5", "integer"),
        ("ansatz.spin_inversion=0", "+1 or -1"),
    ] {
        expect_input_error(&["check", p, "--set", set], needle);
        expect_input_error(&["run", p, "--set", set], needle);
    }
    expect_input_error(
        &[
            "run",
            p,
            "--set",
            "ansatz.kind=\"rbm_symm\"",
            "--set",
            "ansatz.momentum=1",
        ],
        "rbm_symm",
    );
    expect_input_error(
        &[
            "run",
            p,
            "--set",
            "lattice.boundary=\"open\"",
            "--set",
            "ansatz.momentum=1",
        ],
        "periodic",
    );
    expect_input_error(
        &[
            "run",
            p,
            "--set",
            "model.total_sz=1",
            "--set",
            "ansatz.spin_inversion=1",
        ],
        "total_sz = 0",
    );
    // An empty sector: at L = 4, S^z = 0, k = π/2 holds one state, odd under spin inversion.
    let small = write(dir.path(), "chain4.toml", &model(4));
    let small = small.to_str().unwrap();
    let sector = [
        "--set",
        "ansatz.momentum=1",
        "--set",
        "ansatz.spin_inversion=1",
    ];
    expect_input_error(&[&["run", small][..], &sector[..]].concat(), "no states");
    expect_input_error(&["spectrum", small, "--spin-inversion", "1"], "no states");
    let odd = [
        "check",
        small,
        "--set",
        "ansatz.momentum=1",
        "--set",
        "ansatz.spin_inversion=-1",
    ];
    assert_eq!(nqs(&odd).0, 0, "the odd k = π/2 sector is not empty");
    // The point group: only with a momentum it fixes (k = 0, π on a chain), only on a periodic
    // lattice, only for a Hamiltonian it leaves invariant.
    let with_point_group = |sets: &[&str]| -> Vec<String> {
        let mut args = vec!["run".to_string(), p.to_string()];
        for s in ["ansatz.point_group=true"].iter().chain(sets) {
            args.extend(["--set".to_string(), s.to_string()]);
        }
        args
    };
    for (sets, needle) in [
        (&["ansatz.momentum=1"][..], "does not fix momentum"),
        (&["lattice.boundary=\"open\""][..], "periodic"),
    ] {
        let args = with_point_group(sets);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        expect_input_error(&args, needle);
    }
    // X_0 Z_1 is not invariant under the reflection i ↦ −i.
    let chiral = write(
        dir.path(),
        "chiral.toml",
        "[lattice]\nkind = \"chain\"\nlength = 6\nboundary = \"periodic\"\n\
         [model]\nkind = \"pauli\"\nunits = \"pauli\"\n\
         [[model.terms]]\ncoeff = 1.0\nops = \"XZ\"\nsites = [0, 1]\n\
         [ansatz]\nkind = \"rbm\"\npoint_group = true\n",
    );
    expect_input_error(&["check", chiral.to_str().unwrap()], "point group");
    // rbm_symm is k = 0 in the sampled basis: at L = 4, S^z = 0 every such state is even
    // under the flip, so z = −1 would leave nothing to sample.
    expect_input_error(
        &[
            "check",
            small,
            "--set",
            "ansatz.kind=\"rbm_symm\"",
            "--set",
            "ansatz.spin_inversion=-1",
        ],
        "rbm_symm is symmetric",
    );
    for sets in [
        &["ansatz.momentum=3"][..],
        &["ansatz.kind=\"rbm_symm\""][..],
    ] {
        let mut args = with_point_group(sets);
        args[0] = "check".into();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(nqs(&args).0, 0, "{args:?}");
    }
    // `point_group = "projected"`: rbm_symm is projected onto the point group (its k = 0 rule
    // stays); other words are refused naming the key.
    let projected = [
        "ansatz.kind=\"rbm_symm\"",
        "ansatz.point_group=\"projected\"",
    ];
    let (code, out, stderr) = nqs(&["check", p, "--set", projected[0], "--set", projected[1]]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains("projected on point group"), "{out}");
    expect_input_error(
        &[
            "check",
            p,
            "--set",
            projected[0],
            "--set",
            projected[1],
            "--set",
            "ansatz.momentum=3",
        ],
        "rbm_symm is already the k = 0 sector",
    );
    expect_input_error(
        &["check", p, "--set", "ansatz.point_group=\"shared\""],
        "ansatz.point_group",
    );
    expect_input_error(&["spectrum", p, "--momenta", "0,9"], "--momenta");
    expect_input_error(&["spectrum", p, "--momenta", "1,2,1"], "twice");
    expect_input_error(&["spectrum", p, "--momenta", "1:2"], "--momenta");
    expect_input_error(&["spectrum", p, "--spin-inversion", "2"], "spin-inversion");
}

#[test]
fn spectrum_collects_sector_runs_made_elsewhere() {
    // The Slurm array recipe: one `nqs run --set ansatz.momentum=m --output S.km.h5` per task,
    // then `nqs spectrum --output S.h5 --resume` collects them without recomputing.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "chain6.toml", &model(6));
    let p = path.to_str().unwrap();
    let summary = dir.path().join("S.h5");
    let sector = common::nqs_json(&[
        "run",
        p,
        "--set",
        "ansatz.momentum=2",
        "--set",
        "optimizer.iterations=30",
        "--output",
        dir.path().join("S.k2.h5").to_str().unwrap(),
    ]);
    let spectrum = nqs_json(&[
        "spectrum",
        p,
        "--momenta",
        "2",
        "--set",
        "optimizer.iterations=30",
        "--resume",
        "--output",
        summary.to_str().unwrap(),
    ]);
    let info = nqs_json(&["info", dir.path().join("S.k2.h5").to_str().unwrap()]);
    assert_eq!(
        info["ansatz"]["sector"]["momentum"],
        serde_json::json!([2]),
        "{info}"
    );
    let collected = &spectrum["sectors"][0];
    for key in ["mean", "error"] {
        assert_eq!(collected["energy"][key], sector["energy"][key]);
    }
    assert_eq!(collected["exact"], sector["exact"]["energy"]);
    assert!(summary.exists());
    // A sector run of other physics is refused, not mixed in.
    let (code, _, stderr) = common::nqs(&[
        "spectrum",
        p,
        "--momenta",
        "2",
        "--set",
        "model.J=2.0",
        "--resume",
        "--output",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn an_rbm_symm_parity_sector_is_compared_at_its_own_momentum() {
    // rbm_symm is k = 0 in the sampled basis, which with the Marshall sign at L = 8 is the
    // physical k = 0: projected on z = −1 its reference is the lowest state of (k = 0, z = −1),
    // −4 in Pauli units, not the lower (k = π, z = −1) triplet of the whole parity sector.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "chain8.toml", &model(8));
    let exact = exact_sectors(&path, dir.path());
    assert!(exact[&(4, -1)] < exact[&(0, -1)] - 1.0);
    let run = nqs_json(&[
        "run",
        path.to_str().unwrap(),
        "--set",
        "ansatz.kind=\"rbm_symm\"",
        "--set",
        "ansatz.spin_inversion=-1",
        "--set",
        "optimizer.iterations=50",
        "--output",
        dir.path().join("z.h5").to_str().unwrap(),
    ]);
    let reference = run["exact"]["energy"].as_f64().unwrap();
    assert!(relative(reference, exact[&(0, -1)]) < 1e-10, "{run}");
    // (Against the triplet it was 0.68.)
    assert!(run["relative_error"].as_f64().unwrap() < 1e-2, "{run}");
    // ED of one chosen sector gives no closed-form check: that is the whole space's ground
    // state, which the sector need not hold.
    let ed = nqs_json(&[
        "ed",
        path.to_str().unwrap(),
        "--momentum",
        "0",
        "--inversion",
        "-1",
    ]);
    assert!(ed["reference"].is_null(), "{ed}");
    assert!(nqs_json(&["ed", path.to_str().unwrap()])["reference"].is_object());
}
