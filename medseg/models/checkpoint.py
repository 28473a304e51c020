"""Self-describing checkpoints: weights + model config + plan (incl. labels) + training state.

A checkpoint is one file readable with ``torch.load(weights_only=True)``: nested dicts, lists,
strings, numbers and tensors only, never pickled code. ``medseg infer --model run/best.pt`` needs
nothing else. Saved atomically, so a crash never leaves a truncated checkpoint.

Layout (``format_version`` 1)::

    format: "medseg-checkpoint", format_version: 1, medseg_version: str
    model: ModelConfig dict          plan: plan_to_dict(plan)
    state_dict: {name: tensor}       model_card: dict (name, description, postprocessing, ...)
    train_config: dict | None        training: dict | None (optimizer, scheduler, scaler, rng,
                                     epoch, iteration, best_metric, history)
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medseg import __version__
from medseg.data.plan import Plan, plan_from_dict, plan_to_dict
from medseg.errors import CheckpointError, ConfigError
from medseg.io.atomic import atomic_path
from medseg.models.registry import ModelConfig, create_model

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

FORMAT = "medseg-checkpoint"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint (tensors on CPU)."""

    model: ModelConfig
    plan: Plan
    state_dict: Mapping[str, Any]
    model_card: Mapping[str, Any] = field(default_factory=dict)
    train_config: Mapping[str, Any] | None = None
    training: Mapping[str, Any] | None = None
    medseg_version: str = __version__

    def build_network(self) -> torch.nn.Module:
        """The network with these weights loaded (float32, eval mode, on CPU)."""
        import torch

        net = create_model(self.model, self.plan)
        state = {k: v.float() if torch.is_floating_point(v) else v for k, v in self.state_dict.items()}
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"weights do not fit model {self.model.name!r}: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )
        return net.eval()

    def mirror_axes(self) -> tuple[int, ...]:
        """Network-grid axes (0 = x, 1 = y, 2 = z) the training mirrored, so test-time mirroring may.

        A label-maps-only model (``synth`` section) flips left-right (x) when its generator's
        ``flip_probability`` is above 0; an ordinary one mirrors ``augment.mirror_axes`` when
        ``augment.mirror_prob`` is above 0 (MONAI-style defaults: all three, probability 0.5).
        Without a training config (foreign checkpoints): all three.
        """
        config = self.train_config
        if not config:
            return (0, 1, 2)
        if config.get("synth"):
            from medseg.transforms.synth_params import SynthConfig

            generator = config["synth"].get("generator") or {}
            return (0,) if generator.get("flip_probability", SynthConfig.flip_probability) > 0 else ()
        from medseg.transforms.augment import AugmentConfig

        augment = config.get("augment") or {}
        if augment.get("mirror_prob", AugmentConfig.mirror_prob) <= 0:
            return ()
        return tuple(sorted(int(a) for a in augment.get("mirror_axes", AugmentConfig.mirror_axes)))


def save_checkpoint(
    path: str | Path,
    *,
    model: ModelConfig,
    plan: Plan,
    state_dict: Mapping[str, Any],
    model_card: Mapping[str, Any] | None = None,
    train_config: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write a checkpoint atomically.

    Args:
        half: store floating-point weights as float16 (for bundled models; halves the size).
    """
    import torch

    converted: dict[tuple[Any, ...], Any] = {}

    def convert(v: Any) -> Any:
        if not (half and torch.is_floating_point(v)):
            return v.detach().cpu()
        # DynUNet lists shared modules twice (skip_layers): convert each storage once, so it is saved once
        key = (v.data_ptr(), tuple(v.shape), tuple(v.stride()), v.dtype)
        if key not in converted:
            converted[key] = v.detach().cpu().half()
        return converted[key]

    weights = {k: convert(v) for k, v in state_dict.items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "medseg_version": __version__,
        "model": model.to_dict(),
        "plan": plan_to_dict(plan),
        "state_dict": weights,
        "model_card": dict(model_card or {}),
        "train_config": dict(train_config) if train_config is not None else None,
        "training": dict(training) if training is not None else None,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, *, sha256: str | None = None) -> Checkpoint:
    """Load a checkpoint safely (``weights_only=True``).

    Args:
        sha256: expected hex digest of the file (bundled models); a mismatch is refused.

    Raises:
        CheckpointError: missing, corrupt, not a medseg checkpoint, digest mismatch, or the file
            carries pickled objects other than tensors and plain data (refused without running them).
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise CheckpointError("checkpoint not found; give a .pt file written by `medseg train`", path=p)
    if sha256 is not None:
        digest = file_sha256(p)
        if digest != sha256:
            raise CheckpointError(f"sha256 mismatch ({digest[:12]}… ≠ {sha256[:12]}…): the file is corrupt or "
                                  "was replaced; reinstall medseg", path=p)
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            "refused: the file contains pickled Python objects that could run code when loaded "
            "(only tensors and plain data are allowed); re-export it from a trusted source", path=p
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint ({str(exc).splitlines()[0][:120]}); the file is truncated "
                              "or not a PyTorch file", path=p) from exc
    return _from_payload(data, p)


def _from_payload(data: Any, path: Path) -> Checkpoint:
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise CheckpointError("not a medseg checkpoint (no 'format: medseg-checkpoint' entry)", path=path)
    if int(data.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"checkpoint format {data.get('format_version')} is newer than this medseg "
                              f"supports ({FORMAT_VERSION}); upgrade medseg", path=path)
    try:
        model = ModelConfig.from_dict(data["model"])
        plan = plan_from_dict(data["plan"])
    except (ConfigError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint metadata is invalid: {exc}", path=path) from exc
    return Checkpoint(
        model=model,
        plan=plan,
        state_dict=data["state_dict"],
        model_card=data.get("model_card") or {},
        train_config=data.get("train_config"),
        training=data.get("training"),
        medseg_version=str(data.get("medseg_version", "?")),
    )


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pack_checkpoint(source: str | Path, target: str | Path, *, half: bool = True,
                    card: Mapping[str, Any] | None = None) -> Path:
    """Write an inference-only copy of a checkpoint: weights (float16 if ``half``), model config,
    plan and model card; optimiser and RNG state dropped. ``card`` entries update the model card."""
    ckpt = load_checkpoint(source)
    return save_checkpoint(target, model=ckpt.model, plan=ckpt.plan, state_dict=ckpt.state_dict,
                           model_card={**ckpt.model_card, **(card or {})}, train_config=ckpt.train_config,
                           half=half)
