//! Processes: the [`Communicator`] trait with a serial implementation and an MPI one (feature
//! `mpi`, rsmpi).
//!
//! Reductions are done as reduce-to-rank-0 followed by a broadcast, so every rank holds the
//! bitwise-identical result and computes the identical parameter update.

use crate::error::{Error, Result};
use num_complex::Complex64;

/// What the VMC driver needs from a group of processes.
pub trait Communicator: Sync {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Element-wise sum over ranks, in place; identical on every rank.
    fn sum_f64(&self, data: &mut [f64]);
    /// Element-wise sum over ranks of integers (exact).
    fn sum_u64(&self, data: &mut [u64]);
    /// Copies rank 0's data to every rank.
    fn broadcast_f64(&self, data: &mut [f64]);
    fn barrier(&self);
    /// Ends every process of the job with `code` (after printing the message on this rank).
    fn abort(&self, message: &str, code: i32) -> !;

    fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// Copies rank 0's complex data to every rank.
    fn broadcast_c64(&self, data: &mut [Complex64]) {
        self.broadcast_f64(as_floats(data));
    }

    /// Element-wise complex sum over ranks.
    fn sum_c64(&self, data: &mut [Complex64]) {
        self.sum_f64(as_floats(data));
    }
}

/// A complex slice as the interleaved real slice it is in memory.
fn as_floats(data: &mut [Complex64]) -> &mut [f64] {
    // SAFETY: Complex64 is #[repr(C)] { re: f64, im: f64 }, so a slice of n complex numbers is a
    // slice of 2n f64 with the same alignment and lifetime.
    unsafe { std::slice::from_raw_parts_mut(data.as_mut_ptr().cast::<f64>(), 2 * data.len()) }
}

/// A single process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Serial;

impl Communicator for Serial {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_f64(&self, _: &mut [f64]) {}
    fn sum_u64(&self, _: &mut [u64]) {}
    fn broadcast_f64(&self, _: &mut [f64]) {}
    fn barrier(&self) {}
    fn abort(&self, message: &str, code: i32) -> ! {
        eprintln!("error: {message}");
        std::process::exit(code)
    }
}

/// Runs `f` on rank 0 only and gives every rank the outcome: rank 0 its own result, the others
/// `Ok` or [`Error::OtherRank`] with rank 0's exit code (a collective call).
pub fn on_root(comm: &dyn Communicator, f: impl FnOnce() -> Result<()>) -> Result<()> {
    agree(comm, if comm.is_root() { f() } else { Ok(()) })
}

/// Makes every rank's own `result` collective: a rank that failed returns its error, and when
/// any rank failed the others return [`Error::OtherRank`] with the exit code of the lowest
/// failing rank — so no rank goes on into a collective call that a failed rank never makes.
/// Only rank 0 reports errors, so when rank 0 did not fail, a failed rank prints its own
/// message here (`error (rank r): …`). A collective call, hence also a barrier.
pub fn agree<T>(comm: &dyn Communicator, result: Result<T>) -> Result<T> {
    let mut codes = vec![0u64; comm.size()];
    codes[comm.rank()] = result
        .as_ref()
        .err()
        .map_or(0, |e| u64::from(e.exit_code().max(1)));
    comm.sum_u64(&mut codes);
    if let Err(e) = &result {
        if codes[0] == 0 {
            crate::errln!("error (rank {}): {e}", comm.rank());
        }
    }
    match (result, codes.iter().find(|&&c| c != 0)) {
        (Err(e), _) => Err(e),
        (Ok(value), None) => Ok(value),
        (Ok(_), Some(&code)) => Err(Error::OtherRank { code: code as u8 }),
    }
}

/// The chains `first..first + count` that `rank` of `size` owns out of `total` (contiguous
/// blocks, the first `total % size` ranks one more).
pub fn chain_range(total: usize, rank: usize, size: usize) -> (usize, usize) {
    let base = total / size;
    let extra = total % size;
    let first = rank * base + rank.min(extra);
    (first, base + usize::from(rank < extra))
}

