"""Processes launched by torchrun: join the process group and pick this process's device."""
from __future__ import annotations

import os


def init_distributed(device: str | None = None) -> str:
    """Join torchrun's process group when WORLD_SIZE > 1 (NCCL on CUDA, gloo on CPUs) and
    return the device this process trains on: its LOCAL_RANK's GPU under torchrun with
    CUDA, else `device`, else cuda when present, else cpu. A single process joins nothing."""
    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        if cuda:
            return f"cuda:{torch.cuda.current_device()}"
    device = device or ("cuda" if cuda else "cpu")
    return f"cuda:{torch.cuda.current_device()}" if device == "cuda" else device
