//! Checkpoints, restart and the safety of run files: crashes (as kill -9) at chosen iterations
//! and resumes give exactly the uninterrupted run; a finished or checkpointed run is never
//! lost; resume refuses other physics; one output has one owner.

mod common;

use common::{nqs, nqs_command, write, RUN_16};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

/// `nqs run model --output out --no-reference extra…` with optional test-hook environment.
fn run(model: &Path, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut c = nqs_command(&[
        "--threads",
        "2",
        "run",
        &model.to_string_lossy(),
        "--output",
        &out.to_string_lossy(),
        "--no-reference",
    ]);
    c.args(extra);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

const COMPARED: [&str; 9] = [
    "iteration",
    "energy",
    "energy_imag",
    "error",
    "variance",
    "r_hat",
    "tau",
    "acceptance",
    "solver_iterations",
];

fn columns(path: &Path) -> Vec<Vec<f64>> {
    COMPARED.iter().map(|c| common::history(path, c)).collect()
}

#[test]
fn crashed_and_resumed_run_equals_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", RUN_16);
    let full = dir.path().join("full.h5");
    assert_eq!(run(&model, &full, &[], &[]).0, 0);
    let part = dir.path().join("part.h5");
    // Crashes (abort, as kill -9) before, at and after checkpoints (every 7 iterations).
    let mut first = true;
    for crash in [5, 7, 13, 21, 30] {
        let extra: &[&str] = if first { &[] } else { &["--resume"] };
        first = false;
        let (code, stderr) = run(
            &model,
            &part,
            extra,
            &[("NQS_TEST_CRASH_AFTER", &crash.to_string())],
        );
        assert!(code != 0, "expected a crash at {crash}: {stderr}");
    }
    let (code, stderr) = run(&model, &part, &["--resume"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("resuming"), "{stderr}");
    assert_eq!(common::history(&full, "energy").len(), 40);
    assert_eq!(
        columns(&full),
        columns(&part),
        "history differs after crashes and resumes"
    );
    assert_eq!(
        common::parameters(&full),
        common::parameters(&part),
        "parameters differ"
    );
    assert!(!dir.path().join("part.h5.ckpt").exists());
    assert!(!dir.path().join("part.h5.lock").exists());
    // Resuming a finished run says so and exits 0; without --resume nothing is overwritten.
    let (code, stderr) = run(&model, &part, &["--resume"], &[]);
    assert_eq!(code, 0);
    assert!(stderr.contains("already finished"), "{stderr}");
    let before = std::fs::read(&part).unwrap();
    assert_eq!(run(&model, &part, &[], &[]).0, 2);
    assert_eq!(std::fs::read(&part).unwrap(), before);
}

#[test]
fn the_automatic_solver_change_is_part_of_the_checkpoint() {
    // `solver = "auto"` at 200 samples breaks even at 16 CG iterations; a tight CG tolerance
    // makes it change to the kernel solver early. Crashes before and after the change resume
    // bitwise (the change is checkpointed, not re-decided).
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", RUN_16);
    let extra = [
        "--set",
        "optimizer.solver=\"auto\"",
        "--set",
        "sampler.samples=200",
        "--set",
        "optimizer.cg_tolerance=1e-10",
    ];
    let full = dir.path().join("full.h5");
    let (code, stderr) = run(&model, &full, &extra, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("from the next step on"), "{stderr}");
    let cg = common::history(&full, "solver_iterations");
    let changed = cg.iter().skip(1).position(|&k| k == 0.0).expect("a change") + 1;
    assert!(cg[changed..].iter().all(|&k| k == 0.0), "{cg:?}");
    let part = dir.path().join("part.h5");
    let mut resume = extra.to_vec();
    for (i, crash) in [1, changed + 1, changed + 9].into_iter().enumerate() {
        let args: &[&str] = if i == 0 { &extra } else { &resume };
        let (code, stderr) = run(
            &model,
            &part,
            args,
            &[("NQS_TEST_CRASH_AFTER", &crash.to_string())],
        );
        assert!(code != 0, "expected a crash at {crash}: {stderr}");
        resume = extra.to_vec();
        resume.push("--resume");
    }
    let (code, stderr) = run(&model, &part, &resume, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(columns(&full), columns(&part));
    assert_eq!(common::parameters(&full), common::parameters(&part));
}

/// Extending a finished run leaves its file byte for byte as it was until the extension's final
/// file replaces it: a crash before the extension's first checkpoint, and one after it, both
/// leave the finished file; a resume then continues from the furthest state (the finished run,
/// or the extension's checkpoint), and the result equals an uninterrupted extension.
#[test]
fn extending_a_finished_run_never_loses_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", RUN_16);
    let out = dir.path().join("r.h5");
    assert_eq!(
        run(&model, &out, &["--set", "optimizer.iterations=10"], &[]).0,
        0
    );
    let finished = std::fs::read(&out).unwrap();
    let uninterrupted = dir.path().join("u.h5");
    std::fs::copy(&out, &uninterrupted).unwrap();
    let extend = ["--resume", "--set", "optimizer.iterations=100"];
    let ckpt = dir.path().join("r.h5.ckpt");
    // Crash at 12, before the extension's first checkpoint (14).
    let (code, _) = run(&model, &out, &extend, &[("NQS_TEST_CRASH_AFTER", "12")]);
    assert_ne!(code, 0);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        finished,
        "the finished file changed"
    );
    assert!(!ckpt.exists());
    // Crash at 16, after the checkpoint at 14: the finished file is still as it was.
    let (code, _) = run(&model, &out, &extend, &[("NQS_TEST_CRASH_AFTER", "16")]);
    assert_ne!(code, 0);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        finished,
        "the finished file changed"
    );
    assert_eq!(common::history(&ckpt, "energy").len(), 14);
    // Asking for no more than the finished run has leaves it, also with that checkpoint.
    let ten = ["--resume", "--set", "optimizer.iterations=10"];
    let (code, stderr) = run(&model, &out, &ten, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("already finished"), "{stderr}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        finished,
        "the finished file changed"
    );
    let twenty = ["--resume", "--set", "optimizer.iterations=20"];
    let (code, stderr) = run(&model, &out, &twenty, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("resuming") && stderr.contains("at iteration 14"),
        "{stderr}"
    );
    assert!(!ckpt.exists());
    assert_eq!(run(&model, &uninterrupted, &twenty, &[]).0, 0);
    assert_eq!(columns(&out), columns(&uninterrupted));
    assert_eq!(common::parameters(&out), common::parameters(&uninterrupted));
}

