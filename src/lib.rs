//! # nqs — neural-network quantum states
//!
//! A complex restricted Boltzmann machine (RBM) wavefunction sampled by parallel Metropolis
//! chains and optimized by stochastic reconfiguration, with the project's own exact
//! diagonalization as ground truth, MPI over chains, HDF5 files, and tomography.
//!
//! ## Layers (arrows point down, never up)
//!
//! 1. the binary (`src/main.rs`): argument parsing, dispatch, printing;
//! 2. [`job`]: what a command does — run, ed, measure, sample, tomo, info, doctor — with the
//!    files around it (output checks, locks, resume, atomic writes);
//! 3. [`config`]: parses model files and `--set`, composes the modules' settings, validates;
//! 4. drivers: [`vmc`] (the optimization loop and its state), [`exact`] (diagonalization and
//!    closed forms), [`tomography`] (likelihood fits);
//! 5. [`sampler`], [`optimizer`], [`measure`], [`io`] (the HDF5 store, plain records);
//! 6. [`ansatz`], [`operator`], [`stats`], [`linalg`], [`dist`], [`pool`];
//! 7. [`lattice`], [`hilbert`], [`error`].
//!
//! Each module owns the settings it reads (`LatticeSpec`, `ModelSpec`, `AnsatzSpec`,
//! `SamplerSpec`, `OptimizerSpec`, `RunSpec`, `ObservableSpec`, `TomoOptions`); the library
//! has no command-line types.
//!
//! ## Extension points
//!
//! - **A new wavefunction**: implement [`ansatz::Ansatz`] in a file of `src/ansatz/` (document
//!   its flat parameter layout), add a `kind` to [`ansatz::AnsatzSpec`] and one arm to
//!   [`ansatz::visit`]. Drivers, checkpoints and commands are generic over it; if its
//!   log-derivatives have the dense-RBM form, return a [`ansatz::DenseRbmLayer`] and SR uses
//!   the structured kernels.
//! - **A new Monte Carlo move**: implement [`sampler::ProposalRule`] (any number of flips) and
//!   construct it in [`sampler::SamplerSpec::settings`].
//! - **A new model**: add a kind with its couplings to [`operator::ModelKind`] and its Pauli
//!   strings to [`operator::Hamiltonian::new`]; sampling, ED and measurements follow.
//! - **A new SR solver**: implement [`optimizer::SrSolver`] (return the step and a
//!   [`optimizer::SolveInfo`]) and map an [`optimizer::SolverKind`] to it in
//!   [`optimizer::Optimizer::new`].
//! - **Watching a run**: implement [`vmc::Observer`]; the [`vmc::Driver`] example shows the
//!   loop on its own.

pub mod ansatz;
pub mod config;
pub mod dist;
pub mod error;
pub mod exact;
pub mod hilbert;
pub mod io;
pub mod job;
pub mod lattice;
pub mod linalg;
pub mod measure;
pub mod operator;
pub mod optimizer;
pub mod plot;
pub mod pool;
pub mod sampler;
pub mod stats;
pub mod tomography;
pub mod vmc;

pub use error::{Error, Result};
