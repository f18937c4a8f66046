"""Small inputs that ask for large memory are refused before it is spent: seed ranges, zip bombs in weights files,
huge image headers, tampered checkpoint dims. Memory is measured in a fresh process (peak RSS before and after,
under an address-space cap so a regression fails the test instead of the machine)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from facegen.errors import FacegenError
from facegen.formats.checkpoint import config_path_for, save_generator
from facegen.models.dcgan import DCGANConfig, DCGANGenerator
from tests.conftest import REPO_ROOT

MEGABYTE = 1 << 20
ALLOWED_GROWTH_MB = 50
HEADROOM_BYTES = 3 << 30  # address space the probe may take beyond what its imports took

PROBE = """
import contextlib, io, json, resource, sys
from facegen.errors import FacegenError
{setup}

def peak_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

with open("/proc/self/status") as status:
    mapped = int(status.read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (mapped + {headroom}, resource.RLIM_INFINITY))
before = peak_kb()
error = unexpected = None
stderr = io.StringIO()
with contextlib.redirect_stderr(stderr):
    try:
        result = repr({action})
    except FacegenError as caught:
        error, result = str(caught), None
    except BaseException as caught:
        unexpected, result = f"{{type(caught).__name__}}: {{caught}}", None
growth_mb = (peak_kb() - before) / 1024
print(json.dumps(dict(growth_mb=growth_mb, error=error, unexpected=unexpected, result=result, stderr=stderr.getvalue())))
"""


@dataclass(frozen=True)
class Probe:
    growth_mb: float
    error: str | None  # a FacegenError's message
    unexpected: str | None  # any other exception
    result: str | None
    stderr: str


def measure(setup: str, action: str) -> Probe:
    """Run `action` (an expression) in a fresh Python after `setup`; how much its peak RSS grew and what it raised."""
    script = PROBE.format(setup=textwrap.dedent(setup), action=action, headroom=HEADROOM_BYTES)
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return Probe(**json.loads(completed.stdout.strip().splitlines()[-1]))


# -- seeds (finding 1) -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["0-50000000", "0-4294967295", "0-99999,5-60000000"])
def test_a_huge_seed_range_is_refused_before_it_is_expanded(spec):
    probe = measure("from facegen.latent import parse_seeds", f"parse_seeds({spec!r})")
    assert probe.unexpected is None
    assert probe.error is not None and "limit is 100,000" in probe.error and "\n" not in probe.error
    assert probe.growth_mb < ALLOWED_GROWTH_MB


def test_cli_sample_with_every_seed_says_so_in_one_line(tmp_path):
    out = tmp_path / "all.png"
    arguments = ["sample", "--model", "digiface-dcgan64", "--seeds", "0-4294967295", "--out", str(out)]
    # the command's own imports (torch among them) happen before memory is measured, as in a real run's start-up
    probe = measure("from facegen.cli import main\nimport facegen.cli.sample", f"main({arguments!r})")
    assert probe.result == "2" and probe.unexpected is None
    assert probe.stderr.count("\n") == 1 and "4,294,967,296 seeds" in probe.stderr, probe.stderr
    assert probe.growth_mb < ALLOWED_GROWTH_MB
    assert not out.exists()


# -- weights files (finding 7) -----------------------------------------------------------------------------------


def write_zip_bomb_checkpoint(path: Path, expanded_bytes: int) -> Path:
    """A tutorial DCGAN saved by torch.save, one storage record swapped for `expanded_bytes` of deflated zeros."""
    torch.manual_seed(0)
    network = DCGANGenerator(DCGANConfig(z_dim=10, generator_channels=4, resolution=32))
    honest = path.with_name("honest.pt")
    torch.save({"netG_state_dict": network.state_dict()}, honest)
    zeros = bytes(16 * MEGABYTE)
    with zipfile.ZipFile(honest) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bomb:
        for info in source.infolist():
            if not info.filename.endswith("/data/0"):
                bomb.writestr(info, source.read(info))
                continue
            with bomb.open(info.filename, "w", force_zip64=True) as member:
                for _ in range(expanded_bytes // len(zeros)):
                    member.write(zeros)
    return path


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory) -> Path:
    return write_zip_bomb_checkpoint(tmp_path_factory.mktemp("bomb") / "bomb.pt", 256 * MEGABYTE)


def test_a_zip_bomb_checkpoint_is_refused_before_it_is_inflated(zip_bomb):
    assert zip_bomb.stat().st_size < 4 * MEGABYTE
    probe = measure(
        "from pathlib import Path\nfrom facegen.formats import load_weights",
        f"load_weights(Path({str(zip_bomb)!r}), 'bomb')",
    )
    assert probe.unexpected is None
    assert probe.error is not None and "bomb.pt" in probe.error and "expand" in probe.error, probe.error
    assert probe.growth_mb < ALLOWED_GROWTH_MB


def tiny_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    config = DCGANConfig(z_dim=10, generator_channels=4, resolution=32)
    return save_generator(path, DCGANGenerator(config), "dcgan", config)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("z_dim", 10_000_000, "z_dim 10000000"),
        ("resolution", 1 << 20, "resolution 1048576"),
        ("generator_channels", 1 << 22, "parameters"),
        ("z_dim", "ten", "z_dim 'ten'"),
    ],
)
def test_tampered_checkpoint_dims_are_refused_before_the_network_is_built(tmp_path, field, value, problem):
    weights = tiny_checkpoint(tmp_path / "tiny.safetensors")
    description = json.loads(config_path_for(weights).read_text())
    description["config"][field] = value
    config_path_for(weights).write_text(json.dumps(description))
    probe = measure("from facegen.registry import load_generator", f"load_generator({str(weights)!r})")
    assert probe.unexpected is None
    assert probe.error is not None and problem in probe.error and "tiny.json" in probe.error, probe.error
    assert probe.growth_mb < ALLOWED_GROWTH_MB


def test_an_untampered_checkpoint_still_loads(tmp_path):
    from facegen.registry import load_generator

    generator = load_generator(str(tiny_checkpoint(tmp_path / "tiny.safetensors")))
    assert generator.sample(seeds=[0]).shape == (1, 32, 32, 3)


# -- images (finding 7) -------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_black_png(path: Path, width: int, height: int | None = None) -> Path:
    """A valid RGB PNG (square unless `height` is given) that compresses to almost nothing."""
    height = height or width
    compressor = zlib.compressobj(1)
    row = bytes(1 + 3 * width)  # filter byte, then black pixels
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b"")
    )
    return path


def test_a_huge_png_is_refused_from_its_header(tmp_path):
    huge = write_black_png(tmp_path / "huge.png", 13_000)
    assert huge.stat().st_size < 4 * MEGABYTE
    probe = measure("from facegen.images import read_recipe", f"read_recipe({str(huge)!r})")
    assert probe.unexpected is None
    assert probe.error is not None and "huge.png has more than 100 megapixels" in probe.error, probe.error
    assert probe.growth_mb < ALLOWED_GROWTH_MB


def test_an_image_over_the_limit_is_refused_with_its_size(tmp_path):
    from facegen.images import open_image

    with pytest.raises(FacegenError, match=r"^tall.png is 8000x7000 pixels; facegen opens images up to 50 megapixels"):
        open_image(write_black_png(tmp_path / "tall.png", 8_000, 7_000))


def test_a_photo_sized_png_still_opens(tmp_path):
    from facegen.images import open_image

    with open_image(write_black_png(tmp_path / "photo.png", 1_000)) as image:
        assert image.size == (1_000, 1_000)
