//! The Slurm templates, driven with fake `srun` and `scontrol`: syntax, explicit
//! cpus-per-task, a time-out that checkpoints and requeues, the requeued job that finishes, and
//! the array template for sweeps.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn template(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/slurm")
        .join(name)
}

/// A directory with fake `srun` (logs its arguments, runs the command after its options) and
/// `scontrol` (logs its arguments).
fn fake_slurm(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let srun = "#!/bin/bash\necho \"$@\" >> \"$FAKE_LOG/srun.log\"\nwhile [[ \"$1\" == --* ]]; do shift; done\nexec \"$@\"\n";
    let scontrol = "#!/bin/bash\necho \"$@\" >> \"$FAKE_LOG/scontrol.log\"\n";
    for (name, text) in [("srun", srun), ("scontrol", scontrol)] {
        let path = bin.join(name);
        std::fs::write(&path, text).unwrap();
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    }
    bin
}

fn batch(dir: &Path, script: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let bin = fake_slurm(dir);
    let mut c = Command::new("bash");
    c.arg(template(script)).args(args).current_dir(dir);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    c.env("PATH", path)
        .env("FAKE_LOG", dir)
        .env("NQS_BIN", env!("CARGO_BIN_EXE_nqs"))
        .env("SLURM_JOB_ID", "4242")
        .env("SLURM_CPUS_PER_TASK", "2")
        .env_remove("NQS_OUTPUT")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_JOB_ID");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

#[test]
fn templates_parse() {
    for name in ["nqs.sbatch", "nqs-array.sbatch"] {
        let ok = Command::new("bash")
            .arg("-n")
            .arg(template(name))
            .status()
            .unwrap();
        assert!(ok.success(), "{name}");
    }
}

#[test]
fn a_time_out_checkpoints_and_requeues_and_the_requeued_job_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = common::write(d, "m.toml", common::RUN_16);
    let m = model.to_string_lossy().into_owned();
    let out = d.join("r.h5");
    let o = out.to_string_lossy().into_owned();
    // The time-out: the stop flag raised after 5 iterations, as SIGUSR1 would.
    let first = batch(
        d,
        "nqs.sbatch",
        &[&m, "--no-reference"],
        &[("NQS_OUTPUT", &o), ("NQS_TEST_STOP_AFTER", "5")],
    )
    .output()
    .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        log(d, "srun.log").contains("--cpus-per-task=2"),
        "{}",
        log(d, "srun.log")
    );
    assert!(log(d, "srun.log").contains("--threads 2"));
    assert_eq!(log(d, "scontrol.log").trim(), "requeue 4242");
    assert!(d.join("r.h5.ckpt").exists());
    // The requeued job resumes and finishes; a finished run is not requeued.
    let second = batch(
        d,
        "nqs.sbatch",
        &[&m, "--no-reference"],
        &[("NQS_OUTPUT", &o)],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(
        stderr.contains("resuming") && stderr.contains("at iteration 5"),
        "{stderr}"
    );
    assert_eq!(log(d, "scontrol.log").lines().count(), 1);
    assert!(!d.join("r.h5.ckpt").exists());
    assert_eq!(common::history(&out, "energy").len(), 40);
    // A resubmission of the finished run does nothing and is not requeued.
    let third = batch(
        d,
        "nqs.sbatch",
        &[&m, "--no-reference"],
        &[("NQS_OUTPUT", &o)],
    )
    .output()
    .unwrap();
    assert!(third.status.success());
    assert!(String::from_utf8_lossy(&third.stderr).contains("already finished"));
    assert_eq!(log(d, "scontrol.log").lines().count(), 1);
}

#[test]
fn the_early_signal_reaches_nqs_through_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = common::write(d, "m.toml", common::RUN_16);
    let o = d.join("s.h5").to_string_lossy().into_owned();
    let mut job = batch(
        d,
        "nqs.sbatch",
        &[
            &model.to_string_lossy(),
            "--no-reference",
            "--set",
            "optimizer.iterations=100000",
        ],
        &[("NQS_OUTPUT", &o)],
    )
    .stderr(Stdio::piped())
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(job.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().starts_with("iter") {
            break;
        }
    }
    common::signal(job.id(), 10); // SIGUSR1, as --signal=B:USR1@300 sends it
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(job.wait().unwrap().success(), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("requeueing job 4242")),
        "{rest:?}"
    );
    assert!(d.join("s.h5.ckpt").exists());
}

#[test]
fn array_tasks_run_their_line_with_their_own_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = common::write(
        d,
        "chain.toml",
        &common::RUN_16.replace("iterations = 40", "iterations = 3"),
    );
    common::write(
        d,
        "sweep.txt",
        "--set model.kind=xxz --set model.Jz=0.5\n--set model.kind=xxz --set model.Jz=1.5\n",
    );
    let task = batch(
        d,
        "nqs-array.sbatch",
        &[&model.to_string_lossy(), "sweep.txt"],
        &[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_JOB_ID", "77"),
            ("NQS_SCRIPTS", &template("").to_string_lossy()),
            ("NQS_CHECKPOINT_EVERY", "2"),
        ],
    )
    .output()
    .unwrap();
    assert!(
        task.status.success(),
        "{}",
        String::from_utf8_lossy(&task.stderr)
    );
    let output = d.join("runs/chain.kind=xxz,Jz=1.5.h5");
    assert!(
        output.exists(),
        "{:?}",
        std::fs::read_dir(d.join("runs")).map(|r| r.count())
    );
    let config = hdf5::File::open(&output)
        .unwrap()
        .attr("config")
        .unwrap()
        .read_scalar::<hdf5::types::VarLenUnicode>()
        .unwrap();
    assert!(config.as_str().contains("Jz = 1.5"), "{}", config.as_str());
    // A task without a line is refused.
    let missing = batch(
        d,
        "nqs-array.sbatch",
        &[&model.to_string_lossy(), "sweep.txt"],
        &[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("NQS_SCRIPTS", &template("").to_string_lossy()),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}
