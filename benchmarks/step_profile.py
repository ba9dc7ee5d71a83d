"""Where a training step's time goes: each recorded kernel call of one lane, timed inside real steps on
one thread, summed by the function it calls; then the study's speed on one thread against all cores.

    python benchmarks/step_profile.py [--models 4] [--steps 400]

Timing every call adds a little to each, so the total is a bit above an untimed step.
"""

import argparse
import collections
import statistics
import time
from contextlib import contextmanager

import torch

from ae_core import engine
from ae_core.study import Study
from ae_core.training import one_cpu_thread


def _name(kernel_call) -> str:
    function = getattr(kernel_call, "func", kernel_call)
    return getattr(function, "__name__", type(function).__name__)


@contextmanager
def cores(count: int):
    """The engine splits its models over `count` threads, whatever this machine has."""
    counted = engine.cpu_count
    engine.cpu_count = lambda: count
    try:
        yield
    finally:
        engine.cpu_count = counted


def profile_lane(models: int, steps: int) -> dict[str, float]:
    """ms per lane-step by called function, for one lane of `models` models on this thread."""
    trainer = Study("sample", models, seed=0).trainer
    stack, targets = trainer.engine, trainer.targets
    with cores(1), one_cpu_thread():
        stack.steps(targets, 5)  # builds the lane and copies the targets in
        (lane,) = stack._lanes
        losses = torch.empty(models)
        spent = collections.defaultdict(float)
        for _ in range(steps):
            for phase, plan in (
                ("forward", lane.forward_plan),
                ("loss", [lambda: lane.loss(losses)]),
                ("step", lane.step_plan),
            ):
                for kernel_call in plan:
                    start = time.perf_counter()
                    kernel_call()
                    spent[f"{phase}: {_name(kernel_call)}"] += time.perf_counter() - start
            lane.steps_done += 1
    return {name: seconds / steps * 1e3 for name, seconds in spent.items()}


def ms_per_model_step(pairs: int, steps: int, threads: int) -> float:
    trainer = Study("sample", pairs, seed=0).trainer
    stack, targets = trainer.engine, trainer.targets
    with cores(threads), one_cpu_thread():
        stack.steps(targets, 5)
        start = time.perf_counter()
        stack.steps(targets, steps)
        return (time.perf_counter() - start) / (steps * pairs) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        type=int,
        default=engine.MODELS_PER_LANE,
        help=f"models in the lane, at most {engine.MODELS_PER_LANE}",
    )
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    spent = profile_lane(args.models, args.steps)
    total = sum(spent.values())
    print(f"one lane of {args.models} models, one thread: {total:.3f} ms per step")
    for name, ms in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {ms:7.3f} ms  {ms / total:5.1%}  {name}")
    available = engine.cpu_count()
    rounds = {1: [], available: []}
    for _ in range(3):
        for used in rounds:
            rounds[used].append(ms_per_model_step(16, 100, used))
    one, all_ = (statistics.median(rounds[used]) for used in (1, available))
    print(
        f"K = 16, 100 steps, median of 3 alternating rounds: 1 thread {one:.3f}, {available} threads {all_:.3f} "
        f"ms per model-step ({one / all_:.2f}x)"
    )


if __name__ == "__main__":
    main()
