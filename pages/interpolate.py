"""Interpolate: a walk through keyframes (seeds, or faces sent from other pages with their edits), a sweep along one
direction, or a seamless loop, with a quick preview, then MP4, GIF and recipe downloads.

Renders run on a background thread (facegen.video.RenderJob); the page polls it, so this session stays responsive
and other sessions are never blocked.
"""


import streamlit as st

from facegen.editing import Face, load_directions, move_along, render_face, save_directions, sefa_directions
from facegen.errors import FacegenError
from facegen.images import make_grid
from facegen.latent import EASINGS, INTERPOLATIONS, LOOP_WALKS, MAX_SEED, WALKS, random_seeds
from facegen.train.runs import keep_recipe_checkpoint
from facegen.ui.handoff import INTERPOLATE, take_faces
from facegen.ui.sessions import current_session_id, job_slots, session_folder, track_job
from facegen.ui.widgets import (
    label_controls,
    model_picker,
    ready_generator,
    route_through_app,
    run_or_show_error,
    truncation_cutoff_control,
    truncation_slider,
)
from facegen.video import (
    GIF_MAX_SIDE,
    UPSCALE_FILTERS,
    ClipRecipe,
    FaceKeyframe,
    RenderJob,
    preview_recipe,
    recipe_for_generator,
    split_keyframes,
    suggested_upscale,
)

DEFAULT_KEYFRAMES = [1, 7, 42]
WALK_LABELS = {
    "keyframes": "Keyframes",
    "sweep": "Direction sweep",
    "circle": "Circle loop",
    "noise-loop": "Noise loop",
}
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
state.setdefault("keyframes", [[seed] for seed in DEFAULT_KEYFRAMES])  # per keyframe: its cells' seeds, or a Face
state.keyframes = state.keyframes + (run_or_show_error(lambda: take_faces(INTERPOLATE)) or [])  # sent from Edit
state.setdefault("clip_count", 0)


@st.cache_data(max_entries=256, show_spinner=False)
def keyframe_thumbnail(
    model_identity: tuple[str, str],
    seeds: tuple[int, ...],
    columns: int,
    psi: float,
    cutoff: int | None,
    noise: str,
    labels: object,
):
    images = generator.sample(
        seeds=list(seeds), truncation_psi=psi, labels=labels, noise_mode=noise, truncation_cutoff=cutoff
    )
    return make_grid(images, columns)


@st.cache_data(max_entries=256, show_spinner=False)
def face_thumbnail(model_identity: tuple[str, str], face_json: str):
    return render_face(generator, Face.from_json(face_json))


walk = st.radio("Walk", WALKS, format_func=WALK_LABELS.get, horizontal=True, key="walk")
with st.sidebar:
    st.subheader("Clip")
    seconds = st.slider("Seconds", 1, 60, 6, key="seconds")
    fps = st.select_slider("Frames per second", [10, 12, 15, 24, 25, 30, 50, 60], 30, key="fps")
    loop = walk in LOOP_WALKS or st.checkbox(
        "Loop back to the first keyframe" if walk == "keyframes" else "Sweep back again", True, key="loop"
    )
    interpolation = "slerp"
    if walk == "keyframes":
        interpolation = st.selectbox(
            "Interpolation",
            INTERPOLATIONS,
            key="interpolation",
            help="slerp follows the sphere Gaussian latents live on; cubic passes smoothly through every keyframe.",
        )
    easing = "linear" if walk in LOOP_WALKS else st.selectbox("Easing", list(EASINGS), key="easing")
    space = "w" if generator.has_w_space and walk == "sweep" else "z"
    if generator.has_w_space and walk == "keyframes":
        space = st.radio("Walk in", ["w", "z"], horizontal=True, key="space")
    rows, cols = st.columns(2)
    grid_rows = rows.number_input("Grid rows", 1, 4, 1, key="grid_rows")
    grid_cols = cols.number_input("Grid columns", 1, 4, 1, key="grid_cols")
    psi = truncation_slider([generator])
    cutoff = truncation_cutoff_control(generator)
    noise_mode = (
        st.selectbox("Noise", ["const", "random", "none"], key="noise") if generator.info.has_noise_inputs else "const"
    )
    conditioning = label_controls(generator)
    upscale = st.select_slider("Upscale", [1, 2, 4, 8], suggested_upscale(generator.resolution), key="upscale")
    upscale_filter = st.selectbox("Upscale filter", UPSCALE_FILTERS, key="upscale_filter")
    seed_labels = st.checkbox("Print seeds on the faces", False, key="seed_labels")

cells = int(grid_rows * grid_cols)
# every seed keyframe needs one seed per grid cell: keep the user's seeds, fill new cells at random
keyframes = state.keyframes = [
    keyframe if isinstance(keyframe, Face) else keyframe[:cells] + random_seeds(cells - len(keyframe))
    for keyframe in state.keyframes
]


def update_keyframes(new_keyframes: list[list[int] | Face]) -> None:
    state.keyframes = new_keyframes
    st.rerun()


