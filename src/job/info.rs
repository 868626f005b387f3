//! `nqs info`: what an nqs file holds.

use crate::config;
use crate::error::{Error, Result};
use crate::io;
use serde_json::{json, Value};
use std::path::Path;

/// A description of an nqs file: command, model, ansatz, iterations, last energy, references.
pub fn describe(path: &Path) -> Result<Value> {
    let file = io::open_nqs_file(path)?;
    let root = io::read_root(&file).map_err(|e| Error::file(path, e))?;
    let bad = |what: &str, e: hdf5::Error| Error::bad_hdf5(path, what, e);
    let stored = config::parse_stored(&root.config_text).ok();
    let model = stored.as_ref().map(|c| {
        format!(
            "{} on {}, {} units",
            c.model.kind.name(),
            c.lattice.describe(),
            c.model.units.name()
        )
    });
    // A projected ansatz: its symmetry sector (physical basis).
    let sector = stored
        .as_ref()
        .and_then(|c| c.ansatz.sector().map(|sector| (sector, &c.ansatz)))
        .map(|((momentum, inversion), ansatz)| {
            json!({
                "momentum": momentum,
                "spin_inversion": inversion,
                "point_group": ansatz.point_group(),
                "point_group_projected": ansatz.projects_point_group(),
            })
        });
    let spin_lowering = stored.as_ref().is_some_and(|c| c.ansatz.spin_lowering());
    if let Some(c) = &stored {
        super::check_units(path, &root.units, c.model.units)?;
    }
    let finished = (root.command == "run")
        .then(|| io::read_finished(&file))
        .transpose()
        .map_err(|e| Error::file(path, e))?;
    let ansatz = match file.group("ansatz") {
        Ok(g) => {
            let kind = io::read_str_attr(&g, "kind").map_err(|e| bad("ansatz/kind", e))?;
            let alpha = io::read_attr::<u64>(&g, "alpha").map_err(|e| bad("ansatz/alpha", e))?;
            let n_parameters = g
                .dataset("parameters")
                .map_err(|e| bad("ansatz/parameters", e))?
                .size();
            Some(
                json!({"kind": kind, "alpha": alpha, "n_parameters": n_parameters, "sector": sector, "spin_lowering": spin_lowering}),
            )
        }
        Err(_) => None,
    };
    let energies: Vec<f64> = match file.group("history") {
        Ok(h) => io::read_1d(&h, "energy").map_err(|e| bad("history/energy", e))?,
        Err(_) => vec![],
    };
    let exact = file.group("exact").ok().map(|g| {
        json!({
            "energy": io::read_attr::<f64>(&g, "energy").ok(),
            "method": io::read_str_attr(&g, "method").ok(),
        })
    });
    let observables = file.group("observables").ok().map(|g| {
        json!({
            "energy": io::read_attr::<f64>(&g, "energy").ok(),
            "error": io::read_attr::<f64>(&g, "energy_error").ok(),
        })
    });
    let checkpoint = io::checkpoint_path(path);
    Ok(json!({
        "file": path,
        "command": root.command,
        "version": io::read_str_attr(&file, "version").unwrap_or_default(),
        "start_time": root.start_time,
        "identity": root.identity,
        "units": root.units,
        "model": model,
        "finished": finished,
        "ansatz": ansatz,
        "iterations": energies.len(),
        "last_energy": energies.last(),
        "observables": observables,
        "exact": exact,
        "checkpoint": checkpoint.exists().then_some(checkpoint),
    }))
}
