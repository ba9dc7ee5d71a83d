"""Architecture: the network layer by layer, checked against the seed's parameter listing."""

import math

import streamlit as st

from ae_core.architecture import IMAGE_SHAPE, architecture_rows
from ae_core.reporting import SEED_ARCHITECTURE
from app_widgets import network_choice, through_the_app_navigation

through_the_app_navigation()
st.title("Architecture")
st.caption(
    "The autoencoder of the seed report, or the same shape of network at another size, for one 3 x 32 x 32 "
    "input. A ticked box says that a layer's parameter shapes equal the seed's listing (`seed-architecture.json`)."
)
architecture = network_choice("architecture_")
rows = architecture_rows(SEED_ARCHITECTURE["state_dict"], architecture)
if not architecture.is_seed:
    st.warning(
        "This is not the seed's network, so the check against the seed's listing compares nothing: the "
        "boxes say only which layers happen to keep the seed's shapes.",
        icon=":material/info:",
    )
# A checkbox column renders in every browser; a check-mark character needs a font that has it.
st.dataframe(
    rows,
    hide_index=True,
    width="stretch",
    column_config={"Matches seed": st.column_config.CheckboxColumn("Matches seed")},
)
total = sum(row["Parameters"] for row in rows)
encoder = sum(row["Parameters"] for row in rows if row["Layer"].startswith("encoder"))
checked = [row["Matches seed"] for row in rows if row["Matches seed"] is not None]
cols = st.columns(4)
cols[0].metric("Parameters", f"{total:,}")
cols[1].metric("Encoder", f"{encoder:,}")
cols[2].metric("Decoder", f"{total - encoder:,}")
cols[3].metric(
    ":material/check_circle: Layers matching the seed"
    if all(checked)
    else ":material/cancel: Layers matching the seed",
    f"{sum(checked)} of {len(checked)}",
)
latent_shape = next(row["Output shape"] for row in rows if row["Layer"] == "encoder.4")
latent_size = math.prod(int(side) for side in latent_shape.split(" x "))
input_size = math.prod(IMAGE_SHAPE)
st.markdown(
    "The encoder halves the image twice with stride-2 3x3 convolutions (32 → 16 → 8), then a 7x7 "
    f"convolution without padding leaves a **{latent_shape} latent** ({latent_size:,} numbers, "
    f"1/{input_size / latent_size:g} of the {input_size:,} input values). The decoder mirrors it with "
    "transposed convolutions and ends in a "
    "sigmoid, so every output pixel lies in [0, 1]. Transposed convolutions store their weights as "
    "*in x out x k x k*, which is why `decoder.0.weight` has the same shape as `encoder.4.weight`."
)
