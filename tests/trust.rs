//! Off the happy path: bad inputs exit 2 with one line before any work, nothing panics or
//! hangs, outputs are never replaced without --force, and every number that leaves the program
//! is in the physical basis and the model's units. One test (or more) per finding.

mod common;

use common::{expect_input_error, nqs, nqs_command, nqs_json, write};
use std::path::Path;
use std::process::Stdio;

/// An 8-site Heisenberg chain with a Marshall sign, small sampling, `iterations` iterations.
fn small_run(iterations: usize) -> String {
    format!(
        "{}[sampler]\nchains = 4\nsamples = 400\n[optimizer]\nlearning_rate = 0.05\niterations = {iterations}\n[run]\nobservable_samples = 400\n",
        common::heisenberg_chain(8)
    )
}

fn run(model: &Path, out: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "run",
        model.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--no-reference",
    ];
    args.extend_from_slice(extra);
    nqs(&args)
}

#[test]
fn observables_are_validated_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out_of_range = write(
        d,
        "a.toml",
        &format!(
            "{}[[observables]]\nname = \"far\"\nops = \"ZZ\"\nsites = [0, 99]\n",
            small_run(3)
        ),
    );
    expect_input_error(
        &["check", out_of_range.to_str().unwrap()],
        "observables[0].sites",
    );
    let (code, _, stderr) = run(&out_of_range, &d.join("a.h5"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        !d.join("a.h5").exists(),
        "nothing may be written for an invalid model"
    );
    let duplicate = write(d, "b.toml", &format!("{}[[observables]]\nname = \"x\"\nops = \"Z\"\nsites = [0]\n[[observables]]\nname = \"x\"\nops = \"X\"\nsites = [1]\n", small_run(3)));
    expect_input_error(&["check", duplicate.to_str().unwrap()], "also the name");
    // [[observables]] can be given with --set as well.
    let plain = write(d, "c.toml", &small_run(3));
    let v = nqs_json(&[
        "run",
        plain.to_str().unwrap(),
        "--output",
        d.join("c.h5").to_str().unwrap(),
        "--no-reference",
        "--set",
        "observables=[{name=\"x01\", ops=\"XX\", sites=[0,1]}]",
    ]);
    assert_eq!(v["observables"][0]["name"], "x01", "{v}");
}

#[test]
fn check_runs_every_validation_of_run() {
    let dir = tempfile::tempdir().unwrap();
    let tfi = write(dir.path(), "t.toml", "[lattice]\nkind = \"chain\"\nlength = 6\n[model]\nkind = \"tfi\"\n[sampler]\nkind = \"exchange\"\n");
    expect_input_error(&["check", tfi.to_str().unwrap()], "sampler.kind");
    let decay = write(
        dir.path(),
        "d.toml",
        &small_run(3).replace(
            "learning_rate = 0.05",
            "learning_rate = 0.05\nlearning_rate_decay = 1e308",
        ),
    );
    expect_input_error(&["check", decay.to_str().unwrap()], "learning_rate_decay");
    let edges = write(
        dir.path(),
        "e.toml",
        "[lattice]\nkind = \"custom\"\nedges = [[0, 1, 2]]\n[model]\nkind = \"heisenberg\"\n",
    );
    expect_input_error(&["check", edges.to_str().unwrap()], "pair");
    let huge = write(
        dir.path(),
        "h.toml",
        &small_run(3).replace("kind = \"heisenberg\"", "kind = \"heisenberg\"\nJ = 1e308"),
    );
    expect_input_error(&["ed", huge.to_str().unwrap()], "model.J");
}

#[test]
fn messages_are_one_short_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", &small_run(3));
    let m = model.to_str().unwrap();
    // A file error keeps its position even with overrides present.
    let bad = write(
        dir.path(),
        "bad.toml",
        &small_run(3).replace("kind = \"chain\"", "kind = \"ring\""),
    );
    let (code, _, stderr) = nqs(&[
        "check",
        bad.to_str().unwrap(),
        "--set",
        "optimizer.iterations=2",
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("bad.toml:2:1: key `lattice.kind`") && !stderr.contains("--set"),
        "{stderr}"
    );
    // Huge values are not echoed whole.
    let long = format!("model.kind={}", "x".repeat(100_000));
    let (code, _, stderr) = nqs(&["check", m, "--set", &long]);
    assert_eq!(code, 2);
    assert!(stderr.len() < 600, "{} characters", stderr.len());
    expect_input_error(&["info", dir.path().to_str().unwrap()], "is a directory");
    expect_input_error(&["--threads", "1000000000000", "check", m], "threads");
    // A negative count or a fraction names the accepted range, not a Rust type.
    for value in ["-1", "1.5", "\"4\""] {
        let set = format!("sampler.chains={value}");
        expect_input_error(
            &["check", m, "--set", &set],
            "key `sampler.chains`: invalid",
        );
        expect_input_error(&["check", m, "--set", &set], "expected an integer in 1..=");
    }
    expect_input_error(
        &["check", m, "--set", "run.seed=-1"],
        "expected a non-negative integer",
    );
    // A missing required argument is named on the one line.
    expect_input_error(&["plot", "run.h5"], "not provided: --output <OUTPUT>");
    // An output that cannot be written is refused before any work (a regular file as parent).
    let blocker = write(dir.path(), "blocker", "not a directory");
    let inside = blocker.join("ed.h5");
    expect_input_error(
        &["ed", m, "--output", inside.to_str().unwrap()],
        "directory",
    );
    expect_input_error(
        &["run", m, "--output", inside.to_str().unwrap()],
        "directory",
    );
}

