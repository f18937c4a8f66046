"""NVIDIA's TensorFlow ProGAN pickles (`karras2018iclr-celebahq-1024x1024.pkl`), read as data into facegen's ProGAN.

The release file is a pickle of the tuple (G, D, Gs), three `tfutil.Network` objects; Streamlit's condensed copy
holds Gs alone. A Network pickles as "create an empty `tfutil.Network`, then set its state", the state being a
dict: `version` (2), `name`, `static_kwargs` (the build function's settings), `build_module_src` (the source of
NVIDIA's `networks.py`, which TensorFlow's loader executes), `build_func_name` (`G_paper`) and `variables`, a
list of (name, numpy array).

facegen binds `tfutil.Network` to an inert record that accepts one state and nothing else, allows numpy's array
globals and nothing more (the restricted unpickler of `nvidia_pickle`), keeps `build_module_src` as text it never
runs, and copies the variables of Gs into `facegen.models.progan`:

    4x4/Dense/weight [latent, C*16]     -> dense.weight [C*16, latent]        (transposed)
    4x4/Conv/weight  [3, 3, in, out]    -> conv.weight  [out, in, 3, 3]       (TF HWIO -> torch OIHW)
    RxR/Conv0/weight                    -> blocks.L-1.conv0.weight            (up-sample, then conv)
    RxR/Conv0_up/weight [3, 3, out, in] -> blocks.L-1.conv0.weight            (fused variant, see below)
    RxR/Conv1/weight                    -> blocks.L-1.conv1.weight
    ToRGB_lod{K}/weight [1, 1, in, 3]   -> to_rgb.L.weight, K = levels - 1 - L
    lod []                              -> lod

(L is the level of resolution R: 4x4 is level 0.) Biases map beside their weights. The fused `Conv0_up` is a
stride-2 transposed convolution whose 4x4 kernel is the 3x3 kernel padded and summed over its four one-pixel
shifts; that equals nearest-neighbour up-sampling followed by a 3x3 convolution with the kernel flipped in space,
so both variants load into the same module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegen.errors import CorruptFileError, FacegenError, UnsafePickleError
from facegen.formats.nvidia_pickle import NETWORK_GLOBALS, DataBuilder, RestrictedUnpickler, printable
from facegen.generator import Generator, ModelInfo
from facegen.models.progan import ProGANConfig, ProGANGenerator

TF_NETWORK_VERSION = 2  # tfutil.Network.__getstate__ of progressive_growing_of_gans
GENERATOR_FUNCTION = "G_paper"
# G_paper settings facegen's ProGAN implements; a network built with other values would render differently
REQUIRED_SETTINGS = {"use_wscale": True, "use_pixelnorm": True, "use_leakyrelu": True, "label_size": 0}
PIXEL_NORM_EPSILON = 1e-8
RESOLUTION_SCOPE = re.compile(r"(\d+)x\1/")


@dataclass(frozen=True)
class TFNetwork:
    """One `tfutil.Network` of the file, as data."""

    name: str  # 'G', 'D' or 'Gs'
    settings: dict[str, Any]  # static_kwargs: the build function's arguments
    function: str  # build_func_name, e.g. 'G_paper'
    variables: dict[str, np.ndarray]  # e.g. '4x4/Dense/weight' -> float32 array in TensorFlow's layout


class _TFNetworkRecord:
    """Stands for `tfutil.Network`: created empty by the pickle, then given its state exactly once."""

    state: Any = None

    def __setstate__(self, state: Any) -> None:
        if self.state is not None:
            raise CorruptFileError("it sets the state of one network twice.")
        self.state = state


# The network class, numpy's array and number globals and the byte helpers of old pickle protocols; nothing else.
TF_PROGAN_GLOBALS: dict[tuple[str, str], Any] = {
    ("tfutil", "Network"): _TFNetworkRecord,
    **{
        key: value
        for key, value in NETWORK_GLOBALS.items()
        if key[0].split(".")[0] in ("numpy", "_codecs", "builtins", "__builtin__")
    },
}


class _ProGANUnpickler(RestrictedUnpickler):
    def __init__(self, file: Any) -> None:
        super().__init__(file, TF_PROGAN_GLOBALS)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in TF_PROGAN_GLOBALS:
            return TF_PROGAN_GLOBALS[(module, name)]
        raise UnsafePickleError(
            f"it refers to {printable(f'{module}.{name}', quote=False)}, which is not part of a ProGAN network's "
            "weights; facegen refuses to run code from pickles. Use NVIDIA's release file."
        )


def read_tf_networks(path: str | Path) -> dict[str, TFNetwork]:
    """Every network in a ProGAN pickle, by name ('G', 'D', 'Gs'), as plain data: settings and numpy variables.

    Runs no code from the file; `build_module_src` is dropped unread.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise CorruptFileError(f"{path.name} is empty (0 bytes). Fetch or copy it again.")
    try:
        with open(path, "rb") as handle:
            loaded = _ProGANUnpickler(handle).load()
        records = loaded if isinstance(loaded, tuple) else (loaded,)
        if not records or not all(isinstance(record, _TFNetworkRecord) for record in records):
            raise CorruptFileError("it holds no tfutil.Network objects, so it is not a TensorFlow ProGAN pickle.")
        networks = [_network_data(DataBuilder().value(record.state)) for record in records]
    except FacegenError as error:
        raise type(error)(f"{path.name}: {error}") from None
    except EOFError:
        raise CorruptFileError(f"{path.name} ends early: it is truncated. Fetch or copy it again.") from None
    except Exception as error:  # any failure parsing an untrusted file is the file's fault, not a bug
        detail = printable(f"{type(error).__name__}: {error}", quote=False, limit=160)
        raise CorruptFileError(
            f"{path.name} is damaged or is not a TensorFlow ProGAN pickle ({detail}). Fetch it again."
        ) from None
    return {network.name: network for network in networks}


