"""Every page headless with AppTest; Mix & Train trains, shows its results and refuses bad input."""

import io
import json
import math
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest
from test_data import write_cifar_batches, write_mnist_raw
from torchvision import datasets

import app_widgets
from ae_core import reporting
from ae_core.data import load_pair
from ae_core.experiment import Experiment
from ae_core.study import SCORES, Study, summarize
from ae_core.worker import RemoteTrainer
from tests.conftest import ROOT

APP = "../streamlit_app.py"  # AppTest resolves paths against this file


def open_app(**widgets) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    for key, value in widgets.items():
        at.number_input(key=key).set_value(value)
    return at.run()


def train(at: AppTest) -> AppTest:
    return at.button(key="train").click().run()


@pytest.mark.parametrize(
    "page",
    [
        "../pages/architecture.py",
        "../pages/method.py",
        "../pages/batch_study.py",
        "../pages/sweep.py",
        "../pages/runs.py",
        APP,
    ],
)
def test_every_page_opens_without_an_error(page):
    at = AppTest.from_file(page, default_timeout=60).run()
    assert not at.exception and not at.error


def test_method_page_explains_with_formulas():
    at = AppTest.from_file("../pages/method.py").run()
    assert len(at.latex) >= 5
    assert any("same number" in h.value for h in at.subheader)


def shown_metrics(quality: dict) -> list[tuple[str, str, str | None]]:
    """(label, value, delta) of each badge Mix & Train shows for these scores, column by column: the
    mixed input against each original under those originals, the fit under the reconstruction, each
    un-mixed image against its original under it."""

    def badges(label, q, baseline=None):
        return [
            (f"PSNR {label}".strip(), f"{q.psnr:.2f} dB", baseline and f"{q.psnr - baseline.psnr:+.1f} dB vs mix"),
            (f"SSIM {label}".strip(), f"{q.ssim:.4f}", baseline and f"{q.ssim - baseline.ssim:+.3f} vs mix"),
        ]

    return [
        *badges("(mix)", quality["mix_vs_mnist"]),
        *badges("(mix)", quality["mix_vs_cifar"]),
        *badges("", quality["mnist"], quality["mix_vs_mnist"]),
        *badges("", quality["cifar"], quality["mix_vs_cifar"]),
        *badges("(fit)", quality["mixed"]),
    ]


def test_mix_and_train_shows_the_pair_then_trains_and_scores_it():
    at = open_app(epochs=300, mnist_index=4, cifar_index=2)
    assert len(at.get("image")) == 3 and not at.metric
    # The charts the training will fill in, empty, the epoch axis set to the epochs asked for.
    assert chart_titles(at) == ["Training loss (MSE)", "Un-mixed images' scores"]
    (loss_chart, _) = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    assert loss_chart["layout"]["xaxis"]["range"] == [0, 300] and not loss_chart["data"][0]["x"]
    at = train(at)
    assert not at.exception and not at.error
    at.run()  # results survive a rerun
    assert len(at.get("image")) == 6
    # Each score once, as the same pair trained alone with the same settings scores it.
    expected = Experiment(*load_pair("sample", 4, 2))
    expected.train(300)
    shown = [(metric.label, metric.value, metric.delta or None) for metric in at.metric]
    assert shown == shown_metrics(expected.result().quality)
    assert all(math.isfinite(float(value.split()[0])) for _, value, _ in shown)
    assert "Results after 300 epochs" in at.subheader[0].value
    rows = at.dataframe[0].value
    assert list(rows["Dataset"]) == ["MNIST", "CIFAR-10", "Mixed input"] and rows["Seed PSNR (dB)"][0] == 44.5539
    assert len(at.get("download_button")) == 5 and len(at.get("plotly_chart")) == 2  # loss; scores against epoch