#[test]
fn tomography_options_are_checked_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let samples = write(dir.path(), "s.txt", "0 1\n1 0\n");
    let s = samples.to_str().unwrap();
    expect_input_error(
        &["tomo", "--samples", s, "--validation", "-0.1"],
        "validation",
    );
    expect_input_error(&["tomo", "--samples", s, "--alpha", "0"], "alpha");
    expect_input_error(
        &["tomo", "--samples", s, "--learning-rate", "1e9"],
        "--learning-rate",
    );
    expect_input_error(&["tomo", "--alpha", "2"], "samples");
    expect_input_error(
        &["tomo", "--samples", s, "--learning-rate", "nan"],
        "(0, 10]",
    );
    expect_input_error(
        &["tomo", "--samples", s, "--epochs", "-3"],
        "--epochs: invalid value: integer `-3`, expected an integer in 1..=",
    );
}

/// A bad value in a `[tomography]` file is blamed on its line and key, and one given on the
/// command line on the flag, whichever check finds it (deserialization or validation).
#[test]
fn tomography_config_errors_name_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "s.txt", "0 1\n1 0\n");
    for (line, key) in [
        ("epochs = -2", "tomography.epochs"),
        ("alpha = 2.5", "tomography.alpha"),
        ("learning_rate = 20.0", "tomography.learning_rate"),
        ("validation = nan", "tomography.validation"),
        ("optimizer = \"lbfgs\"", "tomography.optimizer"),
        ("reference = \"\"", "tomography.reference"),
        ("typo = 1", "tomography.typo"),
    ] {
        let config = write(
            dir.path(),
            "t.toml",
            &format!("[tomography]\nsamples = \"s.txt\"\n{line}\n"),
        );
        let c = config.to_str().unwrap();
        expect_input_error(
            &["tomo", "--config", c],
            &format!("t.toml:3:1: key `{key}`"),
        );
        // The command line wins, and its own bad value is the flag's fault.
        if key == "tomography.epochs" {
            expect_input_error(&["tomo", "--config", c, "--epochs", "0"], "--epochs: ");
        }
    }
    let empty = write(dir.path(), "e.toml", "[tomography]\nsamples = \"\"\n");
    expect_input_error(
        &["tomo", "--config", empty.to_str().unwrap()],
        "e.toml:2:1: key `tomography.samples`: expected a file name",
    );
}

