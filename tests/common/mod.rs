//! Helpers shared by the integration tests: running the binary, model files, run files.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A small periodic Heisenberg chain at S^z = 0 with the Marshall sign, `length` sites.
pub fn heisenberg_chain(length: usize) -> String {
    format!(
        "[lattice]\nkind = \"chain\"\nlength = {length}\n[model]\nkind = \"heisenberg\"\nmarshall_sign = true\ntotal_sz = 0\n"
    )
}

/// The 16-site run model of the restart and MPI tests (fast: 8 chains, CG).
pub const RUN_16: &str = r#"
[lattice]
kind = "chain"
length = 16
[model]
kind = "heisenberg"
marshall_sign = true
total_sz = 0
[ansatz]
alpha = 2
[sampler]
chains = 8
samples = 800
[optimizer]
kind = "sr"
learning_rate = 0.05
solver = "cg"
iterations = 40
[run]
checkpoint_every = 7
observable_samples = 800
"#;

/// The path of a shipped model file.
pub fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("hamiltonians")
        .join(name)
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The nqs binary with `args`.
pub fn nqs_command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nqs"));
    c.args(args);
    c
}

/// Runs nqs and returns (exit code, stdout, stderr); a signal gives code −1.
pub fn nqs(args: &[&str]) -> (i32, String, String) {
    let out = nqs_command(args).output().expect("run nqs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs nqs with `--json` and parses stdout, asserting success.
pub fn nqs_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = nqs(&all);
    assert_eq!(code, 0, "nqs {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"))
}

/// Asserts exit code 2, one line of error naming `needle`, no panic.
pub fn expect_input_error(args: &[&str], needle: &str) {
    let (code, _, stderr) = nqs(args);
    assert!(!stderr.contains("panicked"), "panic for {args:?}: {stderr}");
    assert_eq!(code, 2, "exit code for {args:?}: {stderr}");
    assert!(
        stderr.to_lowercase().contains(&needle.to_lowercase()),
        "message for {args:?} should mention {needle:?}: {stderr}"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one line expected for {args:?}: {stderr}"
    );
}

/// `mpirun -np` with the flags this machine needs (root, few cores).
pub fn mpirun(np: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    if is_root() {
        c.args(["--allow-run-as-root", "--oversubscribe"]);
    }
    c.args(["-np", &np.to_string(), env!("CARGO_BIN_EXE_nqs")])
        .args(args);
    c
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A history column of a run file.
pub fn history(path: &Path, column: &str) -> Vec<f64> {
    hdf5::File::open(path)
        .unwrap()
        .dataset(&format!("history/{column}"))
        .unwrap()
        .read_raw()
        .unwrap()
}

/// The stored parameters of a run file.
pub fn parameters(path: &Path) -> Vec<num_complex::Complex64> {
    hdf5::File::open(path)
        .unwrap()
        .dataset("ansatz/parameters")
        .unwrap()
        .read_raw()
        .unwrap()
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: i32) {
    unsafe extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    // SAFETY: sending a signal to a process this test started.
    unsafe {
        kill(pid as i32, signal);
    }
}
