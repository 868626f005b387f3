//! A crash guard for HDF5 inputs.
//!
//! The HDF5 C library trusts the bytes of a file: a damaged file can make it read out of bounds
//! (seen: a corrupted global heap crashes `H5HG_read` while reading a string attribute). No
//! check in Rust can catch that, so before any command reads an HDF5 file, a child process
//! (this executable, hidden subcommand `__probe`) reads every attribute and dataset of it with
//! the same library calls. If the child dies by a signal, hangs or fails, the file is reported
//! as damaged (exit code 2) and the parent never touches it.
//!
//! Reading alone does not cover every conversion the parent makes: a damaged integer type
//! message (seen: the `finished` attribute) reads as u64 in the probe but crashes HDF5's
//! integer conversion (`H5T__bit_find`) when the parent reads it as u8. So the probe also
//! requires every numeric datatype (integer, float, compound of them) to equal the standard
//! native type of its own description; conversions between standard types are sound.
//!
//! The guard is on once the executable registers itself ([`enable`]); library users without it
//! read files directly.

use crate::error::{Error, Result};
use hdf5::types::TypeDescriptor;
use hdf5::{Datatype, Group, LocationType};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static PROBE: OnceLock<PathBuf> = OnceLock::new();

/// The hidden subcommand that runs [`read_everything`].
pub const SUBCOMMAND: &str = "__probe";

/// Longest a probe may take before the file is declared damaged: a minute (for a slow or busy
/// file system), plus one second per 20 MB (reading runs far faster than that). A damaged file
/// can make the HDF5 library loop forever; the CPU-time limit ([`CPU_SECONDS`]) usually ends
/// that sooner.
fn deadline(path: &Path) -> Duration {
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    Duration::from_secs(60) + Duration::from_secs_f64(bytes as f64 / 20e6)
}

/// CPU time a probe may spend on its own, plus one second for every [`ELEMENTS_PER_SECOND`]
/// elements of each dataset it reads (declared sizes, so compressed data get the time their
/// decompression needs). Reading a sound file costs a fraction of that; a damaged one can make
/// the HDF5 library spin (seen: a corrupted global heap reference keeps `H5HG_read` busy), and
/// the kernel then ends the probe (SIGXCPU) long before the wall-clock [`deadline`], which has
/// to allow for a slow file system.
const CPU_SECONDS: u64 = 10;

/// Elements per second of CPU time granted for reading a dataset: about a sixth of the slowest
/// rate measured (2.3·10⁷ elements/s: gzip-compressed 8-bit data in 10 MB chunks, re-inflated
/// by the probe's row slabs and converted to 8-byte integers).
const ELEMENTS_PER_SECOND: u64 = 1 << 22;

/// Turns the guard on: `executable` (this program) is run as `executable __probe FILE` before
/// a file is read.
pub fn enable(executable: PathBuf) {
    let _ = PROBE.set(executable);
}

/// The probe's outcome.
pub type Probed = std::result::Result<(), ProbeFailure>;

/// Why a probe failed; its exit code tells the parent.
#[derive(Debug)]
pub enum ProbeFailure {
    /// The HDF5 library reported an error.
    Unreadable,
    /// A numeric datatype differs from the standard native type of its size and kind.
    NonstandardType,
}

impl From<hdf5::Error> for ProbeFailure {
    fn from(_: hdf5::Error) -> Self {
        ProbeFailure::Unreadable
    }
}

impl ProbeFailure {
    /// The probe's exit code (0 is a file that reads).
    pub fn exit_code(&self) -> u8 {
        match self {
            ProbeFailure::Unreadable => 3,
            ProbeFailure::NonstandardType => 4,
        }
    }
}

