"""Reads an nqs run file with h5py, as a user would, and checks what the README promises:
complex parameters as complex128, one history row per iteration, the root attributes.

    python scripts/check_run_file.py RUN.h5 ITERATIONS N_PARAMETERS
"""
import sys

import h5py
import numpy as np

path, iterations, n_parameters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with h5py.File(path, "r") as f:
    for key in ("version", "config", "seed", "ranks", "threads", "start_time"):
        assert key in f.attrs, f"missing root attribute {key}"
    assert f.attrs["program"] == "nqs"
    params = f["ansatz/parameters"][()]
    assert params.dtype == np.complex128, params.dtype
    assert params.shape == (n_parameters,), params.shape
    assert np.all(np.isfinite(params)) and np.any(params.imag != 0)
    energy = f["history/energy"][()]
    assert energy.shape == (iterations,), energy.shape
    assert np.array_equal(f["history/iteration"][()], np.arange(iterations))
    assert f.attrs["finished"] == 1
    print(f"{path}: {n_parameters} complex128 parameters, {iterations} history rows, "
          f"final energy {f['observables'].attrs['energy']:.6f}; root attributes present")
