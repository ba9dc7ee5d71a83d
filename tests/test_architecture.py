"""The Architecture page lists the seed's network as the seed does, in text every browser can render."""

import itertools

import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch import nn

from ae_core.architecture import (
    IMAGE_SHAPE,
    LATENT_CHANNELS,
    SEED_ARCHITECTURE,
    WIDTHS,
    Architecture,
    architecture_rows,
)
from ae_core.model import Autoencoder
from ae_core.reporting import SEED_ARCHITECTURE as SEED_LISTING

PAGE = "../pages/architecture.py"  # AppTest resolves paths against this file


def test_every_layer_with_parameters_matches_the_seed_and_the_others_leave_the_cells_blank():
    rows = architecture_rows(SEED_LISTING["state_dict"])
    with_parameters = [row for row in rows if row["Parameters"]]
    assert [row["Layer"] for row in with_parameters] == [
        f"{part}.{i}" for part in ("encoder", "decoder") for i in (0, 2, 4)
    ]
    assert all(row["Matches seed"] is True for row in with_parameters)
    for row in rows:
        if not row["Parameters"]:  # the ReLUs and the sigmoid
            assert row["Matches seed"] is None and row["Stride"] == row["Padding"] == row["Kernel"] == ""


def test_a_layer_whose_shapes_differ_from_the_listing_is_marked_false():
    listing = {**SEED_LISTING["state_dict"], "encoder.4.weight": [32, 32, 7, 7]}
    marks = {row["Layer"]: row["Matches seed"] for row in architecture_rows(listing)}
    assert marks["encoder.4"] is False and marks["encoder.0"] is True


def test_the_page_counts_its_parameters_and_states_the_latent_as_a_twelfth_of_the_input():
    at = AppTest.from_file(PAGE).run()
    assert not at.exception and not at.error
    assert at.metric[0].value == "210,947" and at.metric[3].value == "6 of 6"
    text = " ".join(block.value for block in at.markdown)
    assert "**64 x 2 x 2 latent** (256 numbers, 1/12 of the 3,072 input values)" in text
    table = at.dataframe[0].value
    assert table["Matches seed"].dropna().tolist() == [True] * 6
    # No character that a browser without an emoji font draws as an empty box.
    assert not any(mark in text + at.caption[0].value for mark in "✅❌✓")


@pytest.mark.parametrize(
    "architecture",
    [Architecture(latent, width) for latent, width in itertools.product(LATENT_CHANNELS, WIDTHS)],
    ids=lambda a: f"latent{a.latent_channels}-width{a.width:g}",
)
def test_the_rows_worked_out_from_the_sizes_are_those_of_the_network_itself(architecture):
    assert architecture_rows(SEED_LISTING["state_dict"], architecture) == rows_of_the_module(
        SEED_LISTING["state_dict"], architecture
    )


def rows_of_the_module(seed_shapes: dict[str, list[int]], architecture: Architecture = SEED_ARCHITECTURE) -> list[dict]:
    """The rows read off `model.Autoencoder` itself: output shapes from forward hooks."""
    model = Autoencoder(architecture)
    shapes = {}
    hooks = [
        module.register_forward_hook(lambda m, i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:])))
        for name, module in model.named_modules()
        if name.count(".") == 1
    ]
    with torch.no_grad():
        model(torch.zeros(1, *IMAGE_SHAPE))
    for hook in hooks:
        hook.remove()
    rows = []
    for name, module in model.named_modules():
        if name.count(".") != 1:
            continue
        params = {key: list(p.shape) for key, p in module.named_parameters()}
        conv = isinstance(module, (nn.Conv2d, nn.ConvTranspose2d))
        rows.append(
            {
                "Layer": name,
                "Type": type(module).__name__,
                "Kernel": f"{module.kernel_size[0]}x{module.kernel_size[1]}" if conv else "",
                # Text, so that layers without a stride (ReLU, Sigmoid) show a blank cell, not "None".
                "Stride": str(module.stride[0]) if conv else "",
                "Padding": str(module.padding[0]) if conv else "",
                "Output shape": " x ".join(map(str, shapes[name])),
                "Weight shape": " x ".join(map(str, params["weight"])) if params else "",
                "Bias shape": " x ".join(map(str, params["bias"])) if params else "",
                "Parameters": sum(p.numel() for p in module.parameters()),
                # True or False for a layer with parameters; None (an empty cell) for one without.
                "Matches seed": all(seed_shapes.get(f"{name}.{key}") == shape for key, shape in params.items())
                if params
                else None,
            }
        )
    return rows
