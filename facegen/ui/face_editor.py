"""The Edit page's parts: where the face starts (seed, uploaded PNG, a face sent from another page), the panels
whose widgets become edits, the labelled-direction workflow and the directions manager.

A slider move reruns only the page's editing fragment, and the caches here make that rerun cost one synthesis:
one FaceRenderer per model, device and precision (it keeps the mapped ws), closed-form directions per model, and
rendered images per recipe.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from facegen.editing import (
    LAYER_PRESETS,
    Camera,
    Direction,
    Face,
    FaceRenderer,
    MoveAlong,
    StyleMix,
    check_face,
    delete_direction,
    export_directions,
    fit_labelled_direction,
    format_layers,
    import_directions,
    load_directions,
    model_identity,
    move_along,
    pca_directions,
    preset_layers,
    rename_direction,
    save_directions,
    sefa_directions,
)
from facegen.generator import NOISE_MODES, Generator
from facegen.images import resize_image
from facegen.latent import random_seeds
from facegen.ui.handoff import EDIT, take_faces
from facegen.ui.widgets import label_controls, run_or_show_error
from facegen.video import suggested_upscale

# every widget key of the Edit page starts with "edit_", so no other page's state collides with it
SOURCE, SEED, UPLOAD, LOADED_UPLOAD, SENT_FACE = "edit_source", "edit_seed", "edit_upload", "edit_loaded", "edit_sent"
PSI, CUTOFF, NOISE = "edit_psi", "edit_cutoff", "edit_noise"
AMOUNT, LAYERS, KEEP_FIXED = "edit_amount_", "edit_layers_", "edit_keep_fixed"
MIX_SEED, MIX_LAYER = "edit_mix_seed", "edit_mix_layer_"
CAMERA_ON, TRANSLATE_X, TRANSLATE_Y, ROTATE = "edit_camera", "edit_translate_x", "edit_translate_y", "edit_rotate"
NOTICE = "edit_notice"
FROM_SEED, FROM_UPLOAD, FROM_SENT = "Seed", "Uploaded PNG", "Face sent from another page"
CLOSED_FORM_SLIDERS = 10
MAX_AMOUNT = 10.0
LABELLING_FACES, LABELLING_COLUMNS = 24, 8
MIX_CHECKBOXES_PER_ROW = 6
PCA_SAMPLES = (1000, 5000, 20000)
DISPLAY_SIDE = 256


def model_key(generator: Generator) -> tuple[str, str]:
    identity = model_identity(generator)
    return identity.spec, identity.sha256


@st.cache_resource(max_entries=4, show_spinner=False)
def _face_renderer(model: tuple[str, str], device: str, precision: str, _generator: Generator) -> FaceRenderer:
    return FaceRenderer(_generator)


def face_renderer(generator: Generator) -> FaceRenderer:
    """The model's shared FaceRenderer: every session moving sliders on it reuses the mapped ws it keeps."""
    return _face_renderer(model_key(generator), str(generator.device), generator.precision, generator)


@st.cache_data(max_entries=64, show_spinner=False)
def _rendered(model: tuple[str, str], device: str, precision: str, face_json: str, _generator: Generator) -> np.ndarray:
    return face_renderer(_generator).render(Face.from_json(face_json))


def render(generator: Generator, face: Face) -> np.ndarray:
    """The face as an HWC uint8 image; a recipe rendered before (a slider moved back) is not rendered again."""
    check_face(face, generator)
    return _rendered(model_key(generator), str(generator.device), generator.precision, face.to_json(), generator)


def shown_large(image: np.ndarray) -> np.ndarray:
    """A face at least DISPLAY_SIDE pixels wide: small models' faces upscaled by a whole factor with Lanczos."""
    factor = suggested_upscale(image.shape[1], DISPLAY_SIDE)
    return resize_image(image, (image.shape[1] * factor, image.shape[0] * factor), "lanczos")


def size_note(generator: Generator) -> str:
    native = generator.resolution
    shown = native * suggested_upscale(native, DISPLAY_SIDE)
    if shown == native:
        return f"Native size {native}×{native}."
    return f"Native size {native}×{native}, shown at {shown}×{shown} (Lanczos)."


@st.cache_resource(max_entries=8, show_spinner="Finding closed-form directions…")
def _closed_form(model: tuple[str, str], count: int, _generator: Generator) -> list[Direction]:
    return sefa_directions(_generator, count=count)


