#!/usr/bin/env bash
# Quick start: installs what the build needs, builds nqs in release mode and runs the built-in
# example, the 16-site Heisenberg chain, first exactly (nqs ed) and then variationally (nqs run).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo build --release
model=hamiltonians/heisenberg_chain_16.toml
./target/release/nqs ed "$model"
./target/release/nqs run "$model" --force "$@"
