"""Every page headless with AppTest; Mix & Train trains, shows its results and refuses bad input."""
import pytest
from streamlit.testing.v1 import AppTest

APP = "../streamlit_app.py"   # AppTest resolves paths against this file


def open_app(**widgets) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    for key, value in widgets.items():
        at.number_input(key=key).set_value(value)
    return at.run()


def train(at: AppTest) -> AppTest:
    return at.button(key="train").click().run()


@pytest.mark.parametrize("page", ["../pages/architecture.py", "../pages/method.py", APP])
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
    at.run()   # results survive a rerun
    assert len(at.get("image")) == 6
    labels = [m.label for m in at.metric]
    assert sum("PSNR" in label for label in labels) == 6 and sum("SSIM" in label for label in labels) == 6
    assert "Results after 300 epochs" in at.subheader[0].value
    rows = at.dataframe[0].value
    assert list(rows["Dataset"]) == ["MNIST", "CIFAR-10", "Mixed input"] and rows["Seed PSNR (dB)"][0] == 44.5539
    assert len(at.get("download_button")) == 4 and len(at.get("plotly_chart")) == 1


@pytest.mark.parametrize("widgets, says", [
    ({"mnist_index": 200}, "from 0 to 199"),
    ({"mnist_index": -1}, "from 0 to 199"),
    ({"cifar_index": 20}, "from 0 to 19"),
    ({"epochs": 0}, "at least 1"),
    ({"epochs": 10**6}, "at most 100,000"),
    ({"lr": 0.0}, "above 0"),
    ({"lr": -0.01}, "above 0"),
    ({"alpha": 0.0}, "strictly between 0 and 1"),
    ({"alpha": 1.0}, "strictly between 0 and 1"),
])
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