def closed_form_directions(generator: Generator, count: int = CLOSED_FORM_SLIDERS) -> list[Direction]:
    """The top closed-form (SeFa) directions of the model, computed once per model file."""
    return _closed_form(model_key(generator), count, generator)


def show_notice() -> None:
    """A success line a panel left before it reran the page (a fitted, renamed or imported direction)."""
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        st.success(notice, icon="✅")


def _rerun_with_notice(text: str) -> None:
    st.session_state[NOTICE] = text
    st.rerun()


# -- where the face starts -----------------------------------------------------------------------------------------


def start_face(generator: Generator) -> Face | None:
    """The sidebar's face: a seed, an uploaded facegen PNG or a face sent from another page, with the truncation,
    noise and labels chosen below it. A loaded face sets those widgets to its own values, so it shows unchanged."""
    state = st.session_state
    sent = take_faces(EDIT)
    if sent:
        state[SENT_FACE] = sent[-1]
        state[SOURCE] = FROM_SENT
        _show_face_settings(sent[-1], generator)
    sources = [FROM_SEED, FROM_UPLOAD] + ([FROM_SENT] if SENT_FACE in state else [])
    source = st.sidebar.radio("Start from", sources, key=SOURCE)
    loaded = None
    if source == FROM_SEED:
        seed_column, random_column = st.sidebar.columns([3, 1], vertical_alignment="bottom")
        seed = seed_column.number_input("Seed", 0, 2**32 - 1, 0, key=SEED)
        random_column.button(":material/casino:", key="edit_random_seed", help="A random seed", on_click=_random_seed)
    elif source == FROM_UPLOAD:
        upload = st.sidebar.file_uploader(
            "A PNG saved by facegen", type=["png"], key=UPLOAD,
            help="Its recipe (kept in the PNG) brings the face back exactly: seed or latent, truncation and edits.",
        )  # fmt: skip
        if upload is None:
            st.info("Upload a PNG saved by facegen (the Edit or Sample page, `facegen edit`, `facegen sample`).")
            return None
        loaded = run_or_show_error(lambda: face_from_upload(upload, generator))
        if loaded is None:
            return None
        if state.get(LOADED_UPLOAD) != upload.file_id:
            state[LOADED_UPLOAD] = upload.file_id
            _show_face_settings(loaded, generator)
    else:
        loaded = run_or_show_error(lambda: _checked(state[SENT_FACE], generator, "The face sent from another page"))
        if loaded is None:
            return None
    with st.sidebar:
        settings = _truncation_controls(generator)
        labels = label_controls(generator, st.sidebar) if generator.c_dim else None
    if loaded is None:
        return run_or_show_error(lambda: Face.from_seed(generator, int(seed), labels=labels, **settings))
    if generator.c_dim:
        settings["labels"] = tuple(labels) if isinstance(labels, list) else labels
    return run_or_show_error(lambda: _checked(loaded.replace(**settings), generator, "The face"))


def face_from_upload(upload: UploadedFile, generator: Generator) -> Face:
    """The face an uploaded PNG carries, refused with one clear line when it has none or another model made it."""
    return _checked(Face.from_png(io.BytesIO(upload.getvalue()), upload.name), generator, upload.name)


def _checked(face: Face, generator: Generator, source: str) -> Face:
    check_face(face, generator, source)
    return face


def _random_seed() -> None:
    st.session_state[SEED] = random_seeds(1)[0]


def _truncation_controls(generator: Generator) -> dict:
    """Truncation psi, cutoff (models with ws) and noise (models with noise inputs), as Face fields."""
    settings = {
        "truncation_psi": st.slider(
            "Truncation psi", 0.0, 2.0, 1.0, 0.05, key=PSI, help="Lower: more typical faces, less variety."
        )
    }
    if generator.has_w_space:
        cutoff = st.slider(
            "Truncation cutoff", 1, generator.num_ws, generator.num_ws, key=CUTOFF,
            help=f"psi applies to the first K of the {generator.num_ws} ws only (NVIDIA's truncation_cutoff); "
            f"{generator.num_ws}: all.",
        )  # fmt: skip
        settings["truncation_cutoff"] = None if cutoff == generator.num_ws else int(cutoff)
    if generator.info.has_noise_inputs:
        settings["noise_mode"] = st.selectbox("Noise", NOISE_MODES, key=NOISE)
    return settings


