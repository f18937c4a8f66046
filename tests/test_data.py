"""Training datasets: every source kind, every kind of bad image, the decode cache, and the demo sets."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facegen import data
from facegen.data import CELEBA_ATTRIBUTE_NAMES, DEMO_DATASETS, DatasetError, demo, open_dataset
from facegen.data.decode import EXIF_ORIENTATION
from facegen.errors import FacegenError

RESOLUTION = 16


def face_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """A small random RGB picture standing in for a face photo."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def encoded(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def open_fresh(source: str | Path, tmp_path: Path, resolution: int = RESOLUTION) -> data.FaceDataset:
    return open_dataset(str(source), resolution, cache_dir=tmp_path / "cache", progress=False)


def as_rgb_rows(images: torch.Tensor) -> np.ndarray:
    return images.permute(0, 2, 3, 1).numpy()


# -- sources ---------------------------------------------------------------------------------------------------
def test_folder_is_read_recursively_with_mixed_sizes_and_extensions(tmp_path):
    root = tmp_path / "faces"
    write(root / "a.jpg", encoded(face_image(40, 30, 1), "JPEG"))
    write(root / "people" / "b.png", encoded(face_image(16, 16, 2), "PNG"))
    write(root / "people" / "more" / "c.JPEG", encoded(face_image(100, 120, 3), "JPEG"))
    write(root / "people" / "d.webp", encoded(face_image(24, 24, 4), "WEBP"))
    write(root / "notes.txt", b"not an image")
    write(root / ".thumbs" / "hidden.jpg", encoded(face_image(32, 32, 5), "JPEG"))

    dataset = open_fresh(root, tmp_path)

    assert len(dataset) == 4
    assert dataset.images.shape == (4, 3, RESOLUTION, RESOLUTION) and dataset.images.dtype == torch.uint8
    assert dataset.resolution == RESOLUTION
    assert (dataset.report.found, dataset.report.used, dataset.report.skipped) == (4, 4, {})
    assert dataset.report.summary() == f"4 images from {root}"
    # the 16x16 PNG is already at the training size, so its pixels arrive untouched (files are read in sorted order)
    png = np.asarray(Image.open(root / "people" / "b.png"))
    assert np.array_equal(as_rgb_rows(dataset.images)[1], png)
    image, attributes = dataset[0]
    assert image.shape == (3, RESOLUTION, RESOLUTION) and image.dtype == torch.float32
    assert -1.0 <= image.min() and image.max() <= 1.0
    assert attributes.numel() == 0 and dataset.attributes is None and dataset.attribute_names == ()


def test_images_are_centre_cropped_to_a_square_then_resized(tmp_path):
    # a wide picture: red quarter, green middle half, blue quarter; the centre square is the green half
    stripes = np.zeros((32, 64, 3), np.uint8)
    stripes[:, :16] = (255, 0, 0)
    stripes[:, 16:48] = (0, 255, 0)
    stripes[:, 48:] = (0, 0, 255)
    write(tmp_path / "wide" / "stripes.png", encoded(Image.fromarray(stripes), "PNG"))

    pixels = as_rgb_rows(open_fresh(tmp_path / "wide", tmp_path).images)[0]

    assert pixels.shape == (RESOLUTION, RESOLUTION, 3)
    assert np.array_equal(np.unique(pixels.reshape(-1, 3), axis=0), [[0, 255, 0]])


def test_zip_with_a_nested_folder_like_processed_celeba_small(tmp_path):
    archive_path = tmp_path / "processed-celeba-small.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        for index in range(5):
            jpeg = encoded(face_image(32, 32, index), "JPEG")
            archive.writestr(f"processed_celeba_small/celeba/{index:06d}.jpg", jpeg)
        archive.writestr("__MACOSX/processed_celeba_small/celeba/._000000.jpg", b"\x00\x05\x16\x07 resource fork")
        archive.writestr("processed_celeba_small/readme.txt", "thumbnails")

    dataset = open_fresh(archive_path, tmp_path)

    assert len(dataset) == 5 and dataset.report.skipped == {}
    first = np.asarray(Image.open(io.BytesIO(encoded(face_image(32, 32, 0), "JPEG"))).resize((16, 16), Image.LANCZOS))
    assert np.abs(as_rgb_rows(dataset.images)[0].astype(int) - first.astype(int)).mean() < 4


