"""Project: a photo (uploaded or taken with the camera) becomes a face of the chosen model. The faces found are
shown with the aligned crop; the projection runs in the background (facegen.projection.job.ProjectionJob) with a
progress bar and a live preview; the result opens in Edit, goes to Interpolate as a keyframe, or downloads."""

import os
import tempfile
from pathlib import Path

import numpy as np
import streamlit as st

from facegen.faces.align import AlignedFace, already_aligned, find_and_align
from facegen.faces.detect import marked_faces
from facegen.faces.photo import read_photo
from facegen.projection.job import ProjectionJob
from facegen.projection.outputs import ProjectionOutputs
from facegen.projection.perceptual import PERCEPTUAL_ENVIRONMENT, PerceptualDistance
from facegen.projection.projector import MAX_STEPS, ProjectionSettings
from facegen.train.runs import keep_recipe_checkpoint
from facegen.ui.handoff import EDIT, INTERPOLATE, send_face
from facegen.ui.widgets import chosen_device, model_picker, ready_generator, route_through_app, run_or_show_error

PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"]
POLL_SECONDS = 0.5
SHOWN_SIDE = 256  # faces are shown at least this wide: a 64 px face at its own size is a thumbnail
EDIT_PAGE, INTERPOLATE_PAGE = "pages/edit.py", "pages/interpolate.py"

route_through_app()
st.title("Start from a photo")
generator = ready_generator(model_picker())
if generator is None:
    st.stop()
state = st.session_state
state.setdefault("projection_dir", tempfile.mkdtemp(prefix="facegen-project-"))
state.setdefault("projection_count", 0)


@st.cache_data(max_entries=8, show_spinner="Finding the face…")
def aligned_face(photo_bytes: bytes, name: str, size: int, face_index: int | None, is_aligned: bool) -> AlignedFace:
    photo = read_photo(photo_bytes, name)
    return already_aligned(photo, size) if is_aligned else find_and_align(photo, size, face_index, photo_name=name)


@st.cache_data(max_entries=8, show_spinner=False)
def photo_with_faces(photo_bytes: bytes, name: str, aligned: AlignedFace) -> np.ndarray:
    return marked_faces(read_photo(photo_bytes, name), list(aligned.faces), aligned.face_index)


@st.cache_resource(show_spinner="Loading the perceptual network (NVIDIA's vgg16.pt is fetched once, 528 MB)…")
def perceptual_network(device: str, network_file: str | None) -> PerceptualDistance:
    """`network_file`, the FACEGEN_PERCEPTUAL that PerceptualDistance.load reads, keys the cache."""
    return PerceptualDistance.load(device=device)


def shown_width(image: np.ndarray) -> int:
    return max(SHOWN_SIDE, image.shape[1])


def projection_running() -> bool:
    job = state.get("projection_job")
    return job is not None and not job.finished


running = projection_running()
source = st.radio("Photo", ["Upload", "Camera"], horizontal=True, key="photo_source", disabled=running)


def new_photo() -> None:
    state.pop("face_index", None)  # a new photo starts from its largest face


if source == "Upload":
    upload = st.file_uploader(
        "A photo with a face", type=PHOTO_TYPES, key="photo_upload", disabled=running, on_change=new_photo
    )
else:
    upload = st.camera_input("Take a photo", key="photo_camera", disabled=running, on_change=new_photo)
is_aligned = st.checkbox(
    "The photo is an aligned face already",
    key="photo_is_aligned",
    disabled=running,
    help="Skip face detection and use the photo as it is (its centred square, resized): for FFHQ-style crops and "
    "for faces a model drew.",
)
photo_bytes = None if upload is None else upload.getvalue()
aligned = None
if photo_bytes is not None:
    name, chosen = upload.name, state.get("face_index", 0)
    aligned = run_or_show_error(lambda: aligned_face(photo_bytes, name, generator.resolution, chosen, is_aligned))