@pytest.mark.parametrize(
    "widgets, says",
    [
        ({"mnist_index": 200}, "from 0 to 199"),
        ({"mnist_index": -1}, "from 0 to 199"),
        ({"cifar_index": 20}, "from 0 to 19"),
        ({"epochs": 0}, "at least 1"),
        ({"epochs": 10**6}, "at most 100,000"),
        ({"lr": 0.0}, "above 0"),
        ({"lr": -0.01}, "above 0"),
        ({"alpha": 0.0}, "strictly between 0 and 1"),
        ({"alpha": 1.0}, "strictly between 0 and 1"),
    ],
)
def test_bad_input_shows_a_message_and_keeps_what_was_trained(widgets, says):
    at = train(open_app(epochs=50)).run()
    assert len(at.get("image")) == 6
    for key, value in widgets.items():
        at.number_input(key=key).set_value(value)
    at = train(at.run())
    assert not at.exception
    assert any(says in e.value for e in at.error), [e.value for e in at.error]
    assert len(at.get("image")) == 6 and "Results after 50 epochs" in at.subheader[0].value


def test_switching_to_a_source_that_is_not_downloaded_explains_and_offers_the_download():
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.radio(key="source").set_value("train").run()
    assert not at.exception
    assert any("not downloaded" in e.value for e in at.error)
    assert any(b.label.startswith("Download") for b in at.button)


def test_error_heat_maps_appear_under_the_three_reconstructions():
    at = train(open_app(epochs=50)).run()
    at.toggle(key="heatmaps").set_value(True).run()
    assert not at.exception and len(at.get("image")) == 9


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]


@pytest.fixture
def live_views_kept(monkeypatch):
    """Each live redraw in a container of its own that stays: AppTest sees only a script run's end,
    where the page has cleared its live view."""

    @contextmanager
    def live(share_done):
        yield st.progress(share_done), st.container()

    monkeypatch.setattr(app_widgets, "_live", live)


def test_mix_and_train_draws_the_images_scores_and_both_charts_while_it_trains(live_views_kept):
    at = train(open_app(epochs=6000))  # a second or more: time for a second redraw
    assert not at.exception
    # A live view after the first step, then about every LIVE_VIEW_EVERY_S: at least two before
    # the results, each with the six images, five captions of two scores and two charts; then the
    # results' ten badges. The charts to come, drawn before a first training, are not drawn by its run.
    titles = chart_titles(at)
    live_views = len(titles) // 2 - 1
    assert live_views >= 2 and titles == ["Training loss (MSE)", "Un-mixed images' scores"] * (live_views + 1)
    # The pair's three pictures above them are cleared once its results show them again.
    assert len(at.get("image")) == 6 * (live_views + 1)
    assert len(at.metric) == 10
    live_scores = [caption.value for caption in at.caption if caption.value.startswith("PSNR")]
    assert len(live_scores) == 5 * live_views
    # The first live view shows the network after its first step, scored as that network scores.
    first = Experiment(*load_pair("sample", 0, 0))
    first.train(1)
    badges = shown_metrics(first.result().quality)  # (label, value, delta): PSNR, then SSIM, per picture
    assert live_scores[:5] == [
        f"{psnr_label} **{psnr}**  \n{ssim_label} **{ssim}**"
        for (psnr_label, psnr, _), (ssim_label, ssim, _) in zip(badges[0::2], badges[1::2])
    ]


def test_live_views_pause_while_more_sessions_train_than_the_server_draws_for(live_views_kept, monkeypatch):
    monkeypatch.setattr(app_widgets._LiveViews, "training", app_widgets.MAX_LIVE_VIEWS)  # as if others train
    at = train(open_app(epochs=3000))
    assert not at.exception and "Results after 3,000 epochs" in at.subheader[0].value
    assert chart_titles(at) == ["Training loss (MSE)", "Un-mixed images' scores"]  # the results'
    assert [c.value for c in at.caption if c.value.startswith("Live images paused")]
    assert app_widgets._LiveViews.training == app_widgets.MAX_LIVE_VIEWS  # this session's count given back


