"""Other bottlenecks and widths: the same shape of network at other sizes, trained and reported as such."""

import itertools
import json

import pytest
import torch
from streamlit.testing.v1 import AppTest
from test_app import APP, train
from test_cli import run_cli

from ae_core import reference
from ae_core.architecture import LATENT_CHANNELS, SEED_ARCHITECTURE, WIDTHS, Architecture
from ae_core.engine import StackedAutoencoders
from ae_core.grouped_stack import GroupedStack
from ae_core.model import Autoencoder, initial_autoencoder
from ae_core.training import BatchTrainer

VARIANTS = [Architecture(latent, width) for latent, width in itertools.product(LATENT_CHANNELS, WIDTHS)]


@pytest.mark.parametrize("architecture", VARIANTS, ids=lambda a: f"latent{a.latent_channels}-width{a.width:g}")
def test_each_variant_has_the_seeds_shape_at_its_own_sizes(architecture):
    c1, c2, latent = round(16 * architecture.width), round(32 * architecture.width), architecture.latent_channels
    expected = {
        "encoder.0.weight": (c1, 3, 3, 3),
        "encoder.2.weight": (c2, c1, 3, 3),
        "encoder.4.weight": (latent, c2, 7, 7),
        "decoder.0.weight": (latent, c2, 7, 7),  # transposed: in x out x k x k
        "decoder.2.weight": (c2, c1, 3, 3),
        "decoder.4.weight": (c1, 3, 3, 3),
        "encoder.0.bias": (c1,),
        "encoder.2.bias": (c2,),
        "encoder.4.bias": (latent,),
        "decoder.0.bias": (c2,),
        "decoder.2.bias": (c1,),
        "decoder.4.bias": (3,),
    }
    model = Autoencoder(architecture)
    assert {name: tuple(p.shape) for name, p in model.state_dict().items()} == expected
    assert sum(p.numel() for p in model.parameters()) == architecture.parameters
    assert architecture.latent_size == latent * 4
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 3, 32, 32)


def test_the_default_is_the_seeds_network_and_anything_else_is_refused():
    assert Architecture() == SEED_ARCHITECTURE and SEED_ARCHITECTURE.is_seed
    assert SEED_ARCHITECTURE.parameters == 210_947 and SEED_ARCHITECTURE.latent_size == 256
    assert not Architecture(32).is_seed and not Architecture(64, 2).is_seed
    for latent, width in ((3, 1.0), (256, 1.0), (64, 1.5), (True, 1.0)):
        with pytest.raises(ValueError, match="latent channels must be one of|width must be one of"):
            Architecture(latent, width)


@pytest.mark.parametrize(
    ("architecture", "engine", "note"),
    [
        (Architecture(8, 0.5), "grouped", "written for the seed's 16 and 32 outer"),  # another width
        (Architecture(4), "fast", ""),  # the seed's width: any latent size
        (Architecture(128), "fast", ""),
    ],
)
def test_a_variant_trains_as_the_plain_loop_within_rounding_and_says_on_which_engine(architecture, engine, note):
    targets = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    trainer = BatchTrainer(targets, seed=2, architecture=architecture)
    assert trainer.engine.name == engine and note in trainer.engine_note and bool(note) == bool(trainer.engine_note)
    trainer.train(15)
    trainer.train(40)  # continued from the flat buffers, not restarted
    for k, target in enumerate(targets):
        model = initial_autoencoder(2, architecture)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        plain = [reference.step(model, optimizer, target[None]).item() for _ in range(40)]
        assert trainer.losses[:, k].tolist() == pytest.approx(plain, rel=1e-5)
        weights = torch.cat([p.flatten() for p in model.state_dict().values()])
        assert torch.allclose(trainer.engine.params[k], weights, atol=1e-5)
        assert torch.allclose(trainer.reconstructions()[k], model(target[None])[0].detach(), atol=1e-5)


def test_the_fast_engine_refuses_other_outer_channels():
    stack = StackedAutoencoders([initial_autoencoder(0, Architecture(64, 2.0)).state_dict()], lr=1e-3)
    with pytest.raises(ValueError, match="16 and 32 outer channels, not .32, 64."):
        stack.steps(torch.rand(1, 3, 32, 32), 1)


def test_a_diverging_model_of_a_grouped_stack_leaves_the_others_as_they_would_be_alone():
    architecture, targets = Architecture(16), torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    together = GroupedStack([initial_autoencoder(0, architecture).state_dict()] * 2, lr=1e-3)
    alone = GroupedStack([initial_autoencoder(0, architecture).state_dict()], lr=1e-3)
    together.params[1].fill_(float("nan"))
    losses = together.steps(targets, 5)
    # Within rounding: two models side by side sum in another order than one alone.
    assert losses[:, 1].isnan().all() and torch.allclose(losses[:, 0], alone.steps(targets[:1], 5)[:, 0], rtol=1e-5)
    assert torch.allclose(together.params[0], alone.params[0], atol=1e-6) and together.params[0].isfinite().all()


def test_the_grouped_engine_learns_the_seeds_network_as_the_fast_engine_does(target):
    grouped, fast = (BatchTrainer(target[None], engine=engine) for engine in ("grouped", "fast"))
    grouped.train(30)
    fast.train(30)
    assert torch.allclose(grouped.losses, fast.losses, rtol=1e-5)
    assert torch.allclose(grouped.engine.params, fast.engine.params, atol=1e-5)


