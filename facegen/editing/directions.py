"""Latent directions that turn into sliders, found three ways, and kept per model file.

- Closed form (SeFa, Shen & Zhou 2021): the top right-singular vectors of the style-affine weights of StyleGAN2/3,
  concatenated over all layers or a chosen range (each affine row scaled to unit length, as SeFa's released
  code does); for DCGAN, WGAN-GP, cDCGAN and ProGAN, of the first layer's weights on z. No sampling. Strength:
  the singular value.
- PCA of sampled latents (GANSpace, Härkönen et al. 2020): of w for StyleGAN; for the other models, of the first
  block's output ("z-side features"), each component carried back into z by linear regression. Strength: the
  component's standard deviation (in w for StyleGAN, in feature units otherwise).
- Labelled by the user: a linear boundary (L2-regularised logistic regression) between faces marked with and
  without an attribute, in w for StyleGAN (the face's ws averaged over layers) or z for the others; its held-out
  accuracy comes from stratified k-fold cross-validation. Strength: the distance between the two groups' means
  along the direction, i.e. the move that takes a typical face from one group to the other.

Every direction is a unit vector in w (StyleGAN) or z. They are cached per model under the facegen cache, keyed
by the weights' sha256 (`facegen.formats.directions`), and can be renamed, deleted, exported and imported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from facegen import hub
from facegen.editing.face import Face, MoveAlong, PackedArray
from facegen.editing.identity import model_identity
from facegen.editing.latent_layers import first_block_features, first_layer_matrix, style_affine_weights
from facegen.editing.layers import check_layers, format_layers
from facegen.editing.render import FaceRenderer
from facegen.errors import FacegenError
from facegen.formats import directions as direction_files
from facegen.generator import Generator

ProgressCallback = Callable[[int, int], None]  # (steps done, steps in all)
METHODS = ("sefa", "pca", "labelled")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,63}$")


@dataclass(frozen=True, eq=False)
class Direction:
    name: str
    vector: np.ndarray  # unit length, [w_dim] or [z_dim]
    space: str  # "w" or "z"
    method: str  # "sefa", "pca" or "labelled"
    strength: float
    layers: tuple[int, ...] | None = None  # the layers it was found on and applies to by default; None: all
    accuracy: float | None = None  # labelled directions: held-out accuracy
    description: str = ""

    def to_entry(self) -> dict:
        return {
            "name": self.name,
            "space": self.space,
            "method": self.method,
            "strength": self.strength,
            "layers": list(self.layers) if self.layers is not None else None,
            "accuracy": self.accuracy,
            "description": self.description,
        }

    @classmethod
    def from_entry(cls, entry: dict, vector: np.ndarray) -> Direction:
        layers = entry.get("layers")
        return cls(
            name=entry["name"],
            vector=np.asarray(vector, dtype=np.float32),
            space=entry["space"],
            method=entry["method"],
            strength=float(entry["strength"]),
            layers=tuple(layers) if layers is not None else None,
            accuracy=entry.get("accuracy"),
            description=entry.get("description", ""),
        )


def check_direction_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise FacegenError(
            f"Bad direction name {name!r}: use up to 64 letters, digits and _ . + -, starting with a letter or digit."
        )
    return name


def latent_space(generator: Generator) -> str:
    return "w" if generator.has_w_space else "z"


# -- closed form (SeFa) ----------------------------------------------------------------------------------------------


def sefa_directions(generator: Generator, layers: Sequence[int] | None = None, count: int = 20) -> list[Direction]:
    """The top `count` closed-form directions, from the style affines of `layers` (all: None) or the first layer."""
    network = generator.exportable_network
    if generator.has_w_space:
        chosen = set(range(generator.num_ws) if layers is None else check_layers(layers, generator.num_ws, "SeFa"))
        weights = [weight for w_index, weight in style_affine_weights(network) if w_index in chosen]
        if not weights:
            raise FacegenError(
                f"Layers {format_layers(chosen)} hold no style affine (ws[0] of StyleGAN3 drives the input transform); "
                "choose other layers."
            )
    else:
        _refuse_layers(generator, layers, "Closed-form directions")
        weights = [first_layer_matrix(network)]
    with torch.no_grad():
        # SeFa's released code scales every style channel's weight row to unit length before factorising.
        matrix = torch.cat([weight.detach().double().cpu() for weight in weights])
        matrix = matrix / matrix.norm(dim=1, keepdim=True).clamp_min(1e-12)
        # The right-singular vectors of A are the eigenvectors of AᵀA (latent_dim squared: far smaller than A).
        gram = matrix.t() @ matrix
        eigenvalues, eigenvectors = symmetric_eigh(gram)
    order = torch.argsort(eigenvalues, descending=True)[: min(count, len(matrix))]
    singular_values = eigenvalues[order].clamp_min(0).sqrt()
    right_vectors = eigenvectors[:, order].t()
    count = len(order)
    where = "first layer" if not generator.has_w_space else f"layers {format_layers(chosen)}"
    return [
        Direction(
            name=_numbered("sefa", layers, index),
            vector=_signed(right_vectors[index].numpy()),
            space=latent_space(generator),
            method="sefa",
            strength=float(singular_values[index]),
            layers=tuple(sorted(layers)) if layers is not None else None,
            description=f"SeFa component {index} of the {where} weights",
        )
        for index in range(count)
    ]


# -- PCA of sampled latents (GANSpace) -------------------------------------------------------------------------------

FEATURE_MEMORY_BYTES = 256 * 2**20  # samples kept in memory between passes below this; recomputed above it
EXACT_PCA_FEATURES = 2048  # up to this many features, the full covariance; above, a block power iteration
POWER_ITERATIONS = 2
SUBSPACE_OVERSAMPLING = 20


def pca_directions(
    generator: Generator,
    count: int = 20,
    samples: int = 20000,
    layers: Sequence[int] | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    batch_size: int = 1000,
) -> list[Direction]:
    """The top `count` principal directions of `samples` sampled ws (StyleGAN) or first-block features (others).

    `layers` (StyleGAN) only sets where the directions apply by default; PCA of w does not depend on layers.
    Up to EXACT_PCA_FEATURES features the full covariance is factorised; wider first blocks (DCGAN's 8192) get
    their principal subspace from a few block power iterations, so neither their samples nor their covariance
    has to be held in memory at once.
    """
    if samples < 2 * count:
        raise FacegenError(f"PCA of {samples} samples cannot give {count} directions; sample at least {2 * count}.")
    if generator.has_w_space and layers is not None:
        layers = check_layers(layers, generator.num_ws, "PCA")
    else:
        _refuse_layers(generator, layers, "PCA directions")
    batches = _SampleBatches(generator, samples, seed, batch_size)
    exact = batches.feature_count <= EXACT_PCA_FEATURES
    total_steps = (2 if exact else POWER_ITERATIONS + 2) * len(batches)
    done = 0

    def passes() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        nonlocal done
        for latent, features in batches:
            yield latent, features
            done += 1
            if progress is not None:
                progress(done, total_steps)

    feature_mean = latent_mean = None
    for latent, features in passes():
        feature_sum, latent_sum = features.double().sum(0), latent.double().sum(0)
        feature_mean = feature_sum if feature_mean is None else feature_mean + feature_sum
        latent_mean = latent_sum if latent_mean is None else latent_mean + latent_sum
    feature_mean, latent_mean = (feature_mean / samples).float(), (latent_mean / samples).float()
    basis = None  # None: the features' own axes (exact PCA); else an orthonormal [features, width] subspace
    if not exact:
        width = min(count + SUBSPACE_OVERSAMPLING, feature_mean.numel())
        start = torch.randn(
            feature_mean.numel(), width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
        )
        basis = torch.linalg.qr(start)[0]
        for _ in range(POWER_ITERATIONS):
            product = torch.zeros_like(basis)
            single = basis.float()  # the big products in float32, their sums in float64
            for _, features in passes():
                centred = features - feature_mean
                product += (centred.t() @ (centred @ single)).double()
            basis = torch.linalg.qr(product)[0]
    # Principal axes in the basis, and the regression of the latent on the coordinates along them.
    gram = cross = None
    for latent, features in passes():
        coordinates = features - feature_mean
        coordinates = coordinates if basis is None else coordinates @ basis.float()
        batch_gram = (coordinates.t() @ coordinates).double()
        batch_cross = (coordinates.t() @ (latent - latent_mean)).double()
        gram = batch_gram if gram is None else gram + batch_gram
        cross = batch_cross if cross is None else cross + batch_cross
    variances, rotation = symmetric_eigh(gram / samples)
    order = torch.argsort(variances, descending=True)[:count]
    variances, rotation = variances[order], rotation[:, order]
    # Coordinates along the principal axes are uncorrelated, so each regression coefficient stands alone. When the
    # features are the latent itself (w), this gives the principal axes back.
    latent_directions = (rotation.t() @ cross / samples) / variances[:, None]
    what = "ws" if generator.has_w_space else "first-block features"
    return [
        Direction(
            name=_numbered("pca", layers, index),
            vector=_signed(_unit(latent_directions[index].numpy())),
            space=latent_space(generator),
            method="pca",
            strength=float(math.sqrt(max(float(variances[index]), 0.0))),
            layers=layers,
            description=f"principal component {index} of {samples} sampled {what}",
        )
        for index in range(len(order))
    ]


class _SampleBatches:
    """(latent, features) batches of sampled faces, the same on every pass: ws for StyleGAN (latent = features),
    z and first-block features for the others. Kept in memory when they fit, else recomputed."""

    def __init__(self, generator: Generator, samples: int, seed: int, batch_size: int) -> None:
        self.generator, self.samples, self.seed, self.batch_size = generator, samples, seed, batch_size
        self.kept: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        first_latent, first_features = self._batch(0)
        self.feature_count = first_features.shape[1]
        per_sample = 4 * (first_latent.shape[1] + (0 if generator.has_w_space else first_features.shape[1]))
        if per_sample * samples <= FEATURE_MEMORY_BYTES:
            self.kept = [(first_latent, first_features)] + [self._batch(start) for start in self._starts()[1:]]

    def _starts(self) -> range:
        return range(0, self.samples, self.batch_size)

    def __len__(self) -> int:
        return len(self._starts())

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.kept is not None:
            return iter(self.kept)
        return (self._batch(start) for start in self._starts())

    @torch.inference_mode()
    def _batch(self, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = self.generator
        count = min(self.batch_size, self.samples - start)
        random = torch.Generator().manual_seed(self.seed * 1_000_003 + start)
        z = torch.randn(count, generator.z_dim, generator=random)
        labels = None
        if generator.c_dim and not generator.info.labels_are_attributes:
            classes = torch.randint(generator.c_dim, (count,), generator=random)
            labels = torch.nn.functional.one_hot(classes, generator.c_dim).float()
        if generator.has_w_space:
            w = generator.map_to_w(z, labels)[:, 0]
            return w, w
        features = first_block_features(generator.exportable_network, z, labels)
        return z, features.float()


# -- labelled by the user --------------------------------------------------------------------------------------------

MIN_LABELLED_FACES = 2
CROSS_VALIDATION_FOLDS = 5
L2_PENALTY = 1e-2


def fit_labelled_direction(
    generator: Generator,
    name: str,
    with_attribute: Sequence[Face],
    without_attribute: Sequence[Face],
    renderer: FaceRenderer | None = None,
) -> Direction:
    """A direction from faces the user marked as having an attribute and as not having it (10-20 each work well).

    The direction points from 'without' towards 'with'; its `accuracy` is the share of faces a boundary fitted
    without them classified right (stratified k-fold cross-validation, k = min(5, faces in the smaller group)).
    """
    check_direction_name(name)
    if len(with_attribute) < MIN_LABELLED_FACES or len(without_attribute) < MIN_LABELLED_FACES:
        raise FacegenError(
            f"Mark at least {MIN_LABELLED_FACES} faces with the attribute and {MIN_LABELLED_FACES} without it "
            f"(got {len(with_attribute)} and {len(without_attribute)}); 10-20 of each work well."
        )
    renderer = renderer or FaceRenderer(generator)
    points = np.stack([renderer.latent_point(face) for face in [*with_attribute, *without_attribute]]).astype(
        np.float64
    )
    targets = np.array([1.0] * len(with_attribute) + [0.0] * len(without_attribute))
    folds = min(CROSS_VALIDATION_FOLDS, len(with_attribute), len(without_attribute))
    fold_of = np.concatenate([np.arange(len(with_attribute)) % folds, np.arange(len(without_attribute)) % folds])
    correct = 0
    for fold in range(folds):
        train, held_out = fold_of != fold, fold_of == fold
        normal, offset = _logistic_regression(points[train], targets[train])
        predictions = (points[held_out] @ normal + offset) > 0
        correct += int((predictions == (targets[held_out] > 0.5)).sum())
    normal, _ = _logistic_regression(points, targets)
    vector = _unit(normal)
    projections = points @ vector
    separation = float(projections[targets > 0.5].mean() - projections[targets < 0.5].mean())
    return Direction(
        name=name,
        vector=vector.astype(np.float32),
        space=latent_space(generator),
        method="labelled",
        strength=separation,
        accuracy=correct / len(targets),
        description=f"boundary between {len(with_attribute)} faces with and {len(without_attribute)} without",
    )


def _logistic_regression(points: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, float]:
    """(normal, offset) of the L2-regularised logistic regression boundary, fitted by L-BFGS."""
    centre = points.mean(axis=0)
    x = torch.from_numpy(points - centre)
    y = torch.from_numpy(targets)
    normal = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    offset = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([normal, offset], max_iter=200, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = torch.nn.functional.binary_cross_entropy_with_logits(x @ normal + offset, y)
        value = value + 0.5 * L2_PENALTY * normal.square().sum()
        value.backward()
        return value

    with torch.enable_grad():
        optimizer.step(loss)
    normal_values = normal.detach().numpy()
    return normal_values, float(offset.detach()) - float(centre @ normal_values)


# -- using directions ------------------------------------------------------------------------------------------------


def move_along(
    direction: Direction,
    amount: float,
    layers: Sequence[int] | None = None,
    keep_fixed: Sequence[Direction] = (),
) -> MoveAlong:
    """The edit that moves a face `amount` along `direction`, on `layers` (default: the direction's own), with the
    `keep_fixed` directions projected out so the face does not move along them (InterFaceGAN's conditional
    manipulation: the edit vector made orthogonal to the span of the kept ones)."""
    vector = direction.vector.astype(np.float64)
    if keep_fixed:
        kept = np.stack([other.vector.astype(np.float64) for other in keep_fixed], axis=1)
        basis, _ = np.linalg.qr(kept)
        vector = vector - basis @ (basis.T @ vector)
        if np.linalg.norm(vector) < 1e-6:
            raise FacegenError(
                f"Direction {direction.name!r} lies within the directions kept fixed "
                f"({', '.join(other.name for other in keep_fixed)}); keep fewer fixed."
            )
    chosen = direction.layers if layers is None else tuple(sorted(set(layers)))
    return MoveAlong(
        direction=direction.name,
        amount=float(amount),
        vector=PackedArray.of(_unit(vector)),
        layers=chosen,
        keep_fixed=tuple(other.name for other in keep_fixed),
    )


# -- the per-model store ---------------------------------------------------------------------------------------------


def directions_folder(generator: Generator) -> Path:
    return hub.cache_root() / "directions" / model_identity(generator).sha256


def load_directions(generator: Generator) -> dict[str, Direction]:
    """Every cached direction of this model file, by name, in the order they were saved."""
    document, vectors = direction_files.read_cache(directions_folder(generator))
    if document is None:
        return {}
    return {entry["name"]: Direction.from_entry(entry, vectors[entry["name"]]) for entry in document["directions"]}


def find_direction(generator: Generator, name: str) -> Direction:
    directions = load_directions(generator)
    if name not in directions:
        if not directions:
            raise FacegenError(
                f"Unknown direction {name!r}: {generator.info.model_id} has no directions yet. Compute some with "
                f"`python -m facegen directions --model {generator.info.model_id} --method sefa`."
            )
        raise FacegenError(f"Unknown direction {name!r}. This model's directions: {', '.join(directions)}.")
    return directions[name]


def save_directions(generator: Generator, directions: Sequence[Direction]) -> None:
    """Add directions to the model's cache; one with the name of a cached direction replaces it."""
    stored = load_directions(generator)
    size = generator.w_dim if generator.has_w_space else generator.z_dim
    for direction in directions:
        check_direction_name(direction.name)
        if direction.space != latent_space(generator) or direction.vector.shape != (size,):
            raise FacegenError(
                f"Direction {direction.name!r} is a {direction.vector.size}-value {direction.space} vector; this "
                f"model's directions are {size}-value {latent_space(generator)} vectors."
            )
        stored[direction.name] = direction
    _write(generator, stored)


def rename_direction(generator: Generator, old_name: str, new_name: str) -> Direction:
    stored = load_directions(generator)
    direction = find_direction(generator, old_name)
    check_direction_name(new_name)
    if new_name in stored:
        raise FacegenError(f"There already is a direction named {new_name!r}; choose another name or delete it first.")
    renamed = replace(direction, name=new_name)
    _write(
        generator,
        {
            (new_name if name == old_name else name): (renamed if name == old_name else other)
            for name, other in stored.items()
        },
    )
    return renamed


def delete_direction(generator: Generator, name: str) -> None:
    find_direction(generator, name)
    _write(generator, {key: value for key, value in load_directions(generator).items() if key != name})


def export_directions(generator: Generator, path: str | Path, names: Sequence[str] | None = None) -> Path:
    """Write the named directions (all: None) to one small .safetensors file another user can import."""
    chosen = [find_direction(generator, name) for name in names] if names else list(load_directions(generator).values())
    if not chosen:
        raise FacegenError(f"{generator.info.model_id} has no directions to export yet; compute or import some first.")
    document, vectors = _document(generator, chosen)
    return direction_files.write_single_file(Path(path), document, vectors)


def import_directions(generator: Generator, path: str | Path) -> list[Direction]:
    """Add the directions of an exported file to this model's cache; the file must come from the same weights."""
    document, vectors = direction_files.read_single_file(Path(path))
    identity = model_identity(generator)
    if document.get("model_sha256") != identity.sha256:
        raise FacegenError(
            f"{path} holds directions of another model ({document.get('model')}, sha256 "
            f"{str(document.get('model_sha256'))[:12]}…), not of {identity.spec}. Import it on the model it came from."
        )
    imported = [Direction.from_entry(entry, vectors[entry["name"]]) for entry in document["directions"]]
    clashes = [direction.name for direction in imported if direction.name in load_directions(generator)]
    if clashes:
        raise FacegenError(
            f"This model already has directions named {', '.join(clashes)}; rename them before importing {path}."
        )
    save_directions(generator, imported)
    return imported


def _write(generator: Generator, directions: dict[str, Direction]) -> None:
    document, vectors = _document(generator, list(directions.values()))
    direction_files.write_cache(directions_folder(generator), document, vectors)


def _document(generator: Generator, directions: list[Direction]) -> tuple[dict, dict[str, np.ndarray]]:
    identity = model_identity(generator)
    document = direction_files.new_document(identity.spec, identity.sha256, [item.to_entry() for item in directions])
    return document, {item.name: item.vector for item in directions}


# -- helpers ---------------------------------------------------------------------------------------------------------


def symmetric_eigh(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues and eigenvectors of a small symmetric matrix, through NumPy's LAPACK: torch's threaded solver is
    slower at latent sizes when other work shares the cores, and narrowing torch's thread count for it would change
    the count of every thread the server starts meanwhile."""
    values, vectors = np.linalg.eigh(matrix.double().numpy())
    return torch.from_numpy(values), torch.from_numpy(vectors)


def _refuse_layers(generator: Generator, layers: Sequence[int] | None, what: str) -> None:
    if layers is not None:
        raise FacegenError(
            f"Model {generator.info.model_id} ({generator.info.family}) has no style layers; {what} take no "
            "layer range. Leave --layers unset."
        )


def _numbered(method: str, layers: Sequence[int] | None, index: int) -> str:
    span = "" if layers is None else "-L" + format_layers(layers).replace(",", "_")
    return f"{method}{span}-{index:02d}"


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def _signed(vector: np.ndarray) -> np.ndarray:
    """A unit vector with a fixed sign (its largest entry positive), so recomputing gives the same sliders."""
    vector = _unit(np.asarray(vector, dtype=np.float64))
    return (vector if vector[np.argmax(np.abs(vector))] >= 0 else -vector).astype(np.float32)
