"""Data parallelism across processes started by `torchrun` (gloo on CPU, NCCL on GPU).

Each rank rolls out its own problems against the service and computes its own losses;
after every backward the gradients are averaged over ranks, so every rank takes the same
optimiser step and the weights stay identical. Ranks may hold different numbers of turns:
the number of minibatches per epoch is agreed on first (the maximum), and a rank with
fewer contributes zero gradients to the extra rounds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import distributed as dist


def setup() -> tuple[int, int]:
    """(rank, world size); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        cuda = torch.cuda.is_available()
        dist.init_process_group("nccl" if cuda else "gloo")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return (dist.get_rank() if world > 1 else 0), world


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def agreed_max(n: int, device: torch.device) -> int:
    if world_size() == 1:
        return n
    t = torch.tensor([n], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def average_grads(params: Iterable[torch.nn.Parameter]) -> None:
    world = world_size()
    if world == 1:
        return
    for p in params:
        if not p.requires_grad or hasattr(p, "to_local"):  # fsdp reduced these already
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= world


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The transformer's block list (the largest ModuleList: `model.layers`, `h`, ...)."""
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    return max(lists, key=lambda m: sum(p.numel() for p in m.parameters()))


def shard(model: torch.nn.Module) -> None:
    """FSDP (fully_shard): parameters, gradients and optimiser state split over ranks,
    each block its own unit. The root (embeddings, output head) stays gathered after its
    forward, because log-probs run the output head outside the model's forward."""
    from torch.distributed.fsdp import fully_shard

    for layer in decoder_layers(model):
        fully_shard(layer)
    fully_shard(model, reshard_after_forward=False)


@contextmanager
def gathered(models: Iterable[torch.nn.Module | None]) -> Iterator[None]:
    """FSDP: whole weights for a phase without gradients (rollouts, old log-probs), so
    that its forward passes need no collectives: ranks may then run different numbers
    of them (generation lengths, turn counts). No-op for unsharded models."""
    from torch.distributed.fsdp import FSDPModule

    roots: list[Any] = [m for m in models if isinstance(m, FSDPModule)]
    units: list[Any] = [u for m in roots for u in m.modules() if isinstance(u, FSDPModule)]
    for root in roots:
        root.set_reshard_after_forward(False)
    for unit in units:
        unit.unshard()
    try:
        yield
    finally:
        for unit in units:
            unit.reshard()
        for root in roots:  # as shard() left them: blocks reshard, the root stays gathered
            root.set_reshard_after_forward(True)
            root.set_reshard_after_forward(False, recurse=False)


def full_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole (unsharded) state dict on CPU; every rank must call this."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state: Any = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                                      cpu_offload=True))
    return dict(state)


def local_numel(model: torch.nn.Module) -> int:
    """Parameter elements this rank holds (all of them unless sharded)."""
    return sum(local(p).numel() for p in model.parameters())


def local(t: torch.Tensor) -> torch.Tensor:
    """A sharded tensor's own shard (a plain tensor as it is)."""
    return t.to_local() if hasattr(t, "to_local") else t


def whole(t: torch.Tensor) -> torch.Tensor:
    """A sharded tensor gathered (collective); a plain tensor as it is."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def mean_metrics(row: dict[str, float], device: torch.device) -> dict[str, float]:
    """The average of each metric over ranks (every rank must call this)."""
    if world_size() == 1:
        return row
    keys = sorted(row)
    t = torch.tensor([float(row[k]) for k in keys], device=device, dtype=torch.float64)
    dist.all_reduce(t)
    return {k: (float(v) / world_size() if k != "step" else row[k])
            for k, v in zip(keys, t.tolist(), strict=True)}


def checksum(model: torch.nn.Module) -> float:
    """A weight fingerprint, to show that the ranks stayed in sync."""
    return math.fsum(float(whole(p).double().sum()) for p in model.parameters())


def gather_floats(x: float, device: torch.device) -> list[float]:
    if world_size() == 1:
        return [x]
    out = [torch.zeros(1, device=device, dtype=torch.float64) for _ in range(world_size())]
    dist.all_gather(out, torch.tensor([x], device=device, dtype=torch.float64))
    return [float(t.item()) for t in out]


def finish() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