#[test]
fn a_stop_request_checkpoints_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", RUN_16);
    // The stop flag of a signal, raised deterministically after 10 iterations.
    let out = dir.path().join("t.h5");
    let (code, stderr) = run(&model, &out, &[], &[("NQS_TEST_STOP_AFTER", "10")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(dir.path().join("t.h5.ckpt").exists());
    let (code, stderr) = run(&model, &out, &["--resume"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("at iteration 10"), "{stderr}");
    // A real SIGTERM, sent once the run has reported its first iteration.
    let real = dir.path().join("s.h5");
    let mut child = nqs_command(&[
        "--threads",
        "2",
        "run",
        &model.to_string_lossy(),
        "--output",
        &real.to_string_lossy(),
        "--no-reference",
    ])
    .stderr(Stdio::piped())
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().starts_with("iter") {
            break;
        }
    }
    common::signal(child.id(), 15);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    assert!(dir.path().join("s.h5.ckpt").exists());
}

#[test]
fn an_injected_nan_is_recovered_from_the_previous_state() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", RUN_16);
    let out = dir.path().join("n.h5");
    let (code, stderr) = run(
        &model,
        &out,
        &["--set", "optimizer.iterations=12"],
        &[("NQS_TEST_NAN_AT", "5")],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("not finite") && stderr.contains("attempt 1/3"),
        "{stderr}"
    );
    let energy = common::history(&out, "energy");
    assert_eq!(energy.len(), 12);
    assert!(energy.iter().all(|e| e.is_finite()));
}

