"""Scale-out under `torchrun`: one process per device, DistributedDataParallel, rank 0 writing the run.

`torchrun --nproc_per_node N -m facegen train ...` sets RANK, WORLD_SIZE and LOCAL_RANK; without them training runs
in one process and every function here is a no-op. NCCL connects GPUs, gloo connects CPU processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from facegen.device import resolve_device


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_writer(self) -> bool:
        """Rank 0 writes logs, samples and checkpoints; the other ranks only compute."""
        return self.rank == 0


def from_environment() -> Distributed:
    if "WORLD_SIZE" not in os.environ:
        return Distributed()
    return Distributed(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))


def choose_device(requested: str, context: Distributed) -> torch.device:
    """'auto' takes this process's GPU when there is one, else the CPU."""
    if requested == "auto":
        return torch.device("cuda", context.local_rank) if torch.cuda.is_available() else torch.device("cpu")
    device = resolve_device(requested)
    if device.type == "cuda" and context.enabled:
        device = torch.device("cuda", context.local_rank)
    return device


FIRST_DECODE_TIMEOUT = timedelta(hours=2)


def start(context: Distributed, device: torch.device) -> None:
    if not context.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        "nccl" if device.type == "cuda" else "gloo",
        rank=context.rank,
        world_size=context.world_size,
        # Rank 0 decodes the dataset while the others wait at the first collective: NCCL's 10-minute default is
        # shorter than decoding CelebA.
        timeout=FIRST_DECODE_TIMEOUT,
    )


def stop(context: Distributed) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: Distributed) -> None:
    if context.enabled:
        dist.barrier()


def wrap(module: nn.Module, context: Distributed, device: torch.device, grows: bool = False) -> nn.Module:
    """DistributedDataParallel around `module`; a growing network leaves layers unused, which DDP must be told."""
    if not context.enabled:
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=grows)


def any_rank(flag: bool, context: Distributed, device: torch.device) -> bool:
    """True on every rank when `flag` is true on any: all ranks must agree to stop at the same step."""
    if not context.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def replica_difference(modules: list[nn.Module], context: Distributed, device: torch.device) -> float:
    """Largest difference of any parameter between any two processes' replicas (0.0 when they agree exactly)."""
    if not context.enabled:
        return 0.0
    flat = torch.cat([parameter.detach().flatten().float() for module in modules for parameter in module.parameters()]).to(device)
    highest, lowest = flat.clone(), flat.clone()
    dist.all_reduce(highest, op=dist.ReduceOp.MAX)
    dist.all_reduce(lowest, op=dist.ReduceOp.MIN)
    return float((highest - lowest).max())
