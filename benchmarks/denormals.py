"""What flushing denormal floats to zero buys the engine (`engine.denormals_flushed`), side by side.

One model trains on the seed's sample pair, alternating rounds with the flags set around its steps, as
the engine sets them, and without. Each round times `--steps` steps after `--warm` steps, by when Adam's
moments of weights whose gradients vanish have decayed below float32's smallest normal number. Intel
CPUs compute on such numbers through a slow microcode path; AMD ones at full speed.

    python benchmarks/denormals.py [--warm 2000] [--steps 1000] [--rounds 3]
"""

import argparse
import statistics
import time
from contextlib import nullcontext
from unittest import mock

import torch

from ae_core import engine, load_pair
from ae_core.mixing import mix
from ae_core.model import initial_autoencoder
from ae_core.training import one_cpu_thread


def ms_per_step(flushed: bool, target: torch.Tensor, warm: int, steps: int) -> float:
    stack = engine.StackedAutoencoders([initial_autoencoder(0).state_dict()], lr=1e-3)
    flags = nullcontext() if flushed else mock.patch.object(engine, "denormals_flushed", nullcontext)
    with flags, one_cpu_thread():
        stack.steps(target, warm)
        started = time.perf_counter()
        stack.steps(target, steps)
    return (time.perf_counter() - started) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warm", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    mnist, cifar = load_pair("sample", 0, 0)
    target = torch.from_numpy(mix(mnist.image, cifar.image)).unsqueeze(0)
    times = {True: [], False: []}
    for _ in range(args.rounds):
        for flushed in times:
            times[flushed].append(ms_per_step(flushed, target, args.warm, args.steps))
    flushed, kept = (statistics.median(times[flushed]) for flushed in (True, False))
    print(
        f"one model, steps {args.warm:,} to {args.warm + args.steps:,}, median of {args.rounds} rounds: "
        f"denormals flushed {flushed:.3f} ms/step, kept {kept:.3f} ms/step ({kept / flushed:.2f}x)"
    )


if __name__ == "__main__":
    main()
