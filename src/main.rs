//! The `nqs` command line: argument parsing, dispatch to the library's jobs, printing.

mod cli;

use clap::Parser;
use cli::args::{Cli, Command, EdMethod};
use nqs::dist::Communicator;
use nqs::error::{Error, Result};
use nqs::exact::{Method, SymmetryRequest};
use nqs::{config, errln, job};
use std::process::ExitCode;

fn main() -> ExitCode {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    if !(std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"))
    {
        eprintln!("error: this nqs was built for x86-64-v3 (AVX2, FMA) and this CPU lacks them; rebuild with RUSTFLAGS=\"-C target-cpu=x86-64\" (see .cargo/config.toml)");
        return ExitCode::from(2);
    }
    // nqs owns its outputs through its own lock files; HDF5's file locking fails on many
    // parallel file systems and would also keep readers out of a live run file.
    std::env::set_var("HDF5_USE_FILE_LOCKING", "FALSE");
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() == 3 && args[1] == nqs::io::probe::SUBCOMMAND {
        // The child side of the HDF5 crash guard: read everything, report by exit code.
        let outcome = nqs::io::probe::read_everything(std::path::Path::new(&args[2]));
        return ExitCode::from(outcome.map_or_else(|failure| failure.exit_code(), |()| 0));
    }
    if let Ok(exe) = std::env::current_exe() {
        nqs::io::probe::enable(exe);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // One line, like every other error: clap's first line names the problem, and when
            // it ends in a colon the indented lines after it name what it means (the missing
            // arguments).
            let text = e.render().to_string();
            let mut lines = text.lines().skip_while(|l| l.trim().is_empty());
            let mut line = lines.next().unwrap_or("error").trim().to_string();
            if line.ends_with(':') {
                let items: Vec<&str> = lines
                    .take_while(|l| l.starts_with(' ') && !l.trim().is_empty())
                    .map(str::trim)
                    .collect();
                line = format!("{line} {}", items.join(", "));
            }
            errln!("{}", nqs::error::shorten(&line));
            return ExitCode::from(2);
        }
    };
    let threads = cli.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| t as usize,
    );
    let pool = match nqs::pool::build(threads) {
        Ok(pool) => pool,
        Err(e) => {
            errln!("error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    // The whole command runs on one of the pool's threads, which also initializes MPI and
    // makes every MPI call (see nqs::pool).
    pool.install(|| {
        let (comm, mpi_name) = cli::communicator();
        let comm: &dyn Communicator = comm.as_ref();
        match dispatch(cli, comm, &mpi_name, threads) {
            Ok(()) => ExitCode::SUCCESS,
            Err(Error::OtherRank { code }) => ExitCode::from(code),
            Err(e) => {
                if comm.size() > 1 && e.exit_code() == 1 {
                    // A runtime failure may be this rank's alone: end the whole job, never
                    // leave the others waiting in a collective call.
                    comm.abort(&e.to_string(), 1);
                }
                if comm.is_root() {
                    errln!("error: {e}");
                }
                ExitCode::from(e.exit_code())
            }
        }
    })
}

fn dispatch(cli: Cli, comm: &dyn Communicator, mpi_name: &str, threads: usize) -> Result<()> {
    let out = cli::Printer {
        json: cli.json,
        root: comm.is_root(),
    };
    match cli.command {
        Command::Check(args) => out.check(&config::load(&args.model, &args.overrides)?),
        Command::Ed(args) => ed(args, &out, threads)?,
        Command::Run(args) => run(args, &out, comm, threads)?,
        Command::Spectrum(args) => spectrum(args, &out, comm, threads)?,
        Command::Measure(args) => {
            let job = job::measure::MeasureJob {
                samples: args.samples,
                observables: args.observables,
            };
            out.measure(&job::measure::run(&args.file, &job, comm)?);
        }
        Command::Info(args) => out.info(&job::info::describe(&args.file)?),
        Command::Plot(args) => {
            nqs::plot::plot_run(&args.file, &args.output, args.force)?;
            out.written(&args.output);
        }
        Command::Tomo(args) => {
            let options = job::tomo::options(args.config.as_deref(), args.table())?;
            let mut progress = cli::Progress::new(options.epochs, true);
            let report = job::tomo::run(
                &options,
                args.force,
                threads,
                &mut |line| errln!("{line}"),
                &mut |r| progress.epoch(r, options.epochs),
            );
            progress.finish();
            out.tomo(&report?);
        }
        Command::Sample(args) => {
            let bases = match args.bases {
                Some(path) => job::sample::Bases::File(path),
                None => job::sample::Bases::Fixed {
                    basis: args.basis,
                    shots: args.shots,
                },
            };
            let sample = job::sample::SampleJob {
                bases,
                seed: args.seed,
                output: args.output,
                force: args.force,
            };
            out.sample(&job::sample::run(&args.state, &sample)?);
        }
        Command::Doctor => out.doctor(&job::doctor::gather(comm, mpi_name)),
    }
    Ok(())
}

fn ed(args: cli::args::EdArgs, out: &cli::Printer, threads: usize) -> Result<()> {
    let model = config::load(&args.model.model, &args.model.overrides)?;
    let job = job::ed::EdJob {
        states: args.states as usize,
        method: match args.method {
            EdMethod::Auto => Method::Auto,
            EdMethod::Lanczos => Method::Lanczos,
            EdMethod::Dense => Method::Dense,
        },
        spectrum: args.spectrum,
        symmetry: SymmetryRequest {
            enabled: args.spectrum
                || args.symmetry
                || args.momentum.is_some()
                || args.inversion.is_some(),
            momentum: args.momentum,
            inversion: args.inversion,
        },
        auto_sector: !args.no_auto_sector,
        memory_limit: args.memory_gb.map(|gb| (gb * (1u64 << 30) as f64) as u64),
        output: args.output,
        force: args.force,
        correlations: args.correlations,
    };
    let report = job::ed::run(&model, &job, threads, &mut |line| errln!("{line}"))?;
    out.ed(&model, &report, args.correlations);
    Ok(())
}

fn spectrum(
    args: cli::args::SpectrumArgs,
    out: &cli::Printer,
    comm: &dyn Communicator,
    threads: usize,
) -> Result<()> {
    let job = job::spectrum::SpectrumJob {
        model: args.model.model,
        overrides: args.model.overrides,
        momenta: match args.momenta {
            cli::args::Momenta::All => None,
            cli::args::Momenta::List(list) => Some(list),
        },
        spin_inversions: args.spin_inversion.map_or(vec![], |z| z.0),
        output: args.output,
        force: args.force,
        resume: args.resume,
        threads,
    };
    let stop = cli::stop_flag()?;
    let iterations = config::load(&job.model, &job.overrides)?
        .config
        .optimizer
        .iterations;
    let mut progress = cli::Progress::new(iterations, comm.is_root());
    let root = comm.is_root();
    let report = job::spectrum::run(&job, comm, &mut [&mut progress], &stop, &mut |line| {
        if root {
            errln!("{line}");
        }
    });
    progress.finish();
    out.spectrum(&report?);
    Ok(())
}

fn run(
    args: cli::args::RunArgs,
    out: &cli::Printer,
    comm: &dyn Communicator,
    threads: usize,
) -> Result<()> {
    let model = config::load(&args.model.model, &args.model.overrides)?;
    let stop = cli::stop_flag()?;
    let options = job::run::RunOptions {
        output: args.output,
        force: args.force,
        resume: args.resume,
        reference: !args.no_reference,
        threads,
    };
    let mut progress = cli::Progress::new(model.config.optimizer.iterations, comm.is_root());
    let outcome = job::run::run(&model, &options, comm, &mut [&mut progress], &stop);
    progress.finish();
    out.run(&model, &outcome?);
    Ok(())
}
