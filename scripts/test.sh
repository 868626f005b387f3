#!/usr/bin/env bash
# The whole test suite, from a fresh clone: system packages, format check, clippy with
# warnings as errors, the build without MPI, and all tests (release mode: physics tests run
# real optimizations and diagonalizations).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export CARGO_TERM_COLOR=never

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, -D warnings)"
cargo clippy --release --all-targets -- -D warnings

echo "== cargo build --no-default-features (no MPI)"
cargo check --release --no-default-features --all-targets

echo "== cargo test --release"
cargo test --release -- --test-threads=1

echo "== reading a run file with h5py (Python venv)"
venv=${NQS_TEST_VENV:-.venv-test}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -c "import h5py, numpy" 2>/dev/null || "$venv/bin/pip" install -q h5py numpy
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
./target/release/nqs run hamiltonians/heisenberg_chain_16.toml --output "$tmp/run.h5" \
    --set optimizer.iterations=20 --set run.observable_samples=500 --no-reference > /dev/null 2>&1
"$venv/bin/python" scripts/check_run_file.py "$tmp/run.h5" 20 560