def _network_data(state: Any) -> TFNetwork:
    if not isinstance(state, dict) or state.get("version") != TF_NETWORK_VERSION:
        version = state.get("version") if isinstance(state, dict) else None
        raise CorruptFileError(
            f"it holds a tfutil.Network of state version {printable(version)}; facegen reads ProGAN's version "
            f"{TF_NETWORK_VERSION} (StyleGAN's TensorFlow pickles are another format)."
        )
    name, settings, function, variables = (
        state.get(key) for key in ("name", "static_kwargs", "build_func_name", "variables")
    )
    if not (isinstance(name, str) and isinstance(settings, dict) and isinstance(function, str)):
        raise CorruptFileError("its network state lacks a name, settings or build function name.")
    if not isinstance(variables, list) or not all(
        isinstance(item, tuple)
        and len(item) == 2
        and isinstance(item[0], str)
        and isinstance(item[1], (np.ndarray, float))
        for item in variables
    ):
        raise CorruptFileError(f"the variables of network {name!r} are not (name, array) pairs.")
    return TFNetwork(name, settings, function, {key: np.asarray(value, dtype=np.float32) for key, value in variables})


def generator_network(networks: dict[str, TFNetwork]) -> TFNetwork:
    """Gs (the averaged generator NVIDIA samples from), else the only network in the file."""
    network = networks.get("Gs") or (next(iter(networks.values())) if len(networks) == 1 else None)
    if network is None:
        raise CorruptFileError(f"it holds networks {sorted(networks)} but no Gs generator.")
    if not network.function.endswith(GENERATOR_FUNCTION):
        raise CorruptFileError(
            f"its generator was built by {network.function!r}; facegen reads ProGAN's {GENERATOR_FUNCTION}."
        )
    for setting, required in REQUIRED_SETTINGS.items():
        if network.settings.get(setting, required) != required:
            raise CorruptFileError(
                f"its generator was built with {setting}={network.settings[setting]!r}; facegen's ProGAN "
                f"implements the paper's {setting}={required!r}."
            )
    if network.settings.get("pixelnorm_epsilon", PIXEL_NORM_EPSILON) != PIXEL_NORM_EPSILON:
        raise CorruptFileError("its generator uses another pixel-norm epsilon than the paper's 1e-8.")
    return network


def progan_config_for(
    level_channels: list[int], z_dim: int, image_channels: int, config_class: type = ProGANConfig, **settings: Any
) -> ProGANConfig:
    """The ProGAN config whose feature counts per level (4x4 first) are `level_channels`.

    facegen's ProGAN gives level L min(fmap_base / 2^(L+1), fmap_max) features, NVIDIA's formula; a network whose
    counts follow another rule does not fit it.
    """
    fmap_max = max(level_channels)
    below_max = [level for level, channels in enumerate(level_channels) if channels < fmap_max]
    if below_max:
        fmap_base = level_channels[below_max[0]] * 2 ** (below_max[0] + 1)
    else:
        fmap_base = fmap_max * 2 ** len(level_channels)
    config = config_class(
        z_dim=z_dim,
        resolution=4 * 2 ** (len(level_channels) - 1),
        fmap_base=fmap_base,
        fmap_max=fmap_max,
        image_channels=image_channels,
        **settings,
    )
    if [config.level_features(level) for level in range(len(level_channels))] != level_channels:
        raise CorruptFileError(
            f"its feature counts per resolution {level_channels} do not follow ProGAN's min(fmap_base / 2^stage, "
            "fmap_max) rule, which facegen's ProGAN is built on."
        )
    return config


