//! Exact diagonalization against itself (Lanczos vs dense) and against closed forms.

use nqs::config;
use nqs::exact::{formulas, solve, EdOptions, Method, SymmetryRequest};
use nqs::lattice::Boundary;
use nqs::lattice::Lattice;
use nqs::operator::Hamiltonian;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::Path;

fn model(text: &str, overrides: &[&str]) -> (Lattice, Hamiltonian) {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let loaded = config::parse(text, Path::new("t.toml"), &o).unwrap();
    let lattice = loaded.lattice.clone();
    let h = Hamiltonian::new(&loaded.config.model, &lattice).unwrap();
    (lattice, h)
}

fn ground(
    lattice: &Lattice,
    h: &Hamiltonian,
    method: Method,
    symmetry: SymmetryRequest,
    n_states: usize,
) -> Vec<f64> {
    let mut opts = EdOptions {
        n_states,
        method,
        symmetry,
        auto_sector: false,
        ..EdOptions::default()
    };
    opts.lanczos.eigenvectors = false;
    let r = solve(h, lattice, &opts).unwrap();
    r.energies.iter().map(|e| e.0).collect()
}

/// The ground energy with the automatic sector (and the line that says how it was chosen).
fn auto_ground(lattice: &Lattice, h: &Hamiltonian) -> (f64, String, usize) {
    let mut opts = EdOptions::default();
    opts.lanczos.eigenvectors = false;
    let r = solve(h, lattice, &opts).unwrap();
    (
        r.ground_state.energy,
        r.sector_choice.clone().unwrap_or_default(),
        r.dimension(),
    )
}

#[test]
fn the_automatic_sector_holds_the_ground_state() {
    let base = "[lattice]\nkind = \"chain\"\nlength = 12\nboundary = \"periodic\"\n[model]\ntotal_sz = 0\n";
    let mut cases: Vec<(String, bool)> = vec![];
    for length in (12..=24).step_by(2) {
        let l = format!("lattice.length={length}");
        cases.push((format!("model.kind=heisenberg;{l}"), true));
    }
    for jz in [-0.9, -0.5, 0.0, 0.4, 1.0, 2.0, 3.0] {
        for length in [12, 14, 18] {
            cases.push((
                format!("model.kind=xxz;model.Jz={jz};lattice.length={length}"),
                true,
            ));
        }
    }
    // Ferromagnetic J2 keeps the Marshall-rotated chain stoquastic; antiferromagnetic J2
    // frustrates it: then the whole sector is solved and the line says why.
    for (j2, stoquastic) in [(-0.3, true), (0.05, false), (0.5, false)] {
        for length in [12, 16] {
            cases.push((
                format!("model.kind=j1j2;model.J2={j2};lattice.length={length}"),
                stoquastic,
            ));
        }
    }
    for (overrides, stoquastic) in cases {
        let o: Vec<&str> = overrides.split(';').collect();
        let (lattice, h) = model(base, &o);
        let full = ground(&lattice, &h, Method::Auto, SymmetryRequest::default(), 1)[0];
        let (auto, line, dimension) = auto_ground(&lattice, &h);
        assert!(
            (auto - full).abs() <= 1e-11 * full.abs().max(1.0),
            "{overrides}: automatic {auto} vs full {full} ({line})"
        );
        if stoquastic {
            assert!(line.starts_with("automatic sector"), "{overrides}: {line}");
            assert!(dimension * 2 * lattice.n_sites() <= 2 * binomial(lattice.n_sites()));
        } else {
            assert!(line.contains("positive"), "{overrides}: {line}");
        }
    }
}

fn binomial(n: usize) -> usize {
    (0..n / 2).fold(1, |c, k| c * (n - k) / (k + 1))
}

fn chain(kind: &str, extra: &str) -> String {
    format!("[lattice]\nkind = \"chain\"\nlength = 8\nboundary = \"periodic\"\n[model]\nkind = \"{kind}\"\n{extra}\n")
}

