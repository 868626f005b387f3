//! `nqs tomo`: fit an RBM to measured shots.

use crate::ansatz::{Ansatz, Rbm};
use crate::error::{Error, Result};
use crate::io::{
    self, AnsatzRecord, HistoryRecord, NewFile, OutputLock, RootInfo, TomographyRecord,
};
use crate::tomography::{self as t, data, metrics, EpochRecord, TomoOptions};
use std::path::{Path, PathBuf};

/// The options from a `[tomography]` file (paths relative to it) with `cli` laid over them,
/// validated. `cli` holds only the options given on the command line. A bad value is blamed
/// where it was given: the flag, or the file's line.
pub fn options(file: Option<&Path>, cli: toml::Table) -> Result<TomoOptions> {
    let section = file
        .map(|path| crate::config::SectionFile::read(path, "tomography"))
        .transpose()?;
    let mut table = match &section {
        Some(section) => {
            let mut table = section.table.clone();
            let dir = section.path.parent().unwrap_or(Path::new(""));
            for key in ["samples", "bases", "reference", "output"] {
                if let Some(toml::Value::String(p)) = table.get_mut(key) {
                    if !p.is_empty() && Path::new(p.as_str()).is_relative() {
                        *p = dir.join(&*p).to_string_lossy().into_owned();
                    }
                }
            }
            table
        }
        None => toml::Table::new(),
    };
    let blame = |key: &str, message: &str| match &section {
        Some(section) if !cli.contains_key(key) => section.at(key, message),
        _ => Error::usage(&format!("--{}", key.replace('_', "-")), message),
    };
    table.extend(cli.clone());
    let table = toml::Value::Table(table);
    let options: TomoOptions = table.clone().try_into().map_err(|e| {
        let message = e.message().trim().to_string();
        let check = |_: &str, v: toml::Value| v.try_into::<TomoOptions>().map(|_| ());
        match crate::config::culprit_key("tomography", &table, &message, check) {
            Some(key) => {
                let message = crate::config::with_integer_range(&message, &key, |largest| {
                    let mut probe = table.as_table()?.clone();
                    probe.insert(key.clone(), largest);
                    let options: TomoOptions = toml::Value::Table(probe).try_into().ok()?;
                    Some(options.validate())
                })
                .unwrap_or(message);
                blame(&key, &crate::error::shorten(&message))
            }
            None => Error::Input(format!(
                "{}: {}",
                file.map_or("the options".into(), |p| p.display().to_string()),
                crate::error::shorten(&message)
            )),
        }
    })?;
    options.validate().map_err(|e| blame(&e.key, &e.message))?;
    Ok(options)
}

/// The shots (checked computable) and the reference state named in the options.
fn inputs(
    options: &TomoOptions,
    notes: &mut Vec<String>,
) -> Result<(data::Measurements, Option<Vec<num_complex::Complex64>>)> {
    let samples = options.samples.as_deref().expect("validated");
    let measurements = if io::is_hdf5(samples) {
        if options.bases.is_some() {
            return Err(Error::usage(
                "--bases",
                format!(
                    "{}: HDF5 input carries its bases (measurements/bases); drop --bases",
                    samples.display()
                ),
            ));
        }
        data::read_hdf5(samples)?
    } else {
        if options.bases.is_none() {
            notes.push("no --bases: every shot is taken as a Z-basis measurement".to_string());
        }
        data::read_text_files(samples, options.bases.as_deref())?
    };
    measurements.check_computable(samples)?;
    let n = measurements.n_sites;
    if n > 64 {
        return Err(Error::file(
            samples,
            format!("{n} sites; at most 64 are supported"),
        ));
    }
    let reference = match &options.reference {
        Some(path) if n > t::EXACT_LIMIT => {
            return Err(Error::usage(
                "--reference",
                format!(
                    "{}: fidelity needs N ≤ {}; the data has {n} sites",
                    path.display(),
                    t::EXACT_LIMIT
                ),
            ));
        }
        Some(path) => Some(data::read_reference(path, n)?),
        None => None,
    };
    if options.optimizer == t::FitOptimizer::Sr && n > t::SR_LIMIT {
        return Err(Error::usage(
            "--optimizer",
            format!(
                "sr enumerates the metric exactly and needs N ≤ {}; use adam for {n} sites",
                t::SR_LIMIT
            ),
        ));
    }
    if n > t::EXACT_LIMIT {
        notes.push(format!("N = {n} > {}: the normalization is sampled, so the NLL is not available and there is no validation split", t::EXACT_LIMIT));
    }
    Ok((measurements, reference))
}

