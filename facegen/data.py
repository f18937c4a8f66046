"""Training datasets: image folders, zips, CelebA, Hugging Face dataset repos, and two offline demo sets.

A source is decoded once -- converted to RGB, centre-cropped to a square, resized to the training resolution --
into a uint8 `.npy` cache that later opens memory-map, so the second epoch (and the second run) reads no JPEG.
Images that cannot be used are skipped and counted, images in other colour modes are converted and counted;
`DatasetReport` tells the user both.

Sources (`open_dataset`'s `source` argument):
    a folder            every image file below it, recursively (hidden files and `__MACOSX/` ignored)
    a .zip              the same inside the archive, e.g. `processed-celeba-small.zip`
    a CelebA root       a folder or zip holding `list_attr_celeba.txt` (or Kaggle's `.csv`) and `img_align_celeba/`:
                        images in the attribute file's order, with its 40 binary attributes
    hf:OWNER/NAME[@REV] a Hugging Face dataset repo: image files, or parquet files with an image column (and the
                        CelebA attribute columns when present)
    demo:lfw            100 LFW face crops shipped with scikit-image (no download)
    demo:digiface?n=N   N synthetic faces rendered by the pretrained `digiface-dcgan64` generator
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sys
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm import tqdm

from facegen.errors import FacegenError
from facegen.generator import Generator
from facegen.hub import cache_root

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")
CELEBA_ATTRIBUTE_FILES = ("list_attr_celeba.txt", "list_attr_celeba.csv")
CELEBA_ATTRIBUTE_NAMES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip
# An image whose shorter side is below resolution * MIN_SIDE_FRACTION would be upscaled more than 2x, which
# teaches the GAN blur; it is skipped as 'too small'. The demo sets are exempt: they are upscaled on purpose.
MIN_SIDE_FRACTION = 0.5
RESOLUTION_RANGE = (4, 2048)
# Bump when decoding changes what ends up in the cache (filters, crop, conversions): old caches are then ignored.
CACHE_FORMAT_VERSION = 1
# Transparent pixels are composited onto white, the background a viewer shows for them.
ALPHA_BACKGROUND = (255, 255, 255)
SKIPPED_EXAMPLES_KEPT = 3
EXIF_ORIENTATION = 0x0112
LFW_FACE_COUNT = 100  # skimage's lfw_subset holds 100 faces, then 100 background patches
DIGIFACE_MODEL_ID = "digiface-dcgan64"
DIGIFACE_DEFAULT_COUNT = 1000
DIGIFACE_MAX_COUNT = 100_000
DIGIFACE_RENDER_BATCH = 64
HF_DOWNLOAD_PATTERNS = (
    *(f"*{ext}" for ext in IMAGE_EXTENSIONS),
    *(f"*{ext.upper()}" for ext in IMAGE_EXTENSIONS),
    "*.parquet",
    *CELEBA_ATTRIBUTE_FILES,
)

DEMO_DATASETS: dict[str, str] = {
    "lfw": (
        "100 face crops from Labeled Faces in the Wild (LFW, University of Massachusetts Amherst), as shipped "
        "with scikit-image (`skimage.data.lfw_subset()`), so it needs no download. Each crop is only 25x25 "
        "grayscale; it is upscaled to the training resolution and copied into three channels, so expect blurry "
        "gray faces. LFW was published for face-recognition research; the photos are of public figures taken "
        "from news sites and carry no licence for other uses. Good for checking that training runs end to end, "
        "far too small to learn faces from."
    ),
    "digiface": (
        "Synthetic 64x64 faces rendered by the pretrained `digiface-dcgan64` DCGAN of facegen's catalog from seeds "
        f"0..N-1 (`demo:digiface?n=N`, default {DIGIFACE_DEFAULT_COUNT}, rendered on first use; the only download is "
        "the model itself). The DCGAN's weights are MIT-licensed, but it was trained on Microsoft's DigiFace-1M, "
        "computer-generated faces of no real person released for non-commercial research only: treat these "
        "images as non-commercial training data. Training on a GAN's output teaches a new GAN that GAN's small, "
        "blurry faces and artefacts, not real ones: use it for quick starts and tests."
    ),
}


class DatasetError(FacegenError):
    """A dataset that cannot be opened: missing, empty, malformed, or with no usable image."""


@dataclass
class DatasetReport:
    """What happened to a source's images: how many were found, used, skipped (why) and converted (from what)."""

    source: str
    found: int
    used: int
    skipped: dict[str, int] = field(default_factory=dict)
    converted: dict[str, int] = field(default_factory=dict)
    # a few file names per skip reason, so the user can look at what went wrong
    skipped_examples: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        notes = [f"{count:,} {reason} skipped" for reason, count in self.skipped.items()]
        notes += [f"{count:,} {kind} converted" for kind, count in self.converted.items()]
        text = f"{self.used:,} image{'' if self.used == 1 else 's'} from {self.source}"
        return f"{text} ({', '.join(notes)})" if notes else text


