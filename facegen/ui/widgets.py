"""Widgets every page shares: the model picker with fetch button, seed input, cached model loading, errors.

Pages lay out widgets and call facegen; anything two pages need lives here once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import streamlit as st

from facegen.errors import FacegenError
from facegen.generator import Generator
from facegen.images import resize_image
from facegen.latent import parse_seeds, random_seeds
from facegen.video import suggested_upscale
from facegen.registry import ModelChoice, fetch_model, list_model_choices, load_generator, pin_run_checkpoint

CUSTOM_PATH = "Weights file path…"
SHOWN_FACE_MIN_SIDE = 256  # small models' faces are enlarged on screen to at least this; downloads stay native
ENLARGED_FACE_SIDE = 512
T = TypeVar("T")


def route_through_app() -> None:
    """Send a page opened by its own URL on a fresh server through streamlit_app.py's navigation.

    Streamlit decides at start-up that an app with a pages/ folder uses its legacy routing, and only st.navigation
    in streamlit_app.py turns that off. Until a session has run that script, a bookmark to /sample would run
    pages/sample.py bare, under a navigation of file names, for the rest of the session.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without legacy routing: nothing to correct
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def cached_generator(model_spec: str, device: str = "cpu") -> Generator:
    """One Generator per model and process: every session shares it (it is read-only once built).

    Give `model_spec` pinned (`pin_run_checkpoint`), so a run's newer checkpoint is a new entry, not the old model.
    """
    return load_generator(model_spec, device=device)


def run_or_show_error(action: Callable[[], T]) -> T | None:
    """Run `action`; a user-caused problem becomes a visible error box instead of a traceback."""
    try:
        return action()
    except FacegenError as error:
        st.error(str(error), icon="⚠️")
        return None


def choice_label(choice: ModelChoice) -> str:
    """Short: the title, plus the download size or a one-word reason when the model is not cached yet."""
    if choice.state == "downloadable":
        return f"{choice.title} · {choice.detail}"
    if choice.state in ("failed", "unavailable"):
        return f"{choice.title} · {'fetch failed' if choice.state == 'failed' else 'unavailable'}"
    return choice.title


def model_picker(label: str = "Model", key: str = "model", container=st.sidebar) -> str | None:
    """Pick a catalog model, an own training run, or a weights file; returns a model spec."""
    choices = {choice.spec: choice for choice in list_model_choices()}
    # options are model ids, so the selection survives a label change (e.g. after a fetch)
    picked = container.selectbox(
        label,
        [*choices, CUSTOM_PATH],
        key=key,
        format_func=lambda spec: choice_label(choices[spec]) if spec in choices else spec,
    )
    if picked == CUSTOM_PATH:
        path = container.text_input("Path to a .pkl, .safetensors or .pt file", key=f"{key}_path")
        return path.strip() or None
    choice = choices[picked]
    if choice.license:
        container.caption(f"Licence: {choice.license}")
    return choice.spec


def ready_generator(model_spec: str | None, container=None) -> Generator | None:
    """The model's Generator, or a fetch button (with size and progress) when a catalog model is not cached."""
    container = container or st
    if not model_spec:
        container.info("Choose a model in the sidebar.")
        return None
    choice = next((choice for choice in list_model_choices() if choice.spec == model_spec), None)
    if choice is not None and choice.state != "cached" and choice.is_catalog:
        container.warning(f"**{choice.title}** is not downloaded yet ({choice.detail}).")
        fetch_button(choice, container)
        return None
    return run_or_show_error(lambda: cached_generator(str(pin_run_checkpoint(model_spec))))


def fetch_button(choice: ModelChoice, container=None, label: str | None = None) -> None:
    """A Fetch button with a progress bar for a catalog model that is not downloaded yet.

    A fetch that succeeds reruns the page at once, so whatever said "not downloaded" is gone; one that fails
    leaves its reason and the button (to try again), never an empty progress bar.
    """
    container = container or st
    if not container.button(label or f"Fetch {choice.spec}", key=f"fetch_{choice.spec}"):
        return
    bar = container.progress(0.0, text=f"Fetching {choice.spec}…")

    def show_progress(done: int, total: int | None) -> None:
        fraction = min(done / total, 1.0) if total else 0.0
        bar.progress(fraction, text=f"Fetching {choice.spec}: {done / 1e6:,.1f} MB")

    try:
        fetched = run_or_show_error(lambda: fetch_model(choice.spec, show_progress))
    finally:
        bar.empty()
    if fetched is not None:
        st.rerun()


