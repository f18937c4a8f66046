"""Reading clips back as a user's player would: ffmpeg (imageio-ffmpeg's binary; it ships no ffprobe). And how
close two images are: PSNR."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def stream_facts(path: str | Path) -> dict:
    """Codec, pixel format and size of the first video stream, from `ffmpeg -i`'s report."""
    report = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    stream = next(line for line in report.splitlines() if "Video:" in line)
    codec = re.search(r"Video: (\w+)", stream).group(1)
    pixel_format = re.search(r"Video: [^,]+, (\w+)", stream).group(1)
    width, height = map(int, re.search(r", (\d+)x(\d+)", stream).groups())
    return {"codec": codec, "pixel_format": pixel_format, "size": (width, height), "report": report}


def decoded_frames(path: str | Path) -> np.ndarray:
    """Every frame of the clip as uint8 [frames, height, width, 3]."""
    width, height = stream_facts(path)["size"]
    raw = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    """PSNR in dB of uint8-range images against a reference; infinite for identical images."""
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(image, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)