class FaceDataset(torch.utils.data.Dataset):
    """Decoded training images: uint8 [N, 3, R, R] memory-mapped from the cache, plus optional attributes."""

    def __init__(
        self,
        images: torch.Tensor,
        attributes: torch.Tensor | None,
        attribute_names: tuple[str, ...],
        report: DatasetReport,
        cache_entry: Path | None = None,
    ) -> None:
        self.images = images
        self.attributes = attributes
        self.attribute_names = attribute_names
        self.report = report
        self.resolution = int(images.shape[-1])
        # chance that __getitem__ mirrors an image; the training loop's fast path passes its own mask to batch()
        self.flip_probability = 0.0
        self._cache_entry = cache_entry

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = _to_unit_range(self.images[index])
        if self.flip_probability and torch.rand(()) < self.flip_probability:
            image = image.flip(-1)
        attributes = self.attributes[index] if self.attributes is not None else torch.empty(0)
        return image, attributes

    def batch(
        self, indices: torch.Tensor, flip: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images [B, 3, R, R] in [-1, 1] for `indices`, mirrored where the bool mask `flip` is true."""
        pixels = self.images[indices]  # a fresh copy, so mirroring in place leaves the cache untouched
        if flip is not None:
            pixels[flip] = pixels[flip].flip(-1)
        attributes = self.attributes[indices] if self.attributes is not None else None
        return _to_unit_range(pixels), attributes

    # DataLoader workers started by 'spawn' (macOS, Windows) pickle the dataset: send the cache's location, not
    # gigabytes of pixels, and memory-map it again on the other side.
    def __getstate__(self) -> dict:
        if self._cache_entry is None:
            return self.__dict__
        return {"cache_entry": self._cache_entry, "flip_probability": self.flip_probability}

    def __setstate__(self, state: dict) -> None:
        if "cache_entry" not in state:
            self.__dict__.update(state)
            return
        reopened = _read_cache(state["cache_entry"])
        if reopened is None:
            raise DatasetError(f"The dataset cache {state['cache_entry']} vanished; open the dataset again.")
        self.__dict__.update(reopened.__dict__)
        self.flip_probability = state["flip_probability"]


def _to_unit_range(pixels: torch.Tensor) -> torch.Tensor:
    # u / 127.5 - 1 is exactly inverted by generator.images_to_uint8's truncating x * 127.5 + 128
    return pixels.float().div_(127.5).sub_(1.0)


def default_cache_dir() -> Path:
    return cache_root() / "datasets"


def open_dataset(
    source: str, resolution: int, cache_dir: str | Path | None = None, progress: bool = True
) -> FaceDataset:
    """Open `source` at `resolution`, decoding it into the cache the first time (see the module docstring)."""
    resolution = _check_resolution(resolution)
    resolved = _resolve_source(source)
    key = _cache_key(resolved.identity, resolution)
    entry = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    entry = entry / f"{_slug(resolved.label)}-{resolution}px-{key[:16]}"
    dataset = _read_cache(entry, key)
    if dataset is None:
        _decode_into_cache(resolved, resolution, entry, key, progress)
        dataset = _read_cache(entry, key)
        if dataset is None:
            raise DatasetError(f"The dataset cache {entry} could not be read back. Check the disk, then retry.")
    return dataset


def _check_resolution(resolution: int) -> int:
    low, high = RESOLUTION_RANGE
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or not low <= resolution <= high:
        raise DatasetError(
            f"Resolution {resolution!r} is not usable: give a whole number of pixels, {low} to {high}."
        )
    return int(resolution)


# -- sources -----------------------------------------------------------------------------------------------------
@dataclass
class _RawImage:
    name: str
    # None: listed but absent, like a CelebA attribute row whose file is missing
    open: Callable[[], Image.Image] | None
    attributes: np.ndarray | None = None


@dataclass
class _Source:
    label: str  # what the user calls it, shown in the report
    identity: object  # JSON-able; hashed into the cache key, so it must change whenever the pixels could
    count: int
    read_images: Callable[[], Iterator[_RawImage]]  # called only when decoding
    attribute_names: tuple[str, ...] = ()
    upscale_small: bool = False


def _resolve_source(source: str) -> _Source:
    if source.startswith("hf:"):
        return _hf_source(source[len("hf:") :])
    if source.startswith("demo:"):
        return _demo_source(source[len("demo:") :])
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(
            f"Dataset {source} does not exist. Check the path, or start with the offline demo set 'demo:lfw'."
        )
    if path.is_dir() or path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        tree = _FolderTree(path) if path.is_dir() else _ZipTree(path)
        resolved = _tree_source(tree)
        if resolved is None:
            raise _no_images_error(tree)
        return resolved
    raise DatasetError(
        f"{source} is a single file, not a dataset. Give a folder of images, a .zip of them, a CelebA folder, "
        "'hf:OWNER/NAME' or a demo set ('demo:lfw')."
    )


class _FolderTree:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)

    def files(self) -> list[str]:
        names = []
        for directory, subdirectories, files in os.walk(self.root):
            subdirectories[:] = [d for d in subdirectories if not _is_hidden(d)]
            relative = PurePosixPath(Path(directory).relative_to(self.root).as_posix())
            names += [str(relative / name) for name in files if not _is_hidden(name)]
        return sorted(names)

    def identity(self, names: list[str]) -> dict:
        entries = []
        for name in names:
            try:
                status = (self.root / name).stat()
                entries.append((name, status.st_size, status.st_mtime_ns))
            except OSError:
                entries.append((name, -1, -1))
        return {"folder": str(self.root.resolve()), "files": entries}

    def open_image(self, name: str) -> Image.Image:
        return Image.open(self.root / name)

    def open_binary(self, name: str) -> io.BufferedIOBase:
        return open(self.root / name, "rb")

    def read_text(self, name: str) -> str:
        return (self.root / name).read_text(encoding="utf-8", errors="replace")


class _ZipTree:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path)
        try:
            self.archive = zipfile.ZipFile(path)
            self.members = {info.filename: info for info in self.archive.infolist() if not info.is_dir()}
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise DatasetError(
                f"{path} is not a readable zip file ({error}). Download it again, or unpack it and give the folder."
            ) from None

    def files(self) -> list[str]:
        return sorted(
            name for name in self.members if not any(_is_hidden(part) for part in PurePosixPath(name).parts)
        )

    def identity(self, names: list[str]) -> dict:
        status = self.path.stat()
        members = [(name, self.members[name].file_size, self.members[name].CRC) for name in names]
        archive = {"zip": str(self.path.resolve()), "size": status.st_size, "mtime_ns": status.st_mtime_ns}
        return archive | {"files": members}

    def open_image(self, name: str) -> Image.Image:
        return Image.open(io.BytesIO(self.archive.read(name)))

    def open_binary(self, name: str) -> io.BufferedIOBase:
        return self.archive.open(name)

    def read_text(self, name: str) -> str:
        return self.archive.read(name).decode("utf-8", errors="replace")


_Tree = _FolderTree | _ZipTree


def _is_hidden(name: str) -> bool:
    # macOS writes '._photo.jpg' resource forks and '__MACOSX/' folders into zips; neither holds an image
    return name.startswith(".") or name == "__MACOSX"


def _has_extension(name: str, extensions: tuple[str, ...]) -> bool:
    return name.lower().endswith(extensions)


def _tree_source(tree: _Tree, label: str | None = None) -> _Source | None:
    """CelebA if an attribute file is there, else its image files, else its parquet files; None if it has none."""
    label = label or tree.label
    names = tree.files()
    attribute_files = [name for name in names if PurePosixPath(name).name in CELEBA_ATTRIBUTE_FILES]
    image_names = [name for name in names if _has_extension(name, IMAGE_EXTENSIONS)]
    if attribute_files:
        return _celeba_source(tree, min(attribute_files, key=len), image_names, label)
    if image_names:
        return _image_files_source(tree, image_names, label)
    parquet_names = [name for name in names if _has_extension(name, (".parquet",))]
    if parquet_names:
        return _parquet_source(tree, parquet_names, label)
    return None


def _no_images_error(tree: _Tree) -> DatasetError:
    return DatasetError(
        f"Found 0 images among {len(tree.files()):,} files in {tree.label} (extensions looked for: "
        f"{' '.join(IMAGE_EXTENSIONS)}, or .parquet files with an image column). Point at the folder that holds "
        "the images, or convert them to JPEG or PNG."
    )


def _image_files_source(tree: _Tree, names: list[str], label: str) -> _Source:
    def read_images() -> Iterator[_RawImage]:
        for name in names:
            yield _RawImage(name, lambda name=name: tree.open_image(name))

    return _Source(label, tree.identity(names), len(names), read_images)


# -- CelebA --------------------------------------------------------------------------------------------------------
def _celeba_source(tree: _Tree, attribute_file: str, image_names: list[str], label: str) -> _Source:
    attribute_names, rows = _parse_celeba_attributes(tree.read_text(attribute_file), attribute_file)
    # The official release puts in-the-wild photos (img_celeba/) beside the aligned crops under the same file names;
    # the aligned ones are what CelebA GANs train on.
    aligned = [name for name in image_names if "img_align_celeba" in PurePosixPath(name).parts]
    by_file_name: dict[str, str] = {}
    for name in aligned or image_names:
        by_file_name.setdefault(PurePosixPath(name).name, name)
    located = [(by_file_name.get(file_name), values) for file_name, values in rows]
    present = [name for name, _ in located if name is not None]

    def read_images() -> Iterator[_RawImage]:
        for (file_name, _), (name, values) in zip(rows, located):
            opener = None if name is None else (lambda name=name: tree.open_image(name))
            yield _RawImage(name or file_name, opener, values)

    identity = {"celeba": tree.identity([attribute_file, *present])}
    return _Source(f"{label} (CelebA)", identity, len(rows), read_images, attribute_names)


def _parse_celeba_attributes(text: str, file_name: str) -> tuple[tuple[str, ...], list[tuple[str, np.ndarray]]]:
    """CelebA's list_attr_celeba.txt (count line, header of names, 'file -1 1 ...' rows) or Kaggle's CSV version."""
    lines = text.splitlines()
    is_csv = file_name.lower().endswith(".csv")

    def fields(line: str) -> list[str]:
        return [part.strip() for part in line.split(",")] if is_csv else line.split()

    def malformed(line_number: int, problem: str) -> DatasetError:
        return DatasetError(
            f"{file_name} line {line_number}: {problem}. Fix or replace the attribute file (the original is in "
            "CelebA's Anno/ folder), or remove it to train on the images without attributes."
        )

    if is_csv:
        header_line, declared_count = 1, None
        names = tuple(fields(lines[0])[1:]) if lines else ()
    else:
        header_line = 2
        try:
            declared_count = int(lines[0].strip())
        except (IndexError, ValueError):
            raise malformed(1, "expected the number of images") from None
        names = tuple(fields(lines[1])) if len(lines) > 1 else ()
    if not names:
        raise malformed(header_line, "expected the attribute names")
    rows = []
    for line_number, line in enumerate(lines[header_line:], start=header_line + 1):
        parts = fields(line)
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            expected = f"expected {len(names) + 1} fields (a file name and {len(names)} attributes)"
            raise malformed(line_number, f"{expected}, found {len(parts)}")
        try:
            values = np.array([int(value) > 0 for value in parts[1:]], dtype=np.uint8)
        except ValueError:
            raise malformed(line_number, "attributes must be 1 or -1 (or 0)") from None
        rows.append((parts[0], values))
    if declared_count is not None and declared_count != len(rows):
        raise malformed(1, f"says {declared_count:,} images but the file lists {len(rows):,}")
    return names, rows


# -- Hugging Face --------------------------------------------------------------------------------------------------
def _hf_source(spec: str) -> _Source:
    repo_id, _, revision = spec.partition("@")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id):
        raise DatasetError(f"'hf:{spec}' is not a dataset repo id: write hf:OWNER/NAME or hf:OWNER/NAME@REVISION.")
    folder = _download_hf_dataset(repo_id, revision or None)
    commit = folder.name if re.fullmatch(r"[0-9a-f]{40}", folder.name) else None
    label = f"hf:{repo_id}" + (f"@{commit[:8]}" if commit else f"@{revision}" if revision else "")
    resolved = _tree_source(_FolderTree(folder), label) if folder.is_dir() else None
    if resolved is None:
        raise DatasetError(
            f"{label} has no image files and no parquet files with an image column (only those are downloaded). "
            "Repos that pack images into archives need a manual download: fetch the archive and give its path."
        )
    return resolved


def _download_hf_dataset(repo_id: str, revision: str | None) -> Path:
    """The local snapshot of a dataset repo, downloaded (only images, parquet, CelebA attributes) when not cached."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    manual = (
        f"Or download the files yourself (`hf download {repo_id} --repo-type dataset --local-dir DIR`) and give DIR."
    )
    try:
        folder = snapshot_download(
            repo_id=repo_id, repo_type="dataset", revision=revision, allow_patterns=list(HF_DOWNLOAD_PATTERNS)
        )
    except GatedRepoError:
        raise DatasetError(
            f"Dataset repo {repo_id} is gated: accept its terms on huggingface.co/datasets/{repo_id}, then set "
            f"HF_TOKEN to an access token of that account. {manual}"
        ) from None
    except RevisionNotFoundError:
        raise DatasetError(f"Dataset repo {repo_id} has no revision {revision!r}. Check the name after '@'.") from None
    except RepositoryNotFoundError:
        raise DatasetError(
            f"Dataset repo {repo_id} was not found on the Hugging Face Hub. Check the name; for a private repo set "
            f"HF_TOKEN to an access token that can read it. {manual}"
        ) from None
    except LocalEntryNotFoundError:
        raise DatasetError(
            f"Dataset repo {repo_id} is not (completely) in the local Hugging Face cache and the Hub cannot be "
            "reached (offline, or HF_HUB_OFFLINE=1). Connect and run again (set HF_TOKEN for private or gated repos), "
            f"or copy a cache that holds it and point HF_HUB_CACHE at it. {manual}"
        ) from None
    except HFValidationError as error:
        raise DatasetError(f"'{repo_id}' is not a valid dataset repo id ({error}).") from None
    except OSError as error:
        raise DatasetError(
            f"Downloading dataset repo {repo_id} failed ({error}). Check the connection and retry. {manual}"
        ) from None
    return Path(folder)


