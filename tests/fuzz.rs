//! A seeded mutation fuzzer over the input surfaces: model files (every shipped one), `--set`
//! overrides, and run files (finished and checkpointed). For every mutant: the exit code is 0 or
//! 2, never a panic, a signal or a hang; an error is one line; an existing output is never
//! changed without --force or --resume; and a checkpointed run stays resumable.
//!
//! `NQS_FUZZ_SEED` and `NQS_FUZZ_CASES` (default 1 and 1) scale a longer campaign;
//! `NQS_FUZZ_FROM=K` reproduces a campaign's finding quickly: the run-file cases before K only
//! advance the random sequence (their mutations are drawn but not run).

mod common;

use common::{nqs_command, write};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const VALUES: [&str; 22] = [
    "-1",
    "0",
    "1",
    "2",
    "0.5",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "\"x\"",
    "\"\"",
    "[]",
    "[1, 2, 3]",
    "[[0, 1, 2]]",
    "{}",
    "true",
    "99999999999999999999",
    "\"chain\"",
    "\"rbm_symm\"",
    "\"exchange\"",
    "1e-300",
];

const KEYS: [&str; 29] = [
    "lattice.kind",
    "lattice.length",
    "lattice.extent",
    "lattice.boundary",
    "lattice.edges",
    "model.kind",
    "model.J",
    "model.Jz",
    "model.h",
    "model.J2",
    "model.units",
    "model.marshall_sign",
    "model.total_sz",
    "ansatz.kind",
    "ansatz.alpha",
    "ansatz.init_std",
    "ansatz.momentum",
    "ansatz.spin_inversion",
    "ansatz.point_group",
    "ansatz.spin_lowering",
    "sampler.kind",
    "sampler.chains",
    "sampler.samples",
    "sampler.sweep",
    "optimizer.kind",
    "optimizer.solver",
    "optimizer.diag_shift_kind",
    "run.checkpoint_every",
    "run.init_from",
];

fn scale() -> (u64, usize) {
    let read = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    (read("NQS_FUZZ_SEED", 1), read("NQS_FUZZ_CASES", 1) as usize)
}