def _show_face_settings(face: Face, generator: Generator) -> None:
    """Set the truncation, noise, label and camera widgets to `face`'s values and clear the edit panels."""
    state = st.session_state
    reset_edits()
    state[PSI] = face.truncation_psi
    if generator.has_w_space:
        state[CUTOFF] = face.truncation_cutoff or generator.num_ws
    if generator.info.has_noise_inputs:
        state[NOISE] = face.noise_mode
    names = list(generator.info.label_names) or [f"class {index}" for index in range(generator.c_dim)]
    if isinstance(face.labels, int) and 0 <= face.labels < len(names):
        state["class_index"] = names[face.labels]
    elif isinstance(face.labels, tuple) and generator.info.labels_are_attributes:
        state["attributes"] = [name for name, value in zip(names, face.labels) if value >= 0.5]
    camera = next((edit for edit in face.edits if isinstance(edit, Camera)), None)
    if camera is not None:
        state[CAMERA_ON] = True
        state[TRANSLATE_X], state[TRANSLATE_Y] = camera.translate
        state[ROTATE] = camera.rotate


def reset_edits() -> None:
    """Every direction slider to 0, no mixed layers, the camera off."""
    state = st.session_state
    for key in [key for key in state if str(key).startswith((AMOUNT, MIX_LAYER))]:
        del state[key]
    for key in (CAMERA_ON, TRANSLATE_X, TRANSLATE_Y, ROTATE):
        state.pop(key, None)


def edited(start: Face, edits: list[MoveAlong | StyleMix | Camera | None]) -> Face:
    """`start` with the panels' edits after its own; the camera panel owns the camera, so a loaded face's camera
    is replaced by the panel's (which opened at the loaded values)."""
    carried = tuple(edit for edit in start.edits if not isinstance(edit, Camera))
    return start.replace(edits=carried + tuple(edit for edit in edits if edit is not None))


# -- panels that become edits --------------------------------------------------------------------------------------


def direction_sliders(generator: Generator, directions: list[Direction]) -> list[MoveAlong]:
    """One amount slider per direction (and a layer range for StyleGAN); the moves of the sliders not at 0."""
    if not directions:
        st.caption("No directions yet.")
        return []
    by_name = {direction.name: direction for direction in directions}
    kept_names = st.multiselect(
        "Keep fixed", list(by_name), key=KEEP_FIXED,
        help="Move along the other directions without moving along these (InterFaceGAN's conditional editing).",
    )  # fmt: skip
    moves = []
    for direction in directions:
        amount_column, *layers_column = st.columns([3, 2] if generator.has_w_space else [1])
        amount = amount_column.slider(
            f"{direction.name} · {_direction_facts(direction)}", -MAX_AMOUNT, MAX_AMOUNT, 0.0, 0.1,
            key=AMOUNT + direction.name, help=direction.description,
        )  # fmt: skip
        layers = _layer_range(generator, direction, layers_column[0]) if layers_column else None
        if amount:
            moves.append((direction, amount, layers))

    def edits() -> list[MoveAlong]:
        return [
            move_along(direction, amount, layers, [by_name[name] for name in kept_names if name != direction.name])
            for direction, amount, layers in moves
        ]

    return run_or_show_error(edits) or []


def slider_directions(generator: Generator) -> list[Direction]:
    """The top closed-form directions, then the model's saved ones (PCA, labelled, imported, from the CLI)."""
    closed_form = closed_form_directions(generator)
    names = {direction.name for direction in closed_form}
    return closed_form + [direction for direction in load_directions(generator).values() if direction.name not in names]


def face_caption(face: Face) -> str:
    """Where a face comes from, in a few words: 'seed 42 · psi 0.7'."""
    origin = f"seed {face.seed}" if face.latent is None else f"a stored {face.latent.space} latent"
    cutoff = f" (first {face.truncation_cutoff} ws)" if face.truncation_cutoff is not None else ""
    return f"{origin} · psi {face.truncation_psi:g}{cutoff}"


def edit_count(face: Face) -> str:
    count = len(face.edits)
    return f"{count} edit" if count == 1 else f"{count} edits"


def _direction_facts(direction: Direction) -> str:
    facts = [f"strength {direction.strength:.3g}"]
    if direction.accuracy is not None:
        facts.append(f"held-out accuracy {direction.accuracy:.0%}")
    return " · ".join(facts)


def _layer_range(generator: Generator, direction: Direction, container) -> tuple[int, ...] | None:
    """The ws the move applies to; None keeps the direction's own (all ws when it has none)."""
    last = generator.num_ws - 1
    own = direction.layers or range(generator.num_ws)
    low, high = container.slider(
        "on ws", 0, last, (min(own), max(own)), key=LAYERS + direction.name,
        help=f"The ws {direction.name} moves (0-based, inclusive).",
    )  # fmt: skip
    chosen = tuple(range(low, high + 1))
    return None if chosen == tuple(own) else chosen


