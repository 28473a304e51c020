"""Model registry (MONAI networks by name) and self-describing checkpoints."""

from medseg.models.registry import MODELS, ModelConfig, create_model

__all__ = ["MODELS", "ModelConfig", "create_model"]
