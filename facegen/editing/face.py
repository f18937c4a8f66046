"""A face is a recipe: the model it comes from, where its latent comes from, its labels and truncation, and an
ordered list of edits. Rendering a recipe on the same weights gives the same pixels, so the recipe travels with the
image (the PNG's `facegen` text chunk) and brings the face back.

JSON form (`Face.to_json`), version 1:

    {"format": "facegen-face", "version": 1,
     "model": "stylegan2-ffhq-256", "model_sha256": "…",
     "latent": {"seed": 42}                                   a seed, drawn as NVIDIA's gen_images.py draws it,
            or {"space": "z" | "w" | "w+", "shape": [...], "float32_base64": "…"}   a stored array, inline,
     "labels": null | class index | [one value per label],
     "truncation_psi": 0.7, "truncation_cutoff": null | K, "noise_mode": "const",
     "edits": [{"kind": "mix", "layers": [0, 1, 2, 3], "seed": 11}, ...]}

Stored arrays are inline base64 (little-endian float32) rather than files beside the JSON, so a PNG alone
restores its face: a 1024 px StyleGAN's w+ (18 x 512) adds about 49 kB to the PNG. A stored w or w+ is
untruncated (as the mapping network outputs it); the face's psi and cutoff apply to it as they do to a seed's w.

Edits, applied in order to the face's ws (StyleGAN) or z (other models):
- `StyleMix`: the ws of chosen layers come from another seed (mapped with this face's labels, psi and cutoff,
  as NVIDIA's style_mixing.py truncates both) or from another face (as that face renders);
- `MoveAlong`: add amount x a unit direction, to the chosen layers only (w+) or to all; the direction's vector
  travels in the recipe (with the directions it was made orthogonal to), so the face renders without the cache;
- `Camera` (StyleGAN3): translate and rotate as NVIDIA's gen_images.py --translate/--rotate;
- `SetClass` (conditional StyleGAN) and `SetAttribute` (attribute-conditioned DCGAN): labels, applied before
  mapping whatever their position in the list.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Literal

import numpy as np

from facegen.editing.identity import model_identity
from facegen.editing.layers import check_layers, format_layers
from facegen.errors import FacegenError
from facegen.generator import NOISE_MODES, Generator, check_noise_mode, check_truncation_psi
from facegen.images import read_recipe

FACE_FORMAT = "facegen-face"
FACE_VERSION = 1
LatentSpace = Literal["z", "w", "w+"]
LATENT_SPACES: tuple[str, ...] = ("z", "w", "w+")
JSON_FIELDS = frozenset(
    (
        "format",
        "version",
        "model",
        "model_sha256",
        "latent",
        "labels",
        "truncation_psi",
        "truncation_cutoff",
        "noise_mode",
        "edits",
    )
)


@dataclass(frozen=True)
class PackedArray:
    """A float32 array held as bytes, so recipes compare, hash and serialise exactly."""

    shape: tuple[int, ...]
    data: bytes

    @classmethod
    def of(cls, values: np.ndarray | Any) -> PackedArray:
        array = np.ascontiguousarray(np.asarray(values, dtype="<f4"))
        return cls(tuple(int(size) for size in array.shape), array.tobytes())

    def numpy(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype="<f4").reshape(self.shape).copy()

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "float32_base64": base64.b64encode(self.data).decode("ascii")}

    @classmethod
    def from_dict(cls, values: Any, where: str) -> PackedArray:
        if not isinstance(values, dict) or not isinstance(values.get("float32_base64"), str):
            raise FacegenError(f'{where} must hold "shape" and "float32_base64" (a stored float32 array).')
        shape = values.get("shape")
        if not isinstance(shape, list) or not all(isinstance(size, int) and size > 0 for size in shape):
            raise FacegenError(f"{where}: shape {shape!r} is not a list of positive whole numbers.")
        try:
            data = base64.b64decode(values["float32_base64"], validate=True)
        except ValueError:
            raise FacegenError(f"{where}: float32_base64 is not valid base64.") from None
        if len(data) != 4 * math.prod(shape):
            raise FacegenError(f"{where}: {len(data)} bytes do not hold a float32 array of shape {shape}.")
        array = cls(tuple(shape), data)
        if not np.isfinite(array.numpy()).all():
            raise FacegenError(f"{where} holds NaN or infinite values.")
        return array


@dataclass(frozen=True)
class StoredLatent:
    """A latent kept as numbers: z [z_dim], w [w_dim] or w+ [num_ws, w_dim] (untruncated)."""

    space: LatentSpace
    values: PackedArray

    @classmethod
    def of(cls, space: LatentSpace, values: np.ndarray | Any) -> StoredLatent:
        return cls(space, PackedArray.of(values))


# -- edits ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StyleMix:
    """NVIDIA's style mixing: `w[:, layers] = w_other[:, layers]`; the other is a seed or a face."""

    kind: ClassVar[str] = "mix"
    layers: tuple[int, ...]
    seed: int | None = None
    face: Face | None = None


