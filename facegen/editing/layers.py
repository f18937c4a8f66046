"""Style layers by number: ranges, lists and the coarse / middle / fine presets of NVIDIA's style_mixing.py."""

from __future__ import annotations

from collections.abc import Iterable

from facegen.errors import FacegenError

# NVIDIA's style_mixing.py rows: coarse styles 0-3 (pose, face shape), middle 4-7 (features), fine 8 to the end
# (colours, micro-structure); clipped to the model's num_ws.
LAYER_PRESETS: dict[str, range] = {"coarse": range(4), "middle": range(4, 8), "fine": range(8, 1 << 16)}


def parse_layers(text: str, num_ws: int, what: str = "Layers") -> tuple[int, ...]:
    """'2-5' (inclusive, 0-based), '0,2,5', a mix of both, or a preset name, as sorted layer numbers checked
    against a model with `num_ws` ws."""
    text = text.strip()
    if text in LAYER_PRESETS:
        return preset_layers(text, num_ws)
    layers: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise FacegenError(
                f"Bad layers {text!r}: write an inclusive 0-based range A-B (e.g. 0-3), a list (0,2,5) or a "
                f"preset ({', '.join(LAYER_PRESETS)})."
            ) from None
        if low < 0 or high < low:
            raise FacegenError(f"Bad layer range {part.strip()!r} in {text!r}: write A-B with 0 <= A <= B.")
        layers.update(range(low, high + 1))
    return check_layers(layers, num_ws, what)


def preset_layers(preset: str, num_ws: int) -> tuple[int, ...]:
    """A preset's layers on a model with `num_ws` ws."""
    if preset not in LAYER_PRESETS:
        raise FacegenError(f"Unknown layer preset {preset!r}. Choose one of: {', '.join(LAYER_PRESETS)}.")
    span = LAYER_PRESETS[preset]
    return tuple(range(span.start, min(span.stop, num_ws)))


def check_layers(layers: Iterable[int], num_ws: int, what: str) -> tuple[int, ...]:
    """`layers` as a sorted tuple, or one clear error when any lies beyond the model's ws."""
    layers = tuple(sorted({int(layer) for layer in layers}))
    if not layers:
        raise FacegenError(f"{what}: no layers chosen. Give at least one layer, e.g. 0-3.")
    beyond = [layer for layer in layers if not 0 <= layer < num_ws]
    if beyond:
        raise FacegenError(
            f"{what}: layer {beyond[0]} is beyond this model's {num_ws} ws; choose layers in 0-{num_ws - 1}."
        )
    return layers


def format_layers(layers: Iterable[int]) -> str:
    """Sorted layers written compactly, runs as ranges: (0, 1, 2, 3, 8) -> '0-3,8'."""
    parts: list[str] = []
    ordered = sorted(set(layers))
    start = previous = None
    for layer in ordered + [None]:
        if start is not None and (layer is None or layer != previous + 1):
            parts.append(str(start) if start == previous else f"{start}-{previous}")
            start = None
        if layer is not None and start is None:
            start = layer
        previous = layer
    return ",".join(parts)
