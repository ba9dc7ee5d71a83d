"""The probe: a trained network on inputs it never trained on, scored as the experiment scores."""

import json
import math
import os

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_app import STUDY, open_app, run_study, train
from test_cli import run_cli

from ae_core import Experiment, load_pair, probe
from ae_core.metrics import quality
from ae_core.mixing import mix, unmix
from ae_core.study import Study


@pytest.fixture(scope="module")
def trained():
    experiment = Experiment(*load_pair("sample", 3, 0))
    experiment.train(300)
    return experiment


def test_each_row_is_the_networks_output_for_its_input_scored_as_the_experiment_scores(trained):
    unseen = probe.unseen_pairs("sample", 4, seed=1, trained=[(3, 0)])
    rows = probe.probe_pair(trained, unseen, other_alpha=0.3)
    assert [row.kind for row in rows] == ["trained pair"] + ["unseen pair"] * 4 + ["other α"] + ["original alone"] * 2
    assert all(m.index != 3 and c.index != 0 for m, c in unseen)  # no image of the trained pair
    own = rows[0]
    # The plain model with the trained weights gives what the engine gives, within rounding.
    assert np.allclose(own.reconstruction, trained.trainer.reconstruction().numpy(), atol=1e-5)
    for row in rows:
        assert row.fit == quality(row.input, row.reconstruction)
        if row.pair is not None:
            mnist, cifar, alpha = row.pair.mnist.image, row.pair.cifar.image, row.pair.alpha
            assert np.array_equal(row.input, mix(mnist, cifar, alpha))
            unmixed_mnist, _ = unmix(row.reconstruction, mnist, cifar, alpha)
            assert row.pair.quality["mnist"] == quality(mnist, unmixed_mnist)
    assert rows[5].pair.alpha == 0.3 and rows[6].input is trained.mnist.image
    # Memorized, not learned: every unseen pair comes back far worse than the trained one.
    assert max(row.pair.quality["mnist"].psnr for row in rows[1:5]) < own.pair.quality["mnist"].psnr - 5


def test_unseen_pairs_are_the_same_for_the_same_seed_and_bad_counts_are_refused():
    first = probe.unseen_pairs("sample", 6, seed=4, trained=[(0, 0)])
    assert [(m.index, c.index) for m, c in first] == [
        (m.index, c.index) for m, c in probe.unseen_pairs("sample", 6, 4, [(0, 0)])
    ]
    for count in (0, 65, 2.5):
        with pytest.raises(ValueError, match="from 1 to 64"):
            probe.unseen_pairs("sample", count, 0, [])


def test_a_probe_before_any_training_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="nothing is trained yet"):
        probe.probe_pair(Experiment(*load_pair("sample", 0, 0)), [])


def test_a_study_probe_scores_each_network_on_its_own_pair_as_the_study_does():
    study = Study("sample", 3, seed=1)
    study.train(200)
    probed = probe.probe_study(study, 5, seed=2)
    own = [result.quality["mnist"].psnr for result in study.results()]
    assert probed.trained_psnr == pytest.approx(own, abs=1e-3)  # the plain model against the engine
    assert len(probed.unseen_psnr) == 3 and all(len(scores) == 5 for scores in probed.unseen_psnr)
    trained_indices = set(study.indices)
    assert not {(m.index, c.index) for m, c in probed.unseen} & trained_indices
    # Its fast PSNR is scikit-image's, for one of them recomputed the slow way.
    (m, c), network = probed.unseen[0], probe.network(study.trainer, 1)
    output = probe.reconstruct(network, mix(m.image, c.image, study.alpha)[None])[0]
    unmixed, _ = unmix(output, m.image, c.image, study.alpha)
    # (within rounding: a batch of one convolves in another order than a batch of five)
    assert math.isclose(probed.unseen_psnr[1][0], quality(m.image, unmixed).psnr, rel_tol=1e-6)
    assert probed.gap_db > 3