def test_the_timeline_slider_shows_the_images_and_scores_of_the_epoch_it_picks():
    at = train(open_app(epochs=300))
    run = at.session_state["run"]
    (slider,) = at.select_slider
    epochs = run.trainer.timeline.epochs
    assert slider.options == [f"{epoch:,}" for epoch in epochs] and slider.value == 300
    at = slider.set_value(27).run()
    assert not at.exception and "Results after 300 epochs" in at.subheader[0].value
    earlier = Experiment(*load_pair("sample", 0, 0))
    earlier.train(27)
    shown = [(metric.label, metric.value, metric.delta or None) for metric in at.metric]
    assert shown == shown_metrics(earlier.result().quality)
    # Both charts mark the epoch shown.
    for chart in at.get("plotly_chart"):
        assert [shape["x0"] for shape in json.loads(chart.proto.spec)["layout"]["shapes"] if shape["x0"] == 27]


def test_step_buttons_add_exactly_their_epochs_and_refuse_to_pass_the_cap(monkeypatch):
    at = open_app(epochs=50)
    at = at.button(key="run_step_100").click().run()
    assert not at.exception and at.session_state["run"].trainer.epochs_done == 100
    trainer = at.session_state["run"].trainer
    at = at.button(key="run_step_1000").click().run()
    assert at.session_state["run"].trainer is trainer and trainer.epochs_done == 1100
    assert "Results after 1,100 epochs" in at.subheader[0].value
    straight = Experiment(*load_pair("sample", 0, 0)).trainer
    straight.train(1100)
    assert np.array_equal(trainer.losses, straight.losses.numpy())  # the steps continued one run
    monkeypatch.setattr(app_widgets, "MAX_EPOCHS", 1150)
    at = at.button(key="run_step_100").click().run()
    assert any("would pass the 1,150 epochs" in e.value for e in at.error), [e.value for e in at.error]
    assert trainer.epochs_done == 1100 and "Results after 1,100 epochs" in at.subheader[0].value


def test_a_step_adds_to_the_target_a_click_interrupted_and_after_stop_to_the_epochs_reached():
    at = train(open_app(epochs=50))
    run = at.session_state["run"]
    run.target_epochs = 150  # as where a click stopped a training to 150 at epoch 50
    at = at.button(key="run_step_100").click().run()
    assert run.trainer.epochs_done == 250 and "Results after 250 epochs" in at.subheader[0].value
    run.target_epochs = 400  # as where Stop ends a training to 400 at epoch 250
    at = at.button(key="stop").click().run()
    assert stopped_messages(at) == [
        "Stopped at epoch 250 of 400; everything learned so far is kept. Press Train to continue from here."
    ]
    at = at.button(key="run_step_100").click().run()
    assert run.trainer.epochs_done == 350 and not stopped_messages(at)


def test_the_timeline_gif_has_a_frame_per_timeline_frame():
    at = train(open_app(epochs=120))
    run = at.session_state["run"]
    gif = Image.open(io.BytesIO(reporting.timeline_gif(run.frame_results())))
    assert gif.n_frames == len(run.trainer.timeline.frames) == len(at.select_slider[0].options)
    assert any(button.label == "Timeline (GIF)" for button in at.get("download_button"))


STUDY = "../pages/batch_study.py"


def run_study(at: AppTest, **widgets) -> AppTest:
    for key, value in widgets.items():
        at.number_input(key=key).set_value(value)
    return at.button(key="study_run").click().run()


def shown_pair(at: AppTest, title: str) -> dict[tuple[str, str], str]:
    text = next(m.value for m in at.markdown if m.value.startswith(f"**{title}**"))
    found = re.search(
        r"PSNR MNIST (\S+) dB, CIFAR-10 (\S+) dB, SSIM MNIST (\S+), CIFAR-10 (\S+) \(Gaussian: (\S+), (\S+)\)$", text
    )
    shown = [("mnist", "psnr"), ("cifar", "psnr"), ("mnist", "ssim"), ("cifar", "ssim")]
    return dict(zip(shown + [("mnist", "ssim_gaussian"), ("cifar", "ssim_gaussian")], found.groups()))