fn random_pauli_model(rng: &mut Xoshiro256PlusPlus, n: usize) -> String {
    let mut text = format!("[lattice]\nkind = \"chain\"\nlength = {n}\nboundary = \"open\"\n[model]\nkind = \"pauli\"\n");
    for _ in 0..3 * n {
        let k = 1 + rng.random_range(0..3usize);
        let letters: String = (0..k)
            .map(|_| ['X', 'Y', 'Z'][rng.random_range(0..3usize)])
            .collect();
        let mut sites: Vec<usize> = Vec::new();
        while sites.len() < k {
            let s = rng.random_range(0..n);
            if !sites.contains(&s) {
                sites.push(s);
            }
        }
        // A complex coefficient times a product with repeated sites, or a real coefficient.
        let coeff = if rng.random::<f64>() < 0.3 && k >= 2 {
            // Use X·Y = iZ on one site: coefficient −i makes the combined string real.
            text.push_str(&format!(
                "[[model.terms]]\ncoeff = [0.0, {:.3}]\nops = \"XY\"\nsites = [{s}, {s}]\n",
                -rng.random::<f64>(),
                s = sites[0]
            ));
            continue;
        } else {
            format!("{:.4}", rng.random::<f64>() * 2.0 - 1.0)
        };
        text.push_str(&format!(
            "[[model.terms]]\ncoeff = {coeff}\nops = \"{letters}\"\nsites = {sites:?}\n"
        ));
    }
    text
}

#[test]
fn lanczos_equals_dense_on_random_models() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    for n in [6usize, 7, 8, 9, 10] {
        let text = random_pauli_model(&mut rng, n);
        let (lattice, h) = model(&text, &[]);
        let dense = ground(&lattice, &h, Method::Dense, SymmetryRequest::default(), 3);
        let lanczos = ground(&lattice, &h, Method::Lanczos, SymmetryRequest::default(), 3);
        let single = ground(&lattice, &h, Method::Lanczos, SymmetryRequest::default(), 1);
        for (d, l) in dense.iter().zip(&lanczos) {
            assert!(
                (d - l).abs() <= 1e-10 * d.abs().max(1.0),
                "N={n}: dense {d} lanczos {l}"
            );
        }
        assert!((dense[0] - single[0]).abs() <= 1e-10 * dense[0].abs().max(1.0));
    }
    // Built-in models with and without sectors.
    for (kind, extra) in [
        ("heisenberg", "J = 0.8\ntotal_sz = 0"),
        ("xxz", "Jz = 0.3\ntotal_sz = 1"),
        ("tfi", "h = 0.7"),
        ("j1j2", "J2 = 0.3\nmarshall_sign = true"),
    ] {
        let (lattice, h) = model(&chain(kind, extra), &["lattice.length=10"]);
        let dense = ground(&lattice, &h, Method::Dense, SymmetryRequest::default(), 4);
        let lanczos = ground(&lattice, &h, Method::Lanczos, SymmetryRequest::default(), 4);
        for (d, l) in dense.iter().zip(&lanczos) {
            assert!(
                (d - l).abs() <= 1e-10 * d.abs().max(1.0),
                "{kind}: dense {d} lanczos {l}"
            );
        }
    }
}

#[test]
fn symmetry_sectors_reproduce_the_plain_spectrum() {
    for (kind, extra, overrides) in [
        ("heisenberg", "total_sz = 0", vec!["lattice.length=12"]),
        ("xxz", "Jz = 0.5\ntotal_sz = 1", vec!["lattice.length=10"]),
        ("tfi", "h = 0.9", vec!["lattice.length=10"]),
        (
            "heisenberg",
            "total_sz = 0",
            vec![
                "lattice.kind=\"square\"",
                "lattice.extent=[4,3]",
                "lattice.length=0",
            ],
        ),
    ] {
        let text = chain(kind, extra);
        let text = if overrides.iter().any(|o| o.contains("square")) {
            text.replace("length = 8\n", "extent = [4, 3]\n")
                .replace("\"chain\"", "\"square\"")
        } else {
            text
        };
        let overrides: Vec<&str> = overrides
            .into_iter()
            .filter(|o| o.starts_with("lattice.length=1"))
            .collect();
        let (lattice, h) = model(&text, &overrides);
        let plain = ground(&lattice, &h, Method::Dense, SymmetryRequest::default(), 6);
        let sym = ground(
            &lattice,
            &h,
            Method::Auto,
            SymmetryRequest {
                enabled: true,
                ..Default::default()
            },
            6,
        );
        for (p, s) in plain.iter().zip(&sym) {
            assert!(
                (p - s).abs() < 1e-10 * p.abs().max(1.0),
                "{kind}: plain {plain:?} symmetric {sym:?}"
            );
        }
    }
}

