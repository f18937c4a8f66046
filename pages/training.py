"""Training: every run with its status; one run's curves, sample grids, timelapse, checkpoints and config; start and
stop runs.

A run started here is its own process (facegen.train.browse.start_training_run): reloading the page or closing the
tab leaves it training, and the page finds it again in the runs folder. While the shown run is live, its part of the
page refreshes itself every few seconds.
"""

import json
import time
from datetime import datetime

import streamlit as st

from facegen.images import make_grid
from facegen.models import trainable_architectures
from facegen.public import policy
from facegen.spec import RunRef
from facegen.train import browse, guidance, runs
from facegen.ui.charts import metrics_chart
from facegen.ui.sessions import session_folder
from facegen.ui.widgets import cached_generator, route_through_app, run_or_show_error

LIVE_REFRESH_SECONDS = 2.0
SAMPLE_SEEDS = list(range(8))
GRID_WIDTH = 512
DATA_CHOICES = ("demo:digiface?n=1000", "demo:lfw", "Folder, zip or hf:OWNER/NAME…")

route_through_app()
st.title("Training")
if not policy().training_allowed:
    st.info("Training from the browser is off on this server. Train with `python -m facegen train` on your machine.")
    st.stop()
runs_root = runs.default_runs_root()
state = st.session_state


def when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S") if timestamp else "—"


def forget_architecture_settings() -> None:
    """Another architecture starts from its own defaults, not the previous one's choices."""
    for key in ("new_resolution", "new_channels"):
        state.pop(key, None)


# -- starting a run ---------------------------------------------------------------------------------------------
with st.expander("Start a new run", expanded=False):
    name_column, arch_column, data_column = st.columns(3)
    state.setdefault("new_name", f"faces-{time.strftime('%Y%m%d-%H%M%S')}")
    name = name_column.text_input("Run name", key="new_name", help="The run's folder in the runs folder.")
    architectures = {architecture.name: architecture for architecture in trainable_architectures()}
    arch = arch_column.selectbox(
        "Architecture", list(architectures), key="new_arch", on_change=forget_architecture_settings
    )
    arch_column.caption(architectures[arch].title)
    training = architectures[arch].training
    defaults = training.setting_defaults()
    data_choice = data_column.selectbox(
        "Training images",
        DATA_CHOICES,
        key="new_data_choice",
        help="demo:digiface renders colour faces with the pretrained DCGAN; demo:lfw is 100 tiny grey photos that "
        "ship with scikit-image, enough to check a run works, too few to learn faces from.",
    )
    data = (
        data_column.text_input("Path or hf:OWNER/NAME", key="new_data_path")
        if data_choice == DATA_CHOICES[-1]
        else data_choice
    )
    steps_column, batch_column, resolution_column = st.columns(3)
    steps = steps_column.number_input(
        "Steps", 1, 10_000_000, 1000, key="new_steps", help="Generator updates to train for."
    )
    steps_column.caption(guidance.first_faces_hint(arch))
    batch = batch_column.number_input("Batch", 1, 4096, 64, key="new_batch")
    has_channels = "generator_channels" in defaults  # the DCGAN family
    # a first run that shows faces in minutes on a CPU: the DCGAN family starts at its smallest resolution (32 px,
    # four times fewer pixels than 64) and 32 channels; other architectures at their own defaults
    first_resolution = training.resolutions[0] if has_channels else defaults["resolution"]
    resolution = resolution_column.selectbox(
        "Resolution", training.resolutions, index=training.resolutions.index(first_resolution), key="new_resolution"
    )
    with st.expander("More settings"):
        every = st.columns(3)
        log_every = every[0].number_input("Log every (steps)", 1, 100_000, 10, key="new_log_every")
        sample_every = every[1].number_input("Sample grid every", 1, 1_000_000, 100, key="new_sample_every")
        checkpoint_every = every[2].number_input("Checkpoint every", 1, 1_000_000, 500, key="new_checkpoint_every")
        sizes = st.columns(3)
        channels = sizes[0].number_input(
            "Channels",
            4,
            1024,
            32 if has_channels else 64,
            key="new_channels",
            disabled=not has_channels,
            help="Width of generator and discriminator (DCGAN family); smaller trains faster on a CPU.",
        )
        seed = sizes[1].number_input("Seed", 0, 2**31 - 1, 0, key="new_seed")
        device = sizes[2].text_input("Device", "auto", key="new_device", help="auto, cpu, cuda or cuda:N")
    settings = {
        "arch": arch,
        "data": data,
        "steps": int(steps),
        "batch": int(batch),
        "resolution": int(resolution),
        "log_every": int(log_every),
        "sample_every": int(sample_every),
        "checkpoint_every": int(checkpoint_every),
        "seed": int(seed),
        "device": device.strip() or "auto",
    }
    if has_channels:
        settings.update(generator_channels=int(channels), discriminator_channels=int(channels))
    if st.button("Start training", key="start_run", type="primary"):
        state.pending_run = None  # a refused start shows its own message, not the last start's
        launched = run_or_show_error(lambda: browse.start_training_run(settings, name.strip(), runs_root))
        if launched is not None:
            state.pending_run = launched
            st.toast(f"Started {name}: it trains in its own process and keeps going if you close this page.")
    st.caption(f"Runs `{browse.train_command_line(settings, runs_root / name.strip())}`")

