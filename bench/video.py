"""Clip rendering: does encoding hide behind generation, and does memory stay flat with clip length?

    python bench/video.py [--model digiface-dcgan64] [--rounds 9] [--upscale 1]

For a 10-second 30 fps loop (300 frames) it times, in one process and interleaved round by round, generation alone
(the renderer's own producer threads and frame assembly, upscaling included, no encoder attached), the full render
to MP4 and the full render to GIF, in wall seconds and in CPU seconds (this process plus ffmpeg). Generation is
timed on the producer threads, as rendering runs them: on a busy machine thread placement alone changes torch's CPU
speed (OpenMP workers spin against other processes' load).
Peak memory is measured in fresh subprocesses (so each high-water mark starts clean) for 300 and 3,000 frames:
the Python process's peak RSS (VmHWM), the peak of numpy/Python allocations (tracemalloc), and ffmpeg's peak RSS
(its VmHWM sampled every 0.1 s while it runs: rusage would count the parent's pages it shares before exec).
Goals: MP4 <= 1.15 x generation, GIF <= 1.5 x MP4, 3,000-frame peak within 100 MB of the 300-frame peak.

    python bench/video.py --compare-producers [--upscale 4]

times only generation and the MP4 render, with one producer thread and with two (facegen.video.CPU_PRODUCERS),
interleaved round by round: whether a second producer pays for its oversubscribed torch threads.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import psnr  # noqa: E402
from facegen.generator import Generator, ModelInfo  # noqa: E402
from facegen.video import ClipFrames, ClipRecipe, ffmpeg_exe, render_clip, stream_frames  # noqa: E402

FPS = 30
KEYFRAME_SEEDS = (1, 7, 42, 5, 9)
SHORT_FRAMES = 300  # 10 s at 30 fps
LONG_FRAMES = 3000
MP4_GOAL, GIF_GOAL, MEMORY_GOAL_MB = 1.15, 1.5, 100


def load_model(model_spec: str) -> tuple[Generator, str]:
    """The named model, or a random DCGAN of the same 64x64 shape when it cannot be fetched."""
    from facegen.errors import FacegenError
    from facegen.registry import load_generator

    try:
        return load_generator(model_spec), model_spec
    except FacegenError as error:
        import torch

        from facegen.models.dcgan import DCGANConfig, DCGANGenerator

        torch.manual_seed(0)
        network = DCGANGenerator(DCGANConfig(resolution=64))
        info = ModelInfo("random-dcgan64", "dcgan", z_dim=100, resolution=64)
        return Generator(network, info), f"random DCGAN 64x64 (same shape; {model_spec} unavailable: {error})"


def clip_recipe(model_spec: str, frames: int, upscale: int = 1) -> ClipRecipe:
    return ClipRecipe(
        model=model_spec, keyframe_seeds=KEYFRAME_SEEDS, seconds=frames / FPS, fps=FPS, loop=True, upscale=upscale
    )


def generate_only(generator: Generator, recipe: ClipRecipe) -> None:
    for _ in stream_frames(ClipFrames(generator, recipe)):
        pass


def timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def wall_and_cpu(step) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of this process's threads plus its finished children (ffmpeg)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time()
    wall = timed(step)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return wall, time.process_time() - cpu + child_cpu


def timing_worker(model_spec: str, rounds: int, upscale: int) -> dict:
    generator, model_name = load_model(model_spec)
    recipe = clip_recipe(model_spec, SHORT_FRAMES, upscale)
    with tempfile.TemporaryDirectory() as scratch:
        mp4, gif = Path(scratch) / "walk.mp4", Path(scratch) / "walk.gif"
        render_clip(
            generator, clip_recipe(model_spec, 30), mp4
        )  # warm-up: first forward passes, ffmpeg in the page cache
        steps = {
            "generate": lambda: generate_only(generator, recipe),
            "mp4": lambda: render_clip(generator, recipe, mp4),
            "gif": lambda: render_clip(generator, recipe, gif),
        }
        order = list(steps)
        times: dict[str, list[float]] = {name: [] for name in steps}
        cpu: dict[str, list[float]] = {name: [] for name in steps}
        for round_index in range(rounds):
            # each round starts with another step, so drifting machine load does not favour one of them
            for name in order[round_index % 3 :] + order[: round_index % 3]:
                wall, cpu_seconds = wall_and_cpu(steps[name])
                times[name].append(wall)
                cpu[name].append(cpu_seconds)
        quality = first_frame_psnr(generator, mp4, upscale)
        facts = {
            "mp4_frames": count_frames(mp4),
            "mp4_bytes": mp4.stat().st_size,
            "gif_bytes": gif.stat().st_size,
            "frame_size": ClipFrames(generator, recipe).frame_size,
        }
    return {"model": model_name, "times": times, "cpu": cpu, "first_frame_psnr": quality, **facts}


def producers_worker(model_spec: str, rounds: int, upscale: int) -> dict:
    from facegen import video

    generator, model_name = load_model(model_spec)
    recipe = clip_recipe(model_spec, SHORT_FRAMES, upscale)
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        mp4 = Path(scratch) / "walk.mp4"
        render_clip(generator, clip_recipe(model_spec, 30, upscale), mp4)  # warm-up
        variants = [(producers, step) for producers in (1, 2) for step in ("generate", "mp4")]
        for round_index in range(rounds):
            shift = round_index % len(variants)
            for producers, step in variants[shift:] + variants[:shift]:
                video.CPU_PRODUCERS = producers
                run = (lambda: generate_only(generator, recipe)) if step == "generate" else (
                    lambda: render_clip(generator, recipe, mp4)
                )
                times.setdefault(f"{step}, {producers} producer{'s' if producers > 1 else ''}", []).append(timed(run))
    return {"model": model_name, "frame_size": ClipFrames(generator, recipe).frame_size, "times": times}


def memory_worker(model_spec: str, frames: int, kind: str, upscale: int) -> dict:
    generator, _ = load_model(model_spec)
    ffmpeg_peaks: dict[int, int] = {}
    done = threading.Event()
    watcher = threading.Thread(target=watch_ffmpeg_children, args=(ffmpeg_peaks, done), daemon=True)
    watcher.start()
    tracemalloc.start()
    with tempfile.TemporaryDirectory() as scratch:
        seconds = timed(
            lambda: render_clip(generator, clip_recipe(model_spec, frames, upscale), Path(scratch) / f"walk.{kind}")
        )
    _, traced_peak = tracemalloc.get_traced_memory()
    done.set()
    watcher.join()
    return {
        "seconds": seconds,
        "rss_peak_mb": vm_hwm_kb("self") / 1024,
        "traced_peak_mb": traced_peak / 2**20,
        "ffmpeg_peak_mb": max(ffmpeg_peaks.values(), default=0) / 1024,
    }


def vm_hwm_kb(pid: int | str) -> int:
    """Peak resident memory of a process so far, in kB (0 once it has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def watch_ffmpeg_children(peaks: dict[int, int], done: threading.Event) -> None:
    me = str(os.getpid())
    while not done.wait(0.1):
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            # /proc/PID/stat: "PID (COMMAND) STATE PPID ..."; the command may itself contain spaces
            name, _, rest = text.partition("(")[2].rpartition(")")
            if rest.split()[1] == me and name.startswith("ffmpeg"):
                pid = int(stat.parent.name)
                peaks[pid] = max(peaks.get(pid, 0), vm_hwm_kb(pid))


def count_frames(path: Path) -> int:
    """Frames in a video by decoding them all (imageio-ffmpeg ships no ffprobe)."""
    report = subprocess.run(
        [ffmpeg_exe(), "-i", str(path), "-map", "0:v:0", "-f", "null", "-"], capture_output=True, text=True
    ).stderr
    return int(report.rsplit("frame=", 1)[1].split()[0])


def first_frame_psnr(generator: Generator, mp4: Path, upscale: int) -> float:
    """The MP4's first frame against the first keyframe's sample, both at the clip's size (upscaled alike)."""
    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(mp4), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    size = generator.resolution * upscale
    first = np.frombuffer(raw, np.uint8).reshape(size, size, 3)
    reference = ClipFrames(generator, clip_recipe("reference", SHORT_FRAMES, upscale)).frames_at(np.array([0]))[0]
    return psnr(reference, first)


def run_worker(*arguments: str) -> dict:
    result = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True, cwd=REPO_ROOT)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="digiface-dcgan64")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--upscale",
        type=int,
        default=1,
        help="enlarge frames by this factor (Lanczos), as the app does for small models",
    )
    parser.add_argument("--compare-producers", action="store_true", help="time one producer thread against two")
    parser.add_argument("--worker", choices=["timing", "memory", "producers"], help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "timing":
        print(json.dumps(timing_worker(args.model, args.rounds, args.upscale)))
        return
    if args.worker == "memory":
        print(json.dumps(memory_worker(args.model, args.frames, args.kind, args.upscale)))
        return
    if args.worker == "producers":
        print(json.dumps(producers_worker(args.model, args.rounds, args.upscale)))
        return

    print(f"machine: {os.cpu_count()} CPU cores, torch threads default; other jobs may share them")
    common = ("--model", args.model, "--upscale", str(args.upscale))
    if args.compare_producers:
        compared = run_worker("--worker", "producers", "--rounds", str(args.rounds), *common)
        width, height = compared["frame_size"]
        print(f"model: {compared['model']}; frames {width}x{height}; {SHORT_FRAMES} frames, {args.rounds} rounds:")
        for name, seconds in compared["times"].items():
            rounds = ", ".join(f"{value:.2f}" for value in seconds)
            print(f"  {name:<24}{statistics.median(seconds):>7.2f}s median{min(seconds):>7.2f}s best   [{rounds}]")
        return
    timing = run_worker("--worker", "timing", "--rounds", str(args.rounds), *common)
    width, height = timing["frame_size"]
    print(f"model: {timing['model']}; frames {width}x{height} (upscale {args.upscale}x, Lanczos)")
    times, cpu = timing["times"], timing["cpu"]
    print(f"\n{SHORT_FRAMES} frames ({SHORT_FRAMES // FPS} s at {FPS} fps), {args.rounds} interleaved rounds:")
    print(f"  {'':<16}{'median':>8}{'best':>8}{'CPU s':>8}   wall seconds of every round")
    for name, label in (("generate", "generation only"), ("mp4", "render to MP4"), ("gif", "render to GIF")):
        rounds = ", ".join(f"{value:.2f}" for value in times[name])
        print(
            f"  {label:<16}{statistics.median(times[name]):>7.2f}s{min(times[name]):>7.2f}s"
            f"{statistics.median(cpu[name]):>7.2f}s   [{rounds}]"
        )
    # ratios of steps run back to back in the same round share that round's machine load
    mp4_ratio = statistics.median(mp4 / generate for mp4, generate in zip(times["mp4"], times["generate"]))
    gif_ratio = statistics.median(gif / mp4 for gif, mp4 in zip(times["gif"], times["mp4"]))
    best_mp4, best_gif = min(times["mp4"]) / min(times["generate"]), min(times["gif"]) / min(times["mp4"])
    # CPU seconds barely depend on other processes' load: the encoders' whole cost, as if nothing overlapped
    cpu_mp4 = statistics.median(cpu["mp4"]) / statistics.median(cpu["generate"])
    cpu_gif = statistics.median(cpu["gif"]) / statistics.median(cpu["mp4"])
    print(
        f"  MP4 / generation = {mp4_ratio:.2f} wall (median of rounds; best/best {best_mp4:.2f}), {cpu_mp4:.2f} CPU   "
        f"goal <= {MP4_GOAL}   {'ok' if mp4_ratio <= MP4_GOAL else 'MISSED'}"
    )
    print(
        f"  GIF / MP4        = {gif_ratio:.2f} wall (median of rounds; best/best {best_gif:.2f}), {cpu_gif:.2f} CPU   "
        f"goal <= {GIF_GOAL}   {'ok' if gif_ratio <= GIF_GOAL else 'MISSED'}"
    )
    print(
        f"  MP4: {timing['mp4_frames']} frames counted, {timing['mp4_bytes'] / 1e3:.0f} kB; "
        f"GIF {timing['gif_bytes'] / 1e3:.0f} kB; "
        f"first frame vs the seed's sample: {timing['first_frame_psnr']:.1f} dB PSNR (goal > 35)"
    )

    print("\npeak memory, fresh process per render:")
    print(f"  {'render':<16}{'frames':>7}{'seconds':>9}{'RSS peak':>11}{'traced peak':>13}{'ffmpeg peak':>13}")
    peaks: dict[tuple[str, int], dict] = {}
    for kind in ("mp4", "gif"):
        for frames in (SHORT_FRAMES, LONG_FRAMES):
            peak = peaks[kind, frames] = run_worker(
                "--worker", "memory", "--frames", str(frames), "--kind", kind, *common
            )
            print(
                f"  {kind.upper():<16}{frames:>7}{peak['seconds']:>8.1f}s{peak['rss_peak_mb']:>9.0f}MB"
                f"{peak['traced_peak_mb']:>11.1f}MB{peak['ffmpeg_peak_mb']:>11.0f}MB"
            )
    for kind in ("mp4", "gif"):
        growth = peaks[kind, LONG_FRAMES]["rss_peak_mb"] - peaks[kind, SHORT_FRAMES]["rss_peak_mb"]
        ffmpeg_growth = peaks[kind, LONG_FRAMES]["ffmpeg_peak_mb"] - peaks[kind, SHORT_FRAMES]["ffmpeg_peak_mb"]
        verdict = "ok" if growth <= MEMORY_GOAL_MB and ffmpeg_growth <= MEMORY_GOAL_MB else "MISSED"
        print(
            f"  {kind.upper()} growth {SHORT_FRAMES} -> {LONG_FRAMES} frames: Python process {growth:+.0f} MB, "
            f"ffmpeg {ffmpeg_growth:+.0f} MB   goal <= {MEMORY_GOAL_MB} MB   {verdict}"
        )


if __name__ == "__main__":
    main()
