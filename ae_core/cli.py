"""Command line: `python -m ae_core run|study|sweep|probe|bench|runs ...`. Bad input ends with one line on stderr
and exit 2.

`run` and `study` keep what they train in the run store (store.py; `--no-store` skips it) and print
the run's id; a run already stored with the same settings and no more epochs than asked is continued
from where it stopped, not trained again. `runs list|show|export|delete` reads the store.

On a terminal, training shows a progress bar (tqdm: epochs, rate, time left, loss; none with `--quiet`
or when stderr is not a terminal). Ctrl-C stops training at its next step and keeps what was learned:
the table so far is printed, `--json` written with `"stopped": true`, and the exit status is 130. A
second Ctrl-C ends the program at once.
"""

import argparse
import json
import math
import signal
import sys
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from . import bench, data, native, probe, reporting, store
from .architecture import LATENT_CHANNELS, SEED_ARCHITECTURE, WIDTHS, Architecture
from .experiment import Experiment
from .mixing import SEED_ALPHA
from .progress import STOPPED, Progress
from .settings import ENGINES, SEED_EPOCHS, SEED_LR, check_epochs, check_lr
from .study import MAX_PAIRS, Study, check_pairs, summarize
from .sweep import SWEEPABLE, Sweep, parse_values

INTERRUPTED = 130  # the exit status of a program ended by SIGINT, as shells report it


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        return check_epochs(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}") from None


def _learning_rate(text: str) -> float:
    try:
        return check_lr(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}") from None


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text!r}")
    return value


def _pairs(text: str) -> int:
    try:
        return check_pairs(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_PAIRS}, got {text!r}") from None


def _unseen(text: str) -> int:
    try:
        return probe.check_unseen(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {probe.MAX_UNSEEN}, got {text!r}") from None


def _add_training_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--source",
        choices=list(data.SOURCES),
        default="sample",
        help="sample: embedded pack; train/test: full datasets (downloaded with --download)",
    )
    command.add_argument("--download", action="store_true", help="fetch the full datasets first if missing")
    command.add_argument("--epochs", type=_positive_int, default=SEED_EPOCHS)
    command.add_argument("--lr", type=_learning_rate, default=SEED_LR)
    command.add_argument("--seed", type=int, default=0)
    command.add_argument("--alpha", type=_alpha, default=SEED_ALPHA)
    command.add_argument(
        "--engine",
        choices=list(ENGINES),
        default="fast",
        help="fast: the hand-written engine (the seed's width, any latent size; other widths train grouped); grouped: "
        "grouped convolutions with autograd (grouped_stack.py); reference: plain PyTorch, the yardstick",
    )
    command.add_argument(
        "--latent-channels",
        type=int,
        choices=LATENT_CHANNELS,
        default=SEED_ARCHITECTURE.latent_channels,
        help="the bottleneck's channels (the seed's: 64)",
    )
    command.add_argument(
        "--width", type=float, choices=WIDTHS, default=SEED_ARCHITECTURE.width, help="x the seed's 16 and 32 channels"
    )
    command.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_store_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--no-store",
        action="store_true",
        help="neither continue a stored run of these settings nor store this one (the run store: $AE_DATA_DIR)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m ae_core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="train one pair and print the seed's table")
    run.add_argument("--mnist-index", type=int, required=True)
    run.add_argument("--cifar-index", type=int, required=True)
    _add_training_options(run)
    _add_store_option(run)
    run.add_argument("--json", metavar="PATH", help="write settings, metrics and the loss history")
    run.add_argument("--save-images", metavar="PATH.npz", help="write the six images as float32 arrays")

    study = commands.add_parser("study", help="train K random pairs side by side; the seed's table as distributions")
    study.add_argument("--pairs", type=_pairs, required=True, help=f"how many pairs, 1 to {MAX_PAIRS}")
    _add_training_options(study)
    _add_store_option(study)
    study.add_argument("--json", metavar="PATH", help="write settings, every pair's scores and the summary")

    sweep = commands.add_parser("sweep", help="the same pairs at several learning rates or epoch counts")
    sweep.add_argument("--pairs", type=_pairs, required=True, help=f"how many pairs, 1 to {MAX_PAIRS}")
    sweep.add_argument("--over", choices=list(SWEEPABLE), required=True, help="the setting to vary")
    sweep.add_argument("--values", nargs="+", required=True, metavar="V", help="its values, e.g. 3e-4 1e-3 3e-3")
    _add_training_options(sweep)
    sweep.add_argument("--json", metavar="PATH", help="write settings and every value's scores per pair")

    probing = commands.add_parser("probe", help="train one pair, then run its network on pairs it never saw")
    probing.add_argument("--mnist-index", type=int, required=True)
    probing.add_argument("--cifar-index", type=int, required=True)
    _add_training_options(probing)
    _add_store_option(probing)
    probing.add_argument(
        "--unseen", type=_unseen, default=16, help=f"how many unseen pairs, 1 to {probe.MAX_UNSEEN} (default 16)"
    )
    probing.add_argument("--other-alpha", type=_alpha, help="also the trained pair mixed at this α")
    probing.add_argument("--json", metavar="PATH", help="write the trained pair's metrics and each unseen pair's")

    speed = commands.add_parser("bench", help="compare training speed with the plain notebook loop")
    speed.add_argument("--epochs", type=_positive_int, default=1000)
    speed.add_argument("--rounds", type=_positive_int, default=5)
    speed.add_argument(
        "--pairs",
        type=_pairs,
        nargs="+",
        metavar="K",
        help="instead: a study of K pairs against the plain loop on the same pairs in turn",
    )
    runs = commands.add_parser("runs", help="the run store: list, show, export or delete stored runs")
    actions = runs.add_subparsers(dest="action", required=True, parser_class=_Parser)
    listing = actions.add_parser("list", help="every stored run, the newest first")
    listing.add_argument("--json", action="store_true", help="as JSON instead of a table")
    for action, description in (("show", "a run's settings and table"), ("delete", "remove a run from the store")):
        actions.add_parser(action, help=description).add_argument("id", help="a run's id, or its first digits")
    export = actions.add_parser("export", help="write the files the app offers for a run")
    export.add_argument("id", help="a run's id, or its first digits")
    export.add_argument("--out", required=True, metavar="DIR", help="the folder to write them to (made if missing)")
    return parser


