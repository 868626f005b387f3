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
