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
from collections.abc import Iterable

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
        if not p.requires_grad:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= world


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
    return math.fsum(float(p.double().sum()) for p in model.parameters())


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
