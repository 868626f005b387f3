//! One error type for the whole program, mapped to exit codes in one place.
//!
//! Every user-facing failure is one line that names the file, key, line or option and what was
//! expected. [`Error::exit_code`] maps bad input (model files, data files, command-line values,
//! outputs that cannot be written or are owned by another run, problems that do not fit in
//! memory) to exit code 2 and runtime failures (numerical breakdown, failing writes, MPI) to 1.

use std::path::{Path, PathBuf};

/// The crate-wide result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in `nqs`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Invalid user input: a model file, a `--set` override or a command-line value.
    #[error("{0}")]
    Input(String),
    /// An input file (data, state, run file) that cannot be used.
    #[error("{}: {message}", path.display())]
    File {
        path: PathBuf,
        message: String,
        #[source]
        source: Option<hdf5::Error>,
    },
    /// An output that must not or cannot be written (exists, owned by another run, unwritable).
    #[error("{}: {message}", path.display())]
    Output { path: PathBuf, message: String },
    /// `--resume` refused: the stored run does not match what was asked.
    #[error("{}: cannot resume: {message}", path.display())]
    Resume { path: PathBuf, message: String },
    /// The problem does not fit into the available resources (memory estimate refused).
    #[error("{0}")]
    Resources(String),
    /// Numerical breakdown (non-finite energy, failed solve) that could not be recovered.
    #[error("{0}")]
    Numerical(String),
    /// A dense decomposition failed.
    #[error(transparent)]
    Linalg(#[from] crate::linalg::LinalgError),
    /// Writing an HDF5 file failed while running.
    #[error("{}: {context}: {source}", path.display())]
    Hdf5 {
        path: PathBuf,
        context: String,
        #[source]
        source: hdf5::Error,
    },
    /// A file-system operation failed while running.
    #[error("{}: {context}: {source}", path.display())]
    Io {
        path: PathBuf,
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Failure of the environment while running (threads, MPI).
    #[error("{0}")]
    Runtime(String),
    /// Another MPI rank failed with this exit code (it printed the message).
    #[error("stopped: another MPI rank failed")]
    OtherRank { code: u8 },
}

impl Error {
    /// An input error about `file` (a path or a pseudo-source such as `--set`).
    pub fn input(file: impl AsRef<Path>, message: impl std::fmt::Display) -> Self {
        Error::Input(format!("{}: {}", file.as_ref().display(), message))
    }

    /// An input error about one key of a file: `file: key `section.key`: message`.
    pub fn key(file: impl AsRef<Path>, key: &str, message: impl std::fmt::Display) -> Self {
        Error::Input(format!(
            "{}: key `{key}`: {message}",
            file.as_ref().display()
        ))
    }

    /// A bad command-line value: `--option: message`.
    pub fn usage(option: &str, message: impl std::fmt::Display) -> Self {
        Error::Input(format!("{option}: {message}"))
    }

    /// An unusable input file.
    pub fn file(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::File {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
            source: None,
        }
    }

    /// An unusable input file, keeping the HDF5 error as the source.
    pub fn bad_hdf5(path: impl AsRef<Path>, what: &str, source: hdf5::Error) -> Self {
        Error::File {
            path: path.as_ref().to_path_buf(),
            message: format!("{what}: {}", shorten(&source.to_string())),
            source: Some(source),
        }
    }

    /// An HDF5 write failure while running.
    pub fn hdf5(path: impl AsRef<Path>, context: impl Into<String>, source: hdf5::Error) -> Self {
        Error::Hdf5 {
            path: path.as_ref().to_path_buf(),
            context: context.into(),
            source,
        }
    }

    /// A file-system failure while running.
    pub fn io(path: impl AsRef<Path>, context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            context: context.into(),
            source,
        }
    }

    /// An output that must not or cannot be written.
    pub fn output(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Output {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }

    /// Process exit code for this error: 2 for bad input, unusable files and outputs, or refused
    /// resources; 1 for failures while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_)
            | Error::File { .. }
            | Error::Output { .. }
            | Error::Resume { .. }
            | Error::Resources(_) => 2,
            Error::Numerical(_)
            | Error::Linalg(_)
            | Error::Hdf5 { .. }
            | Error::Io { .. }
            | Error::Runtime(_) => 1,
            Error::OtherRank { code } => *code,
        }
    }
}

/// A value that failed validation: the full key (`section.key`) and what was expected.
/// The configuration loader turns it into an [`Error`] naming the file and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub key: String,
    pub message: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Longest echo of a user value or foreign message inside an error line.
const ECHO_LIMIT: usize = 120;

/// `text` cut to [`ECHO_LIMIT`] characters (with an ellipsis and the full length), so that a
/// huge value never becomes a huge error line.
pub fn shorten(text: &str) -> String {
    let text = text.replace('\n', " ");
    let count = text.chars().count();
    if count <= ECHO_LIMIT {
        text
    } else {
        let head: String = text.chars().take(ECHO_LIMIT).collect();
        format!("{head}… ({count} characters)")
    }
}

/// Checks `value` is finite and `|value| ≤ limit`.
pub fn check_finite(key: &str, value: f64, limit: f64) -> std::result::Result<f64, Invalid> {
    if value.is_finite() && value.abs() <= limit {
        Ok(value)
    } else {
        Err(Invalid::new(
            key,
            format!("expected a finite number with |x| ≤ {limit:e}, got {value}"),
        ))
    }
}

/// A number for a message in its shortest form: plain between 10^-4 and 10^6, else with an
/// exponent (`1e-300`, not three hundred digits).
pub fn display_number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() || (1e-4..1e6).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// Checks `lo ≤ value ≤ hi` (and finiteness).
pub fn check_range(key: &str, value: f64, lo: f64, hi: f64) -> std::result::Result<f64, Invalid> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(Invalid::new(
            key,
            format!(
                "expected a number in [{}, {}], got {}",
                display_number(lo),
                display_number(hi),
                display_number(value)
            ),
        ))
    }
}

/// Checks `lo ≤ value ≤ hi` for integers.
pub fn check_count(
    key: &str,
    value: usize,
    lo: usize,
    hi: usize,
) -> std::result::Result<usize, Invalid> {
    if (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(Invalid::new(
            key,
            format!("expected an integer in {lo}..={hi}, got {value}"),
        ))
    }
}

/// Writes a line to stdout; a closed stdout (`nqs … | head`) is ignored, never a panic.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Writes a line to stderr; a closed stderr is ignored, never a panic.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_shortened() {
        let long = "x".repeat(200_000);
        let s = shorten(&long);
        assert!(s.chars().count() < 200, "{}", s.len());
        assert!(s.contains("200000 characters"));
        assert_eq!(shorten("short"), "short");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Error::Input("x".into()).exit_code(), 2);
        assert_eq!(Error::file("a.h5", "damaged").exit_code(), 2);
        assert_eq!(Error::Numerical("nan".into()).exit_code(), 1);
    }
}