# -- all runs ---------------------------------------------------------------------------------------------------
pending = state.get("pending_run")
if pending is not None and runs.read_status(pending.run_dir):
    state.run = pending.run_dir.name  # show the new run once it reports its state
    state.pending_run = pending = None
# until then it is opening its data set: shown as starting below, not in the table as a run without a status
summaries = [
    summary for summary in runs.list_runs(runs_root) if pending is None or summary.name != pending.run_dir.name
]
names = [summary.name for summary in summaries]

st.subheader("Runs")
st.caption(f"In {runs_root.resolve()}")


@st.fragment(run_every=LIVE_REFRESH_SECONDS if any(summary.status == "running" for summary in summaries) else None)
def runs_table() -> None:
    """Refreshed with the live run, so its row keeps pace with the run's own view below."""
    shown = [summary for summary in runs.list_runs(runs_root) if summary.name in names]
    st.dataframe(
        [{"run": summary.name, "model": summary.arch, "dataset": summary.dataset,
          "steps": f"{summary.step:,} / {summary.total_steps:,}", "images seen": summary.images_seen,
          "last update": when(summary.updated), "status": summary.status}
         for summary in shown],
        hide_index=True,
        column_config={"images seen": st.column_config.NumberColumn(format="localized")},  # 12,800, not 12800
    )  # fmt: skip


if summaries:
    runs_table()
elif pending is None:
    st.info(
        "No runs yet. Start one above, or from a terminal: facegen train --arch dcgan --data demo:digiface "
        "--resolution 32 --steps 1000 --out runs/first"
    )


@st.fragment(run_every=LIVE_REFRESH_SECONDS if pending is not None else None)
def starting() -> None:
    """A started run before its first status: the process is importing PyTorch and opening the data set."""
    launched = state.get("pending_run")
    if launched is None:
        return
    if runs.read_status(launched.run_dir):
        st.rerun()
    if launched.exited:
        st.error(
            f"Run {launched.run_dir.name} ended before it began training:\n\n```\n{browse.log_tail(launched.log_path)}\n```"
        )
        return
    st.info(f"Starting {launched.run_dir.name}… (loading PyTorch and the training images)")


starting()
if not summaries:
    st.stop()

# -- one run ----------------------------------------------------------------------------------------------------
run_name = st.selectbox("Run", names, key="run")
run_dir = next(summary.path for summary in summaries if summary.name == run_name)
live = next(summary.status for summary in summaries if summary.name == run_name) == "running"


def show_status(summary: runs.RunSummary) -> None:
    status = runs.read_status(summary.path)
    columns = st.columns(4)
    columns[0].metric("Status", summary.status)
    columns[1].metric("Step", f"{summary.step:,} / {summary.total_steps:,}")
    columns[2].metric("Images seen", f"{summary.images_seen:,}")
    columns[3].metric("Last update", when(summary.updated).split(" ")[-1], help=when(summary.updated))
    if summary.total_steps:
        st.progress(min(summary.step / summary.total_steps, 1.0))
    if summary.status == "crashed":
        reason = status.get("message") or "its process is gone without recording why (killed, or the machine stopped)."
        remedy = (
            f"Continue it from its last checkpoint: `python -m facegen train --resume {summary.path}`"
            if runs.list_checkpoints(summary.path)
            else "It wrote no checkpoint; fix the cause and start a new run."
        )
        st.error(f"This run crashed at step {summary.step:,}: {reason.rstrip('.')}. {remedy}")
    collapse = guidance.discriminator_collapse(summary.arch, runs.read_metrics(summary.path))
    if collapse:
        st.warning(collapse, icon="⚠️")
    faces = guidance.FIRST_FACES.get(summary.arch)
    if faces is not None and summary.step < faces.faces:
        st.caption(guidance.first_faces_hint(summary.arch))
    if summary.status != "running":
        show_removal(summary)
        return
    if st.button("Stop", key="stop_run", help="Ends the run after the current step with a final checkpoint."):
        run_or_show_error(lambda: browse.request_stop(summary.path))
    if browse.stop_requested(summary.path):
        st.info("Stopping: the run finishes its step, writes a final checkpoint, then ends.")