def _download_progress(what: str, done: int, total: int) -> None:
    share = f"{100 * done / total:5.1f}%" if total else f"{done / 1e6:.1f} MB"
    print(f"\rdownloading {what}: {share}", end="", file=sys.stderr, flush=True)


def _download_if_asked(args) -> None:
    if args.source != "sample" and args.download:
        for dataset in data.DATASETS:
            data.download(dataset, on_progress=_download_progress)
        print(file=sys.stderr)


class _Terminal:
    """A command as its terminal sees it: a progress bar per call of `train()`, and Ctrl-C. While the
    command trains (`training()`), a first Ctrl-C asks training to stop at its next step
    (`stop_requested`); a second one, or one at any other time, ends the command at once
    (KeyboardInterrupt). The handler stays for the whole command, so that no Ctrl-C falls between
    two of them to Python's default."""

    def __init__(self, quiet: bool) -> None:
        self.show_bar = not quiet and sys.stderr.isatty()
        self.stop_requested = self._training = False
        self._bar, self._bar_label = None, ""

    def progress(self, label: str, unit: str = "epoch"):
        """An `on_progress` for one call of `train()`: a tqdm bar on stderr, closed at the last epoch."""
        if not self.show_bar:
            return None

        def show(progress: Progress) -> None:
            if self._bar is None or (self._bar_label, self._bar.total) != (label, progress.target_epochs):
                self._close_bar()
                self._bar = tqdm(total=progress.target_epochs, desc=label, unit=unit, file=sys.stderr)
                self._bar_label = label
            self._bar.update(progress.epoch - self._bar.n)
            self._bar.set_postfix_str(f"loss {progress.loss:.3e}", refresh=False)
            if progress.epoch >= progress.target_epochs:
                self._close_bar()

        return show

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def should_stop(self) -> bool:
        return self.stop_requested

    @contextmanager
    def handling_ctrl_c(self):
        def request_stop(signum, frame) -> None:
            if self.stop_requested or not self._training:
                raise KeyboardInterrupt
            self.stop_requested = True
            print("\nStopping at the next step (Ctrl-C again to quit at once)", file=sys.stderr, flush=True)

        previous = signal.signal(signal.SIGINT, request_stop)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)
            self._close_bar()

    @contextmanager
    def training(self):
        self._training = True
        try:
            yield
        finally:
            self._training = False
            self._close_bar()


