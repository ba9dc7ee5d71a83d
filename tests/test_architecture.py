"""The Architecture page lists the seed's network as the seed does, in text every browser can render."""

from streamlit.testing.v1 import AppTest

from ae_core.model import architecture_rows
from ae_core.reporting import SEED_ARCHITECTURE

PAGE = "../pages/architecture.py"  # AppTest resolves paths against this file


def test_every_layer_with_parameters_matches_the_seed_and_the_others_leave_the_cells_blank():
    rows = architecture_rows(SEED_ARCHITECTURE["state_dict"])
    with_parameters = [row for row in rows if row["Parameters"]]
    assert [row["Layer"] for row in with_parameters] == [
        f"{part}.{i}" for part in ("encoder", "decoder") for i in (0, 2, 4)
    ]
    assert all(row["Matches seed"] is True for row in with_parameters)
    for row in rows:
        if not row["Parameters"]:  # the ReLUs and the sigmoid
            assert row["Matches seed"] is None and row["Stride"] == row["Padding"] == row["Kernel"] == ""


def test_a_layer_whose_shapes_differ_from_the_listing_is_marked_false():
    listing = {**SEED_ARCHITECTURE["state_dict"], "encoder.4.weight": [32, 32, 7, 7]}
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
