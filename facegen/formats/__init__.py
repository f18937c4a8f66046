"""Weight file formats: one table of the formats facegen reads, how each is recognised, and which reader loads it.

Each reader lives in its own module, knows one format and maps its names onto facegen's modules; every reader is
called as `reader(path, model_id=, device=)` and returns a Generator. A foreign format (another project's
pickle or checkpoint) is read once per catalog download and then kept as facegen's own checkpoint:
`facegen.formats.converted`.
"""

from __future__ import annotations

import importlib
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from facegen.errors import CorruptFileError, FacegenError
from facegen.generator import Generator
from facegen.limits import MAX_WEIGHTS_BYTES, MAX_WEIGHTS_ZIP_EXPANSION

SNIFF_BYTES = 1 << 16
NVIDIA_MARKERS = (b"torch_utils.persistence", b"torch_utils\npersistence", b"_reconstruct_persistent_obj")
# NVIDIA's TensorFlow ProGAN pickle starts with its network class, tfutil.Network (protocol 2-3 and 4+ spellings)
TF_PROGAN_MARKERS = (b"tfutil\nNetwork\n", b"\x8c\x06tfutil")
# pytorch_GAN_zoo's generator state dicts: the 4x4 "format" layer and the first scale's group
FACEBOOK_PGAN_MARKERS = (b"formatLayer.", b"groupScale0.")
# legacy (pre-zip) torch.save files start with the pickled magic number 0x1950a86a20f9469cfc6c
LEGACY_TORCH_HEAD = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)


@dataclass(frozen=True)
class FileStart:
    """What sniffing may look at: the file's name and first bytes, and the first bytes of a torch.save pickle."""

    path: Path
    head: bytes

    @property
    def is_legacy_torch(self) -> bool:
        return self.head.startswith(LEGACY_TORCH_HEAD)

    @property
    def is_torch_zip(self) -> bool:
        return self.head.startswith(b"PK")

    @property
    def is_plain_pickle(self) -> bool:
        return self.head.startswith(b"\x80") and not self.is_legacy_torch

    def torch_pickle_mentions(self, markers: tuple[bytes, ...], every: bool = False) -> bool:
        """Whether the pickle of a torch.save file names any (or `every`) of `markers` before its tensor data."""
        return (all if every else any)(marker in self._torch_pickle_head for marker in markers)

    @cached_property
    def _torch_pickle_head(self) -> bytes:
        if self.is_legacy_torch:
            return self.head
        if not self.is_torch_zip:
            return b""
        try:
            with zipfile.ZipFile(self.path) as archive:
                pickles = [name for name in archive.namelist() if name.endswith("data.pkl")]
                if not pickles:
                    return b""
                with archive.open(pickles[0]) as member:
                    return member.read(SNIFF_BYTES)
        except zipfile.BadZipFile:
            return b""


@dataclass(frozen=True)
class WeightsFormat:
    name: str  # as the catalog's `format` names it
    description: str
    suffixes: tuple[str, ...]  # the file names it usually has; only `.safetensors` decides the format
    recognises: Callable[[FileStart], bool]  # tried in FORMATS order, so a later test may assume earlier ones failed
    reader: str  # "module:function", imported on first use so a page imports only the readers it needs
    foreign: bool  # another project's file: read once, then kept converted into facegen's own checkpoint

    def load(self, path: Path, model_id: str, device: str = "cpu") -> Generator:
        check_declared_sizes(path)
        module_name, function_name = self.reader.split(":")
        read = getattr(importlib.import_module(module_name), function_name)
        return read(path, model_id=model_id, device=device)