/// Run-file attributes that contradict the file's own configuration, or lie outside their
/// values, are refused by every command that reads the state, and the file stays as it was.
#[test]
fn contradictory_run_file_attributes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", &small_run(3));
    let good = dir.path().join("good.h5");
    assert_eq!(run(&model, &good, &[]).0, 0);
    type Damage<'a> = (&'a str, &'a dyn Fn(&hdf5::File), &'a str);
    let string_attr = |f: &hdf5::File, value: &str| {
        f.delete_attr("units").unwrap();
        let v: hdf5::types::VarLenUnicode = value.parse().unwrap();
        f.new_attr::<hdf5::types::VarLenUnicode>()
            .create("units")
            .unwrap()
            .write_scalar(&v)
            .unwrap();
    };
    let finished_attr = |f: &hdf5::File, write: &dyn Fn(&hdf5::File)| {
        f.delete_attr("finished").unwrap();
        write(f);
    };
    let damage: [Damage; 6] = [
        (
            "furlongs",
            &|f| string_attr(f, "furlongs"),
            "units attribute",
        ),
        // The model is in Pauli units: "spin" would halve every label.
        ("spin", &|f| string_attr(f, "spin"), "contradicts"),
        (
            "finished",
            &|f| {
                f.attr("finished").unwrap().write_scalar(&2u8).unwrap();
            },
            "finished attribute is 2",
        ),
        // HDF5 would clip −255 to 0 when read as u8, and convert 1.0 to 1.
        (
            "finished_i64",
            &|f| {
                finished_attr(f, &|f| {
                    f.new_attr::<i64>()
                        .create("finished")
                        .unwrap()
                        .write_scalar(&-255i64)
                        .unwrap()
                })
            },
            "finished attribute is -255",
        ),
        (
            "finished_float",
            &|f| {
                finished_attr(f, &|f| {
                    f.new_attr::<f64>()
                        .create("finished")
                        .unwrap()
                        .write_scalar(&1.0f64)
                        .unwrap()
                })
            },
            "not an integer",
        ),
        (
            "marshall",
            &|f| {
                f.unlink("ansatz/marshall_sites").unwrap();
                f.group("ansatz")
                    .unwrap()
                    .new_dataset_builder()
                    .with_data(&[1u64, 2, 3, 4])
                    .create("marshall_sites")
                    .unwrap();
            },
            "another basis",
        ),
    ];
    for (name, modify, needle) in damage {
        let path = dir.path().join(format!("{name}.h5"));
        std::fs::copy(&good, &path).unwrap();
        modify(&hdf5::File::open_rw(&path).unwrap());
        let before = std::fs::read(&path).unwrap();
        let p = path.to_str().unwrap();
        let shots = dir.path().join(format!("shots_{name}"));
        let mut readers = vec![
            vec!["measure", p, "--samples", "32"],
            vec![
                "sample",
                p,
                "--shots",
                "5",
                "--output",
                shots.to_str().unwrap(),
            ],
        ];
        if name != "marshall" {
            // `info` shows the units and the status, not the sampled basis.
            readers.push(vec!["info", p]);
        }
        for args in readers {
            expect_input_error(&args, needle);
        }
        let (code, _, stderr) = run(
            &model,
            &path,
            &["--resume", "--set", "optimizer.iterations=5"],
        );
        assert_eq!(code, 2, "{name}: resume: {stderr}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "{name}: the file changed"
        );
    }
    // Files written before the root `units` attribute existed have none: still readable.
    let old = dir.path().join("no_units.h5");
    std::fs::copy(&good, &old).unwrap();
    hdf5::File::open_rw(&old)
        .unwrap()
        .delete_attr("units")
        .unwrap();
    let o = old.to_str().unwrap();
    for args in [vec!["measure", o, "--samples", "32"], vec!["info", o]] {
        let (code, _, stderr) = nqs(&args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
    }
}

