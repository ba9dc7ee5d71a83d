"""Streamlit pieces shared by the pages: image rows and the full-dataset download panel."""
import streamlit as st
import torch

from ae_core import data, reporting
from ae_core.data import DataUnavailable


def picture_row(images: dict[str, torch.Tensor | None]) -> None:
    """Left to right in six columns; None leaves a column empty so rows line up."""
    for col, (name, image) in zip(st.columns(6), images.items()):
        if image is not None:
            col.image(reporting.to_picture(image), caption=reporting.IMAGE_TITLES.get(name, name), width="stretch")


def download_panel(key: str) -> None:
    """Offers the full datasets while they are missing; a failure says why and changes nothing else."""
    missing = [name for name in data.DATASETS if not data.is_downloaded(name)]
    if not missing:
        return
    st.info(f"The full {' and '.join(missing)} are not downloaded yet (about 230 MB in all, into "
            f"`{data.data_dir()}`). The sample pack works meanwhile.")
    if st.button("Download the full datasets", icon=":material/download:", key=key):
        bar = st.progress(0.0, text="Connecting…")

        def show(what, done, total):
            bar.progress(min(done / total, 1.0) if total else 0.0,
                         text=f"Downloading {what}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")
        try:
            for name in missing:
                data.download(name, on_progress=show)
        except DataUnavailable as error:
            st.error(f"Download failed: {error}")
        else:
            st.rerun()
