"""Side-by-side speed benchmark: `Trainer` against the plain loop a notebook would write (reference.py).

Both train the same pair from the same initial weights, alternating in rounds within one process so
that noise from a shared machine falls on both; the ratio of their median ms/epoch is reported.
"""

import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from . import reference
from .architecture import SEED_ARCHITECTURE, Architecture
from .data import load_pair
from .mixing import mix
from .study import Study
from .training import Trainer


def _ms_per_epoch(run, epochs: int) -> float:
    start = time.perf_counter()
    run(epochs)
    return (time.perf_counter() - start) / epochs * 1e3


def compare_speed(epochs: int = 1000, rounds: int = 5, seed: int = 0) -> dict:
    mnist, cifar = load_pair("sample", 0, 0)
    target = mix(mnist.image, cifar.image)
    plain, fast = [], []
    for _ in range(rounds):
        plain.append(_ms_per_epoch(lambda n: reference.train(target, n, seed=seed), epochs))
        fast.append(_ms_per_epoch(lambda n: Trainer(target, seed=seed, device="cpu").train(n), epochs))
    plain_ms, fast_ms = statistics.median(plain), statistics.median(fast)
    return {
        "epochs_per_round": epochs,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "plain_ms_per_epoch": plain_ms,
        "trainer_ms_per_epoch": fast_ms,
        "speedup": plain_ms / fast_ms,
    }


def format_speed(result: dict) -> str:
    return (
        f"plain notebook loop: {result['plain_ms_per_epoch']:.3f} ms/epoch\n"
        f"ae_core Trainer:     {result['trainer_ms_per_epoch']:.3f} ms/epoch\n"
        f"speed-up:            {result['speedup']:.2f}x  (median of {result['rounds']} rounds of "
        f"{result['epochs_per_round']} epochs each, torch threads={result['threads']})"
    )


def _plain_loop_seconds(targets: torch.Tensor, epochs: int, seed: int, architecture: Architecture) -> float:
    """`reference.train` on each target, one after another."""
    start = time.perf_counter()
    for target in targets:
        reference.train(target, epochs, seed=seed, architecture=architecture)
    return time.perf_counter() - start


def compare_study_speed(
    pairs: int, epochs: int = 500, rounds: int = 3, seed: int = 0, architecture: Architecture = SEED_ARCHITECTURE
) -> dict:
    """A study of `pairs` pairs of `architecture` against the plain loop training the same pairs one
    after another.

    The two alternate for `rounds` rounds, each from the initial weights, and the median of the
    rounds' ratios is reported: on a shared machine one round of either can be a fifth slower.
    """
    study = Study("sample", pairs, seed=seed, architecture=architecture)
    plain, batched = [], []
    # The plain loop runs in a process of its own that never runs an engine. Here, after the engines'
    # lane threads had run torch, the plain loop on two threads took 5.3 to 5.7 ms an epoch instead of
    # 1.4 (the seed's network): libgomp, seeing more threads than cores, wakes its threads by futex
    # at every operator. A notebook's loop does not pay that, so the yardstick must not either.
    # Its first epochs in a fresh process build oneDNN's kernels (about a second): warmed up first.
    warm_up = (study.mixed[:1], 20, seed, architecture)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn, initializer=_plain_loop_seconds, initargs=warm_up) as notebook:
        for _ in range(rounds):
            plain.append(notebook.submit(_plain_loop_seconds, study.mixed, epochs, seed, architecture).result())
            fresh = Study("sample", pairs, seed=seed, architecture=architecture)
            start = time.perf_counter()
            fresh.train(epochs)
            batched.append(time.perf_counter() - start)
    speedups = [p / b for p, b in zip(plain, batched)]
    return {
        "pairs": pairs,
        "epochs": epochs,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "plain_seconds": statistics.median(plain),
        "study_seconds": statistics.median(batched),
        "speedup": statistics.median(speedups),
        "engine": study.trainer.engine.name,
        "speedups": speedups,
    }


def format_study_speed(result: dict) -> str:
    pair_epochs = result["pairs"] * result["epochs"]
    return (
        f"K={result['pairs']:<4} {result['epochs']} epochs: plain loop one pair after another "
        f"{result['plain_seconds']:.1f} s ({result['plain_seconds'] / pair_epochs * 1e3:.3f} ms/pair-epoch), "
        f"study {result['study_seconds']:.1f} s ({result['study_seconds'] / pair_epochs * 1e3:.3f} "
        f"ms/pair-epoch): {result['speedup']:.2f}x (median of {result['rounds']} alternating rounds: "
        f"{', '.join(f'{ratio:.2f}x' for ratio in result['speedups'])})"
    )
