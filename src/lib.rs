//! # nqs — neural-network quantum states
//!
//! A complex restricted Boltzmann machine (RBM) wavefunction sampled by parallel Metropolis
//! chains and optimized by stochastic reconfiguration, with the project's own exact
//! diagonalization as ground truth. Module map (DESIGN.md §2):
//!
//! | module | concept |
//! |---|---|
//! | [`config`] | model files (TOML), `--set` overrides, validation |
//! | [`lattice`] | chains, square lattices, custom graphs, translations |
//! | [`hilbert`] | spin configurations, S^z sectors, ranking |
//! | [`operator`] | Pauli-string sums, built-in models, connected elements |
//! | [`error`] | the one error type |

pub mod ansatz;
pub mod config;
pub mod dist;
pub mod error;
pub mod exact;
pub mod hilbert;
pub mod io;
pub mod lattice;
pub mod linalg;
pub mod operator;
pub mod optimizer;
pub mod plot;
pub mod sampler;
pub mod stats;
pub mod tomography;
pub mod vmc;

pub use error::{Error, Result};
