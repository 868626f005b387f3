//! Printing every command's report: human-readable text, or exactly one JSON object.

use nqs::config::Model;
use nqs::io::{Estimate, ResultsRecord};
use nqs::job::{doctor::ProcessInfo, ed::EdReport, measure::MeasureReport, run, sample, tomo};
use nqs::outln;
use serde_json::{json, Value};
use std::path::Path;

/// Where reports go: JSON or text, from rank 0 only.
pub struct Printer {
    pub json: bool,
    pub root: bool,
}

fn fmt_q(q: &[f64]) -> String {
    q.iter()
        .map(|x| format!("{x:.4}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// JSON of finite numbers (NaN and infinities become null).
fn number(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

fn results_json(r: &ResultsRecord, n: usize) -> Value {
    let est = |e: &Estimate| json!({"mean": number(e.mean), "error": number(e.error)});
    json!({
        "energy": {"mean": number(r.energy.mean), "error": number(r.energy.error), "variance": number(r.energy_variance), "r_hat": number(r.r_hat), "tau": number(r.tau)},
        "energy_per_site": number(r.energy.mean / n as f64),
        "samples": r.samples,
        "units": r.units,
        "magnetization": est(&r.magnetization),
        "correlation_label": r.correlation_label,
        "correlations_site0": r.correlations.row(0).iter().map(|&c| number(c)).collect::<Vec<_>>(),
        "structure_factor": r.structure_factor.iter().enumerate().map(|(k, s)| json!({"q": r.momenta.row(k).to_vec(), "mean": number(s.mean), "error": number(s.error)})).collect::<Vec<_>>(),
        "observables": r.pauli.iter().map(|(name, e, im)| json!({"name": name, "mean": number(e.mean), "mean_imag": number(*im), "error": number(e.error)})).collect::<Vec<_>>(),
    })
}

fn print_results(r: &ResultsRecord, n: usize) {
    outln!(
        "  energy             {:.8} ± {:.8} ({} units, {} samples)",
        r.energy.mean,
        r.energy.error,
        r.units,
        r.samples
    );
    outln!(
        "  energy per site    {:.8} ± {:.8}",
        r.energy.mean / n as f64,
        r.energy.error / n as f64
    );
    outln!(
        "  variance           {:.6e}   R̂ {:.4}, τ {:.2}",
        r.energy_variance,
        r.r_hat,
        r.tau
    );
    let best = r
        .structure_factor
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.mean.total_cmp(&b.1.mean));
    if let Some((k, s)) = best {
        outln!(
            "  max S(q)           {:.5} ± {:.5} at q = ({})",
            s.mean,
            s.error,
            fmt_q(&r.momenta.row(k).to_vec())
        );
    }
    let label = r.correlation_label.replace("_i", "_0");
    outln!(
        "  ⟨{label}⟩    {}",
        (0..n.min(8))
            .map(|j| format!("{:.4}", r.correlations[[0, j]]))
            .collect::<Vec<_>>()
            .join(" ")
    );
    outln!(
        "  magnetization/N    {:.5} ± {:.5}",
        r.magnetization.mean,
        r.magnetization.error
    );
    for (name, e, _) in &r.pauli {
        outln!("  ⟨{name}⟩ {:>12.6} ± {:.6}", e.mean, e.error);
    }
}

/// One line per solved or bracketed sector: label, dimension, method, matvecs, lowest energy
/// (or its bracket).
fn print_sector_table(sectors: &[nqs::exact::SectorSolution]) {
    outln!(
        "{:<28} {:>12} {:>9} {:>8} {:>24}",
        "sector",
        "dimension",
        "method",
        "matvecs",
        "lowest energy"
    );
    for s in sectors {
        let lowest = match (s.energies.first(), s.bounds) {
            (Some(e), _) => format!("{e:>24.14}"),
            (None, Some([lower, upper])) => format!("in [{lower:.6}, {upper:.6}]"),
            (None, None) => String::new(),
        };
        outln!(
            "{:<28} {:>12} {:>9} {:>8} {lowest:>24}",
            s.sector.to_string(),
            s.dimension,
            s.method,
            s.matvecs,
        );
    }
}

impl Printer {
    pub fn check(&self, m: &Model) {
        let op = &m.hamiltonian.operator;
        if self.json {
            outln!(
                "{}",
                json!({
                    "model": m.describe(),
                    "n_sites": m.lattice.n_sites(),
                    "bonds": m.lattice.bonds().len(),
                    "bipartite": m.lattice.is_bipartite(),
                    "translations": m.lattice.translations().len(),
                    "pauli_strings": op.strings().len(),
                    "conserves_sz": op.conserves_sz(),
                    "n_up": m.sampled_n_up,
                    "identity": nqs::config::identity(&m.config),
                    "ansatz": m.describe_ansatz(),
                    "notes": m.notes,
                })
            );
            return;
        }
        outln!("{}: {}", m.path.display(), m.describe());
        outln!(
            "  sites {}, bonds {}, next-nearest bonds {}, bipartite {}, translations {}",
            m.lattice.n_sites(),
            m.lattice.bonds().len(),
            m.lattice.next_bonds().len(),
            m.lattice.is_bipartite(),
            m.lattice.translations().len()
        );
        outln!(
            "  {} Pauli strings, conserves S^z: {}, sector n_up: {:?}",
            op.strings().len(),
            op.conserves_sz(),
            m.sampled_n_up
        );
        outln!("  ansatz {}", m.describe_ansatz());
        for note in &m.notes {
            outln!("  note: {note}");
        }
    }

    pub fn ed(&self, m: &Model, report: &EdReport, correlations: bool) {
        let r = &report.result;
        let n = m.lattice.n_sites();
        let e0 = r.ground_state.energy;
        let units = m.config.model.units.name();
        if self.json {
            outln!(
                "{}",
                json!({
                    "energy": e0,
                    "energy_per_site": e0 / n as f64,
                    "dimension": r.dimension(),
                    "method": r.method(),
                    "wall_time_s": report.wall_time,
                    "units": units,
                    "energies": r.energies.iter().map(|e| e.0).collect::<Vec<_>>(),
                    "sector": r.ground_state.sector,
                    "sectors": r.sectors,
                    "sector_choice": r.sector_choice,
                    "kernel": r.kernel,
                    "correlation_label": report.correlation_label,
                    "zz_correlations": correlations.then(|| report.correlations.as_ref().map(|c| c.outer_iter().map(|row| row.to_vec()).collect::<Vec<_>>())),
                    "structure_factor": report.structure_factor.iter().map(|(q, s)| json!({"q": q, "value": s})).collect::<Vec<_>>(),
                    "reference": report.closed_form.map(|(e, method)| json!({"energy": e, "method": method})),
                    "output": report.output,
                    "notes": report.notes,
                })
            );
            return;
        }
        if let Some(choice) = &r.sector_choice {
            outln!("{choice}");
        }
        print_sector_table(&r.sectors);
        outln!();
        outln!(
            "ground state energy   E0 = {e0:.14} ({units} units), per site {:.14}",
            e0 / n as f64
        );
        outln!(
            "ground state sector   {} (physical basis)",
            r.ground_state.sector
        );
        if r.energies.len() > 1 {
            for (i, (e, sector)) in r.energies.iter().enumerate() {
                outln!("  state {i:<3} E = {e:.14}  [{sector}]");
            }
        }
        for note in &report.notes {
            outln!("note: {note}");
        }
        if let (true, Some(c)) = (correlations, &report.correlations) {
            let label = report.correlation_label.replace("_i", "_0");
            outln!(
                "⟨{label}⟩: {}",
                (0..n)
                    .map(|j| format!("{:.6}", c[[0, j]]))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            for (q, s) in &report.structure_factor {
                outln!("  S(q = {}) = {s:.6}", fmt_q(q));
            }
        }
        if let Some((e, method)) = report.closed_form {
            outln!(
                "exact reference       {e:.14} ({method}), |ΔE|/|E| = {:.2e}",
                ((e0 - e) / e).abs()
            );
        }
        outln!(
            "dimension {}, method {}, wall time {:.2} s",
            r.dimension(),
            r.method(),
            report.wall_time
        );
        if let Some(path) = &report.output {
            outln!("written to {}", path.display());
        }
    }

    pub fn run(&self, m: &Model, o: &run::RunOutcome) {
        if !self.root {
            return;
        }
        let n = m.lattice.n_sites();
        let status = match &o.status {
            run::RunStatus::Finished => "finished",
            run::RunStatus::AlreadyFinished => "already_finished",
            run::RunStatus::Interrupted { .. } => "interrupted",
        };
        if let run::RunStatus::Interrupted { iteration, during } = &o.status {
            nqs::errln!(
                "interrupted during {during} at iteration {iteration}: checkpoint in {}; continue with --resume",
                nqs::io::checkpoint_path(&o.output).display()
            );
        }
        if self.json {
            let mut v = json!({
                "status": status,
                "interrupted": matches!(o.status, run::RunStatus::Interrupted { .. }),
                "exact": o.reference.as_ref().map(|r| json!({"energy": r.energy, "method": r.method})),
                "relative_error": o.relative_error(),
                "v_score": o.v_score(n),
                "iterations": o.iterations,
                "n_parameters": o.n_parameters,
                "n_samples": o.n_samples,
                "wall_time_s": o.wall_time,
                "time_per_iteration_s": o.median_iteration_time,
                "output": o.output,
                "sector": m.transform.projection().map(|p| json!({"momentum": p.momentum, "spin_inversion": p.inversion, "point_group": m.config.ansatz.point_group()})),
                "spin_lowering": m.config.ansatz.spin_lowering(),
            });
            if let Some(r) = &o.results {
                let extra = results_json(r, n);
                for (k, value) in extra.as_object().into_iter().flatten() {
                    v[k] = value.clone();
                }
            } else if let Some((e, _)) = o.energy {
                v["energy"] = json!({"mean": number(e.mean), "error": number(e.error)});
            }
            outln!("{v}");
            return;
        }
        let Some(r) = &o.results else {
            let energy = o.energy.map_or(String::new(), |(e, _)| {
                format!(", E = {:.8} ± {:.1e}", e.mean, e.error)
            });
            outln!(
                "{}: {status} ({} iterations{energy})",
                o.output.display(),
                o.iterations
            );
            return;
        };
        outln!("{}", m.describe());
        if let Some(p) = m.transform.projection() {
            outln!("  sector             {} (physical basis)", p.describe());
        }
        if m.config.ansatz.spin_lowering() {
            outln!(
                "  sector             S^- of the RBM at total_sz + 1: total spin above total_sz"
            );
        }
        print_results(r, n);
        if let Some(v) = o.v_score(n) {
            outln!("  V-score N·Var/E²   {v:.3e}");
        }
        match (&o.reference, o.relative_error()) {
            (Some(x), Some(rel)) => outln!(
                "  exact              {:.8} ({})   relative error {rel:.2e}",
                x.energy,
                x.method
            ),
            (Some(x), None) => outln!(
                "  exact              {:.8} ({})   |E − E_exact| {:.2e} (no relative error at E_exact = 0)",
                x.energy,
                x.method,
                (r.energy.mean - x.energy).abs()
            ),
            (None, _) => outln!("  exact              (no reference for this model)"),
        }
        outln!(
            "  parameters {}, samples {}, iterations {}",
            o.n_parameters,
            o.n_samples,
            o.iterations
        );
        outln!(
            "  wall time {:.1} s, median {:.4} s per iteration",
            o.wall_time,
            o.median_iteration_time
        );
        outln!("  written to {}", o.output.display());
    }

    pub fn spectrum(&self, report: &nqs::job::spectrum::SpectrumReport) {
        if !self.root {
            return;
        }
        if let Some(why) = &report.interrupted {
            nqs::errln!("interrupted: {why}");
        }
        if self.json {
            outln!(
                "{}",
                json!({
                    "sectors": report.sectors,
                    "lower_edge": report.lower_edge,
                    "edge": report.edge,
                    "interrupted": report.interrupted.is_some(),
                    "output": report.summary,
                    "plot": report.plot,
                })
            );
            return;
        }
        outln!(
            "{:<12} {:>4} {:>26} {:>20} {:>10} {:>10} {:>9}",
            "momentum",
            "z",
            "E ± error",
            "exact",
            "rel. error",
            "V-score",
            "time (s)"
        );
        for s in &report.sectors {
            let energy = s
                .energy
                .map_or("-".into(), |e| format!("{:.8} ± {:.1e}", e.mean, e.error));
            let exact = s.exact.map_or("-".into(), |e| format!("{e:.10}"));
            let rel = s.relative_error.map_or("-".into(), |r| format!("{r:.2e}"));
            let v = s.v_score.map_or("-".into(), |v| format!("{v:.2e}"));
            let z = s.spin_inversion.map_or("-".into(), |z| format!("{z:+}"));
            outln!(
                "{:<12} {z:>4} {energy:>26} {exact:>20} {rel:>10} {v:>10} {:>9.1}",
                format!("{:?}", s.momentum),
                s.wall_time_s
            );
        }
        outln!("summary in {}", report.summary.display());
        if let Some(plot) = &report.plot {
            outln!("dispersion plot in {}", plot.display());
        }
    }

    pub fn measure(&self, report: &MeasureReport) {
        if !self.root {
            return;
        }
        if self.json {
            let mut v = results_json(&report.results, report.n_sites);
            v["output"] = json!(report.path);
            v["wall_time_s"] = json!(report.wall_time);
            outln!("{v}");
            return;
        }
        outln!("{}: measured", report.path.display());
        print_results(&report.results, report.n_sites);
        outln!(
            "  written to group `measurements` ({:.1} s)",
            report.wall_time
        );
    }

    pub fn info(&self, v: &Value) {
        if self.json {
            outln!("{v}");
            return;
        }
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        outln!(
            "{}: nqs {} file (version {}, started {})",
            s("file"),
            s("command"),
            s("version"),
            s("start_time")
        );
        if let Some(m) = v["model"].as_str() {
            outln!("  model       {m}");
        }
        if let Some(a) = v["ansatz"].as_object() {
            let sector = match &a["sector"] {
                Value::Null => String::new(),
                s => format!(
                    ", projected on{}{}{}",
                    match &s["momentum"] {
                        Value::Null => String::new(),
                        m => format!(" momentum {m}"),
                    },
                    s["spin_inversion"]
                        .as_i64()
                        .map_or(String::new(), |z| format!(" spin inversion {z:+}")),
                    // (A point group shared over rbm_symm's filters is not a projection.)
                    if s["point_group_projected"].as_bool() == Some(true) {
                        " point group"
                    } else {
                        ""
                    }
                ),
            };
            let lowered = if a["spin_lowering"] == json!(true) {
                ", lowered by S^- (the RBM at total_sz + 1)"
            } else {
                ""
            };
            outln!(
                "  ansatz      {} alpha={} ({} parameters){sector}{lowered}",
                a["kind"],
                a["alpha"],
                a["n_parameters"]
            );
        }
        if v["iterations"].as_u64().unwrap_or(0) > 0 {
            let finished = if v["finished"] == json!(true) {
                " (finished)"
            } else {
                " (not finished)"
            };
            outln!("  iterations  {}{finished}", v["iterations"]);
            outln!("  last energy {}", v["last_energy"]);
        }
        if let Some(x) = v["observables"].as_object() {
            outln!("  final       {} ± {}", x["energy"], x["error"]);
        }
        if let Some(x) = v["exact"].as_object() {
            outln!("  exact       {} ({})", x["energy"], x["method"]);
        }
        if let Some(c) = v["checkpoint"].as_str() {
            outln!("  checkpoint  {c}");
        }
    }

    pub fn written(&self, path: &Path) {
        if self.json {
            outln!("{}", json!({ "output": path }));
        } else {
            outln!("wrote {}", path.display());
        }
    }

    pub fn tomo(&self, r: &tomo::TomoReport) {
        if self.json {
            outln!(
                "{}",
                json!({"fidelity": r.fidelity, "kl": r.kl, "nll": number(r.nll), "epochs": r.epochs,
                       "kept_epoch": r.kept_epoch, "kept_reason": r.kept_reason, "notes": r.notes,
                       "bases": if r.z_only { "Z" } else { "mixed" }, "wall_time_s": r.wall_time, "output": r.output})
            );
            return;
        }
        outln!(
            "tomography: {} shots, {} sites, {} epochs",
            r.shots,
            r.n_sites,
            r.epochs
        );
        if r.nll.is_finite() {
            outln!("  NLL        {:.6}", r.nll);
        } else {
            outln!("  NLL        n/a (no exact normalization for N > 20)");
        }
        if let (Some(f), Some(k)) = (r.fidelity, r.kl) {
            outln!("  fidelity   {f:.6}");
            outln!("  KL         {k:.3e}");
        }
        outln!("  kept       {}", r.kept_reason);
        outln!("  wall time  {:.1} s", r.wall_time);
        outln!("  written to {}", r.output.display());
    }

    pub fn sample(&self, r: &sample::SampleReport) {
        if self.json {
            outln!(
                "{}",
                json!({"shots": r.shots, "n_sites": r.n_sites, "output": r.output})
            );
        } else {
            outln!(
                "{} shots on {} sites written to {} ({})",
                r.shots,
                r.n_sites,
                r.output.display(),
                sample::FILES.join(", ")
            );
        }
    }

    pub fn doctor(&self, all: &[ProcessInfo]) {
        if !self.root {
            return;
        }
        if self.json {
            outln!("{}", json!({ "processes": all }));
            return;
        }
        for p in all {
            outln!(
                "rank {}/{} on {}: {} threads ({} cores visible), MPI: {}, linear algebra: {}, HDF5 {}, {:.1} GiB available, nqs {}",
                p.rank, p.size, p.host, p.threads, p.cores_visible, p.mpi, p.linear_algebra, p.hdf5, p.memory_available_gib, p.nqs
            );
        }
    }
}