@dataclass
class _ParquetFilePlan:
    name: str
    image_column: str
    attribute_columns: list[str]
    rows: int


def _parquet_source(tree: _Tree, names: list[str], label: str) -> _Source:
    import pyarrow.parquet as pq

    plans = []
    for name in names:
        try:
            with tree.open_binary(name) as stream:
                parquet = pq.ParquetFile(stream)
                schema, rows = parquet.schema_arrow, parquet.metadata.num_rows
        except Exception as error:  # pyarrow raises its own error types for damaged files
            raise DatasetError(f"{label}: cannot read parquet file {name} ({error}). Download it again.") from None
        image_column = _parquet_image_column(schema)
        if image_column is not None:
            attribute_columns = [column for column in CELEBA_ATTRIBUTE_NAMES if _is_binary_label(schema, column)]
            plans.append(_ParquetFilePlan(name, image_column, attribute_columns, rows))
    if not plans:
        raise DatasetError(
            f"{label}: none of its {len(names)} parquet files has an image column (image bytes, or a Hugging Face "
            "Image feature). Use a dataset repo that stores images, or download the images and give their folder."
        )
    # Attributes only when every file carries all of CelebA's: a partial set would misalign the label vector.
    with_attributes = all(len(plan.attribute_columns) == len(CELEBA_ATTRIBUTE_NAMES) for plan in plans)

    def read_images() -> Iterator[_RawImage]:
        for plan in plans:
            columns = [plan.image_column, *plan.attribute_columns] if with_attributes else [plan.image_column]
            row = 0
            for batch in _parquet_batches(tree, plan.name, columns, label):
                images = batch.column(plan.image_column)
                if hasattr(images, "field"):  # a Hugging Face Image feature: struct<bytes, path>
                    images = images.field("bytes")
                labels = _parquet_labels(batch, plan.attribute_columns) if with_attributes else None
                for index, encoded in enumerate(images.to_pylist()):
                    opener = None if encoded is None else (lambda encoded=encoded: Image.open(io.BytesIO(encoded)))
                    yield _RawImage(f"{plan.name}#{row}", opener, None if labels is None else labels[index])
                    row += 1

    attribute_names = CELEBA_ATTRIBUTE_NAMES if with_attributes else ()
    count = sum(plan.rows for plan in plans)
    return _Source(label, tree.identity([plan.name for plan in plans]), count, read_images, attribute_names)


