"""Device, mixed-precision and torch.distributed helpers shared by training and generation."""
from __future__ import annotations

import contextlib
import functools
import os
import platform
from dataclasses import dataclass
from typing import Iterator

import torch

from molvae.errors import UsageError

__all__ = [
    "cpu_supports_bf16", "resolve_device", "resolve_amp", "autocast", "DistInfo", "init_distributed",
    "hardware_summary",
]


@functools.lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True when this CPU runs bf16 matmuls natively (AVX512-BF16 or AMX-BF16 on x86, BF16 on Arm).

    Autocast to bf16 also "works" without those instructions, through slow emulation, so
    the decision uses the CPU flags; a tiny autocast matmul then checks that this torch
    build really computes in bf16 here.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            words = set()
            for line in fh:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("flags", "features"):
                    words.update(line.split(":", 1)[1].split())
    except OSError:  # not Linux: stay on fp32 rather than risk the emulated path
        return False
    if platform.machine().lower() in ("x86_64", "amd64"):
        fast = bool({"avx512_bf16", "amx_bf16"} & words)
    else:
        fast = "bf16" in words
    if not fast:
        return False
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = torch.ones(8, 8) @ torch.ones(8, 8)
        return y.dtype == torch.bfloat16 and bool(torch.isfinite(y).all())
    except (RuntimeError, TypeError):
        return False


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports ru_maxrss in KiB, macOS in bytes)."""
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def resolve_device(device: str | torch.device, local_rank: int = 0) -> torch.device:
    """'auto' -> cuda (this process's local rank) when available, else cpu; 'cuda' -> cuda:local_rank;
    a torch.device is returned as it is.

    Raises:
        UsageError: cuda requested but not available, or an unknown device string.
    """
    if isinstance(device, torch.device):
        return device
    d = str(device).lower()
    if d == "auto":
        d = "cuda" if torch.cuda.is_available() else "cpu"
    if d == "cpu":
        return torch.device("cpu")
    if d.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"device {device!r} requested but torch sees no CUDA GPU (torch {torch.__version__}).")
        return torch.device(d if ":" in d else f"cuda:{local_rank}")
    raise UsageError(f"unknown device {device!r}; expected auto, cpu or cuda[:N].")


def resolve_amp(amp: str | bool, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for `amp` ('auto'|'bf16'|'off', or a bool) on `device`; None means fp32.

    'auto' picks bf16 where the hardware runs it natively (CUDA with bf16 support, or a CPU
    with AVX512-BF16/AMX) and fp32 elsewhere. fp16 is not offered: it needs loss scaling
    and bf16 is available wherever mixed precision pays off.
    """
    if amp is True:
        amp = "auto"
    if amp is False or amp in ("off", "fp32", "none"):
        return None
    if amp not in ("auto", "bf16"):
        raise UsageError(f"unknown amp setting {amp!r}; expected auto, bf16 or off.")
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
    elif device.type == "cpu":
        ok = cpu_supports_bf16()
    else:
        ok = False
    if amp == "bf16" or ok:
        return torch.bfloat16
    return None


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """`torch.autocast` for `dtype`, or nothing when dtype is None."""
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a data-parallel job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    created: bool = False  # True when init_distributed created the process group (and must destroy it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistInfo:
    """Join the torchrun job described by the environment, if any.

    Uses an already-initialized default process group when there is one; otherwise, when
    WORLD_SIZE > 1 (set by torchrun), initializes one: nccl when training on CUDA, gloo
    on CPU. Returns rank 0 of 1 for ordinary single-process runs.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_available():
        raise UsageError("WORLD_SIZE > 1 but this torch build has no torch.distributed support.")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = str(device).startswith("cuda") or (str(device) == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, True)


def hardware_summary(device: torch.device | None = None) -> str:
    """One line naming the hardware, for benchmark reports."""
    if device is not None and device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads, "
            f"capability {torch.backends.cpu.get_cpu_capability()}, bf16 native: {cpu_supports_bf16()} "
            f"(torch {torch.__version__})")