#[test]
fn tomography_refuses_meaningless_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let h5 = |name: &str, fill: &dyn Fn(&hdf5::Group)| {
        let path = d.join(name);
        let f = hdf5::File::create(&path).unwrap();
        fill(&f.create_group("measurements").unwrap());
        path
    };
    let float = h5("float.h5", &|g| {
        g.new_dataset_builder()
            .with_data(&ndarray::arr2(&[[0.5f64, 1.0]]))
            .create("outcomes")
            .unwrap();
    });
    expect_input_error(
        &[
            "tomo",
            "--samples",
            float.to_str().unwrap(),
            "--output",
            d.join("o1.h5").to_str().unwrap(),
        ],
        "integer",
    );
    let negative = h5("neg.h5", &|g| {
        g.new_dataset_builder()
            .with_data(&ndarray::arr2(&[[-1i8, 0]]))
            .create("outcomes")
            .unwrap();
    });
    expect_input_error(
        &[
            "tomo",
            "--samples",
            negative.to_str().unwrap(),
            "--output",
            d.join("o2.h5").to_str().unwrap(),
        ],
        "0 or 1",
    );
    let group = h5("group.h5", &|g| {
        g.new_dataset_builder()
            .with_data(&ndarray::arr2(&[[0u8, 1]]))
            .create("outcomes")
            .unwrap();
        g.create_group("bases").unwrap();
    });
    expect_input_error(
        &[
            "tomo",
            "--samples",
            group.to_str().unwrap(),
            "--output",
            d.join("o3.h5").to_str().unwrap(),
        ],
        "not a group",
    );
    // A shot rotated on 28 sites would sum 2^28 terms: refused at once.
    let wide = write(d, "wide.txt", &format!("{}\n", vec!["0"; 28].join(" ")));
    let bases = write(
        d,
        "wide_bases.txt",
        &format!("{}\n", vec!["X"; 28].join(" ")),
    );
    expect_input_error(
        &[
            "tomo",
            "--samples",
            wide.to_str().unwrap(),
            "--bases",
            bases.to_str().unwrap(),
            "--output",
            d.join("o4.h5").to_str().unwrap(),
        ],
        "rotated sites",
    );
    // References: the zero vector is refused; 1e±300 scales are normalized.
    let shots = write(d, "two.txt", "0 1\n1 0\n0 1\n1 0\n0 0\n");
    let zero = write(d, "zero.txt", "0 0\n0 0\n0 0\n0 0\n");
    expect_input_error(
        &[
            "tomo",
            "--samples",
            shots.to_str().unwrap(),
            "--reference",
            zero.to_str().unwrap(),
            "--output",
            d.join("o5.h5").to_str().unwrap(),
        ],
        "zero",
    );
    for scale in ["1e300", "1e-300"] {
        let r = write(
            d,
            "scaled.txt",
            &format!("0 0\n{scale} 0\n{scale} 0\n0 0\n"),
        );
        let v = nqs_json(&[
            "tomo",
            "--samples",
            shots.to_str().unwrap(),
            "--reference",
            r.to_str().unwrap(),
            "--epochs",
            "5",
            "--output",
            d.join(format!("f{scale}.h5")).to_str().unwrap(),
        ]);
        assert!(
            v["fidelity"].as_f64().is_some_and(|f| f > 0.0 && f <= 1.0),
            "{v}"
        );
        assert!(v["notes"][0].as_str().unwrap().contains("Z-basis"), "{v}");
    }
    // 21 sites: the NLL has no exact normalization; said so, not NaN.
    let many = write(
        d,
        "many.txt",
        &format!("{0}\n{0}\n{0}\n", vec!["0"; 21].join(" ")),
    );
    let v = nqs_json(&[
        "tomo",
        "--samples",
        many.to_str().unwrap(),
        "--epochs",
        "2",
        "--output",
        d.join("o6.h5").to_str().unwrap(),
    ]);
    assert!(v["nll"].is_null(), "{v}");
    assert!(v["notes"].to_string().contains("not available"), "{v}");
}

