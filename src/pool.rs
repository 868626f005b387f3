//! The rayon pool nqs computes on, and a way to keep its workers awake through a loop of short
//! parallel regions.
//!
//! A command runs *on* one of the pool's threads (`pool.install`), so a parallel region only
//! has to hand work to the other workers. Between regions an idle worker spins briefly and
//! then sleeps; waking it costs a futex call and a context switch on both sides. For a loop
//! whose regions last ~0.1 ms (a CG iteration of an SR step) that is a large share of the
//! time, so [`with_awake_workers`] keeps the other workers looking for work (stealing it as
//! soon as it appears, calling `sched_yield` when there is none) for the duration of the loop.
//! The spinning costs the other processes on the same cores: the SR solver uses it only in a
//! single process, not under MPI.
//!
//! ```
//! use rayon::prelude::*;
//! let pool = nqs::pool::build(2).unwrap();
//! let sums: Vec<u64> = pool.install(|| {
//!     nqs::pool::with_awake_workers(|| {
//!         (0..100u64).map(|k| (0..1000 * k).into_par_iter().sum()).collect()
//!     })
//! });
//! assert_eq!(sums[2], 1999 * 2000 / 2);
//! ```

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};

/// A pool of `threads` workers with 16 MiB stacks.
pub fn build(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .stack_size(16 << 20)
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start {threads} threads: {e}")))
}

/// Stores `value` in the flag when dropped (also when the body panics).
struct StoreOnDrop<'a> {
    flag: &'a AtomicBool,
    value: bool,
}

impl Drop for StoreOnDrop<'_> {
    fn drop(&mut self) {
        self.flag.store(self.value, Ordering::Release);
    }
}

/// Whether some body runs with awake workers (a nested or concurrent call just runs its body:
/// a worker waiting inside one body could otherwise pick up the other's spinner).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// [`with_awake_workers`] when `awake`, else just `body()`.
pub fn with_awake_workers_if<R: Send>(awake: bool, body: impl FnOnce() -> R + Send) -> R {
    if awake {
        with_awake_workers(body)
    } else {
        body()
    }
}

/// Runs `body` on this thread while the pool's other workers keep looking for work instead of
/// going to sleep between its parallel regions (each spins on rayon's `yield_now` and calls
/// `sched_yield` when there is nothing to steal). Meant for one loop at a time in a process
/// that has its cores to itself; outside a pool, in a pool of one thread, or while another
/// body runs, it just runs `body`. Results do not change: only who executes a task does.
pub fn with_awake_workers<R: Send>(body: impl FnOnce() -> R + Send) -> R {
    let Some(this) = rayon::current_thread_index() else {
        return body();
    };
    let others = rayon::current_num_threads().saturating_sub(1);
    if others == 0
        || ACTIVE
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return body();
    }
    let _release = StoreOnDrop {
        flag: &ACTIVE,
        value: false,
    };
    let done = AtomicBool::new(false);
    rayon::scope(|scope| {
        for _ in 0..others {
            scope.spawn(|_| {
                // Never spin on the body's own thread: it would wait for itself.
                if rayon::current_thread_index() == Some(this) {
                    return;
                }
                while !done.load(Ordering::Acquire) {
                    if rayon::yield_now() != Some(rayon::Yield::Executed) {
                        std::thread::yield_now();
                    }
                }
            });
        }
        // The spinners end when the body does, also when it panics.
        let _finished = StoreOnDrop {
            flag: &done,
            value: true,
        };
        body()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    /// Many short regions give the sums of a plain loop, and the body's panic reaches the
    /// caller (the spinners end instead of holding the pool).
    #[test]
    fn awake_workers_run_every_region_and_let_a_panic_through() {
        let pool = build(3).unwrap();
        let expected: Vec<u64> = (0..500u64).map(|k| k * (k + 1) / 2).collect();
        let sums: Vec<u64> = pool.install(|| {
            with_awake_workers(|| {
                (0..500u64)
                    .map(|k| (0..=k).into_par_iter().sum::<u64>())
                    .collect()
            })
        });
        assert_eq!(sums, expected);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.install(|| with_awake_workers(|| panic!("inside the body")))
        }));
        assert!(caught.is_err());
        // The pool still works afterwards.
        assert_eq!(pool.install(|| (0..10u64).into_par_iter().sum::<u64>()), 45);
        // Outside a pool, nested, or not asked for: the body just runs.
        assert_eq!(with_awake_workers(|| 7), 7);
        let nested = pool.install(|| with_awake_workers(|| with_awake_workers(|| 8)));
        assert_eq!(nested, 8);
        assert_eq!(pool.install(|| with_awake_workers_if(false, || 9)), 9);
    }
}