def _parquet_batches(tree: _Tree, name: str, columns: list[str], label: str) -> Iterator[object]:
    import pyarrow.parquet as pq

    with tree.open_binary(name) as stream:
        batches = pq.ParquetFile(stream).iter_batches(batch_size=256, columns=columns)
        while True:
            try:
                batch = next(batches, None)
            except Exception as error:  # pyarrow's errors for damaged pages; no image in the file can be trusted
                raise DatasetError(f"{label}: parquet file {name} is damaged ({error}). Download it again.") from None
            if batch is None:
                return
            yield batch


def _parquet_labels(batch: object, columns: list[str]) -> np.ndarray:
    """uint8 [rows, len(columns)] in {0, 1} from boolean, 0/1 or -1/1 columns; a missing value counts as 0."""
    import pyarrow as pa

    values = [batch.column(column).cast(pa.int8()).fill_null(0).to_numpy() for column in columns]
    return (np.stack(values, axis=1) > 0).astype(np.uint8)


def _is_binary_label(schema: object, name: str) -> bool:
    import pyarrow as pa

    if name not in schema.names:
        return False
    data_type = schema.field(name).type
    return pa.types.is_boolean(data_type) or pa.types.is_integer(data_type)  # True/False, 1/0 or 1/-1


def _parquet_image_column(schema: object) -> str | None:
    import pyarrow as pa

    def holds_image_bytes(data_type: pa.DataType) -> bool:
        if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
            return True
        return pa.types.is_struct(data_type) and data_type.get_field_index("bytes") >= 0

    candidates = [f.name for f in schema if holds_image_bytes(f.type)]
    preferred = [name for name in candidates if name.lower() in ("image", "img", "images")]
    return (preferred or candidates or [None])[0]