def write_celeba(root: Path, rows: list[tuple[str, list[int]]], names=CELEBA_ATTRIBUTE_NAMES, count=None) -> Path:
    lines = [str(len(rows) if count is None else count), " ".join(names)]
    lines += [f"{file_name}  " + " ".join(f"{value:2d}" for value in values) for file_name, values in rows]
    return write(root / "list_attr_celeba.txt", ("\n".join(lines) + "\n").encode())


def celeba_rows(count: int) -> list[tuple[str, list[int]]]:
    rng = np.random.default_rng(7)
    return [(f"{index + 1:06d}.jpg", list(rng.choice([-1, 1], len(CELEBA_ATTRIBUTE_NAMES)))) for index in range(count)]


def test_celeba_layout_gives_attributes_in_file_order(tmp_path):
    root = tmp_path / "celeba"
    rows = celeba_rows(4)
    for index, (file_name, _) in enumerate(rows):
        write(root / "img_align_celeba" / file_name, encoded(face_image(36, 44, index), "JPEG"))
    write_celeba(root, rows)

    dataset = open_fresh(root, tmp_path)

    assert len(dataset) == 4
    assert dataset.attribute_names == CELEBA_ATTRIBUTE_NAMES and len(dataset.attribute_names) == 40
    expected = torch.tensor([[1.0 if value == 1 else 0.0 for value in values] for _, values in rows])
    assert dataset.attributes.dtype == torch.float32 and torch.equal(dataset.attributes, expected)
    assert torch.equal(dataset[2][1], expected[2])
    images, attributes = dataset.batch(torch.tensor([3, 1]))
    assert images.shape == (2, 3, RESOLUTION, RESOLUTION) and torch.equal(attributes, expected[[3, 1]])


def test_celeba_row_without_its_image_is_skipped_and_attributes_stay_aligned(tmp_path):
    root = tmp_path / "celeba"
    rows = celeba_rows(3)
    for index in (0, 2):
        write(root / "img_align_celeba" / rows[index][0], encoded(face_image(32, 32, index), "PNG"))
    write_celeba(root, rows)

    dataset = open_fresh(root, tmp_path)

    assert dataset.report.skipped == {"missing": 1} and dataset.report.skipped_examples == {"missing": ["000002.jpg"]}
    assert torch.equal(dataset.attributes[1], torch.tensor([float(v == 1) for v in rows[2][1]]))