if aligned is not None:
    photo_column, aligned_column = st.columns([3, 1])
    if aligned.face is None:
        photo_column.image(photo_with_faces(photo_bytes, name, aligned), caption=name)
    else:
        found = len(aligned.faces)
        photo_column.image(
            photo_with_faces(photo_bytes, name, aligned),
            caption=f"{name}: {found} face{'s' * (found > 1)} found (green: the one projected)",
        )
        if found > 1:
            aligned_column.selectbox(
                "Face", range(found), key="face_index", disabled=running,
                format_func=lambda index: f"{index}" + (" (largest)" if index == 0 else ""),
            )  # fmt: skip
    aligned_column.image(
        aligned.image, caption=f"Aligned, {generator.resolution} px", width=shown_width(aligned.image),
        output_format="PNG",
    )  # fmt: skip

    steps_column, space_column, seed_column, start_column = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
    steps = steps_column.number_input(
        "Steps", 1, MAX_STEPS, 1000, key="projection_steps", disabled=running, help="NVIDIA's projector uses 1,000."
    )
    spaces = ["w", "w+", "z"] if generator.has_w_space else ["z"]
    space = space_column.radio(
        "Latent space", spaces, horizontal=True, key="projection_space", disabled=running,
        help="w: one style vector for all layers (NVIDIA's default); w+: one per layer, closer but less editable; "
        "z: the input latent (the only one of models without a W space).",
    )  # fmt: skip
    seed = seed_column.number_input(
        "Seed", 0, 2**31 - 1, 0, key="projection_seed", disabled=running, help="of the optimisation's noise"
    )
    start = start_column.button("Project", type="primary", disabled=running, key="start_projection")
    if start:
        settings = ProjectionSettings(steps=int(steps), space=space, seed=int(seed))
        perceptual = run_or_show_error(
            lambda: perceptual_network(chosen_device()[0], os.environ.get(PERCEPTUAL_ENVIRONMENT))
        )
        if perceptual is not None:
            run_or_show_error(lambda: keep_recipe_checkpoint(generator.identity.spec))  # the face's recipe names it
            state.projection_count += 1
            out_dir = Path(state.projection_dir) / f"projection-{state.projection_count}"
            photo = read_photo(photo_bytes, name)
            state.projection_job = ProjectionJob(
                photo, generator, perceptual, out_dir, settings, aligned.face_index, name, photo_is_aligned=is_aligned
            )
            running = True
elif photo_bytes is None:
    st.info("Upload a photo with a face, or take one with the camera.")


@st.fragment(run_every=POLL_SECONDS if running else None)
def projection_progress() -> None:
    job = state.get("projection_job")
    if job is None:
        return
    if not job.finished:
        distance = "" if job.distance is None else f" · perceptual distance {job.distance:.4f}"
        st.progress(job.fraction, text=f"Projecting: step {job.step:,} of {job.steps:,}{distance}")
        if job.preview is not None:
            st.image(job.preview, caption=f"Step {job.step:,}", width=shown_width(job.preview), output_format="PNG")
        st.button("Stop", key="stop_projection", on_click=job.stop, help="Finish now with the face reached so far.")
    elif job.error:
        st.error(job.error, icon="⚠️")
    if running and not projection_running():
        st.rerun()  # the whole page once more, so polling stops and the result shows


def show_result(outputs: ProjectionOutputs) -> None:
    result, face = outputs.result, outputs.result.face
    st.subheader("Your face in the model")
    projected = outputs.projected.read_bytes()
    done = f"{result.steps_done:,} of {result.steps:,} steps" if result.stopped_early else f"{result.steps:,} steps"
    target_column, projected_column, actions = st.columns([1, 1, 1])
    target_column.image(
        str(outputs.aligned), caption="Target (aligned)", width=shown_width(result.image), output_format="PNG"
    )
    projected_column.image(
        projected, caption=f"Projected in {result.space}: {done}, distance {result.distance:.4f}",
        width=shown_width(result.image), output_format="PNG",
    )  # fmt: skip
    if actions.button("Open in Edit", key="open_in_edit", type="primary"):
        send_face(EDIT, face)
        st.switch_page(EDIT_PAGE)
    if actions.button("Send to Interpolate", key="send_to_interpolate", help="It becomes the last keyframe there."):
        send_face(INTERPOLATE, face)
        st.switch_page(INTERPOLATE_PAGE)
    actions.download_button(
        "Download PNG", projected, "facegen-projected.png", "image/png", key="download_projected",
        help="The PNG carries the face's recipe: open it in Edit, or `facegen edit --from` it.",
    )  # fmt: skip
    if outputs.latent is not None:
        actions.download_button(
            "Download projected_w.npz", outputs.latent.read_bytes(), "projected_w.npz", "application/octet-stream",
            key="download_latent", help="NVIDIA's format: their gen_images.py --projected-w reads it.",
        )  # fmt: skip
    if outputs.video is not None:
        actions.download_button(
            "Download progress clip", outputs.video.read_bytes(), "facegen-projection.mp4", "video/mp4",
            key="download_progress", help="Target | current face, one frame per step.",
        )  # fmt: skip


projection_progress()
finished_job = state.get("projection_job")
if finished_job is not None and finished_job.finished and finished_job.outputs is not None:
    show_result(finished_job.outputs)
