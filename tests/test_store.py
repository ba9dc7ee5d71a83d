"""The run store: what goes in comes back, training goes on bit for bit, and no fault loses more than one run."""

import io
import json
import signal
import sqlite3
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from ae_core import Experiment, load_pair, store
from ae_core.data import MNIST, sample_from_upload
from ae_core.study import Study
from tests.conftest import ROOT


@pytest.fixture
def runs(tmp_path):
    return store.RunStore(tmp_path / "runs.sqlite")


def trained_pair(epochs: int = 30, seed: int = 0, lr: float = 1e-3) -> Experiment:
    experiment = Experiment(*load_pair("sample", 3, 0), lr=lr, seed=seed)
    experiment.train(epochs)
    return experiment


def test_a_stored_run_comes_back_whole_and_trains_on_bit_for_bit(runs):
    uninterrupted, stopped = trained_pair(), trained_pair()
    uninterrupted.train(50)  # the Stop's epoch is a frame of the stored run's timeline and not of this one's
    stored = runs.put(stopped, target_epochs=100)
    assert stored.settings == store.settings_of(stopped) and stored.id == store.run_id(stored.settings)
    assert (stored.epochs, stored.target_epochs, stored.status) == (30, 100, "finished")
    (result,) = stopped.results()
    assert stored.scores["mnist_psnr"] == result.quality["mnist"].psnr
    assert stored.scores["cifar_ssim"] == result.quality["cifar"].ssim

    loaded = runs.load(runs.find(stored.settings))
    assert_same_state(stopped.trainer.saved_state(), loaded.trainer.saved_state())
    loaded.train(200)
    uninterrupted.train(200)
    assert torch.equal(loaded.trainer.losses, uninterrupted.trainer.losses)
    assert torch.equal(loaded.trainer.engine.params, uninterrupted.trainer.engine.params)