# -- bad images ------------------------------------------------------------------------------------------------
def test_bad_images_are_converted_or_skipped_and_counted(tmp_path):
    root = tmp_path / "mixed"
    good = face_image(32, 32, 0)
    jpeg = encoded(good, "JPEG")
    write(root / "good.jpg", jpeg)
    write(root / "corrupt.jpg", b"this is not a JPEG at all" * 20)
    write(root / "truncated.jpg", jpeg[: len(jpeg) // 2])
    write(root / "gray.png", encoded(Image.new("L", (32, 32), 90), "PNG"))
    write(root / "print.jpg", encoded(good.convert("CMYK"), "JPEG"))
    transparent = Image.new("RGBA", (32, 32), (200, 10, 10, 255))
    transparent.paste((0, 0, 0, 0), (0, 0, 32, 16))  # top half fully transparent
    write(root / "alpha.png", encoded(transparent, "PNG"))
    sixteen_bit = Image.fromarray(np.full((32, 32), 65535, np.uint16))
    assert sixteen_bit.mode == "I;16"
    write(root / "deep.png", encoded(sixteen_bit, "PNG"))
    write(root / "tiny.png", encoded(face_image(8, 8), "PNG"))

    dataset = open_fresh(root, tmp_path, resolution=32)  # 'too small' below 16 px
    report = dataset.report

    assert (report.found, report.used) == (8, 5)
    assert report.skipped == {"corrupt": 1, "truncated": 1, "too small": 1}
    assert report.converted == {"cmyk": 1, "grayscale": 1, "rgba": 1, "16-bit": 1}
    assert report.skipped_examples == {
        "corrupt": ["corrupt.jpg"], "truncated": ["truncated.jpg"], "too small": ["tiny.png"]
    }
    summary = report.summary()
    assert summary.startswith("5 images from ") and "1 truncated skipped" in summary and "1 cmyk converted" in summary
    alpha, deep, _, gray, cmyk = as_rgb_rows(dataset.images)  # sorted: alpha, deep, good, gray, print
    assert (alpha[:16] == 255).all() and (alpha[16:] == (200, 10, 10)).all()  # transparent half composited on white
    assert (deep == 255).all()  # 16-bit white stays white, not clipped garbage
    assert (gray == 90).all()
    assert np.abs(cmyk.astype(int) - np.asarray(good).astype(int)).mean() < 12


def test_images_smaller_than_half_the_resolution_are_skipped_but_half_is_enough(tmp_path):
    root = tmp_path / "sizes"
    write(root / "half.png", encoded(face_image(16, 40), "PNG"))
    write(root / "under_half.png", encoded(face_image(15, 40), "PNG"))

    report = open_fresh(root, tmp_path, resolution=32).report

    assert report.used == 1 and report.skipped == {"too small": 1}


def test_exif_rotated_photo_is_stored_upright(tmp_path):
    tall = np.zeros((40, 20, 3), np.uint8)
    tall[:20] = 255  # white top half
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored rotated; viewers turn it 90 degrees clockwise
    write(tmp_path / "phone" / "photo.png", encoded(Image.fromarray(tall), "PNG", exif=exif))

    pixels = as_rgb_rows(open_fresh(tmp_path / "phone", tmp_path, resolution=20).images)[0]

    assert (pixels[:, -8:] == 255).all() and (pixels[:, :8] == 0).all()  # the white half now lies on the right


# -- errors a user can cause -----------------------------------------------------------------------------------
def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        open_fresh(tmp_path / "nowhere", tmp_path)


def test_folder_without_images_says_what_it_looked_for(tmp_path):
    write(tmp_path / "empty" / "readme.txt", b"hello")
    write(tmp_path / "empty" / "data.csv", b"a,b")
    with pytest.raises(DatasetError, match=r"Found 0 images among 2 files .*extensions looked for: \.jpg"):
        open_fresh(tmp_path / "empty", tmp_path)


def test_a_zip_that_is_not_a_zip_is_a_clear_error(tmp_path):
    fake = write(tmp_path / "faces.zip", b"PK\x03\x04 but then nothing sensible")
    with pytest.raises(DatasetError, match="not a readable zip file"):
        open_fresh(fake, tmp_path)


def test_corrupt_member_of_a_zip_is_skipped(tmp_path):
    archive_path = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("a.png", encoded(face_image(32, 32, 1), "PNG"))
        archive.writestr("b.png", encoded(face_image(32, 32, 2), "PNG"))
    raw = bytearray(archive_path.read_bytes())
    second = raw.rfind(b"IDAT")  # damage b.png's pixel data: its CRC check now fails
    raw[second + 10 : second + 30] = bytes(20)
    archive_path.write_bytes(bytes(raw))

    report = open_fresh(archive_path, tmp_path).report

    assert report.used == 1 and report.skipped == {"corrupt": 1}


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda lines: lines.__setitem__(0, "many"), r"line 1: expected the number of images"),
        (lambda lines: lines.__setitem__(0, "5"), r"line 1: says 5 images but the file lists 3"),
        (lambda lines: lines.__setitem__(3, lines[3] + " 1"), r"line 4: expected 41 fields .* found 42"),
        (lambda lines: lines.__setitem__(4, lines[4].replace("-1", "no", 1)), r"line 5: attributes must be 1 or -1"),
    ],
)
def test_malformed_celeba_attribute_file_names_the_line(tmp_path, edit, message):
    root = tmp_path / "celeba"
    rows = celeba_rows(3)
    for index, (file_name, _) in enumerate(rows):
        write(root / "img_align_celeba" / file_name, encoded(face_image(32, 32, index), "JPEG"))
    attribute_file = write_celeba(root, rows)
    lines = attribute_file.read_text().splitlines()
    edit(lines)
    attribute_file.write_text("\n".join(lines) + "\n")

    with pytest.raises(DatasetError, match=message):
        open_fresh(root, tmp_path)