/// The first run-file case to run (`NQS_FUZZ_FROM`, default 0).
fn first_case() -> usize {
    std::env::var("NQS_FUZZ_FROM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs nqs with a deadline; returns (exit code, stderr). A signal or a hang fails the test.
/// It runs in a scratch directory under the target directory, so that the relative outputs
/// of mutated command lines (`--output nan`) never land in the source tree.
fn nqs(args: &[&str], what: &str) -> (i32, String) {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut child = nqs_command(args)
        .current_dir(&scratch)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            if start.elapsed() > Duration::from_secs(10) {
                eprintln!(
                    "{what}: {:.0} s for {args:?}",
                    start.elapsed().as_secs_f64()
                );
            }
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut child.stderr.take().unwrap(), &mut bytes).unwrap();
            let stderr = String::from_utf8(bytes).unwrap_or_else(|e| {
                panic!(
                    "{what}: stderr is not UTF-8 for {args:?}: {:?}",
                    String::from_utf8_lossy(e.as_bytes())
                )
            });
            let code = status
                .code()
                .unwrap_or_else(|| panic!("{what}: killed by a signal: {args:?}\n{stderr}"));
            assert!(
                !stderr.contains("panicked"),
                "{what}: panic for {args:?}\n{stderr}"
            );
            assert!(
                code == 0 || code == 2,
                "{what}: exit {code} for {args:?}\n{stderr}"
            );
            if code == 2 {
                // One error line (after any progress lines), short.
                let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
                assert_eq!(errors.len(), 1, "{what}: {args:?}\n{stderr}");
                assert!(
                    stderr.trim().lines().last() == Some(errors[0]),
                    "{what}: {args:?}\n{stderr}"
                );
                assert!(
                    errors[0].len() < 800,
                    "{what}: a {} character message",
                    errors[0].len()
                );
            }
            return (code, stderr);
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("{what}: hang for {args:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn mutate_text(text: &str, rng: &mut Xoshiro256PlusPlus) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let k = rng.random_range(0..lines.len().max(1));
    match rng.random_range(0..8) {
        0 => {
            lines.remove(k);
        }
        1 => lines.insert(k, lines[k].clone()),
        2 | 3 => {
            if let Some((key, _)) = lines[k].split_once('=') {
                lines[k] = format!("{key}= {}", VALUES[rng.random_range(0..VALUES.len())]);
            }
        }
        4 => {
            let key = KEYS[rng.random_range(0..KEYS.len())]
                .split('.')
                .nth(1)
                .unwrap();
            lines.insert(
                k,
                format!("{key} = {}", VALUES[rng.random_range(0..VALUES.len())]),
            );
        }
        5 => lines.insert(
            k,
            [
                "[lattice]",
                "[model]",
                "[[model.terms]]",
                "[[observables]]",
                "[bogus]",
            ][rng.random_range(0..5)]
            .into(),
        ),
        6 => {
            let joined = lines.join("\n");
            let cut = rng.random_range(0..joined.len().max(1));
            return joined.chars().take(cut).collect();
        }
        _ => lines[k] = lines[k].replace(['=', ']'], if rng.random::<bool>() { " " } else { "==" }),
    }
    lines.join("\n") + "\n"
}

#[test]
fn mutated_model_files_and_overrides() {
    let (seed, cases) = scale();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let shipped: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("hamiltonians"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    let mut runs = 0;
    for round in 0..20 * cases {
        for original in &shipped {
            let text = std::fs::read_to_string(original).unwrap();
            let mutant = mutate_text(&text, &mut rng);
            let path = write(dir.path(), &format!("m{round}.toml"), &mutant);
            let p = path.to_str().unwrap();
            let key = KEYS[rng.random_range(0..KEYS.len())];
            let value = VALUES[rng.random_range(0..VALUES.len())];
            let set = format!("{key}={value}");
            let (code, _) = nqs(&["check", p], "check");
            nqs(&["check", p, "--set", &set], "check --set");
            // Valid small mutants are run (briefly) and diagonalized.
            if code == 0
                && runs < 12 * cases
                && !mutant.contains("length = 80")
                && !mutant.contains("10, 10")
            {
                runs += 1;
                let out = dir.path().join(format!("r{round}.h5"));
                let quick = [
                    "--set",
                    "optimizer.iterations=2",
                    "--set",
                    "sampler.samples=64",
                    "--set",
                    "sampler.chains=2",
                    "--set",
                    "run.observable_samples=64",
                ];
                let mut args = vec![
                    "run",
                    p,
                    "--output",
                    out.to_str().unwrap(),
                    "--no-reference",
                ];
                args.extend_from_slice(&quick);
                nqs(&args, "run");
                nqs(&["ed", p, "--memory-gb", "0.5"], "ed");
            }
        }
    }
    assert!(runs > 0, "no mutant was valid enough to run");
}

/// Mutations of an HDF5 run file: a dataset or attribute removed, rewritten with other values
/// or another type or shape, or the bytes damaged.
fn mutate_file(path: &Path, rng: &mut Xoshiro256PlusPlus) {
    let datasets = [
        "ansatz/parameters",
        "optimizer/adam_m",
        "optimizer/last_solution",
        "sampler/configurations",
        "sampler/rng_state",
        "sampler/thermalized",
        "history/energy",
        "history/iteration",
    ];
    let attributes = ["config", "command", "program", "finished", "identity"];
    match rng.random_range(0..6) {
        0 | 1 => {
            let f = hdf5::File::open_rw(path).unwrap();
            let name = datasets[rng.random_range(0..datasets.len())];
            let (group, leaf) = name.split_once('/').unwrap();
            if let Ok(g) = f.group(group) {
                let _ = g.unlink(leaf);
                let len = rng.random_range(0..12usize);
                let _ = match rng.random_range(0..4) {
                    0 => g
                        .new_dataset_builder()
                        .with_data(&vec![f64::NAN; len])
                        .create(leaf)
                        .map(|_| ()),
                    1 => g
                        .new_dataset_builder()
                        .with_data(&vec![1e300f64; len])
                        .create(leaf)
                        .map(|_| ()),
                    2 => g
                        .new_dataset_builder()
                        .with_data(&ndarray::Array2::<i8>::from_elem((len, 3), 7))
                        .create(leaf)
                        .map(|_| ()),
                    _ => Ok(()),
                };
            }
        }
        2 => {
            let f = hdf5::File::open_rw(path).unwrap();
            let name = attributes[rng.random_range(0..attributes.len())];
            let _ = f.delete_attr(name);
            if rng.random::<bool>() {
                let _ = f
                    .new_attr::<u8>()
                    .create(name)
                    .and_then(|a| a.write_scalar(&9u8));
            }
        }
        3 => {
            let f = hdf5::File::open_rw(path).unwrap();
            let _ = f.unlink(["ansatz", "optimizer", "sampler", "history"][rng.random_range(0..4)]);
        }
        4 => {
            let mut bytes = std::fs::read(path).unwrap();
            for _ in 0..rng.random_range(1..20) {
                let k = rng.random_range(0..bytes.len());
                bytes[k] ^= rng.random::<u8>() | 1;
            }
            std::fs::write(path, bytes).unwrap();
        }
        _ => {
            let bytes = std::fs::read(path).unwrap();
            let cut = rng.random_range(0..bytes.len());
            std::fs::write(path, &bytes[..cut]).unwrap();
        }
    }
}

#[test]
fn mutated_run_files() {
    let (seed, cases) = scale();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xf00d);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = write(d, "m.toml", &format!("{}[sampler]\nchains = 2\nsamples = 64\n[optimizer]\niterations = 4\n[run]\ncheckpoint_every = 2\nobservable_samples = 64\n", common::heisenberg_chain(6)));
    let m = model.to_str().unwrap();
    let finished = d.join("finished.h5");
    assert_eq!(
        nqs(
            &[
                "run",
                m,
                "--output",
                finished.to_str().unwrap(),
                "--no-reference"
            ],
            "setup"
        )
        .0,
        0
    );
    // A checkpointed run (stopped at iteration 3) that must stay resumable throughout.
    let kept = d.join("kept.h5");
    let o = nqs_command(&[
        "run",
        m,
        "--output",
        kept.to_str().unwrap(),
        "--no-reference",
    ])
    .env("NQS_TEST_STOP_AFTER", "3")
    .output()
    .unwrap();
    assert!(o.status.success());
    let kept_ckpt = d.join("kept.h5.ckpt");
    let kept_bytes = std::fs::read(&kept_ckpt).unwrap();
    let sentinel_png = write(d, "sentinel.png", "an existing plot");
    for case in 0..30 * cases {
        let source = if rng.random::<bool>() {
            &finished
        } else {
            &kept_ckpt
        };
        let path = d.join(format!("f{case}.h5"));
        std::fs::copy(source, &path).unwrap();
        mutate_file(&path, &mut rng);
        if case < first_case() {
            continue;
        }
        let p = path.to_str().unwrap();
        let before = std::fs::read(&path).unwrap();
        nqs(&["info", p], "info");
        nqs(
            &[
                "plot",
                p,
                "-o",
                d.join(format!("f{case}.png")).to_str().unwrap(),
            ],
            "plot",
        );
        nqs(
            &[
                "sample",
                p,
                "--shots",
                "10",
                "--output",
                d.join(format!("s{case}")).to_str().unwrap(),
            ],
            "sample",
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "a reading command changed {p}"
        );
        nqs(
            &["plot", p, "-o", sentinel_png.to_str().unwrap()],
            "plot onto an existing file",
        );
        assert_eq!(std::fs::read(&sentinel_png).unwrap(), b"an existing plot");
        let (code, _) = nqs(
            &["run", m, "--output", p, "--no-reference"],
            "run without --resume",
        );
        assert_eq!(code, 2);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "run without --resume changed {p}"
        );
        nqs(&["measure", p, "--samples", "32"], "measure");
        nqs(
            &[
                "run",
                m,
                "--output",
                p,
                "--no-reference",
                "--resume",
                "--set",
                "optimizer.iterations=5",
            ],
            "resume",
        );
    }
    assert_eq!(std::fs::read(&kept_ckpt).unwrap(), kept_bytes);
    let (code, stderr) = nqs(
        &[
            "run",
            m,
            "--output",
            kept.to_str().unwrap(),
            "--no-reference",
            "--resume",
        ],
        "final resume",
    );
    assert_eq!(code, 0, "{stderr}");
}

/// Tokens a mutated data line may receive: invalid outcomes and letters, numbers of every
/// kind, separators and nothing.
const DATA_TOKENS: [&str; 16] = [
    "0", "1", "2", "-1", "0.5", "1e308", "nan", "X", "Y", "Z", "Q", "z", "", "\t", "0 1",
    "\u{feff}",
];

/// One mutation of a text data file (shots, bases or reference state): a line removed,
/// repeated, emptied or cut, a token replaced or added, or the file truncated.
fn mutate_data(text: &str, rng: &mut Xoshiro256PlusPlus) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let k = rng.random_range(0..lines.len().max(1));
    let token = DATA_TOKENS[rng.random_range(0..DATA_TOKENS.len())];
    match rng.random_range(0..7) {
        0 => {
            lines.remove(k);
        }
        1 => lines.insert(k, lines[k].clone()),
        2 => lines[k] = String::new(),
        3 | 4 => {
            let mut tokens: Vec<&str> = lines[k].split(' ').collect();
            let t = rng.random_range(0..tokens.len());
            tokens[t] = token;
            lines[k] = tokens.join(" ");
        }
        5 => lines[k] = format!("{} {token}", lines[k]),
        _ => {
            let joined = lines.join("\n");
            let cut = rng.random_range(0..joined.len().max(1));
            return joined.chars().take(cut).collect();
        }
    }
    lines.join("\n") + "\n"
}