# -- demo sets -----------------------------------------------------------------------------------------------------
def _demo_source(spec: str) -> _Source:
    name, _, query = spec.partition("?")
    if name == "lfw" and not query:
        return _Source("demo:lfw", {"demo": "lfw"}, LFW_FACE_COUNT, _lfw_images, upscale_small=True)
    if name == "digiface":
        count = _digiface_count(query)
        return _Source(
            f"demo:digiface?n={count}", {"demo": "digiface", "model": DIGIFACE_MODEL_ID, "n": count}, count,
            lambda: _digiface_images(count), upscale_small=True,
        )  # fmt: skip
    raise DatasetError(
        f"Unknown demo dataset 'demo:{spec}'. Choose 'demo:lfw' or 'demo:digiface' (optionally 'demo:digiface?n=500')."
    )


def _digiface_count(query: str) -> int:
    if not query:
        return DIGIFACE_DEFAULT_COUNT
    match = re.fullmatch(r"n=(\d+)", query)
    if not match or not 1 <= int(match.group(1)) <= DIGIFACE_MAX_COUNT:
        raise DatasetError(
            f"'demo:digiface?{query}' is not understood: write demo:digiface?n=N, N from 1 to {DIGIFACE_MAX_COUNT:,}."
        )
    return int(match.group(1))


