"""Read nqs HDF5 files with h5py and numpy (pandas optional); the layout is in the README.

As a library:

    import sys; sys.path.insert(0, "scripts")
    import nqs_read
    run = nqs_read.load("runs/heisenberg_chain_16.h5")
    run.history            # pandas.DataFrame if pandas is installed, else dict of numpy arrays
    a, b, w = run.rbm()    # visible biases (N), hidden biases (M), weights W[j, i] (M x N)
    run.observables        # dict: energy, energy_error, zz (N x N), structure_factor, ...
    run.config             # the canonical configuration (dict, from the stored TOML)

From the command line:

    python3 scripts/nqs_read.py RUN.h5                # summary
    python3 scripts/nqs_read.py RUN.h5 --csv hist.csv # history as CSV
    python3 scripts/nqs_read.py RUN.h5 --check ITERATIONS N_PARAMETERS   # used by the tests
"""
import argparse
import sys

import h5py
import numpy as np

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None
try:
    import pandas as pd
except ImportError:
    pd = None


def _attrs(group):
    out = {}
    for key, value in group.attrs.items():
        out[key] = value.decode() if isinstance(value, bytes) else value
    return out


class NqsFile:
    """The contents of one nqs file, as numpy arrays."""

    def __init__(self, path):
        self.path = path
        with h5py.File(path, "r") as f:
            if f.attrs.get("program") not in ("nqs", b"nqs"):
                raise ValueError(f"{path}: not a file written by nqs")
            self.attrs = _attrs(f)
            self.command = self.attrs.get("command", "")
            text = self.attrs.get("config", "")
            self.config = tomllib.loads(text) if (tomllib and text) else {}
            self.units = self.attrs.get("units", "")
            self.finished = bool(self.attrs.get("finished", 0))
            self.history = self._history(f)
            self.ansatz = None
            if "ansatz" in f:
                g = f["ansatz"]
                self.ansatz = dict(_attrs(g))
                self.ansatz["parameters"] = g["parameters"][()]
                if "marshall_sites" in g:
                    self.ansatz["marshall_sites"] = g["marshall_sites"][()]
            self.observables = self._group(f, "observables")
            self.measurements = self._group(f, "measurements")
            self.exact = self._group(f, "exact")

    @staticmethod
    def _group(f, name):
        if name not in f:
            return None
        g = f[name]
        out = dict(_attrs(g))
        for key, item in g.items():
            if isinstance(item, h5py.Dataset):
                out[key] = item[()]
        return out

    @staticmethod
    def _history(f):
        group = f["history"] if "history" in f else f["tomography/history"] if "tomography/history" in f else None
        if group is None:
            return None
        columns = {name: group[name][()] for name in group}
        return pd.DataFrame(columns) if pd is not None else columns

    @property
    def parameters(self):
        return None if self.ansatz is None else self.ansatz["parameters"]

    def rbm(self):
        """(a, b, W) of a dense RBM: the flat layout is [a (N), b (M), W row-major (M x N)]."""
        if self.ansatz is None or self.ansatz.get("kind") != "rbm":
            raise ValueError("not a dense RBM (kind = rbm)")
        n, m = int(self.ansatz["n_sites"]), int(self.ansatz["n_hidden"])
        p = self.ansatz["parameters"]
        return p[:n], p[n:n + m], p[n + m:].reshape(m, n)


def load(path):
    return NqsFile(path)


def _summary(run):
    print(f"{run.path}: nqs {run.command} file, units {run.units or '-'}, finished {run.finished}")
    if run.ansatz is not None:
        print(f"  ansatz {run.ansatz['kind']}: {len(run.parameters)} complex parameters")
    if run.history is not None:
        energy = np.asarray(run.history["energy"]) if "energy" in run.history else None
        if energy is not None and len(energy):
            print(f"  {len(energy)} iterations, last energy {energy[-1]:.8f}")
    if run.observables:
        print(f"  final energy {run.observables['energy']:.8f} ± {run.observables['energy_error']:.8f}")
    if run.exact:
        print(f"  exact energy {run.exact.get('energy')} ({run.exact.get('method')})")


def _check(run, iterations, n_parameters):
    """What the README promises of a finished run file."""
    for key in ("version", "config", "seed", "ranks", "threads", "start_time", "identity", "units"):
        assert key in run.attrs, f"missing root attribute {key}"
    assert run.finished, "run not finished"
    params = run.parameters
    assert params.dtype == np.complex128, params.dtype
    assert params.shape == (n_parameters,), params.shape
    assert np.all(np.isfinite(params)) and np.any(params.imag != 0)
    energy = np.asarray(run.history["energy"])
    assert energy.shape == (iterations,), energy.shape
    assert np.array_equal(np.asarray(run.history["iteration"]), np.arange(iterations))
    a, b, w = run.rbm()
    n = int(run.ansatz["n_sites"])
    assert a.shape == (n,) and w.shape[1] == n
    assert run.observables["zz"].shape == (n, n)
    assert run.config["lattice"]["kind"] in ("chain", "square", "custom")
    print(f"{run.path}: {n_parameters} complex128 parameters, {iterations} history rows, "
          f"final energy {run.observables['energy']:.6f}; layout as documented")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--csv", help="write the history as CSV")
    parser.add_argument("--check", nargs=2, type=int, metavar=("ITERATIONS", "N_PARAMETERS"))
    args = parser.parse_args()
    run = load(args.file)
    if args.check:
        _check(run, *args.check)
        return
    _summary(run)
    if args.csv:
        if run.history is None:
            sys.exit(f"{args.file}: no history")
        columns = dict(run.history) if pd is None else {c: run.history[c].to_numpy() for c in run.history}
        names = list(columns)
        np.savetxt(args.csv, np.column_stack([columns[c] for c in names]), delimiter=",",
                   header=",".join(names), comments="")
        print(f"  history written to {args.csv}")


if __name__ == "__main__":
    main()
