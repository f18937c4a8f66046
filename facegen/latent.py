"""Seeds and latent-space paths."""

from __future__ import annotations

import random

from facegen.errors import FacegenError

MAX_SEED = 2**32 - 1  # numpy.random.RandomState accepts seeds in [0, 2**32)
MAX_SEEDS_PER_SPEC = 100_000


def parse_seeds(spec: str) -> list[int]:
    """'0-15', '1,7,42' or a mix such as '0-3,42' to a list of seeds, in the order given."""
    seeds: list[int] = []
    text = spec.replace(" ", "")
    if not text:
        raise FacegenError("No seeds given. Write seeds as a list or ranges, e.g. '0-15' or '1,7,42'.")
    for part in text.split(","):
        match = _parse_part(part, spec)
        seeds.extend(match)
        if len(seeds) > MAX_SEEDS_PER_SPEC:
            raise FacegenError(f"Seed list {spec!r} has more than {MAX_SEEDS_PER_SPEC} seeds; give a shorter range.")
    return seeds


def _parse_part(part: str, spec: str) -> range | list[int]:
    problem = (
        f"Malformed seed list {spec!r} at {part!r}. Write seeds as non-negative integers and ranges, "
        "e.g. '0-15', '1,7,42' or '0-3,42'."
    )
    low, dash, high = part.partition("-")
    if not low.isdigit() or (dash and not high.isdigit()):
        raise FacegenError(problem)
    first, last = int(low), int(high) if dash else int(low)
    if last < first:
        raise FacegenError(f"Seed range {part!r} runs backwards; write it as '{last}-{first}'.")
    if last > MAX_SEED:
        raise FacegenError(f"Seed {last} is too large; seeds go from 0 to {MAX_SEED}.")
    return range(first, last + 1) if dash else [first]


def random_seeds(count: int, rng: random.Random | None = None) -> list[int]:
    rng = rng or random.Random()
    return [rng.randrange(0, 100_000) for _ in range(count)]
