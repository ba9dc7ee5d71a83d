"""What the app costs training: epochs per second inside Mix & Train (driven headless by AppTest, with its
live progress bar, images, badges and charts) against the same pair trained by ae_core alone, alternating in rounds.

    python benchmarks/app_overhead.py [--epochs 3000] [--rounds 5]

The app's rate counts the whole rerun that the Train click starts: starting the training process,
the state's trip there and back, the live view, and drawing the results. The bar is an app
overhead under 15%.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from ae_core import Experiment, load_pair

ROOT = Path(__file__).resolve().parents[1]

MNIST_INDEX, CIFAR_INDEX = 4, 2


def app_epochs_per_second(epochs: int) -> float:
    # A data folder of its own: the run store would otherwise show the last round's run, not train it.
    # Storing the run it trains is part of what the app costs, and counted.
    os.environ["AE_DATA_DIR"] = tempfile.mkdtemp(prefix="app_overhead_")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=600).run()
    for key, value in (("mnist_index", MNIST_INDEX), ("cifar_index", CIFAR_INDEX), ("epochs", epochs)):
        at.number_input(key=key).set_value(value)
    at.run().button(key="train").click()
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(at.exception[0].message)
    run = at.session_state["run"]
    assert run.trainer.epochs_done == epochs and run.loaded_from is None, "trained, not shown from the store"
    return epochs / seconds


def core_epochs_per_second(epochs: int) -> float:
    experiment = Experiment(*load_pair("sample", MNIST_INDEX, CIFAR_INDEX))
    start = time.perf_counter()
    experiment.train(epochs)
    return epochs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    app, core = [], []
    for round_ in range(1, args.rounds + 1):
        app.append(app_epochs_per_second(args.epochs))
        core.append(core_epochs_per_second(args.epochs))
        print(f"round {round_}: app {app[-1]:,.0f} epochs/s, ae_core alone {core[-1]:,.0f} epochs/s", flush=True)
    app_rate, core_rate = statistics.median(app), statistics.median(core)
    print(
        f"median over {args.rounds} rounds of {args.epochs} epochs: app {app_rate:,.0f} epochs/s, ae_core "
        f"{core_rate:,.0f} epochs/s; the app costs {100 * (1 - app_rate / core_rate):.1f}% (bar: under 15%)"
    )


if __name__ == "__main__":
    main()