def _architecture(args) -> Architecture:
    return Architecture(args.latent_channels, args.width)


def _where(trainer) -> str:
    """Which network, where and with which engine `trainer` trains, and why not with the fast one
    where it cannot."""
    where = (
        f"on {trainer.engine.device} with the {trainer.engine.name} engine\nnetwork: {trainer.architecture.describe()}"
    )
    return f"{where}\n{trainer.engine_note}" if trainer.engine_note else where


def _stored_or_new(args, settings: dict, new_job):
    """The run store (None with --no-store) and the job to train: the stored run of `settings` where
    it has no more epochs than asked, else `new_job()`."""
    if args.no_store:
        return None, new_job()
    runs = store.RunStore()
    found = runs.find(settings)
    if found is not None and found.epochs <= args.epochs:
        job = runs.load(found)
        if job is not None:
            print(f"Continuing stored run {found.id} from epoch {found.epochs}")
            return runs, job
    if found is not None:
        print(
            f"Run {found.id} of these settings is stored at {found.epochs} epochs, more than asked: "
            "training afresh, not storing."
        )
        return None, new_job()
    if runs.problem:
        print(runs.problem, file=sys.stderr)
    return runs, new_job()


def _keep(runs: "store.RunStore | None", job, target_epochs: int, results) -> None:
    if runs is None:
        return
    try:
        stored = runs.put(job, target_epochs, results)
    except store.NotKept as why:
        print(f"Not stored: {why}.")
        return
    if stored is None:
        print(runs.problem, file=sys.stderr)
    else:
        print(f"Stored as run {stored.id} in {runs.path}")


def _run(args, terminal: _Terminal) -> str:
    _download_if_asked(args)
    mnist, cifar = data.load_pair(args.source, args.mnist_index, args.cifar_index)
    network = {"engine": args.engine, "architecture": _architecture(args)}
    settings = store.pair_settings(args.source, mnist.index, cifar.index, args.alpha, args.lr, args.seed, **network)
    runs, experiment = _stored_or_new(
        args,
        settings,
        lambda: Experiment(mnist, cifar, alpha=args.alpha, lr=args.lr, seed=args.seed, **network),
    )
    print(
        f"Training on the mix of {mnist.caption} and {cifar.caption} (alpha {args.alpha:g}) for "
        f"{args.epochs} epochs, lr {args.lr:g}, seed {args.seed}, {_where(experiment.trainer)}"
    )
    with terminal.training():
        status = experiment.train(args.epochs, on_progress=terminal.progress("run"), should_stop=terminal.should_stop)
    result = experiment.result()
    _print_pair(experiment, result)
    if args.command == "run" and args.json:
        with open(args.json, "w") as out:
            json.dump(reporting.report(experiment, result, args.epochs), out, indent=1)
    if getattr(args, "save_images", None):
        reporting.save_images(args.save_images, result)
    _keep(runs, experiment, args.epochs, [result])
    args.experiment = experiment
    return status


def _probe(args, terminal: _Terminal) -> str:
    status = _run(args, terminal)
    experiment = args.experiment
    unseen = probe.unseen_pairs(args.source, args.unseen, args.seed, [(experiment.mnist.index, experiment.cifar.index)])
    rows = probe.probe_pair(experiment, unseen, args.other_alpha)
    print(reporting.format_probe(rows))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(reporting.probe_report(experiment, rows), out, indent=1)
    return status


def _print_pair(experiment: Experiment, result) -> None:
    trainer = experiment.trainer
    print(
        f"{trainer.status}: {trainer.epochs_done} epochs in {trainer.train_seconds:.1f} s, "
        f"final loss {trainer.loss_history[-1]:.3g}"
        if trainer.loss_history
        else trainer.status
    )
    if trainer.message:
        print(trainer.message)
    print(reporting.format_table(result))


def _study(args, terminal: _Terminal) -> str:
    _download_if_asked(args)
    network = {"engine": args.engine, "architecture": _architecture(args)}
    settings = store.study_settings(args.source, args.pairs, args.alpha, args.lr, args.seed, **network)
    runs, study = _stored_or_new(
        args,
        settings,
        lambda: Study(args.source, args.pairs, alpha=args.alpha, lr=args.lr, seed=args.seed, **network),
    )
    print(
        f"Training {args.pairs} pairs from the {args.source} source side by side for {args.epochs} epochs, "
        f"lr {args.lr:g}, alpha {args.alpha:g}, seed {args.seed}, {_where(study.trainer)}"
    )
    with terminal.training():
        status = study.train(
            args.epochs, on_progress=terminal.progress(f"{args.pairs} pairs"), should_stop=terminal.should_stop
        )
    results = study.results()
    _print_study(study, results)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(reporting.study_report(study, results, summarize(results), args.epochs), out, indent=1)
    _keep(runs, study, args.epochs, results)
    return status