def _lfw_images() -> Iterator[_RawImage]:
    from skimage.data import lfw_subset

    faces = np.asarray(lfw_subset()[:LFW_FACE_COUNT])
    if faces.dtype != np.uint8:  # documented as uint8, but scikit-image 0.26 returns float64 in [0, 1]
        faces = np.clip(np.rint(faces * 255), 0, 255).astype(np.uint8)
    for index, face in enumerate(faces):
        yield _RawImage(f"lfw_subset[{index}]", lambda face=face: Image.fromarray(face, "L"))


def _digiface_generator() -> Generator:
    from facegen.registry import load_generator  # imported late: the registry pulls in every model format

    return load_generator(DIGIFACE_MODEL_ID)


def _digiface_images(count: int) -> Iterator[_RawImage]:
    generator = _digiface_generator()
    for start in range(0, count, DIGIFACE_RENDER_BATCH):
        seeds = list(range(start, min(start + DIGIFACE_RENDER_BATCH, count)))
        for seed, pixels in zip(seeds, generator.sample(seeds=seeds, batch_size=DIGIFACE_RENDER_BATCH)):
            yield _RawImage(f"seed {seed}", lambda pixels=pixels: Image.fromarray(pixels))


# -- decoding ------------------------------------------------------------------------------------------------------
@dataclass
class _Decoded:
    pixels: np.ndarray | None = None  # uint8 [R, R, 3]
    skip_reason: str | None = None
    conversion: str | None = None


def _decode_image(raw: _RawImage, resolution: int, upscale_small: bool) -> _Decoded:
    if raw.open is None:
        return _Decoded(skip_reason="missing")
    # Any exception from a decoder means the file is unusable; PIL and its plugins raise a dozen different types
    # (OSError, SyntaxError, ValueError, struct.error, zlib.error, ...) for damaged files.
    try:
        with raw.open() as image:
            if not upscale_small and min(image.size) < resolution * MIN_SIDE_FRACTION:
                return _Decoded(skip_reason="too small")
            if image.format == "JPEG":
                # Let the JPEG decoder downscale by 2/4/8 in the DCT domain, keeping at least twice the target size
                # so the final filter still has detail to work with: several times faster on large photos.
                image.draft(image.mode, (2 * resolution, 2 * resolution))
            image.load()
            rgb, conversion = _to_rgb(_upright(image))
            return _Decoded(pixels=_crop_and_resize(rgb, resolution), conversion=conversion)
    except Image.DecompressionBombError:
        return _Decoded(skip_reason="too large")
    except Exception as error:
        # PIL says 'image file is truncated' for JPEG and PNG files cut short (an interrupted copy or download)
        return _Decoded(skip_reason="truncated" if "truncated" in str(error).lower() else "corrupt")