#[test]
fn tomography_keeps_the_last_epoch_unless_an_earlier_one_is_clearly_better() {
    // Two qubits in a random complex state, 1000 shots in five bases (QuCumber's tutorial
    // setting): the kept state must not be worse than the last epoch's beyond noise.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = write(d, "psi.toml", "[lattice]\nkind = \"chain\"\nlength = 2\nboundary = \"open\"\n[model]\nkind = \"pauli\"\n[[model.terms]]\ncoeff = 0.7\nops = \"XY\"\nsites = [0, 1]\n[[model.terms]]\ncoeff = -0.4\nops = \"ZX\"\nsites = [0, 1]\n[[model.terms]]\ncoeff = 0.3\nops = \"Y\"\nsites = [1]\n");
    let (code, _, stderr) = nqs(&[
        "ed",
        state.to_str().unwrap(),
        "--output",
        d.join("ed.h5").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let bases = write(
        d,
        "bases.txt",
        &["Z Z", "X X", "X Y", "Y X", "Y Y"]
            .iter()
            .cycle()
            .take(1000)
            .map(|b| format!("{b}\n"))
            .collect::<String>(),
    );
    let (code, _, stderr) = nqs(&[
        "sample",
        d.join("ed.h5").to_str().unwrap(),
        "--bases",
        bases.to_str().unwrap(),
        "--output",
        d.join("shots").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let v = nqs_json(&[
        "tomo",
        "--samples",
        d.join("shots/samples.txt").to_str().unwrap(),
        "--bases",
        d.join("shots/bases.txt").to_str().unwrap(),
        "--reference",
        d.join("shots/state.txt").to_str().unwrap(),
        "--alpha",
        "2",
        "--epochs",
        "1000",
        "--learning-rate",
        "0.01",
        "--output",
        d.join("fit.h5").to_str().unwrap(),
    ]);
    let kept = v["fidelity"].as_f64().unwrap();
    let file = hdf5::File::open(d.join("fit.h5")).unwrap();
    let history: Vec<f64> = file
        .dataset("tomography/history/fidelity")
        .unwrap()
        .read_raw()
        .unwrap();
    let last = *history.last().unwrap();
    assert!(
        kept >= last - 0.005,
        "kept {kept} vs last epoch {last}: {v}"
    );
    assert!(v["kept_reason"].as_str().unwrap().contains("epoch"), "{v}");
}

#[test]
fn outputs_are_never_replaced_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = write(d, "m.toml", &common::heisenberg_chain(6));
    let ed = d.join("ed.h5");
    assert_eq!(
        nqs(&[
            "ed",
            model.to_str().unwrap(),
            "--output",
            ed.to_str().unwrap()
        ])
        .0,
        0
    );
    let shots = d.join("shots");
    assert_eq!(
        nqs(&[
            "sample",
            ed.to_str().unwrap(),
            "--output",
            shots.to_str().unwrap()
        ])
        .0,
        0
    );
    let before = std::fs::read(shots.join("samples.txt")).unwrap();
    expect_input_error(
        &[
            "sample",
            ed.to_str().unwrap(),
            "--seed",
            "9",
            "--output",
            shots.to_str().unwrap(),
        ],
        "--force",
    );
    assert_eq!(std::fs::read(shots.join("samples.txt")).unwrap(), before);
    assert_eq!(
        nqs(&[
            "sample",
            ed.to_str().unwrap(),
            "--seed",
            "9",
            "--output",
            shots.to_str().unwrap(),
            "--force"
        ])
        .0,
        0
    );
    expect_input_error(
        &[
            "sample",
            ed.to_str().unwrap(),
            "--shots",
            "1000000000000",
            "--output",
            d.join("big").to_str().unwrap(),
        ],
        "--shots",
    );
    expect_input_error(
        &[
            "ed",
            model.to_str().unwrap(),
            "--output",
            ed.to_str().unwrap(),
        ],
        "--force",
    );
}

#[test]
fn a_closed_stdout_never_kills_a_computation() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", &small_run(5));
    let out = dir.path().join("p.h5");
    let mut child = nqs_command(&[
        "run",
        model.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--no-reference",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    drop(child.stdout.take()); // like `nqs … | head -0`
    assert!(child.wait().unwrap().success());
    assert_eq!(common::history(&out, "energy").len(), 5);
}

#[test]
fn a_stop_during_the_final_measurement_keeps_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", &small_run(6));
    let out = dir.path().join("f.h5");
    let o = nqs_command(&[
        "run",
        model.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ])
    .env("NQS_TEST_STOP_AFTER", "6")
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("interrupted during the final measurement"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&model, &out, &["--resume"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("at iteration 6"), "{stderr}");
    assert_eq!(common::history(&out, "energy").len(), 6);
}

#[test]
fn resume_refuses_damaged_state() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", &small_run(3));
    let good = dir.path().join("good.h5");
    assert_eq!(run(&model, &good, &[]).0, 0);
    type Damage<'a> = (&'a str, &'a dyn Fn(&hdf5::File));
    let damage: [Damage; 5] = [
        ("parameters", &|f| {
            f.unlink("ansatz/parameters").unwrap();
            f.group("ansatz")
                .unwrap()
                .new_dataset_builder()
                .with_data(&[num_complex::Complex64::new(0.1, 0.0); 7])
                .create("parameters")
                .unwrap();
        }),
        ("rng", &|f| {
            f.dataset("sampler/rng_state")
                .unwrap()
                .write(&ndarray::Array2::<u64>::zeros((4, 4)))
                .unwrap()
        }),
        ("thermalized", &|f| {
            f.dataset("sampler/thermalized")
                .unwrap()
                .write(&[7u8; 4])
                .unwrap()
        }),
        ("sector", &|f| {
            f.dataset("sampler/configurations")
                .unwrap()
                .write(&ndarray::Array2::<i8>::ones((4, 8)))
                .unwrap()
        }),
        ("shape", &|f| {
            f.unlink("sampler/configurations").unwrap();
            f.group("sampler")
                .unwrap()
                .new_dataset_builder()
                .with_data(&ndarray::Array2::<i8>::ones((3, 8)))
                .create("configurations")
                .unwrap();
        }),
    ];
    for (name, modify) in damage {
        let path = dir.path().join(format!("{name}.h5"));
        std::fs::copy(&good, &path).unwrap();
        modify(&hdf5::File::open_rw(&path).unwrap());
        let before = std::fs::read(&path).unwrap();
        let (code, _, stderr) = run(
            &model,
            &path,
            &["--resume", "--set", "optimizer.iterations=5"],
        );
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "{name}: the file changed"
        );
    }
}

/// A damaged integer type message (the fuzzer's case: the `finished` attribute, 1 byte, with a
/// precision of 51 464 bits) reads as u64 but crashes HDF5's conversion to u8 in `H5T__bit_find`.
/// The probe refuses any numeric type that is not the standard one of its size, so every
/// reader exits 2 with one line instead of dying by a signal, and the file is unchanged.
#[test]
fn a_damaged_type_message_is_refused_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", &small_run(3));
    let path = dir.path().join("run.h5");
    assert_eq!(run(&model, &path, &[]).0, 0);
    let mut bytes = std::fs::read(&path).unwrap();
    let name = bytes.windows(9).position(|w| w == b"finished\0").unwrap();
    // The datatype after the name: class byte, 3 flag bytes, size 1, bit offset 0, precision 8.
    let pattern = [1u8, 0, 0, 0, 0, 0, 8, 0];
    let at = name
        + bytes[name..name + 48]
            .windows(8)
            .position(|w| w == pattern)
            .unwrap();
    bytes[at + 7] = 201;
    std::fs::write(&path, &bytes).unwrap();
    let p = path.to_str().unwrap();
    let png = dir.path().join("plot.png");
    for args in [
        &["info", p][..],
        &["measure", p, "--samples", "32"],
        &["plot", p, "-o", png.to_str().unwrap()],
    ] {
        let (code, _, stderr) = nqs(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains("numeric datatype"), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a reader changed the file"
    );
}

#[test]
fn plots_survive_degenerate_histories() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", &small_run(4));
    let good = dir.path().join("g.h5");
    assert_eq!(run(&model, &good, &[]).0, 0);
    let cases: [(&str, [f64; 4], [f64; 4], i32); 4] = [
        ("zero", [0.0; 4], [-1.0, -2.0, -3.0, -3.0], 0),
        ("nan", [f64::NAN; 4], [-1.0, -2.0, -3.0, -3.0], 0),
        ("negative", [-1.0; 4], [-1.0, f64::INFINITY, -3.0, -3.0], 0),
        ("inf", [1.0; 4], [f64::INFINITY; 4], 2),
    ];
    for (name, variance, energy, expected) in cases {
        let path = dir.path().join(format!("{name}.h5"));
        std::fs::copy(&good, &path).unwrap();
        let f = hdf5::File::open_rw(&path).unwrap();
        f.dataset("history/variance")
            .unwrap()
            .write(&variance)
            .unwrap();
        f.dataset("history/energy").unwrap().write(&energy).unwrap();
        drop(f);
        let png = dir.path().join(format!("{name}.png"));
        let (code, _, stderr) = nqs(&["plot", path.to_str().unwrap(), "-o", png.to_str().unwrap()]);
        assert_eq!(code, expected, "{name}: {stderr}");
    }
}

#[test]
fn exported_states_and_observables_are_physical() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Heisenberg chain with the Marshall sign: by SU(2) symmetry ⟨X0X1⟩ = ⟨Y0Y1⟩ = ⟨Z0Z1⟩ < 0.
    let model = write(d, "h.toml", &common::heisenberg_chain(8));
    let ed = nqs_json(&[
        "ed",
        model.to_str().unwrap(),
        "--correlations",
        "--output",
        d.join("ed.h5").to_str().unwrap(),
    ]);
    let zz01 = ed["zz_correlations"][0][1].as_f64().unwrap();
    assert!(zz01 < -0.5, "{ed}");
    for basis in ["XXZZZZZZ", "YYZZZZZZ"] {
        let shots = d.join(basis);
        let (code, _, stderr) = nqs(&[
            "sample",
            d.join("ed.h5").to_str().unwrap(),
            "--basis",
            basis,
            "--shots",
            "20000",
            "--output",
            shots.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{stderr}");
        let text = std::fs::read_to_string(shots.join("samples.txt")).unwrap();
        let products: Vec<f64> = text
            .lines()
            .map(|l| {
                let s: Vec<f64> = l
                    .split_whitespace()
                    .take(2)
                    .map(|v| 1.0 - 2.0 * v.parse::<f64>().unwrap())
                    .collect();
                s[0] * s[1]
            })
            .collect();
        let mean = products.iter().sum::<f64>() / products.len() as f64;
        let error = (1.0 / products.len() as f64).sqrt();
        assert!(
            (mean - zz01).abs() < 5.0 * error,
            "{basis}: ⟨..⟩ = {mean}, ⟨Z0Z1⟩ = {zz01}"
        );
    }
    // A VMC run in the Marshall basis measures XX of the physical state.
    let run_model = write(
        d,
        "r.toml",
        &format!(
            "{}[[observables]]\nname = \"x01\"\nops = \"XX\"\nsites = [0, 1]\n",
            small_run(60)
        ),
    );
    let v = nqs_json(&[
        "run",
        run_model.to_str().unwrap(),
        "--output",
        d.join("r.h5").to_str().unwrap(),
    ]);
    let xx = v["observables"][0]["mean"].as_f64().unwrap();
    assert!(
        (xx - zz01).abs() < 0.1,
        "⟨X0X1⟩ = {xx}, exact ⟨Z0Z1⟩ = {zz01}: {v}"
    );
    // Shots of the stored RBM are physical too.
    let shots = d.join("vmc_shots");
    assert_eq!(
        nqs(&[
            "sample",
            d.join("r.h5").to_str().unwrap(),
            "--basis",
            "XXZZZZZZ",
            "--shots",
            "5000",
            "--output",
            shots.to_str().unwrap()
        ])
        .0,
        0
    );
    let text = std::fs::read_to_string(shots.join("samples.txt")).unwrap();
    let mean: f64 = text
        .lines()
        .map(|l| {
            if l.starts_with("0 0") || l.starts_with("1 1") {
                1.0
            } else {
                -1.0
            }
        })
        .sum::<f64>()
        / 5000.0;
    assert!(mean < -0.4, "⟨X0X1⟩ from the RBM's shots = {mean}");
}

#[test]
fn one_unit_convention_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(
        dir.path(),
        "s.toml",
        &small_run(3).replace(
            "kind = \"heisenberg\"",
            "kind = \"heisenberg\"\nunits = \"spin\"",
        ),
    );
    let v = nqs_json(&[
        "run",
        model.to_str().unwrap(),
        "--output",
        dir.path().join("s.h5").to_str().unwrap(),
        "--no-reference",
    ]);
    assert_eq!(v["units"], "spin");
    assert_eq!(v["correlation_label"], "S^z_i S^z_j");
    assert_eq!(v["correlations_site0"][0], 0.25, "{v}");
    let ed = nqs_json(&["ed", model.to_str().unwrap(), "--correlations"]);
    assert_eq!(ed["correlation_label"], "S^z_i S^z_j");
    assert!((ed["zz_correlations"][0][0].as_f64().unwrap() - 0.25).abs() < 1e-12);
}

#[test]
fn an_eigenstate_start_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::shipped("j1j2_chain_20.toml");
    let out = dir.path().join("j.h5");
    let (code, _, stderr) = nqs(&[
        "run",
        model.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--no-reference",
        "--set",
        "model.marshall_sign=false",
        "--set",
        "optimizer.iterations=2",
        "--set",
        "run.observable_samples=200",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("close to an exact eigenstate"), "{stderr}");
}

/// A checkpoint from the fuzzer (seed 2027, case 869) whose `sampler` group has a corrupt object
/// header: the group is listed but does not open, and opening an `ansatz` attribute by name
/// crashed `nqs sample` in a memcpy inside HDF5 (the probe, reading the same attribute, did not
/// crash: an out-of-bounds read crashes or not depending on the heap). The probe now fails on
/// any listed member that does not open, so the file is refused before the parent touches it.
#[test]
fn a_corrupt_object_header_is_refused_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.h5");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz_2027_869_corrupt_object_header.h5");
    std::fs::copy(&fixture, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let p = path.to_str().unwrap();
    let shots = dir.path().join("shots");
    for args in [
        &["info", p][..],
        &[
            "sample",
            p,
            "--shots",
            "10",
            "--output",
            shots.to_str().unwrap(),
        ],
        &["measure", p, "--samples", "32"],
    ] {
        let (code, _, stderr) = nqs(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains("damaged HDF5 file"), "{args:?}: {stderr}");
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a reader changed the file"
    );
}

