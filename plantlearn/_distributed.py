"""Data-parallel training across processes with ``torch.distributed`` (launched by torchrun).

A user runs the usual script under ``torchrun --nproc_per_node=N script.py``; every process
calls ``PlantClassifier(...).fit(X, Y)`` with the same documents. Then:

- stage 1 and the evidence head are computed once, by rank 0, and sent to the others;
- every global batch (the same on every rank: the batch order is seeded) is split across the
  ranks, each computes the loss of its share as a part of the batch's mean, and the gradients
  are summed across ranks before the (identical) optimiser step, so that every rank holds the
  same weights and they match a single-process fit with the same batches (to float rounding;
  dropout masks differ);
- validation, the head's weight and the decision rule are computed on every rank alike;
- only rank 0 prints progress and writes files (checkpoints, ``save``).

A process group is used when one is initialised; under torchrun (``WORLD_SIZE`` > 1 in the
environment) ``fit`` initialises it itself: gloo on CPU, NCCL on CUDA.
"""

import os

import torch

__all__ = ["Distributed", "current"]


class Distributed:
    """This process's place in a data-parallel fit (rank 0 of 1 when there is none)."""

    def __init__(self, rank=0, world_size=1):
        self.rank = rank
        self.world_size = world_size

    @property
    def active(self):
        return self.world_size > 1

    @property
    def is_main(self):
        return self.rank == 0

    def shard(self, indices):
        """This rank's share of a global batch."""
        return indices[self.rank::self.world_size] if self.active else indices

    def all_reduce_gradients(self, parameters):
        """Sum the gradients of ``parameters`` across ranks, in one flat message."""
        if not self.active:
            return
        import torch.distributed as dist

        params = [p for p in parameters if p.requires_grad]
        for p in params:
            if p.grad is None:  # a rank whose share of the batch was empty
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n

    def all_reduce_sum(self, value, device):
        if not self.active:
            return value
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return float(t.item())

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank (pickled; for the state computed once)."""
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self):
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def device(self, device):
        """The device of this rank: CUDA device ``LOCAL_RANK`` when training on CUDA."""
        if self.active and device.type == "cuda" and device.index is None:
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", self.rank)))
        return device


def current(device_type="cpu"):
    """The data-parallel context of this process, initialising the process group under
    torchrun when it is not yet."""
    if not torch.distributed.is_available():
        return Distributed()
    import torch.distributed as dist

    if dist.is_initialized():
        return Distributed(dist.get_rank(), dist.get_world_size())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and "MASTER_ADDR" in os.environ:
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
        return Distributed(dist.get_rank(), dist.get_world_size())
    return Distributed()