#[test]
fn a_bracketed_scan_finds_the_lowest_states_of_every_sector() {
    // Lanczos sectors are bracketed first and solved only when they can hold one of the
    // lowest states; the union must be the plain spectrum (with degeneracies).
    for (kind, extra, length, states) in [
        ("heisenberg", "total_sz = 0", 16, 5),
        ("xxz", "Jz = 2.0\ntotal_sz = 1", 14, 3),
        ("tfi", "h = 0.8", 12, 4),
    ] {
        let (lattice, h) = model(&chain(kind, extra), &[&format!("lattice.length={length}")]);
        let plain = ground(
            &lattice,
            &h,
            Method::Lanczos,
            SymmetryRequest::default(),
            states,
        );
        let mut opts = EdOptions {
            n_states: states,
            method: Method::Lanczos,
            symmetry: SymmetryRequest {
                enabled: true,
                ..Default::default()
            },
            ..EdOptions::default()
        };
        opts.lanczos.eigenvectors = false;
        let r = solve(&h, &lattice, &opts).unwrap();
        let bracketed = r.sectors.iter().filter(|s| s.method == "bracketed").count();
        assert!(bracketed > 0, "{kind}: the scan should skip some sectors");
        let sym: Vec<f64> = r.energies.iter().map(|e| e.0).collect();
        assert_eq!(sym.len(), states);
        for (p, s) in plain.iter().zip(&sym) {
            assert!(
                (p - s).abs() < 1e-9 * p.abs().max(1.0),
                "{kind}: plain {plain:?} scan {sym:?}"
            );
        }
        // Every skipped sector's estimated lowest energy lies above the states found.
        for s in r.sectors.iter().filter(|s| s.method == "bracketed") {
            assert!(s.bounds.unwrap()[0] > sym[states - 1], "{kind}: {s:?}");
        }
    }
}

#[test]
fn bethe_ansatz_equals_lanczos() {
    for l in (4..=24).step_by(2) {
        let text = chain("heisenberg", "marshall_sign = true\ntotal_sz = 0");
        let (lattice, h) = model(&text, &[&format!("lattice.length={l}")]);
        // The ground state is positive in the Marshall basis: there k = 0 and z = +1, which
        // in the physical basis (sector labels are physical) are k = π and z = −1 when L/2
        // is odd (a translation moves L/2 down spins between the sublattices).
        let half = l / 2;
        let symmetry = if l >= 18 {
            SymmetryRequest {
                enabled: true,
                momentum: Some(vec![if half % 2 == 1 { half } else { 0 }]),
                inversion: Some(if half % 2 == 1 { -1 } else { 1 }),
            }
        } else {
            SymmetryRequest::default()
        };
        let e = ground(&lattice, &h, Method::Auto, symmetry, 1)[0];
        let bethe = formulas::bethe_heisenberg_chain(l, 1.0).unwrap();
        assert!(
            (e - bethe).abs() <= 1e-10 * bethe.abs(),
            "L={l}: Lanczos {e}, Bethe {bethe}"
        );
    }
}