FORMATS: tuple[WeightsFormat, ...] = (
    WeightsFormat(
        "facegen",
        "facegen's own checkpoint: NAME.safetensors beside NAME.json",
        (".safetensors",),
        lambda start: start.path.suffix == ".safetensors",
        "facegen.formats.checkpoint:load_generator",
        foreign=False,
    ),
    WeightsFormat(
        "tf-progan",
        "NVIDIA's TensorFlow ProGAN network pickle",
        (".pkl",),
        lambda start: start.is_plain_pickle and any(marker in start.head[:64] for marker in TF_PROGAN_MARKERS),
        "facegen.formats.tf_progan:load_tf_progan_generator",
        foreign=True,
    ),
    WeightsFormat(
        "nvidia-pickle",
        "NVIDIA StyleGAN2 / 2-ADA / 3 network pickle (or a torch.save snapshot of one)",
        (".pkl", ".pt"),
        # a torch.save zip of an NVIDIA snapshot names NVIDIA's persistence module in its pickle
        lambda start: start.is_plain_pickle or (start.is_torch_zip and start.torch_pickle_mentions(NVIDIA_MARKERS)),
        "facegen.formats.nvidia_pickle:load_nvidia_generator",
        foreign=True,
    ),
    WeightsFormat(
        "facebook-pgan",
        "pytorch_GAN_zoo PGAN checkpoint",
        (".pth", ".pt"),
        lambda start: start.torch_pickle_mentions(FACEBOOK_PGAN_MARKERS, every=True),
        "facegen.formats.facebook_pgan:load_facebook_pgan_generator",
        foreign=True,
    ),
    WeightsFormat(
        "torch-dcgan",
        "PyTorch checkpoint of the DCGAN tutorial's generator",
        (".pt", ".pth", ".tar", ".ckpt"),
        # any other torch.save file: the rows above have claimed theirs
        lambda start: start.is_legacy_torch or start.is_torch_zip,
        "facegen.formats.torch_checkpoint:load_dcgan_generator",
        foreign=True,
    ),
)
FILE_SUFFIXES: tuple[str, ...] = tuple(dict.fromkeys(suffix for known in FORMATS for suffix in known.suffixes))


def check_declared_sizes(path: Path) -> None:
    """Refuse a weights file that is, or declares inside it, more bytes than facegen reads, before a reader spends
    the memory: a zip's records are inflated whole by torch.load, however small the zip."""
    size = path.stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise CorruptFileError(
            f"{path.name} is {size / 1e9:,.1f} GB; facegen reads weights files up to {MAX_WEIGHTS_BYTES / 1e9:.1f} GB. "
            "Export the generator alone (G_ema), without the discriminator or optimizer state."
        )
    with open(path, "rb") as handle:
        # torch.save zips start with a member; other formats may hold zip-like bytes near their end by chance
        if handle.read(4) != b"PK\x03\x04":
            return
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as error:
        raise CorruptFileError(f"{path.name} is a damaged zip archive ({error}). Fetch or copy it again.") from None
    if expanded > min(MAX_WEIGHTS_BYTES, size * MAX_WEIGHTS_ZIP_EXPANSION):
        raise CorruptFileError(
            f"{path.name} is a {size:,}-byte zip whose records expand to {expanded:,} bytes. PyTorch stores its "
            "records uncompressed, so this is a zip bomb or not a PyTorch checkpoint; re-save the weights with "
            "torch.save."
        )


def weights_format(name: str) -> WeightsFormat:
    for candidate in FORMATS:
        if candidate.name == name:
            return candidate
    known = ", ".join(candidate.name for candidate in FORMATS)
    raise FacegenError(f"No reader for the weights format {name!r}. Known formats: {known}.")


def sniff_format(path: Path) -> str:
    """The name of the weights format of the file at `path`, told from its name and first bytes, never unpickled."""
    with open(path, "rb") as handle:
        start = FileStart(path, handle.read(SNIFF_BYTES))
    if not start.head:
        raise CorruptFileError(f"{path} is empty (0 bytes). Re-download it.")
    for candidate in FORMATS:
        if candidate.recognises(start):
            return candidate.name
    raise CorruptFileError(
        f"{path} is not a weights file facegen can read (not a pickle, torch checkpoint or safetensors file)."
    )


def load_weights(path: Path, model_id: str, device: str = "cpu", format_name: str | None = None) -> Generator:
    """The Generator in the weights file at `path`, read in `format_name` (sniffed when not given)."""
    return weights_format(format_name or sniff_format(path)).load(path, model_id, device)
