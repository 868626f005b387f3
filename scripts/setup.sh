#!/usr/bin/env bash
# Installs the system packages nqs builds and runs with, only when they are missing.
#
# Debian/Ubuntu: apt-get installs HDF5 and Open MPI (libraries, headers, mpirun), libclang and
# pkg-config for the build, a TrueType font for `nqs plot`, and h5py, numpy and matplotlib for the
# Python helpers in scripts/ (as root, or through sudo). Idempotent: when everything is present it
# only runs `dpkg-query` and returns in well under a second.
# Dense linear algebra is pure Rust (faer) by default: no BLAS or LAPACK is installed. The opt-in
# `lapack` feature links a vendor library instead; see the README's cluster section.
# Elsewhere (HPC clusters, other distributions) it prints what to install or `module load`, and the
# environment variables the Rust crates read.
set -euo pipefail

packages=(libhdf5-dev libopenmpi-dev openmpi-bin libclang-dev pkg-config fonts-dejavu-core
    python3-h5py python3-numpy python3-matplotlib)

print_manual_instructions() {
    cat >&2 <<'TXT'
nqs needs these system libraries: HDF5 (>= 1.10, with headers), an MPI implementation
(Open MPI or MPICH, with the mpicc wrapper), libclang (for bindgen) and pkg-config.
The Python helpers in scripts/ need h5py, numpy and matplotlib (pandas optional).

On an HPC cluster, load the matching modules before building, for example:
    module load hdf5 openmpi llvm      # names differ per site: `module avail`
Environment variables the crates read:
    HDF5_DIR=/path/to/hdf5        hdf5-metno-sys: prefix with include/ and lib/ (else pkg-config)
    MPICC=mpicc                   rsmpi (mpi-sys): the MPI compiler wrapper used to find MPI
    MPI_PKG_CONFIG=ompi           alternative: pkg-config name of the MPI library
    LIBCLANG_PATH=/path/to/llvm/lib   bindgen: where libclang.so lives
Without MPI, build with: cargo build --release --no-default-features
With a vendor LAPACK (MKL, AOCL, LibSci, OpenBLAS >= 0.3.26): see README, "Linear algebra".
TXT
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup.sh: not a Debian/Ubuntu system; install the libraries yourself:" >&2
    print_manual_instructions
    exit 0
fi

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "setup.sh: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "setup.sh: not root and no sudo; ask an administrator to install: ${missing[*]}" >&2
    print_manual_instructions
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup.sh: done" >&2