def style_mixing_panel(generator: Generator) -> StyleMix | None:
    """NVIDIA's style mixing: the chosen layers' ws come from another seed; presets tick coarse/middle/fine."""
    state = st.session_state
    st.number_input("Styles from seed", 0, 2**32 - 1, 11, key=MIX_SEED)
    preset_columns = st.columns(len(LAYER_PRESETS) + 1)
    for column, preset in zip(preset_columns, LAYER_PRESETS):
        layers = preset_layers(preset, generator.num_ws)
        column.button(
            preset, key=f"edit_mix_{preset}", disabled=not layers, on_click=_tick_layers,
            args=(generator.num_ws, layers), width="stretch", help=f"Layers {format_layers(layers) or 'none here'}",
        )  # fmt: skip
    preset_columns[-1].button(
        "none", key="edit_mix_none", on_click=_tick_layers, args=(generator.num_ws, ()), width="stretch"
    )
    st.caption("Layers whose styles come from the other seed:")
    per_row = min(generator.num_ws, MIX_CHECKBOXES_PER_ROW)
    for start in range(0, generator.num_ws, per_row):
        for layer, column in zip(range(start, min(start + per_row, generator.num_ws)), st.columns(per_row)):
            column.checkbox(str(layer), key=f"{MIX_LAYER}{layer}")
    layers = tuple(layer for layer in range(generator.num_ws) if state.get(f"{MIX_LAYER}{layer}"))
    return StyleMix(layers, seed=int(state[MIX_SEED])) if layers else None


def _tick_layers(num_ws: int, layers: tuple[int, ...]) -> None:
    for layer in range(num_ws):
        st.session_state[f"{MIX_LAYER}{layer}"] = layer in layers


def camera_panel() -> Camera | None:
    """StyleGAN3's camera as gen_images.py sets it; off leaves the network's own input transform."""
    on = st.toggle("Set the camera", key=CAMERA_ON, help="As NVIDIA's gen_images.py --translate and --rotate.")
    translate_x = st.slider("Translate x", -1.0, 1.0, 0.0, 0.01, key=TRANSLATE_X, disabled=not on)
    translate_y = st.slider("Translate y", -1.0, 1.0, 0.0, 0.01, key=TRANSLATE_Y, disabled=not on)
    rotate = st.slider("Rotate (degrees)", -180.0, 180.0, 0.0, 1.0, key=ROTATE, disabled=not on)
    return Camera((float(translate_x), float(translate_y)), float(rotate)) if on else None


