"""Interpolate: keyframe seeds to a morphing clip, with a quick preview, then MP4, GIF and recipe downloads.

Renders run on a background thread (facegen.video.RenderJob); the page polls it, so this session stays responsive
and other sessions are never blocked.
"""

import tempfile
from pathlib import Path

import streamlit as st

from facegen.images import make_grid
from facegen.latent import EASINGS, INTERPOLATIONS, MAX_SEED, random_seeds
from facegen.train.runs import keep_recipe_checkpoint
from facegen.ui.widgets import (
    label_controls,
    model_picker,
    ready_generator,
    route_through_app,
    run_or_show_error,
    truncation_slider,
)
from facegen.video import (
    GIF_MAX_SIDE,
    UPSCALE_FILTERS,
    ClipRecipe,
    RenderJob,
    preview_recipe,
    recipe_for_generator,
    suggested_upscale,
)

DEFAULT_KEYFRAMES = [1, 7, 42]
JOB_KINDS = ("preview_job", "render_job")
CARDS_PER_ROW = 4  # with the sidebar open, a 1024 px screen still fits three controls under each
PREVIEW_MAX_SIDE = 256
POLL_SECONDS = 0.5
MIN_VIDEO_WIDTH, MAX_VIDEO_WIDTH = 384, 768

route_through_app()
st.title("Interpolate")
model_spec = model_picker()
generator = ready_generator(model_spec)
if generator is None:
    st.stop()
state = st.session_state
state.setdefault("keyframes", [[seed] for seed in DEFAULT_KEYFRAMES])  # one list of cell seeds per keyframe
state.setdefault("clip_dir", tempfile.mkdtemp(prefix="facegen-interpolate-"))
state.setdefault("clip_count", 0)


@st.cache_data(max_entries=256, show_spinner=False)
def keyframe_thumbnail(
    model_identity: tuple[str, str], seeds: tuple[int, ...], columns: int, psi: float, noise: str, labels: object
):
    return make_grid(generator.sample(seeds=list(seeds), truncation_psi=psi, labels=labels, noise_mode=noise), columns)


with st.sidebar:
    st.subheader("Clip")
    seconds = st.slider("Seconds", 1, 60, 6, key="seconds")
    fps = st.select_slider("Frames per second", [10, 12, 15, 24, 25, 30, 50, 60], 30, key="fps")
    loop = st.checkbox("Loop back to the first keyframe", True, key="loop")
    interpolation = st.selectbox(
        "Interpolation",
        INTERPOLATIONS,
        key="interpolation",
        help="slerp follows the sphere Gaussian latents live on; cubic passes smoothly through every keyframe.",
    )
    easing = st.selectbox("Easing", list(EASINGS), key="easing")
    space = st.radio("Walk in", ["w", "z"], horizontal=True, key="space") if generator.has_w_space else "z"
    rows, cols = st.columns(2)
    grid_rows = rows.number_input("Grid rows", 1, 4, 1, key="grid_rows")
    grid_cols = cols.number_input("Grid columns", 1, 4, 1, key="grid_cols")
    psi = truncation_slider([generator])
    noise_mode = (
        st.selectbox("Noise", ["const", "random", "none"], key="noise") if generator.info.has_noise_inputs else "const"
    )
    conditioning = label_controls(generator)
    upscale = st.select_slider("Upscale", [1, 2, 4, 8], suggested_upscale(generator.resolution), key="upscale")
    upscale_filter = st.selectbox("Upscale filter", UPSCALE_FILTERS, key="upscale_filter")
    seed_labels = st.checkbox("Print seeds on the faces", False, key="seed_labels")

cells = int(grid_rows * grid_cols)
# every keyframe needs one seed per grid cell: keep the user's seeds, fill new cells at random
keyframes = state.keyframes = [row[:cells] + random_seeds(cells - len(row)) for row in state.keyframes]


def update_keyframes(new_keyframes: list[list[int]]) -> None:
    state.keyframes = new_keyframes
    st.rerun()


st.subheader("Keyframes")
add_text, add_button, random_button = st.columns([3, 1, 1], vertical_alignment="bottom")
# no bounds on the widget itself: out of bounds it would quietly keep its last value, and Add would add that
new_seed = add_text.number_input(
    "Seed to add", value=0, step=1, key="new_seed", help="In grid mode the other cells of the new keyframe get random seeds."
)
seed_usable = 0 <= new_seed <= MAX_SEED
if not seed_usable:
    st.error(f"Seed {new_seed} cannot be added: seeds are whole numbers from 0 to {MAX_SEED:,}.")
if add_button.button("Add seed", key="add_seed", disabled=not seed_usable):
    update_keyframes(keyframes + [[int(new_seed)] + random_seeds(cells - 1)])
if random_button.button("Add random", key="add_random"):
    update_keyframes(keyframes + [random_seeds(cells)])

