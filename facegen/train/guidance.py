"""What a newcomer needs told while training: how many steps faces take, and when a run has stopped learning.

Both read only a run's settings and its metrics, so the Training page, the CLI and the README say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FirstFaces:
    face_shapes: int  # steps (batches of 64) until the sample grid shows face-shaped blobs
    faces: int  # steps until it shows recognisable, if rough, faces
    basis: str  # where the figures come from


# one row per architecture: keep in step with facegen.train.config.ARCHITECTURES
FIRST_FACES: dict[str, FirstFaces] = {
    "dcgan": FirstFaces(300, 1000, "measured on demo:digiface at 32 px; at 64 px (runs/starter) about twice as many"),
    "cdcgan": FirstFaces(300, 1000, "as dcgan, whose networks it shares (estimate)"),
    "wgan-gp": FirstFaces(1000, 4000, "estimate: 5 critic updates per step, slower per step and to start"),
    "progan": FirstFaces(2000, 6000, "estimate: faces come once growing reaches the final resolution"),
}

# D(x) and D(G(z)) are probabilities only for the BCE-trained networks; WGAN critics give unbounded scores
PROBABILITY_DISCRIMINATORS = ("dcgan", "cdcgan")
COLLAPSE_MIN_STEPS = 200  # how long D must win outright before it counts as collapsed, not as a passing swing
COLLAPSE_D_REAL, COLLAPSE_D_FAKE = 0.95, 0.05


def first_faces_hint(arch: str) -> str:
    """One sentence: how many steps until this architecture's sample grid shows faces."""
    expected = FIRST_FACES.get(arch)
    if expected is None:
        return ""
    return (
        f"A {arch} run shows face shapes after about {expected.face_shapes:,} steps of 64 images and rough faces "
        f"after about {expected.faces:,} ({expected.basis}); earlier grids are noise and blobs."
    )


def discriminator_collapse(arch: str, records: list[dict[str, Any]]) -> str | None:
    """A warning when the discriminator has won outright for a long stretch: D(x) near 1, D(G(z)) near 0.

    Then the generator's gradients vanish and its samples stop improving (grey noise, or one texture repeated).
    """
    if arch not in PROBABILITY_DISCRIMINATORS:
        return None
    logged = [record for record in records if "d_real" in record and "d_fake" in record]
    if not logged:
        return None
    last_step = logged[-1]["step"]
    recent = [record for record in logged if record["step"] > last_step - COLLAPSE_MIN_STEPS]
    if last_step < COLLAPSE_MIN_STEPS or len(recent) < 2:
        return None
    if all(record["d_real"] > COLLAPSE_D_REAL and record["d_fake"] < COLLAPSE_D_FAKE for record in recent):
        return (
            f"The discriminator has won outright for the last {COLLAPSE_MIN_STEPS} steps (D(x) ≈ 1, D(G(z)) ≈ 0): "
            "the generator gets almost no signal and its faces stop improving. Start again with a different seed, "
            "more training images, or fewer discriminator channels."
        )
    return None