/// A measurements file with a damaged global-heap reference in a string attribute (the
/// tomography fuzzer's seed 2, case 42) keeps the HDF5 library busy without end: the probe's
/// CPU-time limit ends it in about ten seconds, not the minute of the wall-clock deadline, and
/// no core file is left behind.
#[test]
fn a_file_the_hdf5_library_spins_on_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("measurements.h5");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz_tomo_2_42_spinning_global_heap.h5");
    std::fs::copy(&fixture, &path).unwrap();
    let output = dir.path().join("fit.h5");
    let start = std::time::Instant::now();
    let run = nqs_command(&[
        "tomo",
        "--samples",
        path.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ])
    .current_dir(dir.path())
    .output()
    .unwrap();
    let (code, stderr) = (run.status.code(), String::from_utf8_lossy(&run.stderr));
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("spins on it"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(seconds < 40.0, "{seconds} s");
    assert!(!output.exists());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["measurements.h5"], "files left behind");
}

/// A tomography file whose header declares more shots than `nqs sample` may write (2·10⁸ × 6,
/// never written, a few KB on disk) is refused from its declared shape: the reader never
/// allocates it (the crash-guard probe reads it in slabs of rows), instead of filling memory.
#[test]
fn a_huge_declared_tomography_dataset_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.h5");
    {
        let file = hdf5::File::create(&path).unwrap();
        file.create_group("measurements")
            .unwrap()
            .new_dataset::<u8>()
            .shape((200_000_000, 6))
            .create("outcomes")
            .unwrap();
    }
    assert!(std::fs::metadata(&path).unwrap().len() < 100_000);
    let out = dir.path().join("fit.h5");
    let (code, _, stderr) = nqs(&[
        "tomo",
        "--samples",
        path.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("too large"), "{stderr}");
    assert!(!out.exists());
}

