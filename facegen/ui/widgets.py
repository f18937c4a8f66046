"""Widgets every page shares: the model picker with fetch button, seed input, cached model loading, errors.

Pages lay out widgets and call facegen; anything two pages need lives here once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import streamlit as st
import torch

from facegen.device import DEFAULT_PRECISION, PRECISIONS, available_devices, check_precision, describe, resolve_device
from facegen.errors import FacegenError
from facegen.generator import Generator
from facegen.images import resize_image
from facegen.latent import parse_seeds, random_seeds
from facegen.public import DEMO_DATASETS, policy
from facegen.registry import (
    ModelChoice,
    fetch_model,
    list_model_choices,
    load_generator,
    pin_run_checkpoint,
)
from facegen.ui.sessions import save_upload, session_folder
from facegen.video import suggested_upscale

CUSTOM_PATH = "Weights file path…"
UPLOAD = "Upload a weights file…"
UPLOAD_DATASET = "Upload a .zip of faces…"
WEIGHTS_SUFFIXES = ("pkl", "pt", "tar", "safetensors", "json")
DEVICE_KEY, PRECISION_KEY = "device", "precision"
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
def cached_generator(model_spec: str, device: str = "cpu", precision: str = "fp32") -> Generator:
    """One Generator per model, device and precision: every session shares it (it is read-only once built).

    Give `model_spec` pinned (`pin_run_checkpoint`), so a run's newer checkpoint is a new entry, not the old model.
    """
    return load_generator(model_spec, device=device).set_precision(precision)


def device_picker(container=st.sidebar) -> None:
    """Where models run and in which precision; the choice stays in the session for `ready_generator`."""
    container.selectbox(
        "Device", available_devices(), key=DEVICE_KEY, format_func=lambda name: describe(torch.device(name)),
        help="The best device is first. A GPU renders far faster than a CPU.",
    )
    container.selectbox(
        "Precision", PRECISIONS, key=PRECISION_KEY,
        help="fp32 reproduces the reference pixels. auto: float16 in NVIDIA's float16 StyleGAN blocks on a GPU, "
        "bfloat16 where the hardware computes it natively, else float32; faster, within 40 dB PSNR of fp32.",
    )


def chosen_device() -> tuple[str, str]:
    """The session's device and precision (the best device and float32 before the picker has run)."""
    device = resolve_device(st.session_state.get(DEVICE_KEY, "auto"))
    precision = check_precision(st.session_state.get(PRECISION_KEY, DEFAULT_PRECISION), device)
    return str(device), precision


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


def offered_model_choices() -> list[ModelChoice]:
    """What pickers offer: everything locally; on a public server only the catalog (no run folders)."""
    choices = list_model_choices()
    return choices if policy().server_paths_allowed else [choice for choice in choices if choice.is_catalog]


def model_picker(label: str = "Model", key: str = "model", container=st.sidebar) -> str | None:
    """Pick a catalog model, an own training run, or a weights file (an upload on a public server); a model spec."""
    device_picker(container)
    choices = {choice.spec: choice for choice in offered_model_choices()}
    other = CUSTOM_PATH if policy().server_paths_allowed else UPLOAD
    # options are model ids, so the selection survives a label change (e.g. after a fetch)
    picked = container.selectbox(
        label,
        [*choices, other],
        key=key,
        format_func=lambda spec: choice_label(choices[spec]) if spec in choices else spec,
    )
    if picked == CUSTOM_PATH:
        path = container.text_input("Path to a .pkl, .safetensors or .pt file", key=f"{key}_path")
        return path.strip() or None
    if picked == UPLOAD:
        return uploaded_weights(container, key)
    choice = choices[picked]
    if choice.license:
        container.caption(f"Licence: {choice.license}")
    return choice.spec


def uploaded_weights(container, key: str) -> str | None:
    """A weights file uploaded into this session's folder (a .safetensors with its .json); its path as the spec."""
    files = container.file_uploader(
        "A .pkl, .pt or .safetensors file (with its .json)", WEIGHTS_SUFFIXES, accept_multiple_files=True,
        key=f"{key}_upload",
    )  # fmt: skip
    paths = [save_upload(file.name, file.getvalue(), "models") for file in files or []]
    weights = [path for path in paths if path.suffix != ".json"]
    return str(weights[0]) if weights else None


def check_reachable(model_spec: str) -> str:
    """On a public server a model is a catalog id or this session's upload, never another path on the server."""
    if policy().server_paths_allowed or model_spec in {choice.spec for choice in offered_model_choices()}:
        return model_spec
    uploads = session_folder("models").resolve()
    if uploads in Path(model_spec).resolve().parents:
        return model_spec
    raise FacegenError(
        f"This server offers its catalog models and uploaded files only, not {model_spec!r}. Pick a model from "
        "the list, or upload a weights file."
    )


def dataset_input(label: str, key: str, container=st, **text_options) -> str:
    """A dataset: a path, zip or hf:OWNER/NAME typed locally; a demo set or an uploaded zip on a public server."""
    if policy().server_paths_allowed:
        return container.text_input(label, key=key, **text_options).strip()
    picked = container.selectbox(label, [*DEMO_DATASETS, UPLOAD_DATASET], key=key)
    if picked != UPLOAD_DATASET:
        return picked
    upload = container.file_uploader("A .zip of face images", ["zip"], key=f"{key}_upload")
    return str(save_upload(upload.name, upload.getvalue(), "datasets")) if upload is not None else ""


def ready_generator(model_spec: str | None, container=None) -> Generator | None:
    """The model's Generator, or a fetch button (with size and progress) when a catalog model is not cached."""
    container = container or st
    if not model_spec:
        container.info("Choose a model in the sidebar.")
        return None
    if run_or_show_error(lambda: check_reachable(model_spec)) is None:
        return None
    choice = next((choice for choice in list_model_choices() if choice.spec == model_spec), None)
    if choice is not None and choice.state != "cached" and choice.is_catalog:
        container.warning(f"**{choice.title}** is not downloaded yet ({choice.detail}).")
        fetch_button(choice, container)
        return None
    return run_or_show_error(lambda: cached_generator(str(pin_run_checkpoint(model_spec)), *chosen_device()))


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


def truncation_cutoff_control(generator: Generator, key: str = "cutoff", container=None) -> int | None:
    """StyleGAN: psi on the first K ws only (NVIDIA's truncation_cutoff); None, psi on every w, for other models."""
    if not generator.has_w_space:
        return None
    container = container or st
    cutoff = container.slider(
        "Truncation cutoff",
        1,
        generator.num_ws,
        generator.num_ws,
        key=key,
        help="Apply psi to the first K ws only (the coarse layers): pose and shape stay typical while the finer "
        "layers keep their variety. All ws: plain truncation.",
    )
    return None if cutoff == generator.num_ws else int(cutoff)


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
