"""Bundled and user models: what ``medseg models list`` shows and what ``--model NAME`` resolves to.

Bundled models ship inside the package (``medseg/models/weights/``), listed in ``index.json``
with their SHA-256, which is verified at load. User models are the ``*.pt`` checkpoints in a user
models folder (``--models-dir``; the CLI defaults to ``$MEDSEG_MODELS_DIR`` or
``~/.medseg/models``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medseg.errors import CheckpointError, ConfigError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
INDEX = WEIGHTS_DIR / "index.json"


@dataclass(frozen=True)
class ModelEntry:
    """A model medseg can run.

    Attributes:
        name: what ``--model`` accepts.
        path: the checkpoint file (loadable by ``Predictor.from_checkpoint``).
        source: ``bundled`` or ``user``.
        default: True for the model ``medseg infer`` uses without ``--model``.
        sha256: expected digest (bundled models), verified at load.
        classes: label value → name.
        description: intended input and use.
    """

    name: str
    path: Path
    source: str
    default: bool = False
    sha256: str | None = None
    classes: dict[int, str] = field(default_factory=dict)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "source": self.source, "default": self.default,
                "sha256": self.sha256, "classes": {str(k): v for k, v in self.classes.items()},
                "description": self.description}


def bundled_models() -> list[ModelEntry]:
    """Models shipped in the package (from ``weights/index.json``)."""
    if not INDEX.is_file():
        return []
    entries = json.loads(INDEX.read_text(encoding="utf-8"))
    return [
        ModelEntry(name=e["name"], path=WEIGHTS_DIR / e["file"], source="bundled", default=bool(e.get("default")),
                   sha256=e["sha256"], classes={int(k): v for k, v in e.get("classes", {}).items()},
                   description=e.get("description", ""))
        for e in entries
    ]


def user_models(models_dir: Path | None) -> list[ModelEntry]:
    """Checkpoints (``*.pt``) in the user models folder, described from their own metadata."""
    if models_dir is None or not models_dir.is_dir():
        return []
    from medseg.models.checkpoint import load_checkpoint

    out = []
    for path in sorted(models_dir.glob("*.pt")):
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError:
            continue
        card = ckpt.model_card
        out.append(ModelEntry(name=path.stem, path=path, source="user", classes=ckpt.plan.labels.names,
                              description=str(card.get("description", ""))))
    return out


def list_models(models_dir: Path | None = None) -> list[ModelEntry]:
    return bundled_models() + user_models(models_dir)


def resolve_model(spec: str | None, *, models_dir: Path | None = None) -> ModelEntry:
    """Turn ``--model`` into a model: ``None`` → the default bundled model; an existing path →
    that checkpoint; otherwise a bundled or user model name.

    Raises:
        ConfigError: no default model, or an unknown name (the valid names are listed).
    """
    if spec is None:
        default = [m for m in bundled_models() if m.default]
        if not default:
            raise ConfigError("no default model is bundled with this medseg; pass --model PATH to a checkpoint "
                              "from `medseg train`")
        return default[0]
    path = Path(spec).expanduser()
    if path.suffix == ".pt" or path.is_file():
        if not path.is_file():
            raise ConfigError(f"model checkpoint {spec!r} not found; check the path")
        return ModelEntry(name=path.stem, path=path, source="file")
    models = {m.name: m for m in list_models(models_dir)}
    if spec not in models:
        from medseg.errors import check_option

        check_option(spec, models or {"(none installed)": None}, name="model")
    return models[spec]