def test_batch_study_trains_pairs_and_shows_distributions_table_and_best_and_worst():
    at = run_study(AppTest.from_file(STUDY, default_timeout=120).run(), study_pairs=5, study_epochs=60)
    assert not at.exception and not at.error
    assert "5 pairs after 60 epochs" in at.subheader[0].value
    # Scored afresh from the study the page trained: the table is their summary, row by row.
    results = at.session_state["study"].results()
    summary = summarize(results)
    table = at.dataframe[0].value
    assert list(table["Metric"]) == ["PSNR (dB)", "SSIM", "SSIM (Gaussian)"] * 2 and table["Seed"][0] == 44.5539
    titles = {
        "mnist": "MNIST",
        "cifar": "CIFAR-10",
        "psnr": "PSNR (dB)",
        "ssim": "SSIM",
        "ssim_gaussian": "SSIM (Gaussian)",
    }
    for row, (dataset, metric) in zip(table.to_dict("records"), SCORES):
        assert (row["Dataset"], row["Metric"]) == (titles[dataset], titles[metric])
        assert {name: row[name.capitalize()] for name in summary[dataset][metric]} == summary[dataset][metric]
    assert len(at.get("plotly_chart")) == 8  # box and histogram per metric, the loss and the PSNR bands
    standing = at.dataframe[1].value  # where the seed falls
    assert list(standing["Pairs reaching it (%)"]) == list(
        reporting.seed_standing_rows(reporting.seed_standing(results))[k]["Pairs reaching it (%)"] for k in range(8)
    )
    assert len(at.get("image")) == 12  # best and worst pairs, six images each
    # The best pair has the highest PSNR of all pairs and the worst the lowest (the CIFAR-10 PSNR ranks
    # the pairs alike); SSIM need not follow PSNR, so it is only checked to be the same pair's.
    best, worst = shown_pair(at, "Best pair"), shown_pair(at, "Worst pair")
    for shown, pick in ((best, max), (worst, min)):
        result = pick(results, key=lambda r: r.quality["mnist"].psnr)
        assert shown == {
            (dataset, metric): f"{getattr(result.quality[dataset], metric):.{2 if metric == 'psnr' else 4}f}"
            for dataset, metric in SCORES
        }
    assert all(float(best[dataset, "psnr"]) >= float(worst[dataset, "psnr"]) for dataset in ("mnist", "cifar"))
    assert float(best["mnist", "psnr"]) > float(worst["mnist", "psnr"])  # five pairs: not all alike
    assert len(at.get("download_button")) == 2


def stopped_messages(at: AppTest) -> list[str]:
    return [info.value for info in at.info if "Stopped at epoch" in info.value]


def record_train_calls(monkeypatch) -> list[tuple[int, int]]:
    """(epochs done, target) of each call of a trainer's train() here, where the page calls it."""
    calls, train = [], RemoteTrainer.train

    def recorded(trainer, epochs, **options):
        calls.append((trainer.epochs_done, epochs))
        return train(trainer, epochs, **options)

    monkeypatch.setattr(RemoteTrainer, "train", recorded)
    return calls


def test_batch_study_results_survive_a_stop_click_and_continue_from_where_they_were(monkeypatch):
    at = run_study(AppTest.from_file(STUDY, default_timeout=120).run(), study_pairs=3, study_epochs=40)
    table = at.dataframe[0].value
    trainer = at.session_state["study"].trainer
    # AppTest trains to the end before it clicks: Stop comes after the run finished, and must say so.
    at = at.button(key="study_stop").click().run()
    assert "3 pairs after 40 epochs" in at.subheader[0].value and at.dataframe[0].value.equals(table)
    assert not stopped_messages(at), stopped_messages(at)
    calls = record_train_calls(monkeypatch)
    at = run_study(at, study_epochs=70)
    assert "3 pairs after 70 epochs" in at.subheader[0].value
    assert calls == [(40, 70)] and at.session_state["study"].trainer is trainer  # the same one, on from 40
    straight = Study("sample", 3)
    straight.train(70)
    assert np.array_equal(trainer.losses, straight.trainer.losses.numpy())


