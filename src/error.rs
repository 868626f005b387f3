//! One error type for the whole program.
//!
//! Every user-facing failure is one line that names the file, key or line and what was expected.
//! [`Error::exit_code`] maps input problems (bad model file, bad data, bad command line, a problem
//! that does not fit in memory) to exit code 2 and runtime failures (numerical breakdown, I/O
//! failures while writing) to exit code 1.

use std::path::Path;

/// The crate-wide result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in `nqs`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid user input: model files, `--set` overrides, data files, command-line values.
    #[error("{0}")]
    Input(String),
    /// The problem does not fit into the available resources (memory estimate refused).
    #[error("{0}")]
    Resources(String),
    /// Numerical breakdown (non-finite energy, failed solve) that could not be recovered.
    #[error("{0}")]
    Numerical(String),
    /// Failure of the environment while running (writing output, MPI, threads).
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    /// An input error about `file` (a path or a pseudo-source such as `--set`).
    pub fn input(file: impl AsRef<Path>, message: impl std::fmt::Display) -> Self {
        Error::Input(format!("{}: {}", file.as_ref().display(), message))
    }

    /// An input error about one key of a model file: `file: key `section.key`: message`.
    pub fn key(file: impl AsRef<Path>, key: &str, message: impl std::fmt::Display) -> Self {
        Error::Input(format!(
            "{}: key `{}`: {}",
            file.as_ref().display(),
            key,
            message
        ))
    }

    /// Process exit code for this error: 2 for bad input or refused resources, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) | Error::Resources(_) => 2,
            Error::Numerical(_) | Error::Runtime(_) => 1,
        }
    }
}