@dataclass(frozen=True)
class SeedSelection:
    seeds: list[int]
    text: str


def seed_input(default: str = "0-15", count_for_random: int = 16, key: str = "seeds", container=st) -> SeedSelection | None:
    """Seeds as a list/range ('0-15', '1,7,42') or random; shows the parse error in place."""
    mode = container.radio("Seeds", ["List or range", "Random"], horizontal=True, key=f"{key}_mode")
    if mode == "Random":
        if container.button("New random seeds", key=f"{key}_reroll") or f"{key}_random" not in st.session_state:
            st.session_state[f"{key}_random"] = random_seeds(count_for_random)
        seeds = st.session_state[f"{key}_random"]
        container.caption("Seeds: " + ", ".join(map(str, seeds)))
        return SeedSelection(seeds, ",".join(map(str, seeds)))
    text = container.text_input("Seed list", value=default, key=f"{key}_text", help="e.g. 0-15, 1,7,42 or 0-3,42")
    seeds = run_or_show_error(lambda: parse_seeds(text))
    return None if seeds is None else SeedSelection(seeds, text)


TRUNCATION_HELP_W = (
    "Moves each face's w toward the model's average face: lower gives more typical, cleaner faces with less "
    "variety; 1 is the model as trained."
)
LATENT_SCALE_HELP = (
    "This model has no W space, so there is no average face to move toward: psi multiplies z, pulling every face "
    "toward the one drawn from z = 0. Below about 0.7 faces lose detail and look alike; 0 draws that one face for "
    "every seed. 1 is the model as trained."
)


def truncation_slider(generators: list[Generator], key: str = "psi", container=None) -> float:
    """Truncation for StyleGAN models; for models without a W space, the same psi labelled for what it does there."""
    container = container or st
    with_w = [generator.has_w_space for generator in generators]
    if all(with_w):
        return container.slider("Truncation psi", 0.0, 2.0, 1.0, 0.05, key=key, help=TRUNCATION_HELP_W)
    if not any(with_w):
        return container.slider("Latent scale (psi)", 0.0, 2.0, 1.0, 0.05, key=key, help=LATENT_SCALE_HELP)
    return container.slider(
        "Truncation psi", 0.0, 2.0, 1.0, 0.05, key=key,
        help=f"StyleGAN models: {TRUNCATION_HELP_W} Models without a W space: {LATENT_SCALE_HELP}",
    )  # fmt: skip


def label_controls(generator: Generator, container=None) -> object:
    """Class picker for one-hot conditional models, attribute toggles for attribute-conditioned ones."""
    container = container or st
    info = generator.info
    if info.c_dim == 0:
        return None
    names = list(info.label_names) or [f"class {index}" for index in range(info.c_dim)]
    if info.labels_are_attributes:
        chosen = container.multiselect("Attributes", names, key="attributes", help="Attributes switched on")
        return [1.0 if name in chosen else 0.0 for name in names]
    return names.index(container.selectbox("Class", names, key="class_index"))


@dataclass(frozen=True)
class ShownFaces:
    image: np.ndarray  # what the page shows
    note: str  # the faces' own size and how they were enlarged, for the caption


def enlarged_for_screen(image: np.ndarray, face_side: int, min_side: int = SHOWN_FACE_MIN_SIDE) -> ShownFaces:
    """A face or grid of faces `face_side` pixels each, enlarged by a whole factor (Lanczos) until each face is at
    least `min_side` pixels on screen: a 64 px face at its own size is a postage stamp."""
    factor = suggested_upscale(face_side, min_side)
    native = f"{face_side}×{face_side} px"
    if factor == 1:
        return ShownFaces(image, native)
    height, width = image.shape[:2]
    return ShownFaces(resize_image(image, (width * factor, height * factor), "lanczos"), f"{native}, shown ×{factor} (Lanczos)")


@st.dialog("Face", width="large")
def enlarged_face(image: np.ndarray, face_side: int, caption: str) -> None:
    """One face, large, in a dialog: what a click on a face's Enlarge button opens."""
    shown = enlarged_for_screen(image, face_side, ENLARGED_FACE_SIDE)
    st.image(shown.image, caption=f"{caption} · {shown.note}", output_format="PNG")