/// Checks `path` in a child process (when the guard is on).
pub fn check(path: &Path) -> Result<()> {
    let Some(exe) = PROBE.get() else {
        return Ok(());
    };
    let damaged = |why: String| Error::file(path, format!("damaged HDF5 file: {why}"));
    let mut child = std::process::Command::new(exe)
        .arg(SUBCOMMAND)
        .arg(path)
        .env("HDF5_USE_FILE_LOCKING", "FALSE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| {
            Error::Runtime(format!(
                "cannot start the HDF5 probe {}: {e}",
                exe.display()
            ))
        })?;
    let deadline = deadline(path);
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                use std::os::unix::process::ExitStatusExt;
                let nonstandard = i32::from(ProbeFailure::NonstandardType.exit_code());
                return Err(damaged(match (status.code(), status.signal()) {
                    (Some(code), _) if code == nonstandard => "a numeric datatype is not the standard native one of its size (a damaged type description, or another byte order)".into(),
                    (Some(code), _) => format!("reading it fails (probe exit code {code})"),
                    (None, Some(libc::SIGXCPU)) => format!(
                        "the HDF5 library spins on it (more than {CPU_SECONDS} s of CPU time beyond what its data need)"
                    ),
                    (None, _) => "the HDF5 library crashes reading it".into(),
                }));
            }
            Ok(None) if start.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(damaged(format!(
                    "the HDF5 library does not finish reading it within {:.0} s",
                    deadline.as_secs_f64()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(Error::Runtime(format!("HDF5 probe: {e}"))),
        }
    }
}

/// Reads every attribute and dataset of the file (the probe's work). Errors are fine; only a
/// crash matters. The kernel ends a probe that exceeds its CPU time ([`CPU_SECONDS`], SIGXCPU),
/// without a core file; a watchdog aborts it a little after the parent's deadline, so a probe
/// stuck in the HDF5 library never outlives a parent that was killed before it could kill it.
pub fn read_everything(path: &Path) -> Probed {
    set_soft_limit(libc::RLIMIT_CORE, |_| 0);
    set_soft_limit(libc::RLIMIT_CPU, |_| CPU_SECONDS);
    let limit = deadline(path) + Duration::from_secs(10);
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        // Not `exit`: its handlers would wait for the HDF5 library the main thread is stuck in.
        std::process::abort();
    });
    let file = hdf5::File::open(path)?;
    walk(&file)
}

/// The type of a resource name in `setrlimit` (glibc has its own).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

/// Sets the soft limit of a resource of this process to `soft(current soft limit)`, within the
/// hard limit it inherited; a failure leaves it as it was (the wall-clock deadline still
/// applies).
fn set_soft_limit(resource: Resource, soft: impl FnOnce(u64) -> u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read or fill the struct they are given and change only
    // this process's limits.
    unsafe {
        if libc::getrlimit(resource, &mut limit) != 0 {
            return;
        }
        // rlim_t is u64 here, i64 or u32 on other systems.
        #[allow(clippy::unnecessary_cast)]
        let wanted = soft(limit.rlim_cur as u64) as libc::rlim_t;
        limit.rlim_cur = if limit.rlim_max == libc::RLIM_INFINITY {
            wanted
        } else {
            wanted.min(limit.rlim_max)
        };
        libc::setrlimit(resource, &limit);
    }
}

/// A numeric datatype must be exactly the standard native type of its description (size, sign,
/// bit precision and offset, IEEE fields, byte order; a compound member by member).
fn check_standard(dtype: &Datatype, descriptor: &TypeDescriptor) -> Probed {
    let numeric = matches!(
        descriptor,
        TypeDescriptor::Integer(_)
            | TypeDescriptor::Unsigned(_)
            | TypeDescriptor::Float(_)
            | TypeDescriptor::Compound(_)
    );
    if numeric && *dtype != Datatype::from_descriptor(descriptor)? {
        return Err(ProbeFailure::NonstandardType);
    }
    Ok(())
}