/// Keys and flags of `nqs tomo`.
const TOMO_KEYS: [&str; 14] = [
    "samples",
    "bases",
    "reference",
    "alpha",
    "epochs",
    "batch_size",
    "learning_rate",
    "optimizer",
    "diag_shift",
    "complex",
    "validation",
    "patience",
    "seed",
    "chains",
];

/// The tomography surfaces: text shots, bases and reference state, the HDF5 measurements file,
/// the `[tomography]` file and the command-line options. For every mutant: exit 0 or 2, one
/// line, no hang; an existing output is never changed without --force; a fit that succeeds
/// writes a file `nqs info` and `nqs sample` read.
#[test]
fn mutated_tomography_inputs() {
    let (seed, cases) = scale();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x7070);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Data of a 4-site Heisenberg ground state in mixed bases.
    let model = write(d, "m.toml", &common::heisenberg_chain(4));
    let ed = d.join("ed.h5");
    let to_str = |p: &Path| p.to_str().unwrap().to_string();
    assert_eq!(
        nqs(&["ed", &to_str(&model), "--output", &to_str(&ed)], "setup").0,
        0
    );
    let letters = ["X", "Y", "Z"];
    let bases: String = (0..60)
        .map(|_| {
            (0..4)
                .map(|_| letters[rng.random_range(0..3)])
                .collect::<Vec<_>>()
                .join(" ")
                + "\n"
        })
        .collect();
    let bases_file = write(d, "bases_in.txt", &bases);
    let data = d.join("data");
    assert_eq!(
        nqs(
            &[
                "sample",
                &to_str(&ed),
                "--bases",
                &to_str(&bases_file),
                "--output",
                &to_str(&data)
            ],
            "setup"
        )
        .0,
        0
    );
    let originals: Vec<(&str, String)> = ["samples.txt", "bases.txt", "state.txt"]
        .iter()
        .map(|f| (*f, std::fs::read_to_string(data.join(f)).unwrap()))
        .collect();
    let measurements = std::fs::read(data.join("measurements.h5")).unwrap();
    let config = "[tomography]\nsamples = \"samples.txt\"\nbases = \"bases.txt\"\nreference = \"state.txt\"\nepochs = 3\npatience = 2\nbatch_size = 20\n";
    let sentinel = write(d, "sentinel.h5", "an existing output");
    let mut fits = 0;
    for case in 0..30 * cases {
        let case_dir = d.join(format!("t{case}"));
        std::fs::create_dir(&case_dir).unwrap();
        for (name, text) in &originals {
            write(&case_dir, name, text);
        }
        let mut config_text = config.to_string();
        let mut flags: Vec<String> = vec![];
        let mut use_hdf5 = false;
        match rng.random_range(0..6) {
            0..=2 => {
                let (name, text) = &originals[rng.random_range(0..originals.len())];
                write(&case_dir, name, &mutate_data(text, &mut rng));
            }
            3 => {
                let mut lines: Vec<String> = config_text.lines().map(String::from).collect();
                let key = TOMO_KEYS[rng.random_range(0..TOMO_KEYS.len())];
                let value = VALUES[rng.random_range(0..VALUES.len())];
                lines.retain(|l| !l.starts_with(&format!("{key} ")));
                lines.push(format!("{key} = {value}"));
                config_text = mutate_text(&(lines.join("\n") + "\n"), &mut rng);
            }
            4 => {
                let key = TOMO_KEYS[rng.random_range(3..TOMO_KEYS.len())];
                let value = VALUES[rng.random_range(0..VALUES.len())].trim_matches('"');
                if key == "complex" {
                    flags.push("--complex".into());
                } else {
                    flags.push(format!("--{}", key.replace('_', "-")));
                    flags.push(value.into());
                }
            }
            _ => {
                use_hdf5 = true;
                let path = case_dir.join("measurements.h5");
                std::fs::write(&path, &measurements).unwrap();
                let mut bytes = measurements.clone();
                if rng.random::<bool>() {
                    for _ in 0..rng.random_range(1..20) {
                        let k = rng.random_range(0..bytes.len());
                        bytes[k] ^= rng.random::<u8>() | 1;
                    }
                } else {
                    bytes.truncate(rng.random_range(0..bytes.len()));
                }
                std::fs::write(&path, bytes).unwrap();
                config_text = config_text
                    .replace("samples.txt", "measurements.h5")
                    .replace("bases = \"bases.txt\"\n", "");
            }
        }
        let config_path = write(&case_dir, "tomo.toml", &config_text);
        let output = case_dir.join("fit.h5");
        let mut args: Vec<String> = vec!["tomo".into(), "--config".into(), to_str(&config_path)];
        args.extend(flags.iter().cloned());
        let with_output = |out: &Path| {
            let mut a = args.clone();
            a.extend(["--output".into(), to_str(out)]);
            a
        };
        let onto_sentinel = with_output(&sentinel);
        nqs(
            &onto_sentinel.iter().map(String::as_str).collect::<Vec<_>>(),
            "tomo onto an existing output",
        );
        assert_eq!(std::fs::read(&sentinel).unwrap(), b"an existing output");
        let fit = with_output(&output);
        let fit: Vec<&str> = fit.iter().map(String::as_str).collect();
        let (code, _) = nqs(&fit, if use_hdf5 { "tomo (hdf5)" } else { "tomo" });
        if code == 0 {
            fits += 1;
            let o = to_str(&output);
            assert_eq!(nqs(&["info", &o], "info of a fit").0, 0);
            let shots = to_str(&case_dir.join("shots"));
            assert_eq!(
                nqs(
                    &["sample", &o, "--shots", "5", "--output", &shots],
                    "sample of a fit"
                )
                .0,
                0
            );
        }
    }
    assert!(fits > 0, "no mutant was valid enough to fit");
}

