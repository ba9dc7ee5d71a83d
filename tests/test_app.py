"""Every page headless with AppTest; Mix & Train trains, shows its results and refuses bad input."""

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_data import write_cifar_batches, write_mnist_raw
from torchvision import datasets

APP = "../streamlit_app.py"  # AppTest resolves paths against this file


def open_app(**widgets) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    for key, value in widgets.items():
        at.number_input(key=key).set_value(value)
    return at.run()


def train(at: AppTest) -> AppTest:
    return at.button(key="train").click().run()


@pytest.mark.parametrize("page", ["../pages/architecture.py", "../pages/method.py", "../pages/batch_study.py", APP])
def test_every_page_opens_without_an_error(page):
    at = AppTest.from_file(page, default_timeout=60).run()
    assert not at.exception and not at.error


def test_architecture_page_checks_every_layer_against_the_seed():
    at = AppTest.from_file("../pages/architecture.py").run()
    table = at.dataframe[0].value
    assert list(table[table["Matches seed"] != ""]["Matches seed"]) == ["✅"] * 6
    assert at.metric[0].value == "210,947"


def test_method_page_explains_with_formulas():
    at = AppTest.from_file("../pages/method.py").run()
    assert len(at.latex) >= 5
    assert any("same number" in h.value for h in at.subheader)


def test_mix_and_train_shows_the_pair_then_trains_and_scores_it():
    at = open_app(epochs=300, mnist_index=4, cifar_index=2)
    assert len(at.get("image")) == 3 and not at.metric
    at = train(at)
    assert not at.exception and not at.error
    at.run()  # results survive a rerun
    assert len(at.get("image")) == 6
    labels = [m.label for m in at.metric]
    assert sum("PSNR" in label for label in labels) == 6 and sum("SSIM" in label for label in labels) == 6
    assert "Results after 300 epochs" in at.subheader[0].value
    rows = at.dataframe[0].value
    assert list(rows["Dataset"]) == ["MNIST", "CIFAR-10", "Mixed input"] and rows["Seed PSNR (dB)"][0] == 44.5539
    assert len(at.get("download_button")) == 4 and len(at.get("plotly_chart")) == 1


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


STUDY = "../pages/batch_study.py"


def run_study(at: AppTest, **widgets) -> AppTest:
    for key, value in widgets.items():
        at.number_input(key=key).set_value(value)
    return at.button(key="study_run").click().run()


def test_batch_study_trains_pairs_and_shows_distributions_table_and_best_and_worst():
    at = run_study(AppTest.from_file(STUDY, default_timeout=120).run(), study_pairs=5, study_epochs=60)
    assert not at.exception and not at.error
    assert "5 pairs after 60 epochs" in at.subheader[0].value
    table = at.dataframe[0].value
    assert list(table["Metric"]) == ["PSNR (dB)", "SSIM"] * 2 and table["Seed"][0] == 44.5539
    assert len(at.get("plotly_chart")) == 5  # box and histogram per metric, and the loss band
    assert len(at.get("image")) == 12  # best and worst pairs, six images each
    assert len(at.get("download_button")) == 2


def test_batch_study_results_survive_a_stop_click_and_continue_from_where_they_were():
    at = run_study(AppTest.from_file(STUDY, default_timeout=120).run(), study_pairs=3, study_epochs=40)
    at = at.button(key="study_stop").click().run()
    assert "3 pairs after 40 epochs" in at.subheader[0].value
    assert any("every pair keeps what it learned" in i.value for i in at.info)
    at = run_study(at, study_epochs=70)
    assert "3 pairs after 70 epochs" in at.subheader[0].value


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


def test_a_sweep_plots_quality_against_each_value_and_bad_values_keep_it():
    at = AppTest.from_file(STUDY, default_timeout=120).run()
    at.number_input(key="study_pairs").set_value(2)
    at.number_input(key="study_epochs").set_value(20)
    at.text_input(key="sweep_values_lr").set_value("3e-3, 1e-3")
    at = at.button(key="sweep_run").click().run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 2  # PSNR and SSIM against the learning rate
    assert list(at.dataframe[0].value["Learning rate"]) == [1e-3, 3e-3]
    at.text_input(key="sweep_values_lr").set_value("1e-3, soon")
    at = at.button(key="sweep_run").click().run()
    assert any("must be numbers" in e.value for e in at.error), [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 2 and any("settings run earlier" in c.value for c in at.caption)
