"""Compare: own runs, checkpoints and pretrained models side by side on the same seeds, and their FID/KID against a
reference set of real faces."""

import json

import streamlit as st

from facegen.compare import Comparison, compare_models, evaluate_models, quality_table
from facegen.images import RESAMPLE_FILTERS, make_grid
from facegen.metrics import MIN_GENERATED, InceptionFeatures
from facegen.public import policy
from facegen.ui.sessions import current_session_id, job_slots
from facegen.ui.widgets import (
    chosen_device,
    dataset_input,
    device_picker,
    offered_model_choices,
    ready_generator,
    route_through_app,
    run_or_show_error,
    seed_input,
    truncation_slider,
)

MAX_SEEDS = 16
DISPLAY_SIZES = ("Largest model, at least 256", 64, 128, 256, 512)

route_through_app()
st.title("Compare models")
state = st.session_state
choices = {choice.spec: choice for choice in offered_model_choices()}
own = [spec for spec, choice in choices.items() if not choice.is_catalog]
pretrained = [spec for spec, choice in choices.items() if choice.is_catalog]
with st.sidebar:
    picked = st.multiselect(
        "Models",
        list(choices),
        default=(own[:1] + pretrained[:1]),
        key="models",
        format_func=lambda spec: f"{choices[spec].title} · {choices[spec].state}",
    )
    more = (
        st.text_area(
            "More models",
            key="more_models",
            placeholder="run:NAME@STEP or a weights file path, one a line",
            help="A checkpoint of a run (run:starter@200) or any .pkl, .safetensors or .pt file.",
        )
        if policy().server_paths_allowed
        else ""
    )
    selection = seed_input(default="0-7", key="seeds", container=st.sidebar)
    device_picker()
    size_choice = st.selectbox(
        "Display size",
        DISPLAY_SIZES,
        key="display_size",
        help="Every face is resized to this; by default to the largest model's resolution, at least 256 pixels.",
    )
    resample = st.radio(
        "Resize filter",
        list(RESAMPLE_FILTERS),
        horizontal=True,
        key="resample",
        help="nearest keeps a small model's pixels visible; lanczos smooths them.",
    )

specs = list(dict.fromkeys(picked + [line.strip() for line in more.splitlines() if line.strip()]))
generators = [generator for spec in specs if (generator := ready_generator(spec)) is not None]
if not generators:
    st.info("Pick two or more models in the sidebar: your runs, their checkpoints, pretrained models.")
    st.stop()
truncation_psi = truncation_slider(generators, container=st.sidebar)
if selection is None:
    st.stop()
if len(selection.seeds) > MAX_SEEDS:
    st.error(f"{len(selection.seeds)} seeds is more than this page lines up ({MAX_SEEDS}). Use a shorter list.")
    st.stop()


@st.cache_data(max_entries=16, show_spinner="Rendering…")
def cached_comparison(
    model_identities: tuple[tuple[str, str], ...],
    seeds: tuple[int, ...],
    size: int | None,
    resample: str,
    psi: float,
    _generators: list,
) -> Comparison:
    return compare_models(_generators, seeds, size, resample, psi)


size = None if size_choice == DISPLAY_SIZES[0] else int(size_choice)
comparison = run_or_show_error(
    lambda: cached_comparison(
        tuple(generator.identity.key for generator in generators),
        tuple(selection.seeds),
        size,
        resample,
        truncation_psi,
        generators,
    )
)
if comparison is None:
    st.stop()
st.caption(
    f"Seeds, left to right: {', '.join(map(str, comparison.seeds))} · every face shown at "
    f"{comparison.display_size}x{comparison.display_size} · {comparison.latent_note()}"
)
for row in comparison.rows:
    scale = "" if row.resolution == comparison.display_size else f", resized from {row.resolution}px"
    st.image(
        make_grid(row.images, len(comparison.seeds)),
        caption=f"{row.model_id} (z_dim {row.z_dim}{scale})",
        output_format="PNG",
    )

# -- quality ----------------------------------------------------------------------------------------------------
st.subheader("Quality: FID and KID")
reference_column, n_column = st.columns([3, 1])
reference = dataset_input(
    "Reference images",
    key="reference",
    container=reference_column,
    placeholder="a folder or .zip of real faces, or demo:digiface-reference",
    help="Ideally the images the models were trained on. Their Inception features are cached.",
)
n = n_column.number_input(
    "Images per model",
    MIN_GENERATED,
    100_000,
    500,
    key="metrics_n",
    help=f"Generated from seeds 0..n-1, at least {MIN_GENERATED}. Published FIDs use 50,000; small n gives larger, "
    "noisier FIDs.",
)
st.caption(
    "Inception-v3 features as in the standard TF FID. On a CPU expect about one image per second; the "
    "reference set's features are computed once and cached."
)


@st.cache_resource(show_spinner="Loading the Inception network…")
def inception(device: str) -> InceptionFeatures:
    return InceptionFeatures.load(device)


if st.button("Compute FID/KID", key="compute_metrics", disabled=not reference.strip()):
    bar = st.progress(0.0, text="Starting…")

    def show_progress(model_index: int, stage: str, done: int, total: int) -> None:
        what = "reference images" if stage == "reference" else f"images of {generators[model_index].info.model_id}"
        bar.progress(
            min(done / total, 1.0), text=f"Model {model_index + 1} of {len(generators)}: {done} of {total} {what}"
        )

    def show_place(place: int) -> None:
        bar.progress(0.0, text=f"Waiting for a free slot, number {place} in line…")

    def evaluate_in_turn() -> list:
        with job_slots().turn(current_session_id(), on_wait=show_place):
            return evaluate_models(generators, reference.strip(), int(n), inception(chosen_device()[0]), show_progress)

    results = run_or_show_error(evaluate_in_turn)
    bar.empty()
    if results is not None:
        state.quality_results = results
results = state.get("quality_results")
if results:
    for warning in dict.fromkeys(warning for result in results for warning in result.warnings):
        st.warning(warning, icon="⚠️")
    st.dataframe(quality_table(results), hide_index=True)
    st.caption(
        f"Against {results[0].reference} ({results[0].reference_images} images at each model's resolution). "
        "Lower is better for both."
    )
    st.download_button(
        "Download results (JSON)",
        json.dumps([json.loads(result.to_json()) for result in results], indent=2),
        "facegen-quality.json",
        "application/json",
        key="download_quality",
    )