#[test]
fn free_fermions_equal_lanczos_for_tfi() {
    for l in [4usize, 5, 8, 11, 14, 20] {
        for h_field in [0.5, 1.0, 2.0] {
            for boundary in [Boundary::Periodic, Boundary::Open] {
                if l == 20 && (boundary == Boundary::Open || h_field != 1.0) {
                    continue; // the largest size once; the rest covers both boundaries
                }
                let b = if boundary == Boundary::Periodic {
                    "periodic"
                } else {
                    "open"
                };
                let text = chain("tfi", &format!("h = {h_field}"));
                let (lattice, h) = model(
                    &text,
                    &[
                        &format!("lattice.length={l}"),
                        &format!("lattice.boundary=\"{b}\""),
                    ],
                );
                // TFI's ground state is positive: momentum 0 and spin-flip +1 on periodic chains.
                let symmetry = if boundary == Boundary::Periodic && l >= 14 {
                    SymmetryRequest {
                        enabled: true,
                        momentum: Some(vec![0]),
                        inversion: Some(1),
                    }
                } else {
                    SymmetryRequest::default()
                };
                let e = ground(&lattice, &h, Method::Auto, symmetry, 1)[0];
                let ff = formulas::free_fermion_tfi_chain(l, 1.0, h_field, boundary).unwrap();
                assert!(
                    (e - ff).abs() <= 1e-10 * ff.abs(),
                    "L={l} h={h_field} {b}: Lanczos {e}, free fermions {ff}"
                );
            }
        }
    }
}

#[test]
fn majumdar_ghosh_point() {
    for l in [8usize, 12, 16] {
        let text = chain("j1j2", "J2 = 0.5\nunits = \"spin\"\ntotal_sz = 0");
        let (lattice, h) = model(&text, &[&format!("lattice.length={l}")]);
        let e = ground(&lattice, &h, Method::Auto, SymmetryRequest::default(), 1)[0];
        assert!(
            (e + 3.0 * l as f64 / 8.0).abs() < 1e-10 * l as f64,
            "L={l}: {e}"
        );
    }
}

#[test]
fn square_4x4_heisenberg() {
    let text = "[lattice]\nkind = \"square\"\nextent = [4, 4]\n[model]\nkind = \"heisenberg\"\nunits = \"spin\"\ntotal_sz = 0\n";
    let (lattice, h) = model(text, &[]);
    let e = ground(&lattice, &h, Method::Auto, SymmetryRequest::default(), 1)[0];
    assert!((e + 11.2284832084).abs() < 1e-9, "{e}");
    let e_sym = ground(
        &lattice,
        &h,
        Method::Auto,
        SymmetryRequest {
            enabled: true,
            ..Default::default()
        },
        1,
    )[0];
    assert!((e_sym - e).abs() < 1e-10);
}

#[test]
fn memory_estimate_refuses_oversized_problems() {
    let (lattice, h) = model(&chain("heisenberg", "total_sz = 0"), &["lattice.length=40"]);
    let opts = EdOptions {
        memory_limit: 1 << 30,
        ..EdOptions::default()
    };
    let err = solve(&h, &lattice, &opts).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("symmetry"), "{err}");
}

#[test]
fn nqs_ed_says_how_the_sector_was_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.toml");
    std::fs::write(
        &path,
        "[lattice]\nkind = \"chain\"\nlength = 14\n[model]\nkind = \"heisenberg\"\ntotal_sz = 0\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_nqs"))
            .args(["--json", "ed", path.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let auto = run(&[]);
    let full = run(&["--no-auto-sector"]);
    // L = 14: L/2 odd, so the Marshall sign puts the ground state at k = π, z = −1.
    assert_eq!(auto["sector"]["momentum"], serde_json::json!([7]));
    assert_eq!(auto["sector"]["inversion"], serde_json::json!(-1));
    assert!(auto["sector_choice"].as_str().unwrap().contains("Perron"));
    assert_eq!(full["dimension"], serde_json::json!(3432));
    assert_eq!(full["sector_choice"], serde_json::Value::Null);
    let (a, f) = (
        auto["energy"].as_f64().unwrap(),
        full["energy"].as_f64().unwrap(),
    );
    assert!((a - f).abs() < 1e-11 * f.abs());
    assert_eq!(auto["kernel"], "exchange");
}
