"""rl.precision auto: bf16 autocast only where the CPU does bf16 maths natively (AMX or AVX512-BF16), with the
reason in words; explicit settings are used as given."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepretrieval.train.precision import cpu_bf16, cpu_flags, resolve_precision

CPUINFO = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 {extra}\n\nprocessor\t: 1\nflags\t\t: fpu\n"


def _cpuinfo(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.format(extra=extra))
    return path


@pytest.mark.parametrize(
    ("extra", "native", "words"),
    [
        ("avx2 avx512f avx512_bf16", True, "avx512_bf16"),
        ("avx2 amx_tile amx_bf16", True, "amx_bf16"),
        ("avx2", False, "the CPU has avx2 but neither"),
        ("avx2 avx512f", False, "the CPU has avx512f but neither"),
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path, extra: str, native: bool, words: str) -> None:
    found, why = cpu_bf16(_cpuinfo(tmp_path, extra))
    assert found is native and words in why
    assert cpu_flags(_cpuinfo(tmp_path, extra).read_text()) == {"fpu", "sse2", *extra.split()}  # first line


def test_auto_follows_the_hardware_and_explicit_settings_win(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("auto follows the GPU here")
    emulated = resolve_precision("auto", _cpuinfo(tmp_path, "avx2"))
    assert emulated.used == "fp32" and emulated.trl_flags() == {"bf16": False, "fp16": False}
    native = resolve_precision("auto", _cpuinfo(tmp_path, "amx_bf16"))
    assert native.used == "bf16" and native.trl_flags() == {"bf16": True, "fp16": False}
    assert resolve_precision("bf16", _cpuinfo(tmp_path, "avx2")).used == "bf16"  # as the user asked
    unreadable = resolve_precision("auto", tmp_path / "missing")
    assert unreadable.used == "fp32" and "cannot be confirmed" in unreadable.why