def _upright(image: Image.Image) -> Image.Image:
    # Phone photos are stored sideways with an EXIF orientation tag; a face dataset wants them the way they look.
    if image.getexif().get(EXIF_ORIENTATION, 1) == 1:
        return image
    return ImageOps.exif_transpose(image)


def _to_rgb(image: Image.Image) -> tuple[Image.Image, str | None]:
    """An 8-bit RGB copy of `image`, and the name of the conversion a user would care about (None: it was RGB)."""
    mode = image.mode
    if mode == "RGB":
        return image, None
    if mode in ("1", "L"):
        return image.convert("RGB"), "grayscale"
    if mode.startswith("I"):
        # 16-bit grayscale (PNG, TIFF): PIL's own conversion clips at 255 and would turn the picture white;
        # dividing by 257 maps 0..65535 onto 0..255 exactly
        wide = np.asarray(image, dtype=np.float64)
        eight_bit = np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(eight_bit, "L").convert("RGB"), "16-bit"
    if mode == "CMYK":
        return image.convert("RGB"), "cmyk"
    if mode == "P":
        if "transparency" in image.info:
            return _flatten_alpha(image.convert("RGBA")), "palette"
        return image.convert("RGB"), "palette"
    if mode in ("RGBA", "RGBa"):
        return _flatten_alpha(image.convert("RGBA")), "rgba"
    if mode in ("LA", "La", "PA"):
        return _flatten_alpha(image.convert("RGBA")), "grayscale"
    return image.convert("RGB"), mode.lower()


def _flatten_alpha(image: Image.Image) -> Image.Image:
    background = Image.new("RGB", image.size, ALPHA_BACKGROUND)
    background.paste(image, mask=image.getchannel("A"))
    return background


def _crop_and_resize(image: Image.Image, resolution: int) -> np.ndarray:
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    # crop first: resizing with a box would let the filter reach past the crop and bleed the sides in
    square = image.crop((left, top, left + side, top + side))
    if side == resolution:
        return np.asarray(square)
    # reducing_gap: shrink by an integer factor first (box filter) while staying 3x above the target, then
    # Lanczos; as sharp as Lanczos alone on large inputs, and much faster
    return np.asarray(square.resize((resolution, resolution), Image.Resampling.LANCZOS, reducing_gap=3.0))


