#!/usr/bin/env bash
# The whole test suite, from a fresh clone: system packages, format check, clippy with
# warnings as errors, the builds without MPI (and with the `lapack` feature where a system
# OpenBLAS is present), all tests (release mode: physics tests run real optimizations and
# diagonalizations), and the Python helpers on a real run file.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export CARGO_TERM_COLOR=never

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, -D warnings)"
cargo clippy --release --all-targets -- -D warnings

echo "== cargo check --no-default-features (no MPI)"
cargo check --release --no-default-features --all-targets

if pkg-config --exists openblas 2>/dev/null; then
    echo "== cargo check --features lapack (system OpenBLAS found)"
    cargo check --release --features lapack --lib
else
    echo "== cargo check --features lapack: skipped (no system OpenBLAS; the default build needs none)"
fi

echo "== cargo test --release"
cargo test --release -- --test-threads=1

echo "== the default build links no BLAS/LAPACK"
if ldd target/release/nqs | grep -i -E "openblas|liblapack|libblas"; then
    echo "target/release/nqs links a system BLAS/LAPACK" >&2
    exit 1
fi

echo "== Python helpers on a real run file (scripts/nqs_read.py, scripts/plot_run.py)"
py=""
for candidate in /usr/bin/python3 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import h5py, numpy, matplotlib" 2>/dev/null; then
        py=$candidate
        break
    fi
done
if [ -z "$py" ]; then
    echo "no python3 with h5py, numpy and matplotlib (scripts/setup.sh installs them)" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
./target/release/nqs run hamiltonians/heisenberg_chain_16.toml --output "$tmp/run.h5" \
    --set optimizer.iterations=20 --set run.observable_samples=500 --no-reference > /dev/null 2>&1
"$py" scripts/nqs_read.py "$tmp/run.h5" --check 20 560
"$py" scripts/nqs_read.py "$tmp/run.h5" --csv "$tmp/history.csv" > /dev/null
test "$(wc -l < "$tmp/history.csv")" -eq 21
"$py" scripts/plot_run.py "$tmp/run.h5" -o "$tmp/run.png" > /dev/null
head -c 4 "$tmp/run.png" | grep -q PNG
echo "Python helpers: ok"