/// `nqs ed --states k` on sectors holding fewer than k states lists them all and says so.
#[test]
fn more_states_than_the_sector_holds_are_noted() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", &common::heisenberg_chain(4));
    let m = model.to_str().unwrap();
    let report = nqs_json(&["ed", m, "--states", "9"]);
    assert_eq!(report["energies"].as_array().unwrap().len(), 6, "{report}");
    let notes = report["notes"].as_array().unwrap();
    assert!(
        notes.len() == 1 && notes[0].as_str().unwrap().contains("only 6 states"),
        "{report}"
    );
    let (code, stdout, _) = nqs(&["ed", m, "--states", "9"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("note: --states 9"), "{stdout}");
    assert!(nqs_json(&["ed", m, "--states", "6"])["notes"]
        .as_array()
        .unwrap()
        .is_empty());
}

/// A one-site model that conserves S^z samples by single flips (exchange needs two sites): it
/// runs, where the default move once drew from an empty list of pairs.
#[test]
fn a_one_site_model_runs() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(
        dir.path(),
        "one.toml",
        "[lattice]\nkind = \"custom\"\nn_sites = 1\nedges = []\n[model]\nkind = \"pauli\"\n[[model.terms]]\ncoeff = 1.0\nops = \"Z\"\nsites = [0]\n[sampler]\nchains = 2\nsamples = 16\n[optimizer]\niterations = 2\n[run]\nobservable_samples = 16\n",
    );
    let (code, _, stderr) = run(&model, &dir.path().join("one.h5"), &[]);
    assert_eq!(code, 0, "{stderr}");
    let ed = nqs_json(&["ed", model.to_str().unwrap()]);
    assert_eq!(ed["energy"].as_f64(), Some(-1.0), "{ed}");
}

