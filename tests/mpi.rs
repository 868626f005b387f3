//! MPI: results do not depend on how chains are laid out over ranks and threads, and a run
//! continues across a restart under mpirun. Needs `mpirun` (scripts/setup.sh installs Open MPI).

#![cfg(feature = "mpi")]

use std::path::Path;
use std::process::Command;

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

fn mpirun(np: usize, args: &[&str]) -> std::process::Output {
    let mut c = Command::new("mpirun");
    // Open MPI refuses to run as root, and this machine may have fewer cores than ranks.
    // SAFETY: getuid has no preconditions.
    if unsafe { getuid() } == 0 {
        c.args(["--allow-run-as-root", "--oversubscribe"]);
    }
    c.args(["-np", &np.to_string(), env!("CARGO_BIN_EXE_nqs")])
        .args(args)
        .output()
        .expect("mpirun (install openmpi-bin)")
}

unsafe extern "C" {
    fn getuid() -> u32;
}

fn energies(path: &Path) -> Vec<f64> {
    hdf5::File::open(path)
        .unwrap()
        .dataset("history/energy")
        .unwrap()
        .read_raw()
        .unwrap()
}

#[test]
fn two_ranks_equal_one_process_with_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.toml");
    std::fs::write(&model, MODEL).unwrap();
    let (m, serial, parallel) = (
        model.to_string_lossy(),
        dir.path().join("serial.h5"),
        dir.path().join("mpi.h5"),
    );
    let s = Command::new(env!("CARGO_BIN_EXE_nqs"))
        .args([
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
    let p = mpirun(
        2,
        &[
            "--threads",
            "1",
            "run",
            &m,
            "--no-reference",
            "--output",
            &parallel.to_string_lossy(),
        ],
    );
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    let (a, b) = (energies(&serial), energies(&parallel));
    assert_eq!(a.len(), 10);
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-10 * x.abs(), "serial {a:?}\nmpi {b:?}");
    }
    let file = hdf5::File::open(&parallel).unwrap();
    assert_eq!(file.attr("ranks").unwrap().read_scalar::<u64>().unwrap(), 2);
}

#[test]
fn resume_under_mpi_continues_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.toml");
    std::fs::write(&model, MODEL).unwrap();
    let m = model.to_string_lossy().into_owned();
    let full = dir.path().join("full.h5");
    let part = dir.path().join("part.h5");
    let args = |out: &Path, iterations: usize, resume: bool| -> Vec<String> {
        let mut v: Vec<String> = [
            "--threads",
            "1",
            "run",
            &m,
            "--no-reference",
            "--output",
            &out.to_string_lossy(),
            "--set",
            &format!("optimizer.iterations={iterations}"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if resume {
            v.push("--resume".into());
        }
        v
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = mpirun(2, &refs);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(args(&full, 14, false));
    run(args(&part, 6, false));
    run(args(&part, 14, true));
    assert_eq!(energies(&full), energies(&part));
}

#[test]
fn fewer_chains_than_ranks_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.toml");
    std::fs::write(&model, MODEL.replace("chains = 8", "chains = 1")).unwrap();
    let out = mpirun(
        2,
        &[
            "run",
            &model.to_string_lossy(),
            "--output",
            &dir.path().join("x.h5").to_string_lossy(),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fewer than the 2 MPI ranks"));
}
