"""How a study's memory and time grow with the number of pairs K, side by side in one run.

    python benchmarks/study_scaling.py [--pairs 1 4 16 64 256] [--epochs 200]

Each K trains in a fresh Python process of its own, so that one K's freed memory cannot hide the next
one's: the memory is the process's peak resident set (VmHWM) while it builds and trains the study,
less its resident set just before (torch imported, the C kernel loaded, the sample pack read). Linear
growth shows as a constant MB per pair and ms per pair-epoch once K fills the lanes of every core,
and as a least-squares line through the memory figures that each K lies close to.
Linux only (it reads /proc/self/status).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure_one(pairs: int, epochs: int) -> dict:
    """Run in the child process: build and train one study, report its memory and time."""
    from ae_core import data, native
    from ae_core.study import Study

    native.function("low_rank_adam")  # built or loaded before the baseline, as in a warm app
    data.load_pair("sample", 0, 0)
    before_mb = _status_mb("VmRSS")
    study = Study("sample", pairs, seed=0)
    start = time.perf_counter()
    outcome = study.train(epochs)
    seconds = time.perf_counter() - start
    study.results()  # scoring allocates too: part of what a study costs
    return {
        "pairs": pairs,
        "epochs": epochs,
        "outcome": outcome,
        "kernel": native.status(),
        "baseline_mb": before_mb,
        "study_mb": _status_mb("VmHWM") - before_mb,
        "ms_per_pair_epoch": seconds / (pairs * epochs) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure_one(args.child, args.epochs)))
        return
    rows = []
    for pairs in args.pairs:
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(pairs), "--epochs", str(args.epochs)],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )  # its errors show here
        rows.append(json.loads(child.stdout.splitlines()[-1]))
    print(
        f"{args.epochs} epochs per study; engine's C kernel: {rows[0]['kernel']}; "
        f"baseline resident set {rows[0]['baseline_mb']:.0f} MB"
    )
    print(f"{'K':>5} {'study MB':>10} {'MB/pair':>9} {'ms/pair-epoch':>14}")
    for row in rows:
        print(
            f"{row['pairs']:>5} {row['study_mb']:>10.1f} {row['study_mb'] / row['pairs']:>9.2f} "
            f"{row['ms_per_pair_epoch']:>14.3f}" + ("" if row["outcome"] == "finished" else f"  ({row['outcome']})")
        )
    if len(rows) > 2:
        pairs, megabytes = [row["pairs"] for row in rows], [row["study_mb"] for row in rows]
        per_pair, fixed = statistics.linear_regression(pairs, megabytes)
        departure = max(abs(mb - (fixed + per_pair * k)) / mb for k, mb in zip(pairs, megabytes))
        print(
            f"memory fit: {fixed:.1f} MB + {per_pair:.2f} MB per pair; largest departure of any K from it "
            f"{departure:.1%}"
        )


if __name__ == "__main__":
    main()
