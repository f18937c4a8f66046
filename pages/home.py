"""Home: what facegen does and where to start."""

import streamlit as st

from facegen.registry import list_model_choices
from facegen.ui.widgets import route_through_app

route_through_app()
st.title("facegen studio")
st.markdown(
    """
Train your own face GANs, load NVIDIA's pretrained StyleGAN networks safely (no code from pickles is ever run),
and turn latent spaces into faces and clips you can download.

Pick a page in the sidebar:

- **Sample**: faces by seed and truncation from any model.
- **Interpolate**: a clip of faces morphing from seed to seed, as MP4 and GIF.
- **Training**: your runs with their curves, sample grids, timelapses and checkpoints; start a run and watch it live.
- **Compare**: your runs, checkpoints and pretrained models side by side on the same seeds, with FID and KID.
"""
)
st.subheader("Models")
st.dataframe(
    [{"model": choice.spec, "title": choice.title, "state": choice.state, "detail": choice.detail, "licence": choice.license}
     for choice in list_model_choices()],
    hide_index=True,
)