# -- the decode cache ----------------------------------------------------------------------------------------------
def _cache_key(identity: object, resolution: int) -> str:
    payload = json.dumps({"source": identity, "resolution": resolution, "format": CACHE_FORMAT_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _slug(label: str) -> str:
    tail = label.rstrip("/\\").replace("\\", "/").split("/")[-1] if not label.startswith(("hf:", "demo:")) else label
    return re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip("-.")[:60] or "dataset"


IMAGES_FILE, ATTRIBUTES_FILE, META_FILE = "images.npy", "attributes.npy", "meta.json"


def _read_cache(entry: Path, key: str | None = None) -> FaceDataset | None:
    """The cached dataset in `entry`, or None when it is absent, stale or damaged (then it is decoded again)."""
    try:
        meta = json.loads((entry / META_FILE).read_text())
        if meta["format"] != CACHE_FORMAT_VERSION or (key is not None and meta["key"] != key):
            return None
        images = np.load(entry / IMAGES_FILE, mmap_mode="c")  # copy-on-write: torch wants a writable array
        resolution = meta["resolution"]
        if images.dtype != np.uint8 or images.shape != (meta["report"]["used"], 3, resolution, resolution):
            return None
        attribute_names = tuple(meta["attribute_names"])
        attributes = None
        if attribute_names:
            values = np.load(entry / ATTRIBUTES_FILE)
            if values.shape != (len(images), len(attribute_names)):
                return None
            attributes = torch.from_numpy(values.astype(np.float32))
        report = DatasetReport(**meta["report"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return FaceDataset(torch.from_numpy(images), attributes, attribute_names, report, entry)


def _decode_into_cache(source: _Source, resolution: int, entry: Path, key: str, progress: bool) -> None:
    row_bytes = 3 * resolution * resolution
    _prepare_cache_folder(entry, source.count * row_bytes)
    partial = entry / f"{IMAGES_FILE}.{os.getpid()}.partial"
    skipped: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    used = 0
    try:
        shape = (source.count, 3, resolution, resolution)
        rows = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=shape)
        attributes = np.zeros((source.count, len(source.attribute_names)), np.uint8)
        raw_images = tqdm(
            source.read_images(), total=source.count, desc=f"Decoding {source.label}", unit="img",
            file=sys.stderr, disable=not progress, dynamic_ncols=True,
        )  # fmt: skip
        for raw in raw_images:
            decoded = _decode_image(raw, resolution, source.upscale_small)
            if decoded.pixels is None:
                skipped[decoded.skip_reason] += 1
                reasons = examples.setdefault(decoded.skip_reason, [])
                if len(reasons) < SKIPPED_EXAMPLES_KEPT:
                    reasons.append(raw.name)
                continue
            rows[used] = decoded.pixels.transpose(2, 0, 1)
            if raw.attributes is not None:
                attributes[used] = raw.attributes
            if decoded.conversion:
                converted[decoded.conversion] += 1
            used += 1
        rows.flush()
        del rows  # unmap before the header is rewritten and the file renamed
        report = DatasetReport(source.label, source.count, used, dict(skipped), dict(converted), examples)
        if used == 0:
            raise DatasetError(_nothing_usable_message(report, resolution))
        _shrink_npy_rows(partial, used)
        os.replace(partial, entry / IMAGES_FILE)
        if source.attribute_names:
            _save_npy_atomically(entry / ATTRIBUTES_FILE, attributes[:used])
        meta = {
            "format": CACHE_FORMAT_VERSION, "key": key, "resolution": resolution, "report": asdict(report),
            "attribute_names": list(source.attribute_names),
        }  # fmt: skip
        # written last: its presence is what marks the entry complete
        _write_text_atomically(entry / META_FILE, json.dumps(meta, indent=1))
    except OSError as error:
        raise DatasetError(
            f"Cannot write the dataset cache in {entry}: {error.strerror or error}. Free some disk space, or set "
            "FACEGEN_CACHE (or cache_dir) to a folder on a disk with room."
        ) from None
    finally:
        partial.unlink(missing_ok=True)


def _prepare_cache_folder(entry: Path, needed_bytes: int) -> None:
    try:
        entry.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(entry).free
    except OSError as error:
        raise DatasetError(
            f"Cannot create the dataset cache folder {entry}: {error.strerror or error}. Set FACEGEN_CACHE (or "
            "cache_dir) to a writable folder."
        ) from None
    if needed_bytes > free:
        raise DatasetError(
            f"Decoding this dataset needs {needed_bytes / 1e9:.1f} GB in {entry.parent}, but only {free / 1e9:.1f} GB "
            "is free. Free some space, use a lower resolution, or set FACEGEN_CACHE to a bigger disk."
        )
    (entry / META_FILE).unlink(missing_ok=True)  # a stale entry is being replaced: never leave it half-valid


def _nothing_usable_message(report: DatasetReport, resolution: int) -> str:
    reasons = ", ".join(f"{count:,} {reason}" for reason, count in report.skipped.items())
    hints = []
    if "too small" in report.skipped:
        hints.append(
            f"'too small' means the shorter side is under {resolution * MIN_SIDE_FRACTION:g} px "
            f"(half of {resolution}): train at a lower resolution or use larger images"
        )
    if report.skipped.keys() & {"corrupt", "truncated"}:
        hints.append("'corrupt'/'truncated' files cannot be decoded: download or extract them again")
    if "missing" in report.skipped:
        hints.append("'missing' rows of the attribute file have no image beside it: put img_align_celeba/ next to it")
    examples = "; ".join(f"{reason}: {', '.join(names)}" for reason, names in report.skipped_examples.items())
    hints_text = "".join(f" {hint}." for hint in hints)
    return f"No usable image in {report.source}: {report.found:,} found, {reasons}.{hints_text} (e.g. {examples})"


def _shrink_npy_rows(path: Path, rows: int) -> None:
    """Cut a .npy array to its first `rows` along axis 0 in place, without copying the pixels.

    numpy pads every header so the first axis can grow to 21 digits (GROWTH_AXIS_MAX_DIGITS), so the rewritten
    header has exactly the old length and the data does not move.
    """
    with open(path, "r+b") as stream:
        version = np.lib.format.read_magic(stream)
        if version != (1, 0):
            raise RuntimeError(f"unexpected .npy version {version}")
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        data_offset = stream.tell()
        new_shape = (rows, *shape[1:])
        stream.seek(0)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran_order, "shape": new_shape}
        np.lib.format.write_array_header_1_0(stream, header)
        if stream.tell() != data_offset:
            raise RuntimeError("rewritten .npy header changed length")
        stream.truncate(data_offset + rows * int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)


def _save_npy_atomically(path: Path, array: np.ndarray) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "wb") as stream:
            np.save(stream, array)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _write_text_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