def test_the_probe_command_prints_the_gap_and_writes_every_unseen_pair(tmp_path):
    report = tmp_path / "probe.json"
    args = ["--mnist-index", "3", "--cifar-index", "0", "--epochs", "200", "--unseen", "4"]
    done = run_cli("probe", *args, "--other-alpha", "0.3", "--seed", "2", "--json", str(report))
    assert done.returncode == 0, done.stderr
    assert "unseen pair" in done.stdout and "better on the pair it trained on" in done.stdout
    saved = json.loads(report.read_text())
    assert saved["epochs_done"] == 200 and saved["settings"]["mnist_index"] == 3
    assert {"mnist", "cifar", "mixed"} <= set(saved["trained"]) and len(saved["unseen"]) == 4
    assert all({"mnist_index", "cifar_index", "mnist", "cifar"} <= set(pair) for pair in saved["unseen"])
    assert saved["other_alpha"][0]["alpha"] == 0.3 and len(saved["alone"]) == 2
    # The same weights and pairs give the same numbers as the library's probe.
    experiment = Experiment(*load_pair("sample", 3, 0), seed=2)
    experiment.train(200)
    rows = probe.probe_pair(experiment, probe.unseen_pairs("sample", 4, 2, [(3, 0)]))
    assert [pair["mnist"]["psnr"] for pair in saved["unseen"]] == pytest.approx(
        [row.pair.quality["mnist"].psnr for row in rows if row.kind == "unseen pair"], rel=1e-9
    )


@pytest.mark.parametrize(
    "args, says",
    [
        (["--unseen", "0"], "from 1 to 64"),
        (["--unseen", "65"], "from 1 to 64"),
        (["--other-alpha", "1.5"], "between 0 and 1"),
    ],
)
def test_bad_probe_input_ends_with_one_line_and_no_traceback(args, says):
    done = run_cli("probe", "--mnist-index", "0", "--cifar-index", "0", "--epochs", "5", *args)
    assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr


def test_mix_and_train_probes_the_trained_network_and_refuses_a_bad_alpha():
    at = train(open_app(epochs=100))
    at = at.toggle(key="probe_on").set_value(True).run()
    assert not at.exception
    probe_table = at.dataframe[-1].value
    assert list(probe_table["Input"]) == ["trained pair"] + ["unseen pair"] * 3 + ["other α"] + ["original alone"] * 2
    at = at.number_input(key="probe_alpha").set_value(1.0).run()
    assert any("strictly between 0 and 1" in error.value for error in at.error) and not at.exception


def test_a_probe_whose_process_fails_says_so_and_keeps_the_run(monkeypatch):
    at = train(open_app(epochs=50))
    monkeypatch.setattr(probe, "network_outputs", os.getpid)  # called with a trainer in the child: a TypeError there
    at = at.toggle(key="probe_on").set_value(True).run()
    assert any("training process failed (TypeError" in error.value for error in at.error), at.error
    assert not at.exception and at.session_state["run"].trainer.epochs_done == 50


def test_the_batch_study_states_the_gap_between_trained_and_unseen_pairs():
    at = run_study(AppTest.from_file(STUDY, default_timeout=120).run(), study_pairs=3, study_epochs=100)
    at = at.toggle(key="study_probe_on").set_value(True).run()
    assert not at.exception
    (gap,) = [m.value for m in at.markdown if "a gap of" in m.value]
    assert "on 16 pairs it never saw" in gap


def test_the_probe_takes_chosen_pairs_and_refuses_malformed_or_missing_ones():
    at = train(open_app(epochs=50))
    at = at.toggle(key="probe_on").set_value(True).run()
    at = at.text_input(key="probe_pairs").set_value("5/3, 12/7").run()
    assert not at.exception
    table = at.dataframe[-1].value
    assert list(table["Images"])[1:3] == ["MNIST #5 (5) + CIFAR-10 #3 (airplane)", "MNIST #12 (2) + CIFAR-10 #7 (frog)"]
    for typed, says in (("5-3", "MNIST index/CIFAR-10 index"), ("5/300", "0 to 19")):
        at = at.text_input(key="probe_pairs").set_value(typed).run()
        assert any(says in error.value for error in at.error), [e.value for e in at.error]
        assert not at.exception