fn read_attributes(loc: &hdf5::Location) -> Probed {
    for name in loc.attr_names()? {
        let attr = loc.attr(&name)?;
        let dtype = attr.dtype()?;
        let descriptor = dtype.to_descriptor()?;
        check_standard(&dtype, &descriptor)?;
        let _ = match descriptor {
            TypeDescriptor::VarLenUnicode => {
                attr.read_raw::<hdf5::types::VarLenUnicode>().map(|_| ())
            }
            TypeDescriptor::VarLenAscii => attr.read_raw::<hdf5::types::VarLenAscii>().map(|_| ()),
            TypeDescriptor::Float(_) => attr.read_raw::<f64>().map(|_| ()),
            TypeDescriptor::Integer(_) => attr.read_raw::<i64>().map(|_| ()),
            TypeDescriptor::Unsigned(_) => attr.read_raw::<u64>().map(|_| ()),
            _ => Ok(()),
        };
    }
    Ok(())
}

fn read_dataset(ds: &hdf5::Dataset) -> Probed {
    read_attributes(ds)?;
    let seconds = (ds.size() as u64).div_ceil(ELEMENTS_PER_SECOND);
    set_soft_limit(libc::RLIMIT_CPU, |current| current.saturating_add(seconds));
    let dtype = ds.dtype()?;
    let descriptor = dtype.to_descriptor()?;
    check_standard(&dtype, &descriptor)?;
    let _ = match descriptor {
        TypeDescriptor::Float(_) => read_by_rows::<f64>(ds),
        TypeDescriptor::Integer(_) => read_by_rows::<i64>(ds),
        TypeDescriptor::Unsigned(_) => read_by_rows::<u64>(ds),
        TypeDescriptor::Compound(_) => read_by_rows::<num_complex::Complex64>(ds),
        TypeDescriptor::FixedAscii(1) => read_by_rows::<hdf5::types::FixedAscii<1>>(ds),
        TypeDescriptor::VarLenUnicode => read_by_rows::<hdf5::types::VarLenUnicode>(ds),
        _ => Ok(()),
    };
    Ok(())
}

/// Elements the probe holds at once: a large 1-D or 2-D dataset is read in slabs of rows, so
/// that a file declaring a huge dataset (its size is only a header) cannot exhaust memory.
const PROBE_ELEMENTS: usize = 1 << 20;

fn read_by_rows<T: hdf5::H5Type>(ds: &hdf5::Dataset) -> hdf5::Result<()> {
    let shape = ds.shape();
    if super::check_fits::<T>(ds, "").is_err() {
        // The readers refuse it from its declared size without reading it.
        return Ok(());
    }
    if ds.size() <= PROBE_ELEMENTS || shape.len() > 2 {
        return ds.read_raw::<T>().map(|_| ());
    }
    let row = shape[1..].iter().product::<usize>().max(1);
    let step = (PROBE_ELEMENTS / row).max(1);
    for start in (0..shape[0]).step_by(step) {
        let end = (start + step).min(shape[0]);
        if shape.len() == 1 {
            ds.read_slice_1d::<T, _>(ndarray::s![start..end])?;
        } else {
            ds.read_slice_2d::<T, _>(ndarray::s![start..end, ..])?;
        }
    }
    Ok(())
}

/// Every object the group holds (hard links) must open: one that does not (a corrupt object
/// header) fails the probe rather than being skipped, since the parent may open it by name.
/// Soft and external links are not followed (nqs writes none; a dangling one is no damage).
fn walk(group: &Group) -> Probed {
    read_attributes(group)?;
    let mut members = Vec::new();
    group.iter_visit_default(|name, info| {
        if matches!(info.link_type, hdf5::LinkType::Hard) {
            members.push(name.to_string());
        }
        Ok(())
    })?;
    for name in members {
        match group.loc_type_by_name(&name)? {
            LocationType::Group => walk(&group.group(&name)?)?,
            LocationType::Dataset => read_dataset(&group.dataset(&name)?)?,
            _ => {}
        }
    }
    Ok(())
}