def pca_button(generator: Generator) -> None:
    """Compute PCA (GANSpace) directions with a progress bar and save them with the model's directions."""
    samples_column, button_column = st.columns([3, 2], vertical_alignment="bottom")
    samples = samples_column.select_slider("PCA samples", PCA_SAMPLES, 5000, key="edit_pca_samples")
    if not button_column.button("Compute PCA directions", key="edit_pca"):
        return
    bar = st.progress(0.0, text="Sampling for PCA…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"PCA of {samples:,} samples: step {done} of {total}")

    found = run_or_show_error(
        lambda: pca_directions(generator, count=CLOSED_FORM_SLIDERS, samples=samples, progress=progress)
    )
    bar.empty()
    if found is not None:
        save_directions(generator, found)
        st.success(f"Saved {len(found)} PCA directions: {found[0].name} to {found[-1].name}.", icon="✅")


# -- directions labelled by the user --------------------------------------------------------------------------------


@st.cache_data(max_entries=16, show_spinner="Rendering faces to label…")
def _labelling_faces(
    model: tuple[str, str], device: str, precision: str, seeds: tuple[int, ...], template_json: str,
    _generator: Generator,
) -> np.ndarray:  # fmt: skip
    renderer = face_renderer(_generator)
    template = Face.from_json(template_json)
    return np.stack([renderer.render(template.replace(seed=seed)) for seed in seeds])


@st.fragment
def labelling_panel(generator: Generator, template: Face) -> None:
    """A page of random faces (with `template`'s truncation and labels) to mark as having an attribute or not;
    Fit learns a direction from the marks, saves it and shows its held-out accuracy."""
    state = st.session_state
    if st.button("New faces", key="edit_label_reroll") or "edit_label_seeds" not in state:
        state["edit_label_seeds"] = random_seeds(LABELLING_FACES)
    seeds = state["edit_label_seeds"]
    template = template.replace(seed=0, latent=None, edits=())
    images = _labelling_faces(
        model_key(generator), str(generator.device), generator.precision, tuple(seeds), template.to_json(), generator
    )
    for start in range(0, len(seeds), LABELLING_COLUMNS):
        for seed, image, column in zip(seeds[start:], images[start:], st.columns(LABELLING_COLUMNS)):
            column.image(image, caption=f"seed {seed}", width="stretch", output_format="PNG")
            column.checkbox("has it", key=f"edit_has_{seed}")
            column.checkbox("doesn't", key=f"edit_hasnt_{seed}")
    with_attribute = [seed for seed in seeds if state.get(f"edit_has_{seed}")]
    without_attribute = [seed for seed in seeds if state.get(f"edit_hasnt_{seed}")]
    name_column, fit_column = st.columns([3, 1], vertical_alignment="bottom")
    name = name_column.text_input("Direction name", key="edit_label_name", placeholder="e.g. smiling")
    st.caption(f"Marked: {len(with_attribute)} with, {len(without_attribute)} without (10–20 of each work well).")
    if not fit_column.button("Fit and save", key="edit_label_fit"):
        return
    both = sorted(set(with_attribute) & set(without_attribute))
    if both:
        st.error(f"Seed {both[0]} is marked both 'has it' and 'doesn't'; untick one.", icon="⚠️")
        return

    def fit() -> Direction:
        faces = [[template.replace(seed=seed) for seed in marked] for marked in (with_attribute, without_attribute)]
        direction = fit_labelled_direction(generator, name.strip(), *faces, renderer=face_renderer(generator))
        save_directions(generator, [direction])
        return direction

    direction = run_or_show_error(fit)
    if direction is not None:
        _rerun_with_notice(
            f"Saved direction {direction.name!r}: held-out accuracy {direction.accuracy:.0%} "
            f"({len(with_attribute)} faces with, {len(without_attribute)} without)."
        )


# -- the model's saved directions ------------------------------------------------------------------------------------


@st.fragment
def directions_manager(generator: Generator) -> None:
    """The saved directions of this model file: a table, rename, delete, export to a file and import one."""
    saved = load_directions(generator)
    if saved:
        st.dataframe(
            [
                {
                    "name": item.name, "method": item.method, "strength": item.strength,
                    "layers": format_layers(item.layers) if item.layers else "all",
                    "held-out accuracy": item.accuracy, "description": item.description,
                }
                for item in saved.values()
            ],
            hide_index=True,
        )  # fmt: skip
        chosen_column, new_name_column, rename_column, delete_column = st.columns(
            [2, 2, 1, 1], vertical_alignment="bottom"
        )
        chosen = chosen_column.selectbox("Direction", list(saved), key="edit_manage_pick")
        new_name = new_name_column.text_input("New name", key="edit_manage_name")
        renamed = rename_column.button("Rename", key="edit_manage_rename") and run_or_show_error(
            lambda: rename_direction(generator, chosen, new_name.strip())
        )
        if renamed:
            _rerun_with_notice(f"Renamed {chosen!r} to {renamed.name!r}.")
        if delete_column.button("Delete", key="edit_manage_delete"):
            delete_direction(generator, chosen)  # one of the listed names: nothing a user can get wrong
            _rerun_with_notice(f"Deleted {chosen!r}.")
        st.download_button(
            "Export directions (.safetensors)", _exported(generator), "facegen-directions.safetensors",
            "application/octet-stream", key="edit_manage_export",
        )  # fmt: skip
    else:
        st.caption("No saved directions yet: compute PCA directions, fit a labelled one, or import a file.")
    upload = st.file_uploader("Import directions", type=["safetensors"], key="edit_manage_import")
    if upload is not None and st.button("Import", key="edit_manage_import_button"):
        imported = run_or_show_error(lambda: _import(generator, upload))
        if imported is not None:
            _rerun_with_notice(f"Imported {len(imported)} directions: {', '.join(item.name for item in imported)}.")


def _exported(generator: Generator) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        return export_directions(generator, Path(folder) / "directions.safetensors").read_bytes()


def _import(generator: Generator, upload: UploadedFile) -> list[Direction]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(upload.name).name  # errors name the file the user picked
        path.write_bytes(upload.getvalue())
        return import_directions(generator, path)