def test_kaggle_csv_attribute_file_is_understood(tmp_path):
    root = tmp_path / "celeba"
    rows = celeba_rows(2)
    for index, (file_name, _) in enumerate(rows):
        write(root / "img_align_celeba" / "img_align_celeba" / file_name, encoded(face_image(32, 32, index), "JPEG"))
    csv = ["image_id," + ",".join(CELEBA_ATTRIBUTE_NAMES)] + [f"{f}," + ",".join(map(str, v)) for f, v in rows]
    write(root / "list_attr_celeba.csv", ("\n".join(csv) + "\n").encode())

    dataset = open_fresh(root, tmp_path)

    assert len(dataset) == 2 and dataset.attributes[1].tolist() == [float(v == 1) for v in rows[1][1]]


def test_no_usable_image_is_a_clear_error_with_the_reason(tmp_path):
    write(tmp_path / "bad" / "one.jpg", b"garbage")
    write(tmp_path / "bad" / "two.png", encoded(face_image(4, 4), "PNG"))
    with pytest.raises(DatasetError, match=r"No usable image .*1 corrupt, 1 too small.*under 8 px") as caught:
        open_fresh(tmp_path / "bad", tmp_path)
    assert "one.jpg" in str(caught.value)
    assert not list((tmp_path / "cache").rglob("*.npy*")), "a failed decode leaves no cache file behind"


def test_a_single_image_file_is_not_a_dataset(tmp_path):
    picture = write(tmp_path / "face.jpg", encoded(face_image(32, 32), "JPEG"))
    with pytest.raises(DatasetError, match="single file, not a dataset"):
        open_fresh(picture, tmp_path)


def test_damaged_parquet_file_is_a_clear_error(tmp_path):
    write(tmp_path / "table" / "train.parquet", b"PAR1 this is no parquet footer")
    with pytest.raises(DatasetError, match="cannot read parquet file train.parquet"):
        open_fresh(tmp_path / "table", tmp_path)


def test_unwritable_cache_folder_is_a_clear_error(tmp_path):
    write(tmp_path / "faces" / "a.png", encoded(face_image(16, 16), "PNG"))
    blocker = write(tmp_path / "not-a-folder", b"")
    with pytest.raises(DatasetError, match="Cannot create the dataset cache folder.*FACEGEN_CACHE"):
        open_dataset(str(tmp_path / "faces"), RESOLUTION, cache_dir=blocker / "cache", progress=False)


@pytest.mark.parametrize("source", ["demo:faces", "demo:digiface?n=0", "demo:digiface?n=lots", "hf:no-slash"])
def test_bad_source_names_are_clear_errors(tmp_path, source):
    with pytest.raises(FacegenError, match=r"demo:lfw|demo:digiface\?n=N|hf:OWNER/NAME"):
        open_fresh(source, tmp_path)


def test_resolution_out_of_range_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="Resolution 0"):
        open_dataset("demo:lfw", 0, cache_dir=tmp_path)