def convert_tf_progan(network: TFNetwork) -> tuple[ProGANConfig, dict[str, torch.Tensor]]:
    """G_paper's variables -> (config, state dict) for `facegen.models.progan`."""
    variables = dict(network.variables)
    resolutions = sorted({int(match.group(1)) for name in variables if (match := RESOLUTION_SCOPE.match(name))})
    if not resolutions or resolutions != [4 * 2**level for level in range(len(resolutions))]:
        raise CorruptFileError(f"its variables do not form resolutions 4x4, 8x8, ...: found {resolutions}.")
    levels = len(resolutions)

    def take(name: str) -> np.ndarray:
        try:
            return variables.pop(name)
        except KeyError:
            raise CorruptFileError(f"it has no variable {name!r}; it is not a complete ProGAN generator.") from None

    def convolution(name: str) -> np.ndarray:
        return take(name).transpose(3, 2, 0, 1)  # TF [h, w, in, out] -> torch [out, in, h, w]

    dense = take("4x4/Dense/weight")
    state = {
        "lod": np.asarray(take("lod"), dtype=np.float32).reshape(()),
        "dense.weight": dense.T,
        "dense.bias": take("4x4/Dense/bias"),
        "conv.weight": convolution("4x4/Conv/weight"),
        "conv.bias": take("4x4/Conv/bias"),
    }
    fused = f"{resolutions[1]}x{resolutions[1]}/Conv0_up/weight" in variables if levels > 1 else False
    for level, resolution in enumerate(resolutions[1:], start=1):
        scope, block = f"{resolution}x{resolution}", f"blocks.{level - 1}"
        if fused:
            # transposed conv of the shift-summed kernel == up-sample then conv with the spatially flipped kernel
            state[f"{block}.conv0.weight"] = np.flip(take(f"{scope}/Conv0_up/weight"), (0, 1)).transpose(2, 3, 0, 1)
            state[f"{block}.conv0.bias"] = take(f"{scope}/Conv0_up/bias")
        else:
            state[f"{block}.conv0.weight"] = convolution(f"{scope}/Conv0/weight")
            state[f"{block}.conv0.bias"] = take(f"{scope}/Conv0/bias")
        state[f"{block}.conv1.weight"] = convolution(f"{scope}/Conv1/weight")
        state[f"{block}.conv1.bias"] = take(f"{scope}/Conv1/bias")
    for level in range(levels):
        state[f"to_rgb.{level}.weight"] = convolution(f"ToRGB_lod{levels - 1 - level}/weight")
        state[f"to_rgb.{level}.bias"] = take(f"ToRGB_lod{levels - 1 - level}/bias")
    if variables:
        raise CorruptFileError(f"it has variables facegen's ProGAN has no place for: {sorted(variables)[:5]}.")
    level_channels = [dense.shape[1] // 16]
    level_channels += [state[f"blocks.{level}.conv1.weight"].shape[0] for level in range(levels - 1)]
    config = progan_config_for(
        level_channels,
        z_dim=dense.shape[0],
        image_channels=state["to_rgb.0.weight"].shape[0],
        normalize_latents=bool(network.settings.get("normalize_latents", True)),
    )
    return config, {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state.items()}


def progan_generator(
    network: ProGANGenerator,
    state: dict[str, torch.Tensor],
    path: Path,
    model_id: str | None,
    device: str,
    description: str,
) -> Generator:
    """Load `state` into `network` and wrap it as a Generator rendering at the network's current lod."""
    lod = float(state["lod"])
    if not 0 <= lod <= network.num_levels - 1:
        raise CorruptFileError(f"{path.name} has lod {lod}, outside this network's 0..{network.num_levels - 1}.")
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:
        detail = printable(" ".join(str(error).split()), quote=False, limit=300)
        raise CorruptFileError(f"{path.name} does not fit facegen's ProGAN: {detail}") from None
    info = ModelInfo(
        model_id=model_id or path.stem,
        family="progan",
        z_dim=network.config.z_dim,
        resolution=network.current_resolution,
        description=description,
        extra={"lod": lod, "final_resolution": network.config.resolution},
    )
    return Generator(network, info, device)


def load_tf_progan_generator(
    path: str | Path, model_id: str | None = None, device: str = "cpu"
) -> Generator:
    """A TensorFlow ProGAN pickle's Gs as a facegen Generator, running facegen's own code."""
    path = Path(path)
    networks = read_tf_networks(path)
    try:
        network = generator_network(networks)
        config, state = convert_tf_progan(network)
    except CorruptFileError as error:
        raise CorruptFileError(f"{path.name}: {error}") from None
    description = f"NVIDIA ProGAN ({network.name} of the TensorFlow release) from {path.name}"
    return progan_generator(ProGANGenerator(config), state, path, model_id, device, description)
