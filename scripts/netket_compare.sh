#!/usr/bin/env bash
# Times NetKet 3 (PyPI, in a venv this script creates) and nqs on the same problems, on this
# machine, and prints both and the ratio.
#
#   scripts/netket_compare.sh ed        # Lanczos ground state, Heisenberg chain L = 20, 22 (S^z = 0;
#                                       # nqs in the whole sector and in its automatic sector)
#   scripts/netket_compare.sh vmc       # seconds per VMC iteration over a 50-iteration run (NetKet: mean
#                                       # of iterations 6-50 after 5 for compilation; nqs: median of 50):
#                                       # RBM α=2 at L=16, 24, α=3 at 36;
#                                       # RBMSymm α=4 at L=24, 80 (1008 samples, 16 chains, SR+CG)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-ed}
threads=${THREADS:-2}
venv=${NETKET_VENV:-.venv-netket}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q netket
fi
bash scripts/setup.sh
cargo build --release -q
export OMP_NUM_THREADS=$threads XLA_FLAGS="--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=$threads"
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.1f}')" "$1" "$2"; }
json() { python3 -c "import json, sys; d = json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, d))" "$1" "$2"; }
model=$(mktemp --suffix=.toml)
trap 'rm -f "$model"' EXIT
case "$mode" in
ed)
    for L in 20 22; do
        nk=$("$venv/bin/python" -W ignore scripts/netket_compare.py ed "$L" 2>/dev/null)
        printf '[lattice]\nkind = "chain"\nlength = %s\n[model]\nkind = "heisenberg"\ntotal_sz = 0\n' "$L" > "$model"
        full=$(./target/release/nqs --threads "$threads" --json ed "$model" --no-auto-sector 2>/dev/null)
        auto=$(./target/release/nqs --threads "$threads" --json ed "$model" 2>/dev/null)
        t_nk=$(json "$nk" repeated_call_s); t_first=$(json "$nk" first_call_s)
        t_full=$(json "$full" wall_time_s); t_auto=$(json "$auto" wall_time_s)
        echo "L=$L  NetKet lanczos_ed: first call $t_first s, repeated $t_nk s"
        echo "      nqs ed --no-auto-sector (S^z = 0, $(json "$full" dimension) states): $t_full s, ratio (NetKet repeated / nqs) $(ratio "$t_nk" "$t_full")x"
        echo "      nqs ed (automatic sector $(json "$auto" sector), $(json "$auto" dimension) states): $t_auto s, ratio $(ratio "$t_nk" "$t_auto")x"
        echo "      energies: NetKet $(json "$nk" energy)  nqs $(json "$full" energy)  $(json "$auto" energy)"
    done
    ;;
vmc)
    for case in "16 2 rbm" "24 2 rbm" "36 3 rbm" "24 4 rbm_symm" "80 4 rbm_symm"; do
        set -- $case
        nk=$("$venv/bin/python" -W ignore scripts/netket_compare.py vmc "$1" "$2" "$3" 45 2>/dev/null)
        line="L=$1 $3 alpha=$2: NetKet (SR, CG) $(json "$nk" seconds_per_iteration) s/iteration"
        # nqs with the same CG (tolerance 1e-5) and with its automatic SR solver; NetKet's
        # Heisenberg operator applies the Marshall sign rule on bipartite lattices, so nqs does too.
        for solver in cg auto; do
            printf '[lattice]\nkind = "chain"\nlength = %s\n[model]\nkind = "heisenberg"\nmarshall_sign = true\ntotal_sz = 0\n[ansatz]\nkind = "%s"\nalpha = %s\n[sampler]\nkind = "exchange"\nchains = 16\nsamples = 1008\n[optimizer]\nkind = "sr"\nsolver = "%s"\nlearning_rate = 0.01\ndiag_shift = 0.01\niterations = 50\ncg_tolerance = 1e-5\n' "$1" "$3" "$2" "$solver" > "$model"
            if ! ours=$(./target/release/nqs --threads "$threads" --json run "$model" --no-reference --force --output "$(mktemp -u --suffix=.h5)" 2>/dev/null); then
                line="$line | nqs $solver: the run failed (rerun the model file to see why)"
                continue
            fi
            t_ours=$(json "$ours" time_per_iteration_s)
            line="$line | nqs $solver $t_ours s ($(ratio "$(json "$nk" seconds_per_iteration)" "$t_ours")x, E $(json "$ours" "round(energy['mean'], 3)"))"
        done
        echo "$line | NetKet E $(json "$nk" "round(energy, 3)")"
    done
    ;;
*)
    echo "usage: $0 ed|vmc" >&2
    exit 2
    ;;
esac