# -- the decode cache ------------------------------------------------------------------------------------------
def test_second_open_reads_no_image_file(tmp_path, monkeypatch):
    root = tmp_path / "faces"
    for index in range(3):
        write(root / f"{index}.jpg", encoded(face_image(30, 30, index), "JPEG"))
    write(root / "gray.png", encoded(Image.new("L", (20, 20), 7), "PNG"))
    first = open_fresh(root, tmp_path)

    def no_reading(*args, **kwargs):
        raise AssertionError("an image file was opened")

    monkeypatch.setattr(Image, "open", no_reading)
    second = open_fresh(root, tmp_path)

    assert torch.equal(first.images, second.images)
    assert second.report == first.report and second.report.converted == {"grayscale": 1}


def test_changed_file_invalidates_the_cache(tmp_path):
    root = tmp_path / "faces"
    picture = write(root / "a.png", encoded(Image.new("RGB", (16, 16), (10, 20, 30)), "PNG"))
    assert (as_rgb_rows(open_fresh(root, tmp_path).images)[0] == (10, 20, 30)).all()

    picture.write_bytes(encoded(Image.new("RGB", (16, 16), (200, 100, 0)), "PNG"))

    assert (as_rgb_rows(open_fresh(root, tmp_path).images)[0] == (200, 100, 0)).all()


def test_damaged_cache_is_decoded_again(tmp_path):
    root = tmp_path / "faces"
    write(root / "a.png", encoded(face_image(16, 16, 1), "PNG"))
    write(root / "b.png", encoded(face_image(16, 16, 2), "PNG"))
    expected = open_fresh(root, tmp_path).images.clone()
    (cached,) = (tmp_path / "cache").rglob("images.npy")
    cached.write_bytes(cached.read_bytes()[:200])  # e.g. a disk that filled up under another tool

    assert torch.equal(open_fresh(root, tmp_path).images, expected)


def test_cache_entry_holds_images_and_a_json_sidecar_only(tmp_path):
    write(tmp_path / "faces" / "a.png", encoded(face_image(16, 16), "PNG"))
    open_fresh(tmp_path / "faces", tmp_path)
    (entry,) = (tmp_path / "cache").iterdir()
    assert sorted(path.name for path in entry.iterdir()) == ["images.npy", "meta.json"]
    assert np.load(entry / "images.npy").shape == (1, 3, RESOLUTION, RESOLUTION)


def test_default_cache_dir_follows_facegen_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "somewhere"))
    assert data.default_cache_dir() == tmp_path / "somewhere" / "datasets"


# -- batches ---------------------------------------------------------------------------------------------------
def test_batch_stays_uint8_mirrors_where_asked_and_converts_to_unit_range(tmp_path):
    root = tmp_path / "faces"
    for index in range(4):
        write(root / f"{index}.png", encoded(face_image(16, 16, index), "PNG"))
    dataset = open_fresh(root, tmp_path)
    indices = torch.tensor([2, 0, 3])
    cached_before = dataset.images.clone()

    pixels, attributes = dataset.batch(indices, flip=torch.tensor([True, False, True]))
    images = data.to_unit_range(pixels)

    assert pixels.dtype == torch.uint8, "batches travel to the training device as uint8"
    plain = dataset.images[indices].float() / 127.5 - 1
    assert attributes is None
    assert torch.equal(images[1], plain[1])
    assert torch.equal(images[0], plain[0].flip(-1)) and torch.equal(images[2], plain[2].flip(-1))
    assert torch.equal(dataset.images, cached_before), "mirroring a batch must not change the cache"
    assert images.min() >= -1 and images.max() <= 1
    # uint8 -> [-1, 1] -> images_to_uint8 gives back the same pixels
    from facegen.generator import images_to_uint8

    assert np.array_equal(images_to_uint8(images[1:2])[0], as_rgb_rows(dataset.images[0:1])[0])


def test_dataset_pickles_as_its_cache_location(tmp_path):
    root = tmp_path / "faces"
    for index in range(3):
        write(root / f"{index}.png", encoded(face_image(16, 16, index), "PNG"))
    dataset = open_fresh(root, tmp_path)

    payload = pickle.dumps(dataset)
    restored = pickle.loads(payload)

    assert len(payload) < dataset.images.numel()  # a DataLoader worker gets a path, not the pixels
    assert torch.equal(restored.images, dataset.images) and restored.report == dataset.report


