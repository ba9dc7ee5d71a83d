"""Runs that last, headless with AppTest: settings from and into the page's link, runs opened from the
run store without training and continued exactly, the Runs page, and a store that cannot be used."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from streamlit.testing.v1 import AppTest
from test_app import APP, STUDY, record_train_calls, train

from ae_core import store
from ae_core.data import load_pair
from ae_core.experiment import Experiment

RUNS = "../pages/runs.py"


def open_link(page: str = APP, **query) -> AppTest:
    """A new browser session opening `page` with `query` in its address."""
    at = AppTest.from_file(page, default_timeout=120)
    at.query_params.update({name: str(value) for name, value in query.items()})
    return at.run()


def from_store_captions(at: AppTest) -> list[str]:
    return [caption.value for caption in at.caption if "From the run store" in caption.value]


def test_a_link_fills_the_settings_and_names_in_one_message_what_it_ignored():
    at = open_link(mnist=5, cifar="two", epochs=300, lr="2e-3", alpha=1.5, seed=7, colour="red")
    assert not at.exception
    values = {
        key: at.number_input(key=key).value for key in ("mnist_index", "cifar_index", "epochs", "lr", "alpha", "seed")
    }
    assert values == {"mnist_index": 5, "cifar_index": 0, "epochs": 300, "lr": 2e-3, "alpha": 0.5, "seed": 7}
    (message,) = [warning.value for warning in at.warning]
    assert "“colour” (not a setting of this page)" in message
    assert "cifar='two' (not a whole number)" in message and "alpha='1.5'" in message
    assert "mnist" not in message and "epochs" not in message
    assert not at.button(key="train").click().run().warning  # said once, not on every rerun


@pytest.mark.parametrize(
    "query, ignored",
    [
        ({"mnist": 10_000}, "mnist='10000' (not between 0 and"),
        ({"epochs": 0}, "epochs='0' (not between 1 and 100,000)"),
        ({"lr": "nan"}, "lr='nan' (learning rate must be a finite number above 0)"),
        ({"source": "imagenet"}, "source='imagenet' (not one of sample, train, test, upload)"),
        ({"source": "train", "mnist": 3}, "mnist='3' (MNIST (train) is not downloaded yet"),
    ],
)
def test_out_of_range_values_in_a_link_fall_back_to_the_defaults(query, ignored):
    at = open_link(**query)
    assert not at.exception
    assert any(ignored in warning.value for warning in at.warning), [w.value for w in at.warning]
    if "epochs" in query:
        assert at.number_input(key="epochs").value == 10_000


def test_the_address_follows_the_settings_and_never_carries_an_upload():
    at = open_link()
    at.number_input(key="mnist_index").set_value(4)
    at.number_input(key="lr").set_value(3e-3)
    at = at.run()
    assert at.query_params["mnist"] == "4" and at.query_params["lr"] == "0.003"
    assert at.query_params["epochs"] == "10000" and at.query_params["source"] == "sample"
    at = at.radio(key="source").set_value("upload").run()
    assert at.query_params["source"] == "upload" and "mnist" not in at.query_params
    assert any("never written to the run store" in caption.value for caption in at.caption)


def test_a_stored_run_opens_from_its_link_without_training_and_train_continues_it_exactly(monkeypatch):
    at = open_link(mnist=2, epochs=40)
    train(at)
    calls = record_train_calls(monkeypatch)
    again = open_link(mnist=2, epochs=40)  # a reload, a new tab, another browser
    assert not again.exception and calls == []
    assert "Results after 40 epochs" in again.subheader[0].value
    assert len(from_store_captions(again)) == 1 and "nothing was trained again" in from_store_captions(again)[0]
    again.number_input(key="epochs").set_value(90)
    again = train(again.run())
    assert calls == [(40, 90)] and not from_store_captions(again)
    straight = Experiment(*load_pair("sample", 2, 0)).trainer
    straight.train(90)
    assert np.array_equal(again.session_state["run"].trainer.losses, straight.losses.numpy())
    (row,) = store.RunStore().runs()
    assert row.epochs == 90  # the continued run replaced the stored one


def test_a_stored_study_opens_from_its_link_without_training(monkeypatch):
    at = open_link(STUDY, pairs=2, epochs=20, seed=3)
    at = at.button(key="study_run").click().run()
    calls = record_train_calls(monkeypatch)
    again = open_link(STUDY, pairs=2, epochs=20, seed=3)
    assert not again.exception and calls == [] and "Run continues it" in from_store_captions(again)[0]
    assert "2 pairs after 20 epochs" in again.subheader[0].value


def cli_run(*args) -> None:
    done = subprocess.run([sys.executable, "-m", "ae_core", *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_runs_page_lists_compares_and_opens_what_the_cli_trained(monkeypatch):
    cli_run("run", "--mnist-index", "1", "--cifar-index", "4", "--epochs", "30")
    cli_run("study", "--pairs", "2", "--epochs", "20")
    at = AppTest.from_file(RUNS, default_timeout=120).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["Data"]) == ["2 pairs of sample", "sample 1 + 4"] and list(table["Epochs"]) == [20, 30]
    link = table["Open"][1]
    assert link.startswith("./?") and "mnist=1" in link and "cifar=4" in link

    at.session_state["runs_table"] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    at = at.run()
    assert not at.exception and at.subheader[0].value == "2 runs side by side"
    compared = at.dataframe[1].value
    assert list(compared["Run"])[-1] == "The seed's table" and len(compared) == 3
    assert len(at.get("plotly_chart")) == 2

    calls = record_train_calls(monkeypatch)
    opened = open_link(**dict(part.split("=") for part in link.removeprefix("./?").split("&")))
    assert calls == [] and from_store_captions(opened) and "Results after 30 epochs" in opened.subheader[0].value


def test_deleting_from_the_runs_page_is_off_unless_the_operator_turns_it_on(monkeypatch):
    cli_run("run", "--mnist-index", "1", "--cifar-index", "4", "--epochs", "5")
    at = AppTest.from_file(RUNS, default_timeout=120).run()
    at.session_state["runs_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at = at.run()
    assert not [button for button in at.button if button.key == "runs_delete"]
    assert any("AE_ALLOW_RUN_DELETE=1" in caption.value for caption in at.caption)
    monkeypatch.setenv("AE_ALLOW_RUN_DELETE", "1")
    at = at.run()
    at = at.button(key="runs_delete").click().run()
    assert not at.exception and store.RunStore().runs() == []


def test_a_corrupt_store_is_moved_aside_with_one_message_and_runs_are_kept_again():
    path = store.store_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database" * 1000)
    at = open_link(epochs=20)
    (message,) = [warning.value for warning in at.warning]
    assert "moved aside" in message
    at = train(at)
    assert not at.warning and store.RunStore().runs()[0].epochs == 20


def test_a_store_that_cannot_be_written_leaves_the_app_training_and_says_so_once(tmp_path, monkeypatch):
    (tmp_path / "not a folder").write_text("")
    monkeypatch.setenv("AE_DATA_DIR", str(tmp_path / "not a folder"))
    at = open_link(epochs=20)
    assert [w.value for w in at.warning if "Runs are not being kept" in w.value]
    at = train(at)
    assert not at.exception and not at.warning and "Results after 20 epochs" in at.subheader[0].value
    assert os.path.isfile(tmp_path / "not a folder")