def assert_same_state(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert np.array_equal(value, after[key]), key


def test_a_run_the_app_stored_comes_back_to_a_trainer_in_a_child_process_and_trains_on_alike(runs):
    uninterrupted = trained_pair()
    stopped = Experiment(*load_pair("sample", 3, 0), in_child_process=True)
    stopped.train(30)
    loaded = runs.load(runs.put(stopped, target_epochs=100), in_child_process=True)
    assert_same_state(stopped.trainer.saved_state(), loaded.trainer.saved_state())
    loaded.train(80)
    uninterrupted.train(80)
    assert np.array_equal(loaded.trainer.losses, uninterrupted.trainer.losses.numpy())
    assert np.array_equal(loaded.trainer.saved_state()["params"], uninterrupted.trainer.saved_state()["params"])


def test_a_run_stored_in_torch_save_format_by_an_earlier_version_still_loads(runs):
    """The store wrote torch.save's format before the server held trainers as numpy arrays."""
    experiment = trained_pair()
    stored = runs.put(experiment, target_epochs=30)
    state = experiment.trainer.saved_state()
    as_before = {
        "epochs_done": len(state["losses"]),
        "diverged": {},
        "steps_done": state["steps_done"],
        "status": state["status"],
        "message": state["message"],
        "train_seconds": state["train_seconds"],
        "kept_weights": {},
        "losses": torch.from_numpy(state["losses"]),
        **{name: torch.from_numpy(state[name]) for name in ("params", "exp_avg", "exp_avg_sq")},
        "frame_epochs": state["frame_epochs"].tolist(),
        "frame_outputs": [torch.from_numpy(outputs) for outputs in state["frame_outputs"]],
    }
    blob = io.BytesIO()
    torch.save(as_before, blob)
    with sqlite3.connect(runs.path) as connection:
        connection.execute("UPDATE runs SET state = ?", (blob.getvalue(),))
    assert_same_state(state, runs.load(stored).trainer.saved_state())


def test_writes_left_to_the_background_land_in_order_before_any_later_read(runs):
    experiment = trained_pair(10)
    for epochs in (20, 30, 40):
        experiment.train(epochs)
        assert runs.put(experiment, epochs, in_background=True) is None
    (stored,) = runs.runs()
    assert (stored.epochs, stored.target_epochs) == (40, 40)  # the last asked for, not one of the earlier
    assert np.array_equal(runs.load(stored).trainer.losses.numpy(), experiment.trainer.losses.numpy())


def test_a_row_written_before_network_sizes_were_settings_opens_as_the_seeds_network(runs):
    stored = runs.put(trained_pair(epochs=5), target_epochs=5)
    older = {key: value for key, value in stored.settings.items() if key not in ("latent_channels", "width")}
    with sqlite3.connect(runs.path) as connection:
        connection.execute("UPDATE runs SET settings = ?", (json.dumps(older),))
    (listed,) = runs.runs()
    assert (listed.settings["latent_channels"], listed.settings["width"]) == (64, 1.0)
    assert runs.load(listed).trainer.epochs_done == 5


def test_a_study_comes_back_and_trains_on_bit_for_bit(runs):
    study = Study("sample", 3, seed=2)
    study.train(20)
    loaded = runs.load(runs.put(study, 20))
    study.train(40)
    loaded.train(40)
    assert loaded.indices == study.indices
    assert torch.equal(loaded.trainer.losses, study.trainer.losses)


def test_the_same_settings_replace_their_row_and_the_newest_training_comes_first(runs):
    first = runs.put(trained_pair(10), 10)
    runs.put(trained_pair(10, seed=1), 10)
    again = runs.put(trained_pair(20), 20)
    assert again.id == first.id
    assert [(run.settings["seed"], run.epochs) for run in runs.runs()] == [(0, 20), (1, 10)]


def test_past_the_cap_the_least_recently_used_runs_go_first(tmp_path):
    one_run = store.RunStore(tmp_path / "probe.sqlite").put(trained_pair(2), 2).bytes
    runs = store.RunStore(tmp_path / "runs.sqlite", cap_mb=3.5 * one_run / 1e6)
    oldest, least_recently_used, _ = (runs.put(trained_pair(2, seed=seed), 2) for seed in range(3))
    runs.load(oldest)  # now the most recently used
    runs.put(trained_pair(2, seed=3), 2)
    assert {run.settings["seed"] for run in runs.runs()} == {0, 2, 3}
    assert least_recently_used.id not in {run.id for run in runs.runs()}


def test_a_run_larger_than_the_whole_cap_is_refused_with_its_size(tmp_path):
    runs = store.RunStore(tmp_path / "runs.sqlite", cap_mb=1)
    with pytest.raises(store.NotKept, match=r"larger than the run store's cap of 1 MB"):
        runs.put(trained_pair(2), 2)
    assert runs.on and runs.runs() == []


def test_uploads_and_diverged_runs_are_never_kept(runs):
    png = io.BytesIO()
    Image.new("L", (28, 28), 128).save(png, "PNG")
    uploaded = Experiment(sample_from_upload(png.getvalue(), MNIST), load_pair("sample", 3, 0)[1])
    uploaded.train(2)
    with pytest.raises(store.NotKept, match="uploaded images"):
        runs.put(uploaded, 2)
    diverged = trained_pair(5, lr=1e30)
    assert diverged.trainer.status == "diverged"
    with pytest.raises(store.NotKept, match="did not diverge"):
        runs.put(diverged, 5)
    assert runs.runs() == []


def test_eight_threads_storing_at_once_lose_nothing(runs):
    jobs = [trained_pair(2, seed=seed) for seed in range(8)]
    threads = [threading.Thread(target=runs.put, args=(job, 2)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert runs.on, runs.problem
    assert sorted(run.settings["seed"] for run in runs.runs()) == list(range(8))


_WRITE_FOREVER = """
import sys
from ae_core import Experiment, load_pair, store
runs = store.RunStore(sys.argv[1])
for seed in range(100, 10_000):
    experiment = Experiment(*load_pair("sample", 1, 1), seed=seed)
    experiment.train(1)
    runs.put(experiment, 1)
    print(seed, flush=True)
"""


def test_a_process_killed_while_it_writes_loses_that_run_only(runs):
    kept = [runs.put(trained_pair(3, seed=seed), 3) for seed in range(2)]
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITE_FOREVER, str(runs.path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    for _ in range(3):  # a few writes done: it is now somewhere in the middle of another
        writer.stdout.readline()
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    reopened = store.RunStore(runs.path)
    assert reopened.on and not reopened.notice
    with sqlite3.connect(runs.path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    listed = reopened.runs()
    assert {run.id for run in kept} <= {run.id for run in listed} and len(listed) >= 5
    for run in listed:
        assert reopened.load(run).trainer.epochs_done == run.epochs


@pytest.mark.parametrize(
    "damage, why",
    [
        (lambda path: path.write_bytes(b"these are not the runs you are looking for" * 100), "unreadable"),
        (lambda path: sqlite3.connect(path).execute("CREATE TABLE photos (x)").connection.commit(), "not a run store"),
        (
            lambda path: sqlite3.connect(path).execute("UPDATE schema_version SET version = 99").connection.commit(),
            "schema version 99",
        ),
    ],
    ids=["corrupt", "foreign", "newer schema"],
)
def test_a_file_that_is_not_this_store_is_moved_aside_and_a_fresh_store_started(tmp_path, damage, why):
    path = tmp_path / "runs.sqlite"
    if "schema" in why:
        store.RunStore(path).put(trained_pair(2), 2)
    damage(path)
    runs = store.RunStore(path)
    assert runs.on and why in runs.notice and "moved aside" in runs.notice
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("runs.sqlite.") and p.name.endswith(".aside")]
    assert len(aside) == 1
    assert runs.runs() == []
    assert runs.put(trained_pair(2), 2) is not None


def test_a_folder_that_cannot_be_written_turns_the_store_off_and_says_why(tmp_path):
    (tmp_path / "a file").write_text("")
    runs = store.RunStore(tmp_path / "a file" / "runs.sqlite")
    assert not runs.on and "Runs are not being kept" in runs.problem
    assert runs.put(trained_pair(2), 2) is None and runs.runs() == [] and runs.find({"kind": "pair"}) is None


def test_a_full_disk_turns_the_store_off_and_keeps_what_it_had(runs, monkeypatch):
    kept = runs.put(trained_pair(2), 2)
    connect = store.RunStore._connect

    def nearly_full(self):
        connection = connect(self)
        connection.execute("PRAGMA max_page_count = 10")
        return connection

    monkeypatch.setattr(store.RunStore, "_connect", nearly_full)
    assert runs.put(trained_pair(2, seed=1), 2) is None
    assert "full" in runs.problem
    monkeypatch.undo()
    assert [run.id for run in store.RunStore(runs.path).runs()] == [kept.id]


def test_the_cap_comes_from_the_environment_and_zero_turns_the_store_off(monkeypatch, tmp_path):
    monkeypatch.setenv("AE_STORE_MB", "0")
    assert not store.RunStore(tmp_path / "runs.sqlite").on
    monkeypatch.setenv("AE_STORE_MB", "lots")
    with pytest.raises(ValueError, match="AE_STORE_MB"):
        store.cap_mb_from_environment()