def test_weights_of_one_architecture_are_never_loaded_into_another():
    small = BatchTrainer(torch.rand(1, 3, 32, 32), architecture=Architecture(4))
    small.train(3)
    seed = BatchTrainer(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="does not fit"):
        seed.load_saved_state(small.saved_state())


def test_the_cli_takes_a_network_size_and_records_it_and_its_engine(tmp_path):
    report = tmp_path / "run.json"
    done = run_cli(
        "run", "--mnist-index", "1", "--cifar-index", "1", "--epochs", "20", "--latent-channels", "8", "--width", "0.5",
        "--json", str(report),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "network: channels 8-16-8, latent 8 x 2 x 2 = 32 numbers" in done.stdout and "grouped engine" in done.stdout
    settings = json.loads(report.read_text())["settings"]
    assert settings["engine"] == "grouped"
    assert settings["architecture"] == Architecture(8, 0.5).as_dict()
    assert settings["architecture"]["parameters"] == 15_339 and not settings["architecture"]["is_seed"]
    for flag, value in (("--latent-channels", "3"), ("--width", "3")):
        refused = run_cli("run", "--mnist-index", "1", "--cifar-index", "1", flag, value)
        assert refused.returncode == 2 and "invalid choice" in refused.stderr and "Traceback" not in refused.stderr


def test_a_latent_sweep_scores_each_size_and_records_its_network(tmp_path):
    report = tmp_path / "sweep.json"
    done = run_cli(
        "sweep", "--pairs", "2", "--over", "latent", "--values", "4", "64", "--epochs", "30", "--json", str(report)
    )
    assert done.returncode == 0, done.stderr
    points = json.loads(report.read_text())["points"]
    assert [point["value"] for point in points] == [4, 64]
    assert [point["engine"] for point in points] == ["fast", "fast"]  # width 1: any latent size
    assert [point["architecture"]["latent_size"] for point in points] == [16, 256]
    refused = run_cli("sweep", "--pairs", "2", "--over", "latent", "--values", "5")
    assert refused.returncode == 2 and "latent channels must be among" in refused.stderr


def test_mix_and_train_offers_another_network_and_says_it_is_not_the_seeds():
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.selectbox(key="latent_channels").set_value(16)
    at.number_input(key="epochs").set_value(30)
    at = train(at.run())
    assert not at.exception
    assert any("Not the seed's network" in caption.value for caption in at.caption)
    trainer = at.session_state["run"].trainer
    assert trainer.architecture == Architecture(16) and trainer.engine.name == "fast"
    assert any("It trains on the fast engine" in caption.value for caption in at.caption)
    assert at.query_params["latent"] == "16"


def test_the_architecture_page_draws_the_chosen_network_and_compares_nothing_for_another():
    at = AppTest.from_file("../pages/architecture.py", default_timeout=60).run()
    assert not at.warning and at.metric[0].value == f"{SEED_ARCHITECTURE.parameters:,}"
    at = at.selectbox(key="architecture_width").set_value(2.0).run()
    assert not at.exception and "not the seed's network" in at.warning[0].value
    assert at.metric[0].value == f"{Architecture(64, 2.0).parameters:,}"


def test_the_architecture_page_opens_on_the_network_chosen_on_mix_and_train():
    at = AppTest.from_file(APP, default_timeout=120).run()
    at = at.selectbox(key="latent_channels").set_value(8).run()
    at.switch_page("pages/architecture.py").run()
    assert not at.exception and at.selectbox(key="architecture_latent_channels").value == 8
    assert at.metric[0].value == f"{Architecture(8).parameters:,}"


def test_the_sweep_page_sweeps_latent_sizes_and_marks_the_seeds():
    at = AppTest.from_file("../pages/sweep.py", default_timeout=120).run()
    at.number_input(key="sweep_pairs").set_value(2)
    at.number_input(key="sweep_epochs").set_value(20)
    at = at.radio(key="sweep_over").set_value("latent").run()
    at.text_input(key="sweep_values_latent").set_value("64, 8")
    at = at.button(key="sweep_run").click().run()
    assert not at.exception and not at.error
    assert list(at.dataframe[0].value["Latent channels"]) == [8, 64]
    sweep = at.session_state["sweep"].sweep
    assert [point.engine for point in sweep.points] == ["fast", "fast"]
    psnr_chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    marks = [shape for shape in psnr_chart["layout"]["shapes"] if shape.get("name", "").startswith("the seed's")]
    assert [mark["name"] for mark in marks] == ["the seed's latent channels: 64"] and marks[0]["x0"] == 1
    at.text_input(key="sweep_values_latent").set_value("64, 5")
    at = at.button(key="sweep_run").click().run()
    assert any("Latent channels must be among 4, 8, 16, 32, 64, 128 (got 5)" in e.value for e in at.error)


def test_building_and_stepping_a_grouped_stack_leaves_the_global_random_state_as_it_was():
    before = torch.random.get_rng_state()
    stack = GroupedStack([initial_autoencoder(0, Architecture(8)).state_dict()] * 3, lr=1e-3)
    stack.steps(torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1)), 1)  # builds its networks
    assert torch.equal(torch.random.get_rng_state(), before)
