"""Label specifications (names, colours, terminology) shared by datasets, checkpoints, metrics and export."""

from medseg.labels.spec import Code, Label, LabelSpec, Terminology, load_label_spec

__all__ = ["Code", "Label", "LabelSpec", "Terminology", "load_label_spec"]