for start in range(0, len(keyframes), CARDS_PER_ROW):
    for index, card in enumerate(st.columns(CARDS_PER_ROW), start):
        if index >= len(keyframes):
            break
        thumbnail = keyframe_thumbnail(
            generator.identity.key, tuple(keyframes[index]), int(grid_cols), psi, noise_mode, conditioning
        )
        card.image(thumbnail, caption=f"{index + 1}: seed {', '.join(map(str, keyframes[index]))}", width="stretch")
        # a wrapping row: on a narrow screen the controls move to a second line instead of being clipped
        controls = card.container(horizontal=True, gap="xxsmall", horizontal_alignment="distribute")
        reordered = list(keyframes)
        if controls.button("◀", key=f"earlier_{index}", disabled=index == 0, help="Move earlier"):
            reordered[index - 1 : index + 1] = [keyframes[index], keyframes[index - 1]]
            update_keyframes(reordered)
        if controls.button("▶", key=f"later_{index}", disabled=index == len(keyframes) - 1, help="Move later"):
            reordered[index : index + 2] = [keyframes[index + 1], keyframes[index]]
            update_keyframes(reordered)
        if controls.button("✕", key=f"remove_{index}", help="Remove"):
            update_keyframes(keyframes[:index] + keyframes[index + 1 :])


def build_recipe() -> ClipRecipe:
    recipe = ClipRecipe(
        model=model_spec,
        keyframe_seeds=tuple(seed for keyframe in keyframes for seed in keyframe),
        space=space,
        interpolation=interpolation,
        easing=easing,
        fps=int(fps),
        seconds=float(seconds),
        loop=loop,
        grid_rows=int(grid_rows),
        grid_cols=int(grid_cols),
        truncation_psi=float(psi),
        noise_mode=noise_mode,
        conditioning=tuple(conditioning) if isinstance(conditioning, list) else conditioning,
        upscale=int(upscale),
        upscale_filter=upscale_filter,
        seed_labels=seed_labels,
    )
    return recipe_for_generator(recipe, generator)


recipe = run_or_show_error(build_recipe)
if recipe is None:
    st.stop()
st.caption(
    f"{recipe.frame_count} frames, {recipe.duration_seconds:g} s, {len(keyframes)} keyframes"
    + (f" in {cells} walks" if cells > 1 else "")
)


def start_job(kind: str, job_recipe: ClipRecipe, suffixes: tuple[str, ...], gif_max_side: int) -> None:
    previous = state.get(kind)
    if previous is not None:
        previous.cancel()
        for path in previous.result.paths if previous.result else ():
            path.unlink(missing_ok=True)
    state.clip_count += 1
    outputs = [Path(state.clip_dir) / f"{kind}-{state.clip_count}{suffix}" for suffix in suffixes]
    state[kind] = RenderJob(generator, job_recipe, outputs, gif_max_side=gif_max_side)


preview_button, render_button = st.columns(2)
if preview_button.button(
    "Quick preview", key="preview", help="A few frames per transition at the model's own size, as a GIF."
):
    start_job("preview_job", preview_recipe(recipe), (".gif",), PREVIEW_MAX_SIDE)
if render_button.button("Render clip", key="render", type="primary"):
    run_or_show_error(lambda: keep_recipe_checkpoint(generator.identity.spec))  # the clip's recipe names it
    start_job("render_job", recipe, (".mp4", ".gif"), GIF_MAX_SIDE)


def show_job(kind: str, title: str) -> None:
    job = state.get(kind)
    if job is None:
        return
    if not job.finished:
        st.progress(job.fraction, text=f"{title}: {job.frames_done} of {job.frame_count} frames")
        if st.button("Stop", key=f"stop_{kind}"):
            job.cancel()
        return
    if job.error:
        st.error(job.error, icon="⚠️")
        return
    mp4 = next((path for path in job.result.paths if path.suffix == ".mp4"), None)
    gif = next(path for path in job.result.paths if path.suffix == ".gif")
    if mp4 is None:
        st.image(str(gif), caption=f"Preview: {job.frame_count} frames")
        return
    # shown near its own size: small faces stretched to the page width only look blurry
    width = min(MAX_VIDEO_WIDTH, max(MIN_VIDEO_WIDTH, job.result.frame_size[0]))
    st.video(str(mp4), format="video/mp4", loop=True, autoplay=True, muted=True, width=width)
    mp4_column, gif_column, recipe_column = st.columns(3)
    mp4_column.download_button("Download MP4", mp4.read_bytes(), "facegen-walk.mp4", "video/mp4", key="download_mp4")
    gif_column.download_button("Download GIF", gif.read_bytes(), "facegen-walk.gif", "image/gif", key="download_gif")
    recipe_column.download_button(
        "Download recipe",
        job.recipe.to_json(),
        "facegen-walk.json",
        "application/json",
        key="download_recipe",
        help="Render it again: python -m facegen video --recipe facegen-walk.json --out walk.mp4",
    )


def jobs_running() -> bool:
    return any(state.get(kind) is not None and not state[kind].finished for kind in JOB_KINDS)


running = jobs_running()


@st.fragment(run_every=POLL_SECONDS if running else None)
def jobs() -> None:
    show_job("preview_job", "Preview")
    show_job("render_job", "Rendering")
    if running and not jobs_running():
        st.rerun()  # the whole page once more, so polling stops and results settle


jobs()
