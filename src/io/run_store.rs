//! The files of a VMC run.
//!
//! - `RUN.h5` during the run is the live file: root attributes and the history, one row appended
//!   and flushed per iteration (readable by h5py for monitoring); at the end it is replaced
//!   atomically by the complete file (state, history, results, `finished = 1`). When a run
//!   extends a finished one, `RUN.h5` stays the finished file until that replacement (no live
//!   file): a failed or killed extension leaves it as it was.
//! - `RUN.h5.ckpt` holds the last complete checkpoint, always written whole and renamed into
//!   place, so a kill at any instant leaves it readable.
//!
//! Which of the two a resume trusts, and the order in which they are replaced so that a
//! finished or checkpointed run is never lost, is the driver's policy (`vmc::lifecycle`).

use super::{
    checkpoint_path, write_atomically, write_attr, write_results, write_root, write_state,
    write_str_attr, ResultsRecord, RootInfo, StateRecord,
};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The live output of a run.
pub struct RunStore {
    path: PathBuf,
    /// None while extending a finished run (the finished file stays until [`RunStore::finish`]).
    live: Option<hdf5::File>,
    columns: Vec<String>,
    rows: usize,
}

impl RunStore {
    /// (Re)creates the live file with the given history rows. The new file is written beside
    /// the old one and renamed over it only when complete.
    pub fn start(
        path: &Path,
        root: &RootInfo,
        columns: &[String],
        rows: &[Vec<f64>],
    ) -> Result<Self> {
        write_atomically(path, |file| {
            write_root(file, root)?;
            write_attr(file, "finished", 0u8)?;
            let h = file.create_group("history")?;
            for (k, name) in columns.iter().enumerate() {
                let ds = h
                    .new_dataset::<f64>()
                    .chunk(256)
                    .shape(0..)
                    .create(name.as_str())?;
                if !rows.is_empty() {
                    ds.resize(rows.len())?;
                    let column: Vec<f64> = rows.iter().map(|r| r[k]).collect();
                    ds.write_slice(&column, 0..rows.len())?;
                }
            }
            Ok(())
        })?;
        let live = hdf5::File::open_rw(path).map_err(|e| Error::hdf5(path, "cannot reopen", e))?;
        Ok(RunStore {
            path: path.to_path_buf(),
            live: Some(live),
            columns: columns.to_vec(),
            rows: rows.len(),
        })
    }

    /// The store of a run that extends the finished run at `path`: the file is left as it is
    /// until [`RunStore::finish`] replaces it, so no failure or kill of the extension damages
    /// it; the progress is in the checkpoints, which a resume prefers when they are further on.
    pub fn extending(path: &Path) -> Self {
        RunStore {
            path: path.to_path_buf(),
            live: None,
            columns: Vec::new(),
            rows: 0,
        }
    }

    /// Appends one history row to the live file and flushes it (nothing while extending a
    /// finished run).
    pub fn append(&mut self, values: &[f64]) -> Result<()> {
        let Some(live) = &self.live else {
            return Ok(());
        };
        let n = self.rows;
        let write = || -> hdf5::Result<()> {
            let h = live.group("history")?;
            for (name, value) in self.columns.iter().zip(values) {
                let ds = h.dataset(name)?;
                ds.resize(n + 1)?;
                ds.write_slice(&[*value], n..n + 1)?;
            }
            live.flush()
        };
        write().map_err(|e| Error::hdf5(&self.path, "cannot append to the history", e))?;
        self.rows += 1;
        Ok(())
    }

    /// Writes a complete checkpoint to the sidecar file.
    pub fn checkpoint(&self, root: &RootInfo, state: &StateRecord) -> Result<()> {
        write_checkpoint(&self.path, root, state)
    }

    /// Replaces the live file by the complete final file, then removes the checkpoint.
    pub fn finish(
        self,
        root: &RootInfo,
        state: &StateRecord,
        results: &ResultsRecord,
        reference: Option<(f64, &str)>,
    ) -> Result<PathBuf> {
        let RunStore { path, live, .. } = self;
        drop(live);
        write_atomically(&path, |file| {
            write_root(file, root)?;
            write_attr(file, "finished", 1u8)?;
            write_state(file, state)?;
            write_results(file, "observables", results)?;
            if let Some((energy, method)) = reference {
                let x = file.create_group("exact")?;
                write_attr(&x, "energy", energy)?;
                write_str_attr(&x, "method", method)?;
                write_str_attr(&x, "units", &root.units)?;
            }
            Ok(())
        })?;
        let ckpt = checkpoint_path(&path);
        if ckpt.exists() {
            std::fs::remove_file(&ckpt).map_err(|e| Error::io(&ckpt, "cannot remove", e))?;
        }
        Ok(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes a complete checkpoint of the run `path` to `path.ckpt` (atomically).
pub fn write_checkpoint(path: &Path, root: &RootInfo, state: &StateRecord) -> Result<()> {
    write_atomically(&checkpoint_path(path), |file| {
        write_root(file, root)?;
        write_attr(file, "finished", 0u8)?;
        write_state(file, state)
    })
}