#[test]
fn a_projected_state_that_vanishes_is_refused() {
    // An RBM with every parameter 0 is the constant state, symmetric under every element:
    // projected on spin inversion z = −1, or on a momentum k ≠ 0, it is zero on every
    // configuration (to rounding). A run would optimize the noise and an export would
    // normalize it: both exit 2 instead, naming the key.
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}[ansatz]\nkind = \"rbm_symm\"\nspin_inversion = -1\n",
        small_run(2)
    );
    let model = write(dir.path(), "m.toml", &text);
    let out = dir.path().join("f.h5");
    let (code, _, stderr) = run(&model, &out, &[]);
    assert_eq!(code, 0, "{stderr}");
    let p = model.to_str().unwrap();
    let fresh = dir.path().join("fresh.h5");
    let fresh = fresh.to_str().unwrap();
    let constant = ["--set", "ansatz.init_std=0.0", "--output", fresh];
    expect_input_error(
        &[&["run", p][..], &constant[..]].concat(),
        "key `ansatz.init_std`",
    );
    let dense_k = [
        "--set",
        "ansatz.kind=\"rbm\"",
        "--set",
        "ansatz.spin_inversion=1",
        "--set",
        "ansatz.momentum=1",
    ];
    expect_input_error(
        &[&["run", p][..], &constant[..], &dense_k[..]].concat(),
        "vanishes",
    );
    {
        let file = hdf5::File::open_rw(&out).unwrap();
        let parameters = file.dataset("ansatz/parameters").unwrap();
        let zeros = vec![num_complex::Complex64::new(0.0, 0.0); parameters.size()];
        parameters.write(&zeros).unwrap();
    }
    let before = std::fs::read(&out).unwrap();
    let shots = dir.path().join("shots");
    expect_input_error(
        &[
            "sample",
            out.to_str().unwrap(),
            "--output",
            shots.to_str().unwrap(),
        ],
        "cannot be normalized",
    );
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert!(!shots.join("samples.txt").exists());
    let init_from = format!("run.init_from=\"{}\"", out.display());
    expect_input_error(
        &["run", p, "--set", &init_from, "--output", fresh],
        "key `run.init_from`",
    );
    assert!(!Path::new(fresh).exists());
    assert_eq!(std::fs::read(&out).unwrap(), before);
}