def test_mix_and_train_says_nothing_was_stopped_when_stop_comes_after_the_run_finished():
    at = train(open_app(epochs=50))
    at = at.button(key="stop").click().run()
    assert not at.exception and "Results after 50 epochs" in at.subheader[0].value
    assert not stopped_messages(at), stopped_messages(at)


PAGES = {  # page, its run's name in the session, and the keys of its Train button and epochs input
    "Mix & Train": (APP, "run", "train", "epochs"),
    "Batch study": (STUDY, "study", "study_run", "study_epochs"),
}


@pytest.mark.parametrize("page", PAGES)
def test_a_training_interrupted_says_where_it_stopped_and_train_goes_on_from_there(monkeypatch, page):
    path, name, button, epochs_key = PAGES[page]
    # What the app does when the browser tab goes away mid-training (`_client_gone` turns true), here
    # once the first epochs have come back from the training process.
    monkeypatch.setattr(app_widgets, "_client_gone", lambda: lambda: st.session_state[name].trainer.epochs_done > 0)
    at = AppTest.from_file(path, default_timeout=120).run()
    if page == "Batch study":
        at.number_input(key="study_pairs").set_value(2)
    at.number_input(key=epochs_key).set_value(100_000)
    at = at.button(key=button).click().run()
    trainer = at.session_state[name].trainer
    stopped = trainer.epochs_done
    assert not at.exception and 0 < stopped < 100_000
    (message,) = stopped_messages(at)
    assert message.startswith(f"Stopped at epoch {stopped:,} of 100,000;")
    monkeypatch.undo()
    calls = record_train_calls(monkeypatch)
    at.number_input(key=epochs_key).set_value(stopped + 30)
    at = at.button(key=button).click().run()
    assert not at.exception and not stopped_messages(at)
    assert calls == [(stopped, stopped + 30)] and at.session_state[name].trainer is trainer
    straight = Experiment(*load_pair("sample", 0, 0)).trainer if page == "Mix & Train" else Study("sample", 2).trainer
    straight.train(stopped + 30)
    assert np.array_equal(trainer.losses, straight.losses.numpy())  # as if it had never stopped


@pytest.mark.parametrize(
    "widgets, says",
    [
        ({"study_pairs": 0}, "from 1 to 256"),
        ({"study_pairs": 300}, "from 1 to 256"),
        ({"study_epochs": 0}, "at least 1"),
        ({"study_lr": -1.0}, "above 0"),
        ({"study_alpha": 1.0}, "strictly between 0 and 1"),
    ],
)
def test_batch_study_bad_input_shows_a_message_and_keeps_the_results(widgets, says):
    at = run_study(AppTest.from_file(STUDY, default_timeout=120).run(), study_pairs=2, study_epochs=30)
    at = run_study(at, **widgets)
    assert not at.exception
    assert any(says in e.value for e in at.error), [e.value for e in at.error]
    assert "2 pairs after 30 epochs" in at.subheader[0].value


def test_a_learning_rate_that_diverges_says_why_and_keeps_the_earlier_results():
    at = train(open_app(epochs=50)).run()
    at.number_input(key="lr").set_value(1e30)
    at = train(at.run())
    assert not at.exception
    assert any("too large" in w.value for w in at.warning), [w.value for w in at.warning]
    # the current choice's preview (3) above the earlier results, which are all still there (6)
    assert len(at.get("image")) == 9 and "Results after 50 epochs" in at.subheader[0].value


def test_switching_the_source_so_an_index_falls_outside_says_so_and_keeps_results(monkeypatch):
    cache = Path(os.environ["AE_DATA_DIR"])
    write_mnist_raw(cache)  # 12 train and 7 test digits
    write_cifar_batches(cache, monkeypatch)  # 20 train and 4 test photos
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.radio(key="source").set_value("train").run()
    at.number_input(key="cifar_index").set_value(15)
    at = train(at.number_input(key="epochs").set_value(40).run())
    assert not at.exception and "Results after 40 epochs" in at.subheader[0].value
    at.radio(key="source").set_value("test").run()
    assert any("from 0 to 3" in e.value for e in at.error), [e.value for e in at.error]
    assert len(at.get("image")) == 6 and "Results after 40 epochs" in at.subheader[0].value


