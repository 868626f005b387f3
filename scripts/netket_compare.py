"""Times NetKet 3 on the same problems as nqs (run through scripts/netket_compare.sh).

    python netket_compare.py ed L [L ...]
    python netket_compare.py vmc L ALPHA ANSATZ ITERATIONS

Prints one JSON object per case on stdout.
"""
import json
import sys
import time

import jax
import netket as nk


def heisenberg(length):
    graph = nk.graph.Chain(length, pbc=True)
    hilbert = nk.hilbert.Spin(0.5, length, total_sz=0)
    return graph, hilbert, nk.operator.Heisenberg(hilbert, graph)


def ed(lengths):
    for length in lengths:
        _, _, hamiltonian = heisenberg(length)
        t0 = time.perf_counter()
        first = nk.exact.lanczos_ed(hamiltonian, k=1)
        t1 = time.perf_counter()
        repeated = nk.exact.lanczos_ed(hamiltonian, k=1)
        t2 = time.perf_counter()
        print(json.dumps({"case": "ed", "L": length, "energy": float(repeated[0]), "first_call_s": t1 - t0,
                          "repeated_call_s": t2 - t1, "first_energy": float(first[0])}), flush=True)


def vmc(length, alpha, ansatz, iterations):
    graph, hilbert, hamiltonian = heisenberg(length)
    if ansatz == "rbm_symm":
        model = nk.models.RBMSymm(symmetries=graph.translation_group(), alpha=alpha, param_dtype=complex)
    else:
        model = nk.models.RBM(alpha=alpha, param_dtype=complex)
    sampler = nk.sampler.MetropolisExchange(hilbert, graph=graph, n_chains=16)
    state = nk.vqs.MCState(sampler, model, n_samples=1008, seed=1234, sampler_seed=1234)
    optimizer = nk.optimizer.Sgd(learning_rate=0.01)
    sr = nk.optimizer.SR(solver=jax.scipy.sparse.linalg.cg, diag_shift=0.01, holomorphic=True)
    driver = nk.VMC(hamiltonian, optimizer, variational_state=state, preconditioner=sr)
    driver.run(n_iter=5, show_progress=False)  # compile
    t0 = time.perf_counter()
    driver.run(n_iter=iterations, show_progress=False)
    per_iteration = (time.perf_counter() - t0) / iterations
    print(json.dumps({"case": "vmc", "L": length, "alpha": alpha, "ansatz": ansatz, "n_parameters": state.n_parameters,
                      "seconds_per_iteration": per_iteration, "energy": float(state.expect(hamiltonian).mean.real)}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "ed":
        ed([int(x) for x in sys.argv[2:]])
    else:
        vmc(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