def _print_study(study: Study, results) -> None:
    print(f"{study.trainer.status}: {study.trainer.epochs_done} epochs in {study.trainer.train_seconds:.1f} s")
    if study.trainer.message:
        print(study.trainer.message)
    print(reporting.format_study_table(summarize(results), len(results)))
    print(reporting.format_seed_standing(reporting.seed_standing(results)))


def _sweep(args, terminal: _Terminal) -> str:
    _download_if_asked(args)
    sweep = Sweep(
        args.over,
        parse_values(args.over, " ".join(args.values)),
        args.source,
        args.pairs,
        epochs=args.epochs,
        lr=args.lr,
        alpha=args.alpha,
        seed=args.seed,
        engine=args.engine,
        architecture=_architecture(args),
    )
    held = [f"lr {args.lr:g}"] * (args.over != "lr") + [f"{args.epochs} epochs"] * (args.over != "epochs")
    if args.over != "latent":
        held.append(f"network {_architecture(args).describe()}")
    print(
        f"Sweeping {SWEEPABLE[args.over]} over {', '.join(f'{v:g}' for v in sweep.values)} for {args.pairs} "
        f"pairs from the {args.source} source ({', '.join(held)}, alpha {args.alpha:g}, seed {args.seed}, "
        f"{args.engine} engine)"
    )
    with terminal.training():

        def show(index: int, progress: Progress) -> None:
            terminal.progress(f"{SWEEPABLE[args.over]} {sweep.values[index]:g}")(progress)

        status = sweep.run(on_progress=show if terminal.show_bar else None, should_stop=terminal.should_stop)
    print(reporting.format_sweep_table(sweep))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(reporting.sweep_report(sweep), out, indent=1)
    return status


def _bench(args, terminal: _Terminal) -> None:
    print(f"engine's C kernel (AE_NATIVE=0 turns it off): {native.status()}")
    if args.pairs:
        for pairs in args.pairs:
            print(bench.format_study_speed(bench.compare_study_speed(pairs, args.epochs, args.rounds)))
    else:
        print(bench.format_speed(bench.compare_speed(args.epochs, args.rounds)))


def _runs(args, terminal: _Terminal) -> None:
    runs = store.RunStore()
    if runs.notice:
        print(runs.notice, file=sys.stderr)
    if runs.problem:
        raise OSError(runs.problem)
    if args.action == "list":
        listed = runs.runs()
        if args.json:
            print(json.dumps([asdict(run) for run in listed], indent=1))
        else:
            print(reporting.format_runs_table(listed) if listed else f"No runs stored in {runs.path}")
        return
    run = runs.get(args.id)
    if run is None:
        raise ValueError(f"no stored run has an id beginning with {args.id!r} (python -m ae_core runs list)")
    if args.action == "delete":
        runs.delete(run)
        print(f"Deleted run {run.id}")
        return
    job = runs.load(run)
    if args.action == "show":
        print(f"Run {run.id}, trained {reporting.when(run.trained_at)}: {json.dumps(run.settings)}")
        if run.kind == "study":
            _print_study(job, job.results())
        else:
            _print_pair(job, job.result())
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = job.results()
    files = (
        reporting.study_files(job, results, run.target_epochs)
        if run.kind == "study"
        else reporting.pair_files(job, results[0], run.target_epochs)
    )
    for file in files:
        content = file.make()
        (out / file.name).write_bytes(content.encode() if isinstance(content, str) else content)
        print(out / file.name)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"run": _run, "study": _study, "sweep": _sweep, "probe": _probe, "bench": _bench, "runs": _runs}
    command = commands[args.command]
    terminal = _Terminal(getattr(args, "quiet", True))
    try:
        with terminal.handling_ctrl_c():
            status = command(args, terminal)
    except (ValueError, IndexError, OSError, data.DataUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside training
        print("\ninterrupted", file=sys.stderr)
        return INTERRUPTED
    return INTERRUPTED if status == STOPPED else 0