/// Values a mutated command-line option may receive, besides [`VALUES`] without quotes.
const ARGUMENTS: [&str; 14] = [
    "", " ", "-", "--", "0x10", "1_000", "+1", "-0", "ZZXY", "ZZZ", "zzzz", "0,1", "all",
    "a:XX:0,1",
];

/// A fresh random option value.
fn argument(rng: &mut Xoshiro256PlusPlus) -> String {
    if rng.random::<bool>() {
        VALUES[rng.random_range(0..VALUES.len())]
            .trim_matches('"')
            .to_string()
    } else {
        ARGUMENTS[rng.random_range(0..ARGUMENTS.len())].to_string()
    }
}

/// Every command's options: valid command lines on a 4-site chain (its run, ED and sample
/// files), then one option's value replaced, an option added with a random value, or an
/// argument dropped. For every mutant: exit 0 or 2, one line, no hang; an existing output is
/// never replaced without --force, and the stored run never changes.
#[test]
fn mutated_command_lines() {
    let (seed, cases) = scale();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xc11);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let model = write(
        d,
        "m.toml",
        &format!(
            "{}[sampler]\nchains = 2\nsamples = 64\n[optimizer]\niterations = 3\n[run]\nobservable_samples = 64\n",
            common::heisenberg_chain(4)
        ),
    );
    let (run_file, ed_file, png) = (d.join("run.h5"), d.join("ed.h5"), d.join("plot.png"));
    for args in [
        vec!["run".into(), s(&model), "--output".into(), s(&run_file)],
        vec!["ed".into(), s(&model), "--output".into(), s(&ed_file)],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(nqs(&args, "setup").0, 0);
    }
    let sentinel = write(d, "sentinel.png", "an existing output");
    let mut run_bytes = std::fs::read(&run_file).unwrap();
    let flags = [
        "--set",
        "--threads",
        "--states",
        "--method",
        "--momentum",
        "--inversion",
        "--memory-gb",
        "--samples",
        "--observable",
        "--shots",
        "--basis",
        "--seed",
        "--momenta",
        "--spin-inversion",
        "--output",
        "-o",
        "--bases",
    ];
    for case in 0..40 * cases {
        let out = s(&d.join(format!("o{case}")));
        let bases = write(d, "bases.txt", "Z Z X Y\nX X X X\n");
        let templates: Vec<Vec<String>> = vec![
            vec![
                "check".into(),
                s(&model),
                "--set".into(),
                "ansatz.alpha=2".into(),
            ],
            vec![
                "ed".into(),
                s(&model),
                "--states".into(),
                "3".into(),
                "--method".into(),
                "dense".into(),
                "--memory-gb".into(),
                "1".into(),
            ],
            vec![
                "ed".into(),
                s(&model),
                "--momentum".into(),
                "1".into(),
                "--inversion".into(),
                "1".into(),
                "--output".into(),
                s(&sentinel),
            ],
            vec![
                "run".into(),
                s(&model),
                "--set".into(),
                "optimizer.iterations=2".into(),
                "--output".into(),
                out.clone(),
                "--no-reference".into(),
            ],
            vec!["run".into(), s(&model), "--output".into(), s(&sentinel)],
            vec![
                "measure".into(),
                s(&run_file),
                "--samples".into(),
                "32".into(),
                "--observable".into(),
                "xx:XX:0,1".into(),
            ],
            vec![
                "sample".into(),
                s(&ed_file),
                "--shots".into(),
                "20".into(),
                "--basis".into(),
                "ZZXY".into(),
                "--seed".into(),
                "3".into(),
                "--output".into(),
                out.clone(),
            ],
            vec![
                "sample".into(),
                s(&run_file),
                "--bases".into(),
                s(&bases),
                "--output".into(),
                out.clone(),
            ],
            vec![
                "spectrum".into(),
                s(&model),
                "--momenta".into(),
                "0,1".into(),
                "--spin-inversion".into(),
                "1".into(),
                "--set".into(),
                "optimizer.iterations=2".into(),
                "--output".into(),
                out.clone(),
            ],
            vec![
                "plot".into(),
                s(&run_file),
                "-o".into(),
                s(&png),
                "--force".into(),
            ],
            vec!["plot".into(), s(&run_file), "-o".into(), s(&sentinel)],
            vec!["info".into(), s(&ed_file)],
            vec!["--threads".into(), "1".into(), "doctor".into()],
        ];
        let mut args = templates[rng.random_range(0..templates.len())].clone();
        match rng.random_range(0..4) {
            0 | 1 => {
                // Replace the value of an option (not the command or the model).
                let options: Vec<usize> = (1..args.len())
                    .filter(|&i| args[i - 1].starts_with('-') && !args[i].starts_with('-'))
                    .collect();
                if let Some(&i) = options.get(rng.random_range(0..options.len().max(1))) {
                    args[i] = argument(&mut rng);
                }
            }
            2 => {
                let at = rng.random_range(1..=args.len());
                args.insert(at, argument(&mut rng));
                args.insert(at, flags[rng.random_range(0..flags.len())].to_string());
            }
            _ => {
                let at = rng.random_range(1..args.len().max(2)).min(args.len() - 1);
                args.remove(at);
            }
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        nqs(&refs, "command line");
        if !args.iter().any(|a| a == "--force") {
            assert_eq!(
                std::fs::read(&sentinel).unwrap(),
                b"an existing output",
                "{args:?} replaced an existing output"
            );
        }
        // Only `nqs measure` writes into a run file (its `measurements` group).
        let now = std::fs::read(&run_file).unwrap();
        if args.iter().any(|a| a == "measure") {
            run_bytes = now;
        } else {
            assert!(now == run_bytes, "{args:?} changed the run");
        }
    }
}
