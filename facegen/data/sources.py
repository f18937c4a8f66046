"""Where training images come from: folders, zips, CelebA (folder or zip) and parquet files, as raw images to decode.

A `Source` lists its images lazily (`read_images` runs only when the cache is built) and carries an identity that
changes whenever its pixels could, so the decode cache knows when to build again.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from facegen.data.report import DatasetError
from facegen.errors import ImageTooLargeError
from facegen.images import open_image
from facegen.limits import MAX_ZIP_MEMBER_BYTES, MEGABYTE

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


@dataclass
class RawImage:
    name: str
    # None: listed but absent, like a CelebA attribute row whose file is missing
    open: Callable[[], Image.Image] | None
    attributes: np.ndarray | None = None


@dataclass
class Source:
    label: str  # what the user calls it, shown in the report
    identity: object  # JSON-able; hashed into the cache key, so it must change whenever the pixels could
    count: int
    read_images: Callable[[], Iterator[RawImage]]  # called only when decoding
    attribute_names: tuple[str, ...] = ()
    upscale_small: bool = False


def path_source(source: str) -> Source:
    """A folder, a zip, or a CelebA root (folder or zip) named by a local path."""
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(
            f"Dataset {source} does not exist. Check the path, or start with the offline demo set 'demo:lfw'."
        )
    if path.is_dir() or path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        tree = FolderTree(path) if path.is_dir() else ZipTree(path)
        resolved = tree_source(tree)
        if resolved is None:
            raise _no_images_error(tree)
        return resolved
    raise DatasetError(
        f"{source} is a single file, not a dataset. Give a folder of images, a .zip of them, a CelebA folder, "
        "'hf:OWNER/NAME' or a demo set ('demo:lfw')."
    )


class FolderTree:
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
        return open_image(self.root / name, name)

    def open_binary(self, name: str) -> io.BufferedIOBase:
        return open(self.root / name, "rb")

    def read_text(self, name: str) -> str:
        return (self.root / name).read_text(encoding="utf-8", errors="replace")


class ZipTree:
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
        """The member's image; refused from its declared size, and again if it inflates past it (a lying header)."""
        too_large = ImageTooLargeError(
            f"{name} in {self.label} inflates to more than {MAX_ZIP_MEMBER_BYTES // MEGABYTE} MB, the most facegen "
            "reads from one zip member."
        )
        if self.members[name].file_size > MAX_ZIP_MEMBER_BYTES:
            raise too_large
        with self.archive.open(name) as member:
            data = member.read(MAX_ZIP_MEMBER_BYTES + 1)
        if len(data) > MAX_ZIP_MEMBER_BYTES:
            raise too_large
        return open_image(io.BytesIO(data), name)

    def open_binary(self, name: str) -> io.BufferedIOBase:
        return self.archive.open(name)

    def read_text(self, name: str) -> str:
        return self.archive.read(name).decode("utf-8", errors="replace")


Tree = FolderTree | ZipTree


def _is_hidden(name: str) -> bool:
    # macOS writes '._photo.jpg' resource forks and '__MACOSX/' folders into zips; neither holds an image
    return name.startswith(".") or name == "__MACOSX"


def _has_extension(name: str, extensions: tuple[str, ...]) -> bool:
    return name.lower().endswith(extensions)


def tree_source(tree: Tree, label: str | None = None) -> Source | None:
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


def _no_images_error(tree: Tree) -> DatasetError:
    return DatasetError(
        f"Found 0 images among {len(tree.files()):,} files in {tree.label} (extensions looked for: "
        f"{' '.join(IMAGE_EXTENSIONS)}, or .parquet files with an image column). Point at the folder that holds "
        "the images, or convert them to JPEG or PNG."
    )


def _image_files_source(tree: Tree, names: list[str], label: str) -> Source:
    def read_images() -> Iterator[RawImage]:
        for name in names:
            yield RawImage(name, lambda name=name: tree.open_image(name))

    return Source(label, tree.identity(names), len(names), read_images)


# -- CelebA --------------------------------------------------------------------------------------------------------
def _celeba_source(tree: Tree, attribute_file: str, image_names: list[str], label: str) -> Source:
    attribute_names, rows = _parse_celeba_attributes(tree.read_text(attribute_file), attribute_file)
    # The official release puts in-the-wild photos (img_celeba/) beside the aligned crops under the same file names;
    # the aligned ones are what CelebA GANs train on.
    aligned = [name for name in image_names if "img_align_celeba" in PurePosixPath(name).parts]
    by_file_name: dict[str, str] = {}
    for name in aligned or image_names:
        by_file_name.setdefault(PurePosixPath(name).name, name)
    located = [(by_file_name.get(file_name), values) for file_name, values in rows]
    present = [name for name, _ in located if name is not None]

    def read_images() -> Iterator[RawImage]:
        for (file_name, _), (name, values) in zip(rows, located):
            opener = None if name is None else (lambda name=name: tree.open_image(name))
            yield RawImage(name or file_name, opener, values)

    identity = {"celeba": tree.identity([attribute_file, *present])}
    return Source(f"{label} (CelebA)", identity, len(rows), read_images, attribute_names)


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


# -- parquet (what Hugging Face dataset repos hold) ----------------------------------------------------------------
@dataclass
class _ParquetFilePlan:
    name: str
    image_column: str
    attribute_columns: list[str]
    rows: int


def _parquet_source(tree: Tree, names: list[str], label: str) -> Source:
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

    def read_images() -> Iterator[RawImage]:
        for plan in plans:
            columns = [plan.image_column, *plan.attribute_columns] if with_attributes else [plan.image_column]
            row = 0
            for batch in _parquet_batches(tree, plan.name, columns, label):
                images = batch.column(plan.image_column)
                if hasattr(images, "field"):  # a Hugging Face Image feature: struct<bytes, path>
                    images = images.field("bytes")
                labels = _parquet_labels(batch, plan.attribute_columns) if with_attributes else None
                for index, encoded in enumerate(images.to_pylist()):
                    opener = None if encoded is None else (lambda encoded=encoded: open_image(io.BytesIO(encoded)))
                    yield RawImage(f"{plan.name}#{row}", opener, None if labels is None else labels[index])
                    row += 1

    attribute_names = CELEBA_ATTRIBUTE_NAMES if with_attributes else ()
    count = sum(plan.rows for plan in plans)
    return Source(label, tree.identity([plan.name for plan in plans]), count, read_images, attribute_names)


def _parquet_batches(tree: Tree, name: str, columns: list[str], label: str) -> Iterator[object]:
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
