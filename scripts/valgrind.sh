#!/usr/bin/env bash
# Memory-error check of the dense linear algebra and its callers under valgrind memcheck:
# `nqs ed` with thick-restart Lanczos (k = 3), in the automatic symmetry sector and as a
# bracketed scan of all sectors (exchange row kernel, symmetric products), 3 SR iterations with
# each solver (dense, cg, sample) on the structured dense RBM and on the materialized path
# (rbm_symm), 3 iterations of a projected RBM (momentum sector), and the odd-size / page-end
# linear-algebra tests. Fails on any invalid read or write.
#
#   scripts/valgrind.sh        (takes a few minutes: valgrind runs code ~50× slower)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt install valgrind)" >&2; exit 1; }
cargo build --release -q
cargo test --release -q --test linalg --no-run
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
vg=(valgrind --tool=memcheck --error-exitcode=99 --errors-for-leak-kinds=none --quiet)
nqs=./target/release/nqs
model="$tmp/m.toml"
cat > "$model" <<'TOML'
[lattice]
kind = "chain"
length = 10
[model]
kind = "heisenberg"
marshall_sign = true
total_sz = 0
[sampler]
chains = 2
samples = 64
thermalization = 5
[optimizer]
iterations = 3
[run]
observable_samples = 64
TOML
echo "== nqs ed --states 3 --method lanczos (thick restart)"
"${vg[@]}" "$nqs" --threads 2 ed "$model" --states 3 --method lanczos > /dev/null
echo "== nqs ed (automatic sector) and nqs ed --symmetry (bracketed scan)"
"${vg[@]}" "$nqs" --threads 2 ed "$model" > /dev/null
"${vg[@]}" "$nqs" --threads 2 ed "$model" --symmetry --states 2 > /dev/null
echo "== nqs run: 3 iterations of a projected RBM (k = 2π·3/10, z = -1)"
"${vg[@]}" "$nqs" --threads 2 run "$model" --no-reference --output "$tmp/projected.h5" \
    --set ansatz.momentum=3 --set ansatz.spin_inversion=-1 > /dev/null 2>&1
for solver in dense cg sample; do
    for ansatz in rbm rbm_symm; do
        echo "== nqs run: 3 SR iterations, solver $solver, $ansatz"
        "${vg[@]}" "$nqs" --threads 2 run "$model" --no-reference --output "$tmp/$solver-$ansatz.h5" \
            --set optimizer.solver=$solver --set ansatz.kind=$ansatz > /dev/null 2>&1
    done
done
echo "== linear-algebra tests (odd sizes, matrices at the end of page-sized allocations)"
binary=$(ls -t target/release/deps/linalg-* | grep -v '\.d$' | head -1)
"${vg[@]}" "$binary" --test-threads=1 > /dev/null
echo "valgrind memcheck: no invalid reads or writes"
