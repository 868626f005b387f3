"""Plots an nqs run file with h5py and matplotlib: energy per iteration with error bars and the
exact reference, and the variance on a log axis.

    python scripts/plot_run.py RUN.h5 -o run.png
"""
import argparse

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("file")
parser.add_argument("-o", "--output", default="run.png")
args = parser.parse_args()
with h5py.File(args.file, "r") as f:
    it = f["history/iteration"][()]
    energy, error, variance = f["history/energy"][()], f["history/error"][()], f["history/variance"][()]
    exact = f["exact"].attrs["energy"] if "exact" in f else None
fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7, 6))
top.errorbar(it, energy, yerr=error, fmt=".", ms=2, lw=0.5, label="VMC")
if exact is not None:
    top.axhline(exact, color="k", ls="--", lw=1, label=f"exact {exact:.6f}")
top.set_ylabel("energy")
top.legend()
bottom.semilogy(it, variance, lw=0.8)
bottom.set_xlabel("iteration")
bottom.set_ylabel("variance")
fig.tight_layout()
fig.savefig(args.output, dpi=120)
print(f"wrote {args.output}")
