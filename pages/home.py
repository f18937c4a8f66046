"""Home: what facegen does, where to start, and every model with its state and a Fetch button."""

import streamlit as st

from facegen.registry import list_model_choices
from facegen.ui.widgets import fetch_button, route_through_app

STATE_WORDS = {
    "cached": "ready",
    "downloadable": "not downloaded",
    "failed": "last fetch failed",
    "unavailable": "no download source",
}

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
for choice in list_model_choices():
    with st.container(border=True):
        about, action = st.columns([4, 1], vertical_alignment="center")
        state = STATE_WORDS.get(choice.state, choice.state)
        about.markdown(f"**{choice.title}** · `{choice.spec}` · {state}")
        details = [choice.detail if choice.state != "cached" or not choice.is_catalog else "", f"Licence: {choice.license}" if choice.license else ""]
        if any(details):
            about.caption(" · ".join(filter(None, details)))
        if choice.is_catalog and choice.state in ("downloadable", "failed"):
            fetch_button(choice, action, label="Fetch")