def test_a_failed_download_says_why_and_the_sample_pack_keeps_working(monkeypatch):
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])  # nothing listens there
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.radio(key="source").set_value("train").run()
    at = at.button(key="download").click().run()
    assert not at.exception
    assert any("Download failed" in e.value and "refused" in e.value for e in at.error), [e.value for e in at.error]
    at.radio(key="source").set_value("sample").run()
    at = train(at.number_input(key="epochs").set_value(30).run()).run()
    assert not at.exception and len(at.get("image")) == 6


SWEEP = "../pages/sweep.py"


def test_a_sweep_plots_quality_against_each_value_and_bad_values_keep_it():
    at = AppTest.from_file(SWEEP, default_timeout=120).run()
    at.number_input(key="sweep_pairs").set_value(2)
    at.number_input(key="sweep_epochs").set_value(20)
    at.text_input(key="sweep_values_lr").set_value("3e-3, 1e-3")
    at = at.button(key="sweep_run").click().run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 2  # PSNR and SSIM against the learning rate
    assert list(at.dataframe[0].value["Learning rate"]) == [1e-3, 3e-3]
    at.text_input(key="sweep_values_lr").set_value("1e-3, soon")
    at = at.button(key="sweep_run").click().run()
    assert any("must be numbers" in e.value for e in at.error), [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 2 and any("settings run earlier" in c.value for c in at.caption)


def test_bad_sweep_settings_say_what_is_wrong_and_run_nothing():
    at = AppTest.from_file(SWEEP, default_timeout=120).run()
    at.number_input(key="sweep_pairs").set_value(0)
    at = at.button(key="sweep_run").click().run()
    assert not at.exception and any("from 1 to 256" in e.value for e in at.error), [e.value for e in at.error]
    assert "sweep" not in at.session_state and not at.get("plotly_chart")


def test_after_a_run_that_diverged_at_once_the_earlier_settings_continue_the_earlier_run(monkeypatch):
    at = train(open_app(epochs=50))
    earlier = at.session_state["run"]
    at.number_input(key="lr").set_value(1e30)
    at = train(at.run())
    assert any("too large" in w.value for w in at.warning) and "Results after 50 epochs" in at.subheader[0].value
    calls = record_train_calls(monkeypatch)
    at.number_input(key="lr").set_value(1e-3)
    at.number_input(key="epochs").set_value(80)
    at = train(at.run())
    assert not at.exception and not at.warning and "Results after 80 epochs" in at.subheader[0].value
    assert calls == [(50, 80)] and at.session_state["run"] is earlier  # not the diverged one, not a new one


def test_no_page_imports_torch_not_even_to_train_probe_or_save_weights(tmp_path):
    """The server never imports torch (500 MB and 1.2 s with the default wheel): its trainers train and
    compute in child processes, whose fork server alone holds torch (ae_core/worker.py)."""
    visit = f"""
import sys
from streamlit.testing.v1 import AppTest
for page in ("mix_and_train", "batch_study", "sweep", "runs", "method", "architecture"):
    at = AppTest.from_file({str(ROOT / "pages")!r} + f"/{{page}}.py", default_timeout=120).run()
    assert not at.exception, (page, at.exception)
print("after every page:", "torch" in sys.modules)
at = AppTest.from_file({str(ROOT / "pages" / "mix_and_train.py")!r}, default_timeout=120).run()
at.number_input(key="epochs").set_value(3)
at.button(key="train").click().run()
assert not at.exception and at.session_state["run"].trainer.epochs_done == 3
at.toggle(key="probe_on").set_value(True).run()
assert not at.exception and len(at.dataframe) >= 1, at.exception
from ae_core import reporting
run = at.session_state["run"]
(weights,) = [file for file in reporting.pair_files(run.job, run.results()[0], 3) if file.name.endswith(".pt")]
assert weights.make()[:2] == b"PK"  # torch.save's zip, made in a child process
print("after training:", "torch" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", visit],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AE_DATA_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "after every page: False" in done.stdout and "after training: False" in done.stdout
