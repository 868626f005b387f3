//! Checkpoints and restart: a run killed with SIGKILL at random moments and resumed each time
//! ends with exactly the history and parameters of an uninterrupted run.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

const MODEL: &str = r#"
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
samples = 1000
[optimizer]
learning_rate = 0.05
solver = "cg"
iterations = 150
[run]
checkpoint_every = 7
observable_samples = 800
"#;

fn nqs(model: &Path, output: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nqs"));
    c.args([
        "--threads",
        "2",
        "run",
        &model.to_string_lossy(),
        "--output",
        &output.to_string_lossy(),
        "--no-reference",
    ])
    .args(extra);
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    c
}

fn read(path: &Path) -> (Vec<Vec<f64>>, Vec<num_complex::Complex64>) {
    let file = hdf5::File::open(path).unwrap();
    let columns = [
        "iteration",
        "energy",
        "energy_imag",
        "error",
        "variance",
        "r_hat",
        "tau",
        "acceptance",
        "cg_iterations",
    ]
    .iter()
    .map(|c| {
        file.dataset(&format!("history/{c}"))
            .unwrap()
            .read_raw::<f64>()
            .unwrap()
    })
    .collect();
    let params = file
        .dataset("ansatz/parameters")
        .unwrap()
        .read_raw()
        .unwrap();
    (columns, params)
}

#[test]
fn killed_and_resumed_run_equals_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.toml");
    std::fs::write(&model, MODEL).unwrap();
    let full = dir.path().join("full.h5");
    let status = nqs(&model, &full, &[]).status().unwrap();
    assert!(status.success());

    let part = dir.path().join("part.h5");
    // Kill moments spread over the run (deterministic pseudo-random fractions of a second).
    let mut kills = 0;
    let mut first = true;
    for delay_ms in [700u64, 900, 500, 1100, 800] {
        let extra: &[&str] = if first { &[] } else { &["--resume"] };
        first = false;
        let mut child: Child = nqs(&model, &part, extra).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
            child.wait().unwrap();
        } else {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    assert!(kills >= 3, "the run finished too early to test kills");
    let out = nqs(&model, &part, &["--resume"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (a, pa) = read(&full);
    let (b, pb) = read(&part);
    assert_eq!(a[0].len(), 150);
    assert_eq!(a, b, "history differs after kills and resumes");
    assert_eq!(pa, pb, "parameters differ");
    assert!(!dir.path().join("part.h5.ckpt").exists());

    // Resuming a finished run says so and exits 0.
    let again = nqs(&model, &part, &["--resume"]).output().unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already finished"));
    // Without --resume an existing output is never overwritten.
    let refuse = nqs(&model, &part, &[]).output().unwrap();
    assert_eq!(refuse.status.code(), Some(2));
}

#[test]
fn sigterm_writes_a_checkpoint_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.toml");
    std::fs::write(&model, MODEL).unwrap();
    let out = dir.path().join("t.h5");
    let child = nqs(&model, &out, &[]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc_kill(child.id() as i32, 15);
    }
    let result = child.wait_with_output().unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(String::from_utf8_lossy(&result.stderr).contains("interrupted"));
    assert!(dir.path().join("t.h5.ckpt").exists());
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

#[test]
fn bad_files_for_resume_and_info_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.toml");
    std::fs::write(&model, MODEL).unwrap();
    let not_hdf5 = dir.path().join("x.h5");
    std::fs::write(&not_hdf5, b"this is not hdf5").unwrap();
    let truncated = dir.path().join("trunc.h5");
    let full = dir.path().join("full.h5");
    assert!(nqs(&model, &full, &["--set", "optimizer.iterations=3"])
        .status()
        .unwrap()
        .success());
    let bytes = std::fs::read(&full).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let foreign = dir.path().join("foreign.h5");
    hdf5::File::create(&foreign)
        .unwrap()
        .create_group("data")
        .unwrap();
    for bad in [&not_hdf5, &truncated, &foreign] {
        let out = nqs(&model, bad, &["--resume"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", bad.display());
        assert!(!err.contains("panicked"));
        let info = Command::new(env!("CARGO_BIN_EXE_nqs"))
            .args(["info", &bad.to_string_lossy()])
            .output()
            .unwrap();
        assert_eq!(
            info.status.code(),
            Some(2),
            "info {}: {}",
            bad.display(),
            String::from_utf8_lossy(&info.stderr)
        );
    }
    let info = Command::new(env!("CARGO_BIN_EXE_nqs"))
        .args(["--json", "info", &full.to_string_lossy()])
        .output()
        .unwrap();
    assert!(info.status.success());
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["iterations"], 3);
    let png = dir.path().join("run.png");
    let plot = Command::new(env!("CARGO_BIN_EXE_nqs"))
        .args([
            "plot",
            &full.to_string_lossy(),
            "-o",
            &png.to_string_lossy(),
        ])
        .output()
        .unwrap();
    assert!(
        plot.status.success(),
        "{}",
        String::from_utf8_lossy(&plot.stderr)
    );
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
}
