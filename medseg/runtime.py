"""Devices and mixed precision: resolve ``--device`` and ``--amp`` choices once, explicitly.

Nothing here changes global torch state; callers pass the results on.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from medseg.errors import ConfigError

if TYPE_CHECKING:
    import torch

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(choice: str = "auto") -> torch.device:
    """``auto`` → the first CUDA GPU if available, else CPU; ``cpu``; ``cuda`` / ``cuda:N``.

    Raises:
        ConfigError: malformed choice, or CUDA requested but not available.
    """
    import torch

    if not _DEVICE.match(choice):
        raise ConfigError(f"unknown device {choice!r}; use auto, cpu, cuda or cuda:N")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {choice!r} requested but CUDA is not available; use --device cpu")
        index = int(choice.split(":")[1]) if ":" in choice else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {choice!r} requested but only {torch.cuda.device_count()} GPU(s) exist")
    return torch.device(choice)


def cpu_supports_bf16() -> bool:
    """True if oneDNN can run bfloat16 kernels on this CPU (AVX512-BF16 or AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(device: torch.device, amp: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``device`` under the ``amp`` choice (``None``: full precision).

    ``auto``: bf16 on CUDA GPUs that support it, else fp16; bf16 on CPUs with native bf16
    support, else full precision.
    """
    import torch

    if amp == "off":
        return None
    if device.type == "cuda":
        if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
            return torch.float16
        return torch.bfloat16
    if amp == "fp16":
        raise ConfigError("fp16 autocast is for CUDA; on CPU use --amp bf16 or off")
    if amp == "bf16" or (amp == "auto" and cpu_supports_bf16()):
        return torch.bfloat16
    return None