/// Writes the fitted state and history to the output.
fn write_fit(options: &TomoOptions, threads: usize, record: &TomographyRecord) -> Result<PathBuf> {
    let root = RootInfo {
        command: "tomo".into(),
        config_text: toml::to_string(options).unwrap_or_default(),
        seed: options.seed,
        ranks: 1,
        threads,
        start_time: io::utc_now(),
        ..RootInfo::default()
    };
    let file = NewFile::create(&options.output, &root)?;
    file.write("cannot write the fit", |f| io::write_tomography(f, record))?;
    file.commit()
}

/// What the fit did.
pub struct TomoReport {
    pub shots: usize,
    pub n_sites: usize,
    pub z_only: bool,
    pub positive: bool,
    pub n_parameters: usize,
    /// NaN where not computable (N > 20).
    pub nll: f64,
    pub fidelity: Option<f64>,
    pub kl: Option<f64>,
    pub epochs: usize,
    pub kept_epoch: usize,
    pub kept_reason: String,
    pub notes: Vec<String>,
    pub output: PathBuf,
    pub wall_time: f64,
}

/// The kept state's negative log-likelihood over all shots (NaN without the exact
/// normalization, N > [`t::EXACT_LIMIT`]), and its fidelity and KL divergence to a reference.
fn final_metrics(
    rbm: &Rbm,
    measurements: &data::Measurements,
    reference: Option<&[num_complex::Complex64]>,
) -> (f64, Option<f64>, Option<f64>) {
    let nll = if measurements.n_sites <= t::EXACT_LIMIT {
        let all: Vec<usize> = (0..measurements.len()).collect();
        t::nll(rbm, measurements, &all, t::exact_normalization(rbm, None))
    } else {
        f64::NAN
    };
    let Some(r) = reference else {
        return (nll, None, None);
    };
    let (fidelity, kl) = metrics::against_reference(r, rbm, &measurements.distinct_bases());
    (nll, fidelity, kl)
}

/// Fits the data named in `options`; `on_epoch` sees every epoch. The output is checked and
/// locked before the work starts.
pub fn run(
    options: &TomoOptions,
    force: bool,
    threads: usize,
    on_start: &mut dyn FnMut(&str),
    on_epoch: &mut dyn FnMut(&EpochRecord),
) -> Result<TomoReport> {
    let start = std::time::Instant::now();
    io::prepare_output(&options.output, force, "nqs tomo --output")?;
    let _lock = OutputLock::acquire(&options.output)?;
    let mut notes = Vec::new();
    let (measurements, reference) = inputs(options, &mut notes)?;
    let n = measurements.n_sites;
    let positive = measurements.z_only() && !options.complex;
    let mut rbm = t::new_model(n, options.alpha, positive, options.seed);
    on_start(&format!(
        "nqs tomo: {} shots on {n} sites ({}), {} RBM alpha={} ({} parameters), {threads} threads",
        measurements.len(),
        if measurements.z_only() {
            "Z only"
        } else {
            "mixed bases"
        },
        if positive { "positive" } else { "complex" },
        options.alpha,
        rbm.n_parameters()
    ));
    for line in &notes {
        on_start(&format!("note: {line}"));
    }
    let settings = t::FitSettings::new(options, positive);
    let report = t::fit(
        &mut rbm,
        &measurements,
        reference.as_deref(),
        &settings,
        on_epoch,
    )?;
    let (nll, fidelity, kl) = final_metrics(&rbm, &measurements, reference.as_deref());
    let record = TomographyRecord {
        ansatz: AnsatzRecord {
            kind: "rbm".into(),
            alpha: options.alpha,
            n_sites: n,
            n_hidden: rbm.n_hidden(),
            parameters: rbm.parameters().to_vec(),
            marshall_sites: vec![],
        },
        nll,
        fidelity,
        kl,
        kept_epoch: report.kept_epoch,
        kept_reason: report.kept_reason.clone(),
        history: HistoryRecord {
            columns: EpochRecord::COLUMNS.iter().map(|c| c.to_string()).collect(),
            rows: report.history.iter().map(EpochRecord::values).collect(),
        },
    };
    let output = write_fit(options, threads, &record)?;
    Ok(TomoReport {
        shots: measurements.len(),
        n_sites: n,
        z_only: measurements.z_only(),
        positive,
        n_parameters: rbm.n_parameters(),
        nll,
        fidelity,
        kl,
        epochs: report.history.len(),
        kept_epoch: report.kept_epoch,
        kept_reason: report.kept_reason,
        notes,
        output,
        wall_time: start.elapsed().as_secs_f64(),
    })
}