def test_dataset_works_with_a_dataloader(tmp_path):
    root = tmp_path / "faces"
    for index in range(5):
        write(root / f"{index}.png", encoded(face_image(16, 16, index), "PNG"))
    loader = torch.utils.data.DataLoader(open_fresh(root, tmp_path), batch_size=2)
    images, attributes = next(iter(loader))
    assert images.shape == (2, 3, RESOLUTION, RESOLUTION) and attributes.shape == (2, 0)


# -- Hugging Face ----------------------------------------------------------------------------------------------
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty Hugging Face cache with the Hub unreachable; `add_repo` puts a dataset snapshot into it."""
    import huggingface_hub.constants

    hub_cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def add_repo(repo_id: str, files: dict[str, bytes]) -> Path:
        storage = hub_cache / f"datasets--{repo_id.replace('/', '--')}"
        write(storage / "refs" / "main", COMMIT.encode())
        for name, content in files.items():
            write(storage / "snapshots" / COMMIT / name, content)
        return storage / "snapshots" / COMMIT

    return add_repo


def test_hf_dataset_of_image_files_from_the_cache(tmp_path, offline_hub):
    offline_hub("someone/faces", {f"train/{i}.png": encoded(face_image(20, 20, i), "PNG") for i in range(3)})

    dataset = open_fresh("hf:someone/faces", tmp_path)

    assert len(dataset) == 3 and dataset.report.source == f"hf:someone/faces@{COMMIT[:8]}"


def test_hf_dataset_of_parquet_files_with_an_image_column_and_celeba_attributes(tmp_path, offline_hub):
    import pyarrow as pa
    import pyarrow.parquet as pq

    images = [encoded(face_image(24, 24, i), "JPEG") for i in range(3)] + [b"not an image"]
    # hub copies of CelebA store attributes as booleans, 0/1 or -1/1 integers: mix booleans and -1/1 here
    attributes = {name: [i % 2 == 0 for i in range(4)] for name in CELEBA_ATTRIBUTE_NAMES[:20]}
    attributes |= {name: [1 if i < 2 else -1 for i in range(4)] for name in CELEBA_ATTRIBUTE_NAMES[20:]}
    table = pa.table(
        {
            "image": pa.array([{"bytes": b, "path": f"{i}.jpg"} for i, b in enumerate(images)]),
            "celeb_id": list(range(4)),
            **attributes,
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    offline_hub("someone/celeba", {"data/train-00000-of-00001.parquet": buffer.getvalue(), "README.md": b"# card"})

    dataset = open_fresh("hf:someone/celeba@main", tmp_path)

    assert (dataset.report.found, dataset.report.used, dataset.report.skipped) == (4, 3, {"corrupt": 1})
    assert dataset.attribute_names == CELEBA_ATTRIBUTE_NAMES
    assert dataset.attributes[:, 0].tolist() == [1.0, 0.0, 1.0]  # booleans
    assert dataset.attributes[:, 39].tolist() == [1.0, 1.0, 0.0]  # -1/1
    first = np.asarray(Image.open(io.BytesIO(images[0])).resize((16, 16), Image.LANCZOS))
    assert np.abs(as_rgb_rows(dataset.images)[0].astype(int) - first.astype(int)).mean() < 4


def test_hf_parquet_with_plain_binary_column_has_no_attributes(tmp_path, offline_hub):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pictures = pa.array([encoded(face_image(16, 16, i), "PNG") for i in range(2)], pa.binary())
    table = pa.table({"label": [0, 1], "img": pictures})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    offline_hub("someone/plain", {"data.parquet": buffer.getvalue()})

    dataset = open_fresh("hf:someone/plain", tmp_path)

    assert len(dataset) == 2 and dataset.attributes is None


def test_hf_repo_not_available_offline_says_how_to_get_it(tmp_path, offline_hub):
    expected = r"someone/absent is not \(completely\) in the local Hugging Face cache.*HF_TOKEN.*hf download"
    with pytest.raises(DatasetError, match=expected):
        open_fresh("hf:someone/absent", tmp_path)


def test_hf_repo_without_images_is_a_clear_error(tmp_path, offline_hub):
    offline_hub("someone/archives", {"README.md": b"# the images are in faces.tar.gz"})
    with pytest.raises(DatasetError, match="hf:someone/archives.* has no image files and no parquet files"):
        open_fresh("hf:someone/archives", tmp_path)


# -- demo sets -------------------------------------------------------------------------------------------------
def test_demo_lfw_is_the_hundred_faces_in_rgb(tmp_path):
    from skimage.data import lfw_subset

    dataset = open_fresh("demo:lfw", tmp_path, resolution=32)

    assert dataset.images.shape == (100, 3, 32, 32)
    assert dataset.report.converted == {"grayscale": 100} and dataset.report.skipped == {}
    red, green, blue = dataset.images[:, 0], dataset.images[:, 1], dataset.images[:, 2]
    assert torch.equal(red, green) and torch.equal(green, blue)
    # each image, shrunk back to 25x25, is the matching face crop, not one of the 100 background patches after them
    crops = np.rint(np.asarray(lfw_subset()) * 255)
    for index in (0, 99):
        shrunk = np.asarray(Image.fromarray(red[index].numpy()).resize((25, 25), Image.LANCZOS)).astype(float)
        errors = np.abs(crops - shrunk).mean(axis=(1, 2))
        assert errors.argmin() == index and errors[index] < 8


def test_demo_digiface_renders_seeds_with_the_pretrained_generator(tmp_path, monkeypatch):
    from facegen.generator import Generator, ModelInfo
    from facegen.models.dcgan import DCGANConfig, DCGANGenerator

    torch.manual_seed(0)
    config = DCGANConfig(z_dim=8, generator_channels=4, resolution=64)
    stand_in = Generator(DCGANGenerator(config), ModelInfo("digiface-dcgan64", "dcgan", 8, 64))
    monkeypatch.setattr(demo, "_model_loader", {"digiface-dcgan64": stand_in}.get)

    at_64 = open_dataset("demo:digiface?n=5", 64, cache_dir=tmp_path / "cache", progress=False)
    at_32 = open_dataset("demo:digiface?n=5", 32, cache_dir=tmp_path / "cache", progress=False)

    assert np.array_equal(as_rgb_rows(at_64.images), stand_in.sample(seeds=range(5)))
    assert at_32.images.shape == (5, 3, 32, 32) and at_64.report.summary() == "5 images from demo:digiface?n=5"

    reference = open_dataset("demo:digiface-reference?n=3", 64, cache_dir=tmp_path / "cache", progress=False)
    held_out_seeds = range(demo.DIGIFACE_REFERENCE_FIRST_SEED, demo.DIGIFACE_REFERENCE_FIRST_SEED + 3)
    assert np.array_equal(as_rgb_rows(reference.images), stand_in.sample(seeds=held_out_seeds))
    assert reference.report.source == "demo:digiface-reference?n=3"


def test_demo_cards_say_what_the_sets_are():
    assert set(DEMO_DATASETS) == {"lfw", "digiface", "digiface-reference"}
    assert "scikit-image" in DEMO_DATASETS["lfw"] and "25x25" in DEMO_DATASETS["lfw"]
    assert "synthetic" in DEMO_DATASETS["digiface"].lower() and "non-commercial" in DEMO_DATASETS["digiface"]


def test_hf_repo_on_an_offline_machine_says_the_machine_is_offline(tmp_path, monkeypatch):
    import socket

    import huggingface_hub.constants

    def no_name_server(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_name_server)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    expected = "someone/absent is not in the local Hugging Face cache, and this machine is offline"
    with pytest.raises(DatasetError, match=expected):
        open_fresh("hf:someone/absent", tmp_path)