def show_keyframe(card, index: int) -> None:
    keyframe = keyframes[index]
    if isinstance(keyframe, Face):
        thumbnail = run_or_show_error(lambda: face_thumbnail(generator.identity.key, keyframe.to_json()))
        source = f"seed {keyframe.seed}" if keyframe.seed is not None else f"stored {keyframe.latent.space}"
        caption = f"{index + 1}: face · {source}"
    else:
        thumbnail = keyframe_thumbnail(
            generator.identity.key, tuple(keyframe), int(grid_cols), psi, cutoff, noise_mode, conditioning
        )
        caption = f"{index + 1}: seed {', '.join(map(str, keyframe))}"
    if thumbnail is not None:
        card.image(thumbnail, caption=caption, width="stretch")
    if isinstance(keyframe, Face) and keyframe.edits:
        card.badge("edited", help=f"{len(keyframe.edits)} edit(s): the clip passes through the edited face")


if walk in LOOP_WALKS:
    seed_column, new_column = st.columns([3, 1], vertical_alignment="bottom")
    loop_seed = seed_column.number_input(
        "Loop seed", 0, 2**32 - cells, 0, key="loop_seed", help="Each grid cell loops from the next seed."
    )
    new_column.button("New loop", key="new_loop", on_click=lambda: state.update(loop_seed=random_seeds(1)[0]))
    st.caption("A seamless loop through random faces: no keyframes needed; the clip ends where it began.")

sweep = None
if walk == "sweep":
    directions = load_directions(generator)
    if not directions:
        st.info("This model has no directions yet. Find its closed-form ones (SeFa): a second, no sampling.")
        if st.button("Find directions", key="find_directions"):
            run_or_show_error(lambda: save_directions(generator, sefa_directions(generator)))
            st.rerun()
        st.stop()
    direction_column, amount_column, through_column = st.columns(3)
    direction_name = direction_column.selectbox("Direction", list(directions), key="sweep_direction")
    amount = amount_column.slider("Amount", 0.5, 20.0, 3.0, 0.5, key="sweep_amount", help="From -amount to +amount")
    through = through_column.selectbox(
        "Through keyframe",
        range(len(keyframes)),
        format_func=lambda index: str(index + 1),
        key="sweep_through",
        help="The face the sweep goes through: its middle frame.",
    )
    sweep = move_along(directions[direction_name], amount)


def keyframe_editor() -> None:
    st.subheader("Keyframes")
    add_text, add_button, random_button = st.columns([3, 1, 1], vertical_alignment="bottom")
    # no bounds on the widget itself: out of bounds it would quietly keep its last value, and Add would add that
    new_seed = add_text.number_input(
        "Seed to add",
        value=0,
        step=1,
        key="new_seed",
        help="In grid mode the other cells of the new keyframe get random seeds. Faces come from the Edit page "
        "('Send to Interpolate').",
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
            show_keyframe(card, index)
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


if walk not in LOOP_WALKS:
    keyframe_editor()


def walk_keyframes() -> tuple[tuple[int, ...], tuple[FaceKeyframe, ...]]:
    """The recipe's seeds and faces: every keyframe, the one a sweep goes through, or a loop's seeds."""
    if walk in LOOP_WALKS:
        return tuple(int(loop_seed) + cell for cell in range(cells)), ()
    if walk == "sweep":
        if through is None:
            raise FacegenError("A sweep goes through a keyframe: add a seed or send a face from the Edit page.")
        return split_keyframes(keyframes[through : through + 1])
    return split_keyframes(keyframes)


def build_recipe() -> ClipRecipe:
    seeds, faces = walk_keyframes()
    recipe = ClipRecipe(
        model=model_spec,
        keyframe_seeds=seeds,
        walk=walk,
        keyframe_faces=faces,
        sweep=sweep,
        space=space,
        interpolation=interpolation,
        easing=easing,
        fps=int(fps),
        seconds=float(seconds),
        loop=loop,
        grid_rows=int(grid_rows),
        grid_cols=int(grid_cols),
        truncation_psi=float(psi),
        truncation_cutoff=cutoff,
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
shape = {
    "keyframes": f"{len(keyframes)} keyframes",
    "sweep": f"a sweep along {recipe.sweep and recipe.sweep.direction}",
}
st.caption(
    f"{recipe.frame_count} frames, {recipe.duration_seconds:g} s, {shape.get(walk, WALK_LABELS[walk].lower())}"
    + (f" in {cells} walks" if cells > 1 else "")
)


def start_job(kind: str, job_recipe: ClipRecipe, suffixes: tuple[str, ...], gif_max_side: int) -> None:
    previous = state.get(kind)
    if previous is not None:
        previous.cancel()
        for path in previous.result.paths if previous.result else ():
            path.unlink(missing_ok=True)
    state.clip_count += 1
    outputs = [session_folder("clips") / f"{kind}-{state.clip_count}{suffix}" for suffix in suffixes]
    state[kind] = RenderJob(
        generator, job_recipe, outputs, gif_max_side=gif_max_side, slots=job_slots(), session_id=current_session_id()
    )
    track_job(state[kind])


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
        waiting = job.queue_position
        if waiting:
            st.info(f"{title}: waiting for a free slot, number {waiting} in line.", icon="⏳")
        else:
            st.progress(job.fraction, text=f"{title}: {job.frames_done} of {job.frame_count} frames")
        if st.button("Stop", key=f"stop_{kind}"):
            job.cancel()
        return
    if job.error:
        st.error(job.error, icon="⚠️")
        return
    if not all(path.exists() for path in job.result.paths):  # removed with a session that was closed a while
        state.pop(kind)
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