#[test]
fn resume_checks_the_physics_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", RUN_16);
    let out = dir.path().join("r.h5");
    assert_eq!(
        run(&model, &out, &["--set", "optimizer.iterations=6"], &[]).0,
        0
    );
    let before = std::fs::read(&out).unwrap();
    // Another coupling: refused, naming the key and both values, file untouched.
    let (code, stderr) = run(
        &model,
        &out,
        &[
            "--resume",
            "--set",
            "model.kind=xxz",
            "--set",
            "model.Jz=2.0",
        ],
        &[],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("model.kind") && stderr.contains("xxz"),
        "{stderr}"
    );
    let (code, stderr) = run(
        &model,
        &out,
        &["--resume", "--set", "sampler.chains=4"],
        &[],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("sampler.chains: 8 → 4"), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), before);
    // Run-control keys may change.
    let (code, stderr) = run(
        &model,
        &out,
        &[
            "--resume",
            "--set",
            "optimizer.iterations=8",
            "--set",
            "optimizer.learning_rate=0.02",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("changed on resume: optimizer.learning_rate"),
        "{stderr}"
    );
    // An ED file is not a run.
    let ed = dir.path().join("ed.h5");
    let (code, _, stderr) = nqs(&[
        "ed",
        &model.to_string_lossy(),
        "--output",
        &ed.to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let ed_bytes = std::fs::read(&ed).unwrap();
    let (code, stderr) = run(&model, &ed, &["--resume"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nqs ed"), "{stderr}");
    assert_eq!(std::fs::read(&ed).unwrap(), ed_bytes);
    // A damaged checkpoint is refused, not ignored.
    std::fs::write(dir.path().join("r.h5.ckpt"), b"garbage").unwrap();
    let (code, stderr) = run(
        &model,
        &out,
        &["--resume", "--set", "optimizer.iterations=20"],
        &[],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("r.h5.ckpt"), "{stderr}");
}

#[test]
fn one_output_has_one_owner() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", RUN_16);
    let out = dir.path().join("o.h5");
    let mut first = nqs_command(&[
        "--threads",
        "1",
        "run",
        &model.to_string_lossy(),
        "--output",
        &out.to_string_lossy(),
        "--no-reference",
        "--set",
        "optimizer.iterations=100000",
    ])
    .env("HDF5_USE_FILE_LOCKING", "FALSE")
    .stderr(Stdio::piped())
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(first.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().starts_with("iter") {
            break;
        }
    }
    let mut second = nqs_command(&[
        "run",
        &model.to_string_lossy(),
        "--output",
        &out.to_string_lossy(),
        "--force",
    ]);
    second.env("HDF5_USE_FILE_LOCKING", "FALSE");
    let o = second.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("in use by another nqs") && stderr.contains(&format!("pid {}", first.id())),
        "{stderr}"
    );
    common::signal(first.id(), 15);
    assert!(first.wait().unwrap().success());
}

#[test]
fn bad_files_for_resume_info_and_plot_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", RUN_16);
    let not_hdf5 = write(dir.path(), "x.h5", "this is not hdf5");
    let full = dir.path().join("full.h5");
    assert_eq!(
        run(&model, &full, &["--set", "optimizer.iterations=3"], &[]).0,
        0
    );
    let bytes = std::fs::read(&full).unwrap();
    let truncated = dir.path().join("trunc.h5");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let foreign = dir.path().join("foreign.h5");
    hdf5::File::create(&foreign)
        .unwrap()
        .create_group("data")
        .unwrap();
    for bad in [&not_hdf5, &truncated, &foreign] {
        let (code, stderr) = run(&model, bad, &["--resume"], &[]);
        assert_eq!(code, 2, "{}: {stderr}", bad.display());
        assert!(!stderr.contains("panicked"));
        let (code, _, stderr) = nqs(&["info", &bad.to_string_lossy()]);
        assert_eq!(code, 2, "info {}: {stderr}", bad.display());
    }
    let (code, _, stderr) = nqs(&["info", &dir.path().to_string_lossy()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is a directory"), "{stderr}");
    let info = common::nqs_json(&["info", &full.to_string_lossy()]);
    assert_eq!(info["iterations"], 3);
    let png = dir.path().join("run.png");
    let (code, _, stderr) = nqs(&[
        "plot",
        &full.to_string_lossy(),
        "-o",
        &png.to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    // An existing plot is not replaced without --force.
    let (code, _, _) = nqs(&[
        "plot",
        &full.to_string_lossy(),
        "-o",
        &png.to_string_lossy(),
    ]);
    assert_eq!(code, 2);
}

#[test]
fn init_from_starts_a_new_run_from_stored_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", RUN_16);
    let first = dir.path().join("first.h5");
    assert_eq!(run(&model, &first, &[], &[]).0, 0);
    let first_bytes = std::fs::read(&first).unwrap();
    let optimized = common::history(&first, "energy");
    let optimized = optimized[optimized.len() - 5..].iter().sum::<f64>() / 5.0;
    let init = format!("run.init_from={}", first.display());
    // Two starts from the optimized parameters, each with a first energy equal to the optimized
    // one and far below a random start's: the projected dense RBM (k = 0, z = +1; projecting a
    // nearly symmetric state changes little), and a wider network (alpha 2 → 3) whose extra
    // units start small.
    let fresh = dir.path().join("fresh.h5");
    let (code, _) = run(&model, &fresh, &["--set", "optimizer.iterations=2"], &[]);
    assert_eq!(code, 0);
    let random = common::history(&fresh, "energy")[0];
    assert!(random > 0.8 * optimized, "random start {random}");
    let projected = dir.path().join("projected.h5");
    let wider = dir.path().join("wider.h5");
    for (output, changes, note) in [
        (
            &projected,
            ["ansatz.momentum=0", "ansatz.spin_inversion=1"],
            "of that run)",
        ),
        (
            &wider,
            ["ansatz.alpha=3", "ansatz.init_std=0.0001"],
            "alpha 2 → 3, the extra units start from random values",
        ),
    ] {
        let mut args = vec!["--set", &init, "--set", "optimizer.iterations=2"];
        for change in &changes {
            args.extend(["--set", change]);
        }
        let (code, stderr) = run(&model, output, &args, &[]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stderr.contains("starting from the parameters of") && stderr.contains(note),
            "{stderr}"
        );
        let started = common::history(output, "energy")[0];
        assert!(
            (started - optimized).abs() < 0.02 * optimized.abs(),
            "{changes:?}: started at {started}, optimized {optimized}"
        );
    }
    // Parameters of another ansatz, lattice or basis, and files that hold none: exit 2, naming
    // the key; the source file is never touched.
    let other = dir.path().join("other.h5");
    for (extra, needle) in [
        ("ansatz.alpha=1", "ansatz.alpha: 2 → 1, narrower"),
        ("lattice.length=12", "lattice.length"),
        ("model.marshall_sign=false", "another basis"),
        (
            "ansatz.kind=\"rbm_symm\"",
            "ansatz.kind: \"rbm\" → \"rbm_symm\"",
        ),
    ] {
        let (code, stderr) = run(&model, &other, &["--set", &init, "--set", extra], &[]);
        assert_eq!(code, 2, "{extra}: {stderr}");
        assert!(
            stderr.contains("run.init_from") && stderr.contains(needle),
            "{extra}: {stderr}"
        );
        assert!(!other.exists());
    }
    let ed = dir.path().join("ed.h5");
    assert_eq!(
        nqs(&[
            "ed",
            &model.to_string_lossy(),
            "--output",
            &ed.to_string_lossy()
        ])
        .0,
        0
    );
    for (source, needle) in [
        (ed.clone(), "not a run"),
        (dir.path().join("missing.h5"), "no such run file"),
        (model.clone(), "HDF5"),
    ] {
        let set = format!("run.init_from={}", source.display());
        let (code, stderr) = run(&model, &other, &["--set", &set], &[]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
    // rbm_symm: translation-shared filters mean the same with the point group projected
    // (`"projected"`), not when shared over the space group (`true`).
    let symm = dir.path().join("symm.h5");
    let kind = [
        "--set",
        "ansatz.kind=\"rbm_symm\"",
        "--set",
        "optimizer.iterations=3",
    ];
    assert_eq!(run(&model, &symm, &kind, &[]).0, 0);
    let init_symm = format!("run.init_from={}", symm.display());
    for (value, expected) in [("\"projected\"", 0), ("true", 2)] {
        let set = format!("ansatz.point_group={value}");
        let out = dir.path().join(format!("symm_{expected}.h5"));
        let mut extra = kind.to_vec();
        extra.extend(["--set", &init_symm, "--set", &set]);
        let (code, stderr) = run(&model, &out, &extra, &[]);
        assert_eq!(code, expected, "{value}: {stderr}");
        if expected == 2 {
            assert!(
                stderr.contains("filters shared over the space group: false → true"),
                "{stderr}"
            );
        }
    }
    // Its own output (which --force replaces) is refused, and stays as it was.
    let projected_bytes = std::fs::read(&projected).unwrap();
    let own = format!("run.init_from={}", projected.display());
    let (code, stderr) = run(&model, &projected, &["--force", "--set", &own], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("own output"), "{stderr}");
    assert_eq!(std::fs::read(&projected).unwrap(), projected_bytes);
    // It is part of the run's identity: a resume without it is refused.
    let (code, stderr) = run(
        &model,
        &projected,
        &[
            "--resume",
            "--set",
            "ansatz.momentum=0",
            "--set",
            "ansatz.spin_inversion=1",
            "--set",
            "optimizer.iterations=3",
        ],
        &[],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("run.init_from"), "{stderr}");
    assert_eq!(std::fs::read(&first).unwrap(), first_bytes);
}