/// Was this process started by an MPI launcher (mpirun, srun)?
pub fn launched_by_mpi() -> bool {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_RANK",
        "MPI_LOCALNRANKS",
        "SLURM_STEP_NUM_TASKS_MPI",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

#[cfg(feature = "mpi")]
pub use self::mpi_impl::{abort_world, Mpi};

#[cfg(feature = "mpi")]
mod mpi_impl {
    use super::Communicator;
    use mpi::collective::SystemOperation;
    use mpi::topology::{Communicator as _, SimpleCommunicator};
    use mpi::traits::{CommunicatorCollectives, Equivalence, Root};

    /// MPI_COMM_WORLD.
    pub struct Mpi {
        world: SimpleCommunicator,
        _universe: mpi::environment::Universe,
    }

    // SAFETY: MPI is called only from the thread that initialized it (the pool worker that
    // runs the command, MPI_THREAD_FUNNELED); the other rayon workers never touch the
    // communicator.
    unsafe impl Sync for Mpi {}

    /// Ends every process of the MPI job (for a panic hook, where no communicator is at hand).
    pub fn abort_world(code: i32) -> ! {
        SimpleCommunicator::world().abort(code)
    }

    impl Mpi {
        /// The MPI library's own version string.
        pub fn library() -> String {
            mpi::environment::library_version()
                .map(|v| v.lines().next().unwrap_or("").trim().to_string())
                .unwrap_or_else(|_| "unknown MPI library".into())
        }

        /// Initializes MPI; None if it was already initialized or cannot start. The calling
        /// thread becomes MPI's main thread and must make every MPI call (`Funneled`: the
        /// other threads of the process compute but never call MPI).
        pub fn initialize() -> Option<Mpi> {
            let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)?;
            Some(Mpi {
                world: universe.world(),
                _universe: universe,
            })
        }

        /// Reduce to rank 0, then broadcast: every rank ends with the same bits.
        fn sum<T: Equivalence + Clone>(&self, data: &mut [T]) {
            let root = self.world.process_at_rank(0);
            let send = data.to_vec();
            if self.rank() == 0 {
                root.reduce_into_root(&send[..], data, SystemOperation::sum());
            } else {
                root.reduce_into(&send[..], SystemOperation::sum());
            }
            root.broadcast_into(data);
        }
    }

    impl Communicator for Mpi {
        fn rank(&self) -> usize {
            self.world.rank() as usize
        }
        fn size(&self) -> usize {
            self.world.size() as usize
        }
        fn sum_f64(&self, data: &mut [f64]) {
            self.sum(data);
        }
        fn sum_u64(&self, data: &mut [u64]) {
            self.sum(data);
        }
        fn broadcast_f64(&self, data: &mut [f64]) {
            self.world.process_at_rank(0).broadcast_into(data);
        }
        fn barrier(&self) {
            self.world.barrier();
        }
        fn abort(&self, message: &str, code: i32) -> ! {
            eprintln!("error (rank {}): {message}", self.rank());
            self.world.abort(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One rank of a simulated job: `sum_u64` adds the other ranks' contributions, given.
    struct OneRankOf {
        rank: usize,
        others: Vec<u64>,
    }

    impl Communicator for OneRankOf {
        fn rank(&self) -> usize {
            self.rank
        }
        fn size(&self) -> usize {
            self.others.len()
        }
        fn sum_f64(&self, _: &mut [f64]) {}
        fn sum_u64(&self, data: &mut [u64]) {
            data.iter_mut().zip(&self.others).for_each(|(d, o)| *d += o);
        }
        fn broadcast_f64(&self, _: &mut [f64]) {}
        fn barrier(&self) {}
        fn abort(&self, message: &str, _: i32) -> ! {
            panic!("abort: {message}")
        }
    }

    /// Every rank learns that some rank failed, with the lowest failing rank's exit code, and
    /// a failed rank keeps its own error.
    #[test]
    fn agree_stops_every_rank_when_one_fails() {
        let input = || Err::<(), _>(Error::Input("bad".into()));
        // Rank 0 of 3; rank 2 failed with an input error (2), rank 1 with a runtime error (1).
        let rank0 = OneRankOf {
            rank: 0,
            others: vec![0, 1, 2],
        };
        assert!(matches!(
            agree(&rank0, Ok(())),
            Err(Error::OtherRank { code: 1 })
        ));
        // Rank 1 itself failed: its own error comes back.
        let rank1 = OneRankOf {
            rank: 1,
            others: vec![0, 0, 0],
        };
        assert!(matches!(agree(&rank1, input()), Err(Error::Input(_))));
        // Nobody failed: the value comes back on every rank.
        assert_eq!(agree(&rank1, Ok(7)).unwrap(), 7);
        assert_eq!(agree(&Serial, Ok(7)).unwrap(), 7);
        assert!(matches!(agree(&Serial, input()), Err(Error::Input(_))));
    }

    #[test]
    fn chain_ranges_partition_all_chains() {
        for total in [1usize, 7, 16, 33] {
            for size in 1..=total.min(8) {
                let mut next = 0;
                for rank in 0..size {
                    let (first, count) = chain_range(total, rank, size);
                    assert_eq!(first, next);
                    assert!(count >= 1);
                    next += count;
                }
                assert_eq!(next, total);
            }
        }
    }
}