def show_removal(summary: runs.RunSummary) -> None:
    """Archive or delete a run that is not training, each after a confirmation."""
    asked = state.get("confirm_removal")
    if asked is None or asked[0] != summary.name:
        archive, delete, _ = st.columns([1, 1, 4])
        for column, action in ((archive, "archive"), (delete, "delete")):
            if column.button(f"{action.capitalize()} run…", key=f"{action}_run"):
                state.confirm_removal = (summary.name, action)
                st.rerun()
        return
    action = asked[1]
    consequence = (
        f"It moves to {runs_root / browse.ARCHIVE_DIR / summary.name} and leaves this list."
        if action == "archive"
        else "Its checkpoints, sample grids and metrics are removed for good."
    )
    st.warning(f"{action.capitalize()} run {summary.name}? {consequence}")
    confirm, cancel, _ = st.columns([1, 1, 4])
    if cancel.button("Cancel", key="cancel_removal"):
        state.confirm_removal = None
        st.rerun()
    if confirm.button(f"Yes, {action} it", key="confirm_removal_yes", type="primary"):
        remove = browse.archive_run if action == "archive" else browse.delete_run
        run_or_show_error(lambda: remove(summary.path))
        state.confirm_removal = None
        if not summary.path.exists():
            st.toast(f"{'Archived' if action == 'archive' else 'Deleted'} run {summary.name}.")
            state.pop("run", None)
            st.rerun()


def show_metrics(summary: runs.RunSummary) -> None:
    records = runs.read_metrics(summary.path)
    available = browse.metric_names(records)
    if not available:
        st.info("No metrics logged yet.")
        return
    controls = st.columns([3, 1, 1, 1])
    chosen = controls[0].multiselect(
        "Metrics",
        available,
        default=[name for name in available if name.startswith("loss")] or available[:1],
        key="metrics",
    )
    x = controls[1].radio("x axis", list(browse.X_AXES), format_func=browse.X_AXES.get, key="x_axis")
    smoothing = controls[2].slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key="smoothing")
    log_scale = controls[3].checkbox("Log scale", key="log_scale")
    frame = browse.metrics_frame(records, chosen, x, smoothing)
    if not frame.empty:
        st.altair_chart(metrics_chart(frame, x, browse.X_AXES[x], log_scale), width="stretch")
    latest = records[-1]
    st.caption(
        " · ".join(f"{name} {latest[name]:.4g}" for name in available if name in latest) + f" (step {latest['step']:,})"
    )


def show_samples(summary: runs.RunSummary) -> None:
    grids = runs.list_sample_grids(summary.path)
    if not grids:
        st.info("No sample grids yet.")
        return
    steps = [grid.step for grid in grids]
    if state.get("grid_step") not in steps or (live and state.get("grid_follows_latest", True)):
        state.grid_step = steps[-1]
    step = st.select_slider("Sample grid at step", steps, key="grid_step") if len(steps) > 1 else steps[0]
    state.grid_follows_latest = step == steps[-1]
    grid = grids[steps.index(step)]
    st.image(
        str(grid.path),
        caption=f"step {step:,}: seeds 0-{runs.read_config(summary.path).get('sample_count', 16) - 1}",
        output_format="PNG",
        width=GRID_WIDTH,
    )


