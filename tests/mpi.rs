//! MPI: results do not depend on how chains are laid out over ranks and threads; a run continues
//! across restarts with another rank count; signals checkpoint and exit 0; one rank's failure
//! ends the job. Needs `mpirun` (scripts/setup.sh installs Open MPI).

#![cfg(feature = "mpi")]

mod common;

use common::{mpirun, nqs_command, write};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const MODEL: &str = r#"
[lattice]
kind = "chain"
length = 16
[model]
kind = "heisenberg"
marshall_sign = true
total_sz = 0
[sampler]
chains = 8
samples = 800
[optimizer]
solver = "cg"
learning_rate = 0.05
iterations = 10
[run]
observable_samples = 800
checkpoint_every = 4
"#;

fn run_args<'a>(model: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--threads",
        "1",
        "run",
        model,
        "--no-reference",
        "--output",
        out,
    ];
    v.extend_from_slice(extra);
    v
}

fn assert_close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{a:?}\n{b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-10 * x.abs(), "{a:?}\n{b:?}");
    }
}

#[test]
fn two_ranks_equal_one_process_with_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", MODEL);
    let m = model.to_string_lossy();
    let (serial, parallel) = (dir.path().join("serial.h5"), dir.path().join("mpi.h5"));
    let s = nqs_command(&[
        "--threads",
        "2",
        "run",
        &m,
        "--no-reference",
        "--output",
        &serial.to_string_lossy(),
    ])
    .output()
    .unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let p = mpirun(2, &run_args(&m, &parallel.to_string_lossy(), &[]))
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    assert_eq!(common::history(&serial, "energy").len(), 10);
    assert_close(
        &common::history(&serial, "energy"),
        &common::history(&parallel, "energy"),
    );
    let file = hdf5::File::open(&parallel).unwrap();
    assert_eq!(file.attr("ranks").unwrap().read_scalar::<u64>().unwrap(), 2);
}

#[test]
fn resume_continues_the_same_run_with_another_rank_count() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", MODEL);
    let m = model.to_string_lossy().into_owned();
    let (full, part) = (dir.path().join("full.h5"), dir.path().join("part.h5"));
    let (f, p) = (
        full.to_string_lossy().into_owned(),
        part.to_string_lossy().into_owned(),
    );
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr))
    };
    ok(
        mpirun(2, &run_args(&m, &f, &["--set", "optimizer.iterations=14"]))
            .output()
            .unwrap(),
    );
    // 6 iterations on 2 ranks, 4 more on 1 process, the rest on 2 ranks again.
    ok(
        mpirun(2, &run_args(&m, &p, &["--set", "optimizer.iterations=6"]))
            .output()
            .unwrap(),
    );
    ok(nqs_command(&run_args(
        &m,
        &p,
        &["--resume", "--set", "optimizer.iterations=10"],
    ))
    .output()
    .unwrap());
    ok(mpirun(
        2,
        &run_args(&m, &p, &["--resume", "--set", "optimizer.iterations=14"]),
    )
    .output()
    .unwrap());
    assert_close(
        &common::history(&full, "energy"),
        &common::history(&part, "energy"),
    );
}

/// Starts `nqs run` under `mpirun -np 2` and waits for rank 0's first iteration line.
fn start_long_run(
    model: &Path,
    out: &Path,
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStderr>>,
) {
    let (m, o) = (model.to_string_lossy(), out.to_string_lossy());
    let mut child = mpirun(
        2,
        &run_args(&m, &o, &["--set", "optimizer.iterations=100000"]),
    )
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
    (child, lines)
}

#[test]
fn signals_checkpoint_every_rank_and_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", MODEL);
    // SIGUSR1 to mpirun: Open MPI forwards it to every rank.
    let out = dir.path().join("u.h5");
    let (mut child, lines) = start_long_run(&model, &out);
    common::signal(child.id(), 10);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    // SIGTERM to the ranks (what Slurm sends to a job step): mpirun exits 0 as well.
    let out = dir.path().join("t.h5");
    let (mut child, lines) = start_long_run(&model, &out);
    let pkill = std::process::Command::new("pkill")
        .args(["-TERM", "-P", &child.id().to_string(), "nqs"])
        .status()
        .unwrap();
    assert!(pkill.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    // Both checkpoints resume.
    for name in ["u.h5", "t.h5"] {
        let path = dir.path().join(name);
        let o = mpirun(
            2,
            &run_args(
                &model.to_string_lossy(),
                &path.to_string_lossy(),
                &["--resume", "--set", "optimizer.iterations=3"],
            ),
        )
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{stderr}");
    }
}

#[test]
fn one_rank_failing_ends_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", MODEL);
    let out = dir.path().join("x.h5");
    let start = Instant::now();
    let o = mpirun(
        2,
        &run_args(&model.to_string_lossy(), &out.to_string_lossy(), &[]),
    )
    .env("NQS_TEST_PANIC_RANK", "1")
    .output()
    .unwrap();
    assert!(!o.status.success());
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "the other rank hung"
    );
    // Bad input on every rank: exit code 2, one message.
    let bad = write(
        dir.path(),
        "bad.toml",
        &MODEL.replace("chains = 8", "chains = 1"),
    );
    let fresh = dir.path().join("y.h5");
    let o = mpirun(
        2,
        &[
            "run",
            &bad.to_string_lossy(),
            "--output",
            &fresh.to_string_lossy(),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("fewer than the 2 MPI ranks"));
    // A failure that only rank 0 sees (the spectrum summary exists already) ends every rank:
    // before, rank 1 went on into the first sector's collectives and waited forever.
    let m = model.to_string_lossy();
    let summary = dir.path().join("S.h5");
    let spectrum = [
        "spectrum",
        &m,
        "--momenta",
        "0",
        "--set",
        "optimizer.iterations=2",
        "--set",
        "run.observable_samples=16",
        "--output",
        &summary.to_string_lossy(),
    ];
    let first = output_within(mpirun(2, &spectrum), 120);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let again = output_within(mpirun(2, &spectrum), 60);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
}

/// Runs `command` and returns its output, failing the test (after killing it) when it takes
/// longer than `seconds`: a hang must not hang the suite.
fn output_within(mut command: std::process::Command, seconds: u64) -> std::process::Output {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(seconds) {
            // SIGTERM: mpirun passes it on to the ranks (SIGKILL would orphan them).
            common::signal(child.id(), 15);
            std::thread::sleep(Duration::from_secs(2));
            let _ = child.kill();
            panic!("still running after {seconds} s: a rank hung");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn doctor_reports_every_rank() {
    let o = mpirun(2, &["--json", "doctor"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let processes = v["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 2, "{v}");
    assert_eq!(processes[1]["rank"], 1);
    assert!(processes[0]["mpi"].as_str().unwrap().contains("MPI"), "{v}");
    assert!(processes[0]["linear_algebra"]
        .as_str()
        .unwrap()
        .contains("faer"));
}