@dataclass(frozen=True)
class MoveAlong:
    """Move `amount` along a unit direction, on `layers` only (w+) or on all (None)."""

    kind: ClassVar[str] = "direction"
    direction: str
    amount: float
    vector: PackedArray  # the unit vector used, already orthogonal to `keep_fixed`
    layers: tuple[int, ...] | None = None
    keep_fixed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Camera:
    """StyleGAN3's input transform as gen_images.py sets it: translate (x, y) and rotate (degrees)."""

    kind: ClassVar[str] = "camera"
    translate: tuple[float, float] = (0.0, 0.0)
    rotate: float = 0.0

    def input_transform(self) -> np.ndarray:
        """The inverse of gen_images.py's make_transform(translate, rotate), in float64 as NVIDIA computes it."""
        radians = self.rotate / 360.0 * math.pi * 2
        sine, cosine = math.sin(radians), math.cos(radians)
        camera = np.array([[cosine, sine, self.translate[0]], [-sine, cosine, self.translate[1]], [0.0, 0.0, 1.0]])
        return np.linalg.inv(camera)


@dataclass(frozen=True)
class SetClass:
    """The class of a conditional StyleGAN."""

    kind: ClassVar[str] = "class"
    class_index: int


@dataclass(frozen=True)
class SetAttribute:
    """One attribute of an attribute-conditioned model (cDCGAN), by its name: 1 present, 0 absent."""

    kind: ClassVar[str] = "attribute"
    name: str
    value: float = 1.0


Edit = StyleMix | MoveAlong | Camera | SetClass | SetAttribute
EDIT_TYPES: dict[str, type] = {edit.kind: edit for edit in (StyleMix, MoveAlong, Camera, SetClass, SetAttribute)}


# -- the face ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Face:
    model: str  # the model spec it was made with (catalog id, file path or run:NAME@STEP)
    model_sha256: str
    seed: int | None = None
    latent: StoredLatent | None = None
    labels: int | tuple[float, ...] | None = None  # class index, or one value per label
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    noise_mode: str = "const"
    edits: tuple[Edit, ...] = field(default=())

    @classmethod
    def from_seed(
        cls,
        generator: Generator,
        seed: int,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        labels: int | tuple[float, ...] | None = None,
    ) -> Face:
        return cls._pinned(
            generator,
            seed=seed,
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
            noise_mode=noise_mode,
            labels=labels,
        )

    @classmethod
    def from_latent(
        cls,
        generator: Generator,
        space: LatentSpace,
        values: np.ndarray,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        labels: int | tuple[float, ...] | None = None,
    ) -> Face:
        return cls._pinned(
            generator,
            latent=StoredLatent.of(space, values),
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
            noise_mode=noise_mode,
            labels=labels,
        )

    @classmethod
    def _pinned(cls, generator: Generator, **values: Any) -> Face:
        identity = model_identity(generator)
        if isinstance(values.get("labels"), (list, np.ndarray)):
            values["labels"] = tuple(float(value) for value in values["labels"])
        face = cls(model=identity.spec, model_sha256=identity.sha256, **values)
        check_face(face, generator)
        return face

    def with_edits(self, *edits: Edit) -> Face:
        return dataclasses.replace(self, edits=self.edits + tuple(edits))

    def replace(self, **changes: Any) -> Face:
        return dataclasses.replace(self, **changes)

    # -- serialisation ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        latent = (
            {"seed": self.seed} if self.latent is None else {"space": self.latent.space, **self.latent.values.to_dict()}
        )
        return {
            "format": FACE_FORMAT,
            "version": FACE_VERSION,
            "model": self.model,
            "model_sha256": self.model_sha256,
            "latent": latent,
            "labels": list(self.labels) if isinstance(self.labels, tuple) else self.labels,
            "truncation_psi": self.truncation_psi,
            "truncation_cutoff": self.truncation_cutoff,
            "noise_mode": self.noise_mode,
            "edits": [edit_to_dict(edit) for edit in self.edits],
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "face recipe") -> Face:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise FacegenError(
                f"{source} is not valid JSON ({error}). Give a face recipe written by facegen."
            ) from None
        return cls.from_dict(values, source)

    @classmethod
    def from_dict(cls, values: Any, source: str = "face recipe") -> Face:
        if not isinstance(values, dict) or values.get("format") != FACE_FORMAT:
            raise FacegenError(f'{source} is not a facegen face recipe (no "format": "{FACE_FORMAT}").')
        if values.get("version") != FACE_VERSION:
            raise FacegenError(
                f"{source} is a version {values.get('version')} face recipe; this facegen reads version {FACE_VERSION}."
            )
        unknown = sorted(set(values) - JSON_FIELDS)
        if unknown:
            raise FacegenError(f"{source} has fields facegen does not know: {', '.join(unknown)}. Remove them.")
        reader = _FieldReader(values, source)
        seed, latent = _read_latent(values.get("latent"), source)
        edits = values.get("edits", [])
        if not isinstance(edits, list):
            raise FacegenError(f"{source}: edits must be a list.")
        return cls(
            model=reader.text("model"),
            model_sha256=reader.text("model_sha256"),
            seed=seed,
            latent=latent,
            labels=reader.labels("labels"),
            truncation_psi=reader.number("truncation_psi", 1.0),
            truncation_cutoff=reader.whole("truncation_cutoff", None, optional=True),
            noise_mode=reader.choice("noise_mode", NOISE_MODES, "const"),
            edits=tuple(edit_from_dict(edit, f"{source}: edit {index + 1}") for index, edit in enumerate(edits)),
        )

    @classmethod
    def from_png(cls, source: str | Path | BinaryIO, name: str | None = None) -> Face:
        """The face a facegen PNG carries: an edit's recipe, or a single-face sample's settings.

        `source` is a path or an open file (an upload), which errors call `name`."""
        shown = name or str(source)
        try:
            recipe = read_recipe(source, name)
        except FileNotFoundError:
            raise FacegenError(f"{shown} does not exist. Give a PNG saved by facegen.") from None
        except (OSError, ValueError, json.JSONDecodeError):
            raise FacegenError(
                f"{shown} is not a PNG with a readable facegen recipe. Give a PNG saved by facegen."
            ) from None
        if recipe is None:
            raise FacegenError(
                f"{shown} carries no facegen recipe: only PNGs saved by facegen (edit, sample, the app) restore a face."
            )
        if recipe.get("format") == FACE_FORMAT:
            return cls.from_dict(recipe, shown)
        return _face_from_sample_recipe(recipe, shown)