def show_timelapse(summary: runs.RunSummary) -> None:
    grids = runs.list_sample_grids(summary.path)
    columns = st.columns([1, 1, 2], vertical_alignment="bottom")
    fps = columns[0].select_slider("Grids per second", [1, 2, 4, 8, 15, 30], 4, key="timelapse_fps")
    label_steps = columns[1].checkbox("Print steps", True, key="timelapse_labels")
    if columns[2].button(f"Build timelapse of {len(grids)} grids", key="build_timelapse", disabled=not grids):
        out_path = session_folder("timelapses") / f"{summary.name}-{grids[-1].step:08d}-{fps}.mp4"
        bar = st.progress(0.0, text="Encoding…")
        timelapse = run_or_show_error(
            lambda: browse.build_timelapse(
                summary.path,
                out_path,
                fps,
                label_steps,
                lambda done, total: bar.progress(done / total, text=f"Encoding grid {done} of {total}"),
            )
        )
        bar.empty()
        if timelapse is not None:
            state.timelapse = (summary.name, timelapse)
    shown = state.get("timelapse")
    if shown is None or shown[0] != summary.name:
        return
    timelapse = shown[1]
    st.video(
        str(timelapse.path),
        format="video/mp4",
        loop=True,
        autoplay=True,
        muted=True,
        width=min(768, max(384, timelapse.frame_size[0])),
    )
    st.download_button(
        "Download timelapse (MP4)",
        timelapse.path.read_bytes(),
        f"{summary.name}-timelapse.mp4",
        "video/mp4",
        key="download_timelapse",
    )
    st.caption(
        f"{len(timelapse.steps)} grids, steps {timelapse.steps[0]:,}-{timelapse.steps[-1]:,}, {timelapse.frame_size[0]}x{timelapse.frame_size[1]}"
    )


@st.cache_data(max_entries=32, show_spinner="Sampling…")
def checkpoint_faces(model_spec: str) -> object:
    return make_grid(cached_generator(model_spec).sample(seeds=SAMPLE_SEEDS), len(SAMPLE_SEEDS))


def show_checkpoints(summary: runs.RunSummary) -> None:
    checkpoints = runs.list_checkpoints(summary.path)
    if not checkpoints:
        if summary.status == "running":
            every = runs.read_config(summary.path).get("checkpoint_every", "?")
            st.info(f"No checkpoint yet; the first is written at step {every}.")
        else:
            st.info("This run wrote no checkpoint.")
        return
    for checkpoint in reversed(checkpoints):
        label, sample, keep = st.columns([3, 1, 1], vertical_alignment="center")
        notes = [
            note
            for note, present in (("EMA generator", checkpoint.has_ema), ("resumable", checkpoint.resumable))
            if present
        ]
        label.markdown(
            f"**step {checkpoint.step:,}** · {', '.join(notes) or 'generator only'} · `{RunRef(summary.name, checkpoint.step)}`"
        )
        if sample.button("Sample from this", key=f"sample_{summary.name}_{checkpoint.step}"):
            state.sampled_checkpoint = (summary.name, checkpoint.step)
        marked = keep.checkbox(
            "Keep",
            checkpoint.marked,
            key=f"keep_{summary.name}_{checkpoint.step}",
            help="Kept checkpoints are never pruned, however many newer ones the run writes.",
        )
        if marked != checkpoint.marked:
            run_or_show_error(lambda step=checkpoint.step, keep=marked: runs.mark_checkpoint(summary.path, step, keep))
    sampled = state.get("sampled_checkpoint")
    if sampled is not None and sampled[0] == summary.name:
        spec = str(RunRef(summary.name, sampled[1]))
        faces = run_or_show_error(lambda: checkpoint_faces(spec))
        if faces is not None:
            st.image(faces, caption=f"{spec}: seeds {SAMPLE_SEEDS[0]}-{SAMPLE_SEEDS[-1]}", output_format="PNG")


@st.fragment(run_every=LIVE_REFRESH_SECONDS if live else None)
def run_detail() -> None:
    summary = runs.summarize_run(run_dir)
    show_status(summary)
    metrics_tab, samples_tab, checkpoints_tab, config_tab, log_tab = st.tabs(
        ["Metrics", "Samples", "Checkpoints", "Config", "Log"]
    )
    with metrics_tab:
        show_metrics(summary)
    with samples_tab:
        show_samples(summary)
        show_timelapse(summary)
    with checkpoints_tab:
        show_checkpoints(summary)
    with config_tab:
        st.json(runs.read_config(run_dir))
        st.download_button(
            "Download config.json",
            json.dumps(runs.read_config(run_dir), indent=2),
            f"{summary.name}-config.json",
            "application/json",
            key="download_config",
        )
    with log_tab:
        log = browse.log_tail(browse.training_log_path(run_dir), lines=200)
        st.code(log or "No log: this run was not started from the app (its terminal showed the output).", language=None)
    if live and summary.status != "running":
        st.rerun()  # the run ended: the whole page once more, so the runs table updates and polling stops


run_detail()
