"""Which precision a run computes in, and why: bf16 autocast only where the hardware does bf16 maths natively.

Master weights stay fp32 in every case (the model is loaded in fp32); ``bf16`` means the forward and backward
maths run under autocast. On a CPU without AMX-BF16 or AVX512-BF16, bf16 matmuls are emulated and slower
than fp32, so ``auto`` keeps fp32 there and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

# /proc/cpuinfo flags of the instruction sets that run bf16 matmuls natively (oneDNN uses either).
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class Precision:
    """The precision used (``fp32``, ``bf16`` or ``fp16``), what was asked for, and why."""

    used: str
    setting: str
    why: str

    def trl_flags(self) -> dict[str, bool]:
        """The ``bf16`` / ``fp16`` arguments of TRL's config."""
        return {"bf16": self.used == "bf16", "fp16": self.used == "fp16"}


def cpu_flags(cpuinfo: str) -> set[str]:
    """The instruction-set flags listed in a ``/proc/cpuinfo`` text (the first ``flags`` line)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return set(value.split())
    return set()


def cpu_bf16(cpuinfo_path: Path = Path("/proc/cpuinfo")) -> tuple[bool, str]:
    """Whether this CPU runs bf16 maths natively, with the evidence in words."""
    try:
        flags = cpu_flags(cpuinfo_path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        flags = set()
    if not flags:
        return False, f"{cpuinfo_path} lists no CPU flags, so native bf16 cannot be confirmed"
    found = [flag for flag in CPU_BF16_FLAGS if flag in flags]
    if found:
        return True, f"the CPU has {' and '.join(found)}"
    best = "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else "no AVX2"
    return False, f"the CPU has {best} but neither amx_bf16 nor avx512_bf16: bf16 would be emulated, slower"


def resolve_precision(setting: str, cpuinfo_path: Path = Path("/proc/cpuinfo")) -> Precision:
    """``auto``: bf16 on a bf16-capable GPU or a CPU with native bf16 maths, else fp32. An explicit setting
    is used as given."""
    if setting != "auto":
        return Precision(setting, setting, "set in the run config (rl.precision)")
    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return Precision("bf16", setting, "the GPU supports bf16")
        return Precision("fp32", setting, "the GPU does not support bf16")
    native, why = cpu_bf16(cpuinfo_path)
    return Precision("bf16" if native else "fp32", setting, why)
