"""`WorldDataset`: the procedural street world streamed to training code, in memory."""
from __future__ import annotations

from typing import Iterator

import torch.utils.data

from gan.images import from_uint8
from pipeline.world.renderer import render, scene_record
from pipeline.config import HELD_OUT_SEED_START
from pipeline.world.scene import parse_size, sample_scene


class WorldDataset(torch.utils.data.IterableDataset):
    """Endless (or `length`-long) stream of rendered scenes as [3, H, W] tensors in [-1, 1].

    Each DataLoader worker of each DDP rank takes every `world_size * num_workers`-th
    seed, so no two ever render the same scene. Training streams stay below
    HELD_OUT_SEED_START; `held_out=True` streams evaluation scenes above it.
    With `with_record=True` items are `(tensor, record_dict)`.
    """

    def __init__(self, size=(64, 64), seed: int = 0, condition: str = "mixed", rank: int | None = None,
                 world_size: int | None = None, length: int | None = None, held_out: bool = False,
                 with_record: bool = False):
        super().__init__()
        if rank is None or world_size is None:  # default: this process's place in torch.distributed
            dist = torch.distributed
            on = dist.is_available() and dist.is_initialized()
            rank = (dist.get_rank() if on else 0) if rank is None else rank
            world_size = (dist.get_world_size() if on else 1) if world_size is None else world_size
        self.size = parse_size(size)
        self.start = (HELD_OUT_SEED_START if held_out else 0) + int(seed)
        if not held_out and length is not None and self.start + length > HELD_OUT_SEED_START:
            raise ValueError("training seeds must stay below HELD_OUT_SEED_START")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} not in [0, world_size={world_size})")
        self.condition = condition
        self.rank = rank
        self.world_size = world_size
        self.length = length
        self.held_out = held_out
        self.with_record = with_record

    def seeds(self, worker_id: int = 0, num_workers: int = 1) -> Iterator[int]:
        """The seeds this (rank, worker) renders, in order."""
        stride = self.world_size * num_workers
        offset = self.rank * num_workers + worker_id
        i = offset
        while self.length is None or i < self.length:
            seed = self.start + i
            if not self.held_out and seed >= HELD_OUT_SEED_START:
                return
            yield seed
            i += stride

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        for seed in self.seeds(wid, nw):
            params = sample_scene(seed, self.condition)
            r = render(params, self.size)
            x = from_uint8(r.image)
            yield (x, scene_record(params, r, self.size)) if self.with_record else x

    def __len__(self):
        if self.length is None:
            raise TypeError("an endless WorldDataset has no length; pass length=N")
        # Length of this rank's share: DataLoader uses it for progress only.
        return len(range(self.rank, self.length, self.world_size))