def _face_from_sample_recipe(recipe: dict, shown: str) -> Face:
    """`facegen sample` writes its request (model, seeds, psi, ...) into each PNG; a single-seed one is a face."""
    seeds = recipe.get("seeds")
    # facegen wrote the weights' sha256 as "file_sha256" before recipes took the Generator's identity
    model_sha256 = recipe.get("model_sha256") or recipe.get("file_sha256")
    if not isinstance(seeds, list) or not recipe.get("model") or not model_sha256:
        raise FacegenError(f"{shown} carries a facegen recipe that is not a face. Give a PNG of one face.")
    if len(seeds) != 1:
        raise FacegenError(
            f"{shown} is a grid of {len(seeds)} faces. Save single faces (sample --out DIR/) and give one of them."
        )
    labels = recipe.get("labels")
    return Face(
        model=recipe["model"],
        model_sha256=model_sha256,
        seed=int(seeds[0]),
        labels=tuple(labels) if isinstance(labels, list) else labels,
        truncation_psi=float(recipe.get("truncation_psi", 1.0)),
        truncation_cutoff=recipe.get("truncation_cutoff"),
        noise_mode=recipe.get("noise_mode", "const"),
    )


class _FieldReader:
    """Reads one recipe field at a time, with one clear error naming the field and what it must be."""

    def __init__(self, values: dict, where: str) -> None:
        self.values, self.where = values, where

    def _get(self, name: str, default: Any) -> Any:
        return self.values.get(name, default)

    def fail(self, name: str, expected: str) -> FacegenError:
        return FacegenError(f"{self.where}: {name} is {self.values.get(name)!r}; it must be {expected}.")

    def text(self, name: str) -> str:
        value = self._get(name, None)
        if not isinstance(value, str) or not value:
            raise self.fail(name, "a non-empty string")
        return value

    def number(self, name: str, default: float) -> float:
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(name, "a number")
        return float(value)

    def whole(self, name: str, default: int | None, optional: bool = False) -> int | None:
        value = self._get(name, default)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, "a whole number" + (" or null" if optional else ""))
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self._get(name, default)
        if value not in choices:
            raise self.fail(name, f"one of {', '.join(choices)}")
        return value

    def labels(self, name: str) -> int | tuple[float, ...] | None:
        value = self._get(name, None)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, list) and all(
            isinstance(item, (int, float)) and not isinstance(item, bool) for item in value
        ):
            return tuple(float(item) for item in value)
        raise self.fail(name, "null, a class index or a list of numbers")

    def layers(self, name: str, optional: bool = False) -> tuple[int, ...] | None:
        value = self._get(name, None)
        if value is None and optional:
            return None
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(item, int) and not isinstance(item, bool) for item in value)
        ):
            raise self.fail(name, "a non-empty list of layer numbers" + (" or null" if optional else ""))
        return tuple(value)


