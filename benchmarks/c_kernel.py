"""What the engine's C kernel (ae_core/low_rank_adam.c) buys: the same study trained with it and with
torch's ops alone, alternating in rounds within one process.

    python benchmarks/c_kernel.py [--pairs 16] [--epochs 500] [--rounds 7]

Prints each way's median ms per pair-epoch and the median of the rounds' ratios.
"""

import argparse
import statistics
import sys
import time

from ae_core import native
from ae_core.study import Study


def ms_per_pair_epoch(pairs: int, epochs: int) -> float:
    study = Study("sample", pairs, seed=0)  # its lanes take the kernel, or not, when first built
    start = time.perf_counter()
    study.train(epochs)
    return (time.perf_counter() - start) / (pairs * epochs) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if native.function("low_rank_adam") is None:
        sys.exit(f"nothing to compare: the C kernel is {native.status()}")
    with_kernel, without = [], []
    for _ in range(args.rounds):
        with_kernel.append(ms_per_pair_epoch(args.pairs, args.epochs))
        with native.turned_off():
            without.append(ms_per_pair_epoch(args.pairs, args.epochs))
    ratios = [b / a for a, b in zip(with_kernel, without)]
    print(
        f"K={args.pairs}, {args.epochs} epochs, {args.rounds} alternating rounds: with the C kernel "
        f"{statistics.median(with_kernel):.3f} ms/pair-epoch, torch's ops only "
        f"{statistics.median(without):.3f}; the kernel is {statistics.median(ratios):.2f}x "
        f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
    )


if __name__ == "__main__":
    main()
