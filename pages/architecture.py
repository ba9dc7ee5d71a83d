"""Architecture: the seed's network layer by layer, checked against the seed's parameter listing."""

import streamlit as st

from ae_core.model import architecture_rows
from ae_core.reporting import SEED_ARCHITECTURE
from app_widgets import through_the_app_navigation

through_the_app_navigation()
st.title("Architecture")
st.caption(
    "The autoencoder of the seed report, for one 3 x 32 x 32 input. The check mark says that a "
    "layer's parameter shapes equal the seed's listing (`seed-architecture.json`)."
)
rows = architecture_rows(SEED_ARCHITECTURE["state_dict"])
st.dataframe(rows, hide_index=True, width="stretch")
total = sum(row["Parameters"] for row in rows)
encoder = sum(row["Parameters"] for row in rows if row["Layer"].startswith("encoder"))
cols = st.columns(4)
cols[0].metric("Parameters", f"{total:,}")
cols[1].metric("Encoder", f"{encoder:,}")
cols[2].metric("Decoder", f"{total - encoder:,}")
matches = all(row["Matches seed"] != "❌" for row in rows)
cols[3].metric("Shapes equal the seed's", "all ✅" if matches else "no ❌")
st.markdown(
    "The encoder halves the image twice with stride-2 3x3 convolutions (32 → 16 → 8), then a 7x7 "
    "convolution without padding leaves a **64 x 2 x 2 latent** (256 numbers, a quarter of the "
    "3,072 input values). The decoder mirrors it with transposed convolutions and ends in a sigmoid, "
    "so every output pixel lies in [0, 1]. Transposed convolutions store their weights as "
    "*in x out x k x k*, which is why `decoder.0.weight` has the same shape as `encoder.4.weight`."
)