def _read_latent(values: Any, source: str) -> tuple[int | None, StoredLatent | None]:
    where = f"{source}: latent"
    if not isinstance(values, dict):
        raise FacegenError(f'{where} must be {{"seed": N}} or a stored array {{"space": "z"|"w"|"w+", ...}}.')
    if "seed" in values:
        seed = values["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise FacegenError(f"{where}: seed {seed!r} is not a whole number from 0 to 2^32 - 1.")
        return seed, None
    space = values.get("space")
    if space not in LATENT_SPACES:
        raise FacegenError(f"{where}: space {space!r} is not one of {', '.join(LATENT_SPACES)}.")
    return None, StoredLatent(space, PackedArray.from_dict(values, where))


def edit_to_dict(edit: Edit) -> dict:
    values: dict[str, Any] = {"kind": edit.kind}
    for item in dataclasses.fields(edit):
        value = getattr(edit, item.name)
        if isinstance(value, (PackedArray, Face)):
            value = value.to_dict()
        elif isinstance(value, tuple):
            value = list(value)
        values[item.name] = value
    return values


def edit_from_dict(values: Any, where: str) -> Edit:
    if not isinstance(values, dict) or values.get("kind") not in EDIT_TYPES:
        raise FacegenError(f"{where}: kind must be one of {', '.join(EDIT_TYPES)}.")
    edit_type = EDIT_TYPES[values["kind"]]
    known = {item.name for item in dataclasses.fields(edit_type)} | {"kind"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise FacegenError(f"{where} ({values['kind']}) has fields facegen does not know: {', '.join(unknown)}.")
    reader = _FieldReader(values, f"{where} ({values['kind']})")
    if edit_type is StyleMix:
        donor = values.get("face")
        seed = reader.whole("seed", None, optional=True)
        if (seed is None) == (donor is None):
            raise FacegenError(f"{reader.where}: give exactly one of seed and face, the face the styles come from.")
        face = None if donor is None else Face.from_dict(donor, f"{reader.where} face")
        return StyleMix(layers=reader.layers("layers"), seed=seed, face=face)
    if edit_type is MoveAlong:
        keep_fixed = values.get("keep_fixed", [])
        if not isinstance(keep_fixed, list) or not all(isinstance(name, str) for name in keep_fixed):
            raise reader.fail("keep_fixed", "a list of direction names")
        return MoveAlong(
            direction=reader.text("direction"),
            amount=reader.number("amount", 0.0),
            vector=PackedArray.from_dict(values.get("vector"), f"{reader.where} vector"),
            layers=reader.layers("layers", optional=True),
            keep_fixed=tuple(keep_fixed),
        )
    if edit_type is Camera:
        translate = values.get("translate", [0.0, 0.0])
        if (
            not isinstance(translate, list)
            or len(translate) != 2
            or not all(
                isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                for value in translate
            )
        ):
            raise reader.fail("translate", "two numbers [x, y]")
        return Camera(translate=(float(translate[0]), float(translate[1])), rotate=reader.number("rotate", 0.0))
    if edit_type is SetClass:
        return SetClass(class_index=reader.whole("class_index", None))
    return SetAttribute(name=reader.text("name"), value=reader.number("value", 1.0))


# -- checks against a model ----------------------------------------------------------------------------------------


def check_face(face: Face, generator: Generator, source: str = "The face") -> None:
    """Raise one clear FacegenError for the first thing in `face` that `generator` cannot render."""
    identity = model_identity(generator)
    if face.model_sha256 != identity.sha256:
        raise FacegenError(
            f"{source} was made with another model ({face.model}, sha256 {face.model_sha256[:12]}…), not "
            f"{identity.spec} (sha256 {identity.sha256[:12]}…). Load the model it was made with."
        )
    if (face.seed is None) == (face.latent is None):
        raise FacegenError(f"{source} needs exactly one latent source: a seed or a stored latent.")
    if face.latent is not None:
        _check_stored_latent(face.latent, generator, source)
    check_truncation_psi(face.truncation_psi)
    generator.check_truncation_cutoff(face.truncation_cutoff)
    check_noise_mode(face.noise_mode)
    generator.label_matrix(face_labels(face, generator), 1)
    if sum(isinstance(edit, Camera) for edit in face.edits) > 1:
        raise FacegenError(f"{source} has more than one camera edit; keep one (it sets the whole camera).")
    for edit in face.edits:
        _check_edit(edit, generator, source)


def _check_stored_latent(latent: StoredLatent, generator: Generator, source: str) -> None:
    if latent.space != "z":
        require_style_layers(generator, f"a stored {latent.space} latent")
    expected = {
        "z": (generator.z_dim,),
        "w": (generator.w_dim,),
        "w+": (generator.num_ws, generator.w_dim),
    }[latent.space]
    if latent.values.shape != expected:
        raise FacegenError(
            f"{source}'s stored {latent.space} has shape {list(latent.values.shape)}; this model needs {list(expected)}."
        )


def require_style_layers(generator: Generator, what: str) -> None:
    if not generator.has_w_space:
        raise FacegenError(
            f"Model {generator.info.model_id} ({generator.info.family}) has no style layers, so {what} does not "
            "apply; use a StyleGAN model."
        )


def _check_edit(edit: Edit, generator: Generator, source: str) -> None:
    if isinstance(edit, StyleMix):
        require_style_layers(generator, "style mixing")
        check_layers(edit.layers, generator.num_ws, "Style mixing")
        if edit.face is not None:
            check_face(edit.face, generator, f"{source}'s mixing face")
    elif isinstance(edit, MoveAlong):
        space, size = ("w", generator.w_dim) if generator.has_w_space else ("z", generator.z_dim)
        if edit.vector.shape != (size,):
            raise FacegenError(
                f"Direction {edit.direction!r} has {math.prod(edit.vector.shape)} values; this model's {space} has "
                f"{size}. Use a direction found on this model."
            )
        if edit.layers is not None:
            require_style_layers(generator, f"a layer range for direction {edit.direction!r}")
            check_layers(edit.layers, generator.num_ws, f"Direction {edit.direction!r}")
    elif isinstance(edit, Camera):
        if not generator.has_camera:
            raise FacegenError(
                f"Model {generator.info.model_id} ({generator.info.family}) has no camera; translate and rotate "
                "need a StyleGAN3 model."
            )
    elif isinstance(edit, SetClass):
        if generator.c_dim == 0 or generator.info.labels_are_attributes:
            raise FacegenError(f"Model {generator.info.model_id} has no classes; leave the class unset.")
    elif isinstance(edit, SetAttribute):
        attribute_index(generator, edit.name)


def attribute_index(generator: Generator, name: str) -> int:
    if not generator.info.labels_are_attributes:
        raise FacegenError(f"Model {generator.info.model_id} has no attributes to set; {name!r} does not apply.")
    names = generator.info.label_names
    if name not in names:
        raise FacegenError(f"Unknown attribute {name!r}. This model's attributes: {', '.join(names)}.")
    return names.index(name)


def face_labels(face: Face, generator: Generator) -> int | tuple[float, ...] | None:
    """The face's labels with its class and attribute edits applied, in order."""
    labels = face.labels
    for edit in face.edits:
        if isinstance(edit, SetClass):
            labels = edit.class_index
        elif isinstance(edit, SetAttribute):
            values = list(labels) if isinstance(labels, tuple) else [0.0] * generator.c_dim
            values[attribute_index(generator, edit.name)] = float(edit.value)
            labels = tuple(values)
    return labels


def describe_edit(edit: Edit) -> str:
    """One line a user reads: 'mix layers 0-3 from seed 11', 'direction sefa-00 +3.0 on 4-7', ..."""
    if isinstance(edit, StyleMix):
        donor = f"seed {edit.seed}" if edit.seed is not None else "another face"
        return f"mix layers {format_layers(edit.layers)} from {donor}"
    if isinstance(edit, MoveAlong):
        where = f" on layers {format_layers(edit.layers)}" if edit.layers else ""
        kept = f", keeping {', '.join(edit.keep_fixed)} fixed" if edit.keep_fixed else ""
        return f"direction {edit.direction} {edit.amount:+g}{where}{kept}"
    if isinstance(edit, Camera):
        return f"camera translate ({edit.translate[0]:g}, {edit.translate[1]:g}) rotate {edit.rotate:g}°"
    if isinstance(edit, SetClass):
        return f"class {edit.class_index}"
    return f"attribute {edit.name} = {edit.value:g}"
