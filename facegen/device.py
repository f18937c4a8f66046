"""Where and in which number format networks run: the one device rule and the one precision policy.

Device: `auto` (the best available: a CUDA GPU, else Apple's MPS, else the CPU), `cpu`, `cuda`, `cuda:N` or `mps`,
checked before anything loads so a wrong choice is one clear line, not a driver traceback.

Precision (`PRECISIONS`): what a Generator computes its images in.
- `fp32`: float32 everywhere, with TF32 off, so a GPU matches the CPU (and NVIDIA's fixtures) within float error.
- `bf16`: bfloat16 where the hardware computes it natively (CPUs with AVX512-BF16 or AMX, GPUs of compute
  capability 8 and later). bfloat16 has float32's range, so nothing overflows; networks keep their numerically
  fragile parts (mapping network, final conversion to pixels) in float32.
- `fp16`: float16 on a GPU, only in the StyleGAN blocks NVIDIA runs in float16 (`num_fp16_res`), where the
  convolution clamp and NVIDIA's pre-normalisation keep it in range.
- `auto`: NVIDIA's float16 blocks on CUDA for networks that have them, else bfloat16 where native, else float32.
An emulated format is refused with the way out instead of silently running slower than float32.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from facegen.errors import FacegenError

DEVICE_HELP = "auto (best available), cpu, cuda, cuda:N or mps (default auto)"
PRECISIONS: tuple[str, ...] = ("fp32", "auto", "bf16", "fp16")
DEFAULT_PRECISION = "fp32"  # recipes promise the same pixels for the same seed on every machine
PRECISION_HELP = (
    "auto (float16 in NVIDIA's float16 StyleGAN blocks on CUDA, else bfloat16 where the hardware computes it "
    "natively, else float32), fp32, bf16 or fp16 (default fp32: the same pixels on every machine)"
)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISION_NAMES = {dtype: name for name, dtype in DTYPES.items()}
# x86 flags of native bfloat16 arithmetic, as the Linux kernel names them in /proc/cpuinfo
NATIVE_BFLOAT16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


class DeviceError(FacegenError):
    """A device or precision this machine cannot run."""


def resolve_device(requested: str = "auto") -> torch.device:
    """The device `requested` names, checked against this machine; `auto` is the best one available."""
    text = (requested or "auto").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        return torch.device("mps") if torch.backends.mps.is_available() else torch.device("cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"Unknown device {requested!r}: use auto, cpu, cuda, cuda:N or mps.")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"CUDA was requested ({requested}) but this machine has no NVIDIA GPU/driver: use --device cpu or auto."
            )
        count = torch.cuda.device_count()
        index = 0 if device.index is None else device.index
        if index >= count:
            raise DeviceError(
                f"{requested} was requested but this machine has {count} CUDA GPU{'s' if count != 1 else ''} "
                f"(cuda:0 to cuda:{count - 1}): pick one of those, or --device auto."
            )
        return torch.device("cuda", index)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("MPS was requested but this machine has no Apple GPU: use --device cpu or auto.")
    return device


def available_devices() -> list[str]:
    """Every device this machine offers, best first (what the app's device picker lists)."""
    names = [f"cuda:{index}" for index in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if torch.backends.mps.is_available():
        names.append("mps")
    return [*names, "cpu"]


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where there is no /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    return frozenset(
        flag
        for line in text.splitlines()
        if line.startswith(("flags", "Features"))
        for flag in line.split(":", 1)[1].split()
    )


def has_native_bfloat16(device: torch.device) -> bool:
    """True where bfloat16 is computed in hardware; where it is emulated it is slower than float32.

    On CUDA this asks about the run's device, never counting emulation (torch's default does count it).
    """
    if device.type == "cuda":
        with torch.cuda.device(device):
            return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(cpu_flags() & NATIVE_BFLOAT16_CPU_FLAGS)
    return False


@runtime_checkable
class MixedPrecisionNetwork(Protocol):
    """A network that chooses per block what runs in a lower precision (the StyleGANs); others run under autocast."""

    def has_float16_blocks(self) -> bool:
        """True when the network marks blocks that NVIDIA runs in float16 on CUDA (num_fp16_res)."""

    def set_compute_dtype(self, dtype: torch.dtype) -> None:
        """Run the blocks that may in `dtype`; float32 everywhere for torch.float32."""


def check_precision(precision: str, device: torch.device) -> str:
    """`precision` if this device computes it natively; checked before a model loads, so a mistake costs nothing."""
    if precision not in PRECISIONS:
        raise DeviceError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
    if precision == "bf16" and not has_native_bfloat16(device):
        where = "this CPU (no AVX512-BF16 or AMX)" if device.type == "cpu" else f"{device}"
        raise DeviceError(
            f"bfloat16 was requested but {where} only emulates it, which is slower than float32: use --precision "
            "fp32 or auto."
        )
    if precision == "fp16" and device.type != "cuda":
        raise DeviceError(
            f"float16 was requested but it runs fast only on a CUDA GPU, and this run is on {device}: use "
            "--precision auto (bfloat16 where native) or fp32."
        )
    return precision


def choose_dtype(precision: str, device: torch.device, network: torch.nn.Module) -> torch.dtype:
    """The number format `precision` means for this network on this device; an emulated choice is refused."""
    check_precision(precision, device)
    has_fp16_blocks = isinstance(network, MixedPrecisionNetwork) and network.has_float16_blocks()
    if precision == "auto":
        if device.type == "cuda" and has_fp16_blocks:
            return torch.float16
        return torch.bfloat16 if has_native_bfloat16(device) else torch.float32
    if precision == "fp16" and not has_fp16_blocks:
        raise DeviceError(
            "float16 was requested but this network has no blocks NVIDIA runs in float16 (StyleGAN num_fp16_res): "
            "use --precision auto, bf16 or fp32."
        )
    return DTYPES[precision]


def apply_dtype(network: torch.nn.Module, dtype: torch.dtype) -> None:
    """Tell a mixed-precision network its compute dtype; other networks get it through `autocast`."""
    if isinstance(network, MixedPrecisionNetwork):
        network.set_compute_dtype(dtype)


def autocast(device: torch.device, network: torch.nn.Module, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Autocast for networks without their own per-block precision; nothing for float32 or StyleGANs."""
    if dtype == torch.float32 or isinstance(network, MixedPrecisionNetwork):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def use_exact_float32() -> None:
    """TF32 off: float32 matrix products and convolutions on Ampere and later GPUs really are float32.

    NVIDIA's calc_metrics.py turns TF32 off for the same reason: FID and fixture comparisons need float32.
    """
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def describe(device: torch.device) -> str:
    """A short name for people: 'cuda:0 (NVIDIA H100 80GB HBM3)', 'cpu (bfloat16 native)'."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({'bfloat16 native' if has_native_bfloat16(device) else 'float32'})"
    return str(device)
