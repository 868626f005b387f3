//! `nqs doctor`: what each process sees — host, rank, MPI library, threads, dense
//! linear-algebra backend, HDF5 version, memory — gathered on rank 0.

use crate::dist::Communicator;
use serde::Serialize;

/// One process's view of its environment.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ProcessInfo {
    pub host: String,
    pub rank: usize,
    pub size: usize,
    pub mpi: String,
    pub threads: usize,
    pub cores_visible: usize,
    pub linear_algebra: String,
    pub hdf5: String,
    pub memory_available_gib: f64,
    pub nqs: String,
}

impl ProcessInfo {
    fn here(comm: &dyn Communicator, mpi: &str) -> Self {
        let (major, minor, patch) = hdf5::library_version();
        ProcessInfo {
            host: crate::io::host_name(),
            rank: comm.rank(),
            size: comm.size(),
            mpi: mpi.to_string(),
            threads: rayon::current_num_threads(),
            cores_visible: std::thread::available_parallelism().map_or(1, |n| n.get()),
            linear_algebra: crate::linalg::backend_name().into(),
            hdf5: format!("{major}.{minor}.{patch}"),
            memory_available_gib: crate::exact::available_memory() as f64 / (1u64 << 30) as f64,
            nqs: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Bytes of one process's report in the gather.
const SLOT: usize = 2048;

/// Every process's [`ProcessInfo`], complete on rank 0 (a collective call); `mpi` names the MPI
/// library of this process.
pub fn gather(comm: &dyn Communicator, mpi: &str) -> Vec<ProcessInfo> {
    let mine = serde_json::to_vec(&ProcessInfo::here(comm, mpi)).unwrap_or_default();
    let words = SLOT / 8;
    let mut all = vec![0u64; words * comm.size()];
    for (k, chunk) in mine.chunks(8).take(words).enumerate() {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        all[comm.rank() * words + k] = u64::from_le_bytes(bytes);
    }
    comm.sum_u64(&mut all);
    all.chunks(words)
        .filter_map(|slot| {
            let bytes: Vec<u8> = slot
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .take_while(|&b| b != 0)
                .collect();
            serde_json::from_slice(&bytes).ok()
        })
        .collect()
}
