"""Time per pair-epoch of each latent size against the plain loop for that size, side by side in one run.

    python -m benchmarks.latent_sizes [--pairs 4] [--epochs 300] [--rounds 3] [--latent 4 8 16 32 64 128]

A latent sweep trains one study per size with all its pairs together (`BatchTrainer`): every size at
the seed's width on the fast engine. Each size is timed against `reference.train` run on the same pairs one after
another, alternating for `rounds` rounds (ae_core.bench.compare_study_speed); the medians are shown.
A size other than the seed's must not be slower than the plain loop.
"""

import argparse

from ae_core.architecture import LATENT_CHANNELS, Architecture
from ae_core.bench import compare_study_speed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latent", type=int, nargs="+", default=list(LATENT_CHANNELS))
    args = parser.parse_args()
    print(f"{args.pairs} pairs, {args.epochs} epochs, {args.rounds} rounds (medians)")
    print(f"{'latent':>6} {'parameters':>10} {'engine':>9} {'study ms/pair-epoch':>20} {'plain loop':>11} {'ratio':>6}")
    for latent in args.latent:
        architecture = Architecture(latent)
        result = compare_study_speed(args.pairs, args.epochs, args.rounds, architecture=architecture)
        per_pair_epoch = 1e3 / (args.pairs * args.epochs)
        print(
            f"{latent:>6} {architecture.parameters:>10,} {result['engine']:>9} "
            f"{result['study_seconds'] * per_pair_epoch:>20.3f} {result['plain_seconds'] * per_pair_epoch:>11.3f} "
            f"{result['speedup']:>5.2f}x"
        )


if __name__ == "__main__":
    main()
