"""Label specifications: for each label value a name, a colour and optional terminology.

A :class:`LabelSpec` travels with datasets, plans, checkpoints and exports. It is built from

* a ``dataset.json`` (MSD / nnU-Net: ``labels`` as name → value, or the older value → name),
* a JSON or YAML mapping name → value (or value → name),
* a full medseg label spec file (``{"labels": [{"value": 1, "name": ..., "color": [r, g, b], ...}]}``),
* or just the values present in a label map (names ``label_<value>``).

Background (value 0) is implicit and never part of the spec.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medseg.errors import ConfigError, InvalidInputError

RGB = tuple[int, int, int]

#: Fallback colours (0-255) for labels without a known anatomy colour; cycled by value.
PALETTE: tuple[RGB, ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
    (0, 0, 128), (128, 128, 128),
)


@dataclass(frozen=True)
class Code:
    """A coded concept, e.g. ``Code("10200004", "SCT", "Liver")``."""

    value: str
    scheme: str
    meaning: str


@dataclass(frozen=True)
class Terminology:
    """DICOM-style segment terminology.

    Attributes:
        category: segmented property category (e.g. SCT 123037004 Anatomical Structure).
        type: segmented property type (e.g. SCT 64033007 Kidney).
        modifier: type modifier such as laterality (SCT 7771000 Left).
        region: anatomic region, for types defined by where they are (a cyst *in the kidney*).
        region_modifier: modifier of the region (laterality of the kidney holding the cyst).
    """

    category: Code
    type: Code
    modifier: Code | None = None
    region: Code | None = None
    region_modifier: Code | None = None


@dataclass(frozen=True)
class Label:
    """One foreground label.

    Attributes:
        value: integer value in the label map (≥ 1).
        name: display name (any Unicode).
        color: RGB, each 0-255.
        terminology: coded meaning, if known.
    """

    value: int
    name: str
    color: RGB
    terminology: Terminology | None = None


@dataclass(frozen=True)
class LabelSpec:
    """An ordered set of foreground labels (sorted by value; unique values and names)."""

    labels: tuple[Label, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        labels = tuple(sorted(self.labels, key=lambda lab: lab.value))
        values = [lab.value for lab in labels]
        names = [lab.name for lab in labels]
        if any(v < 1 for v in values):
            raise ConfigError(f"label values must be ≥ 1 (0 is background); got {sorted(set(values))}")
        dup_v = sorted({v for v in values if values.count(v) > 1})
        if dup_v:
            raise ConfigError(f"label values used twice: {dup_v}")
        dup_n = sorted({n for n in names if names.count(n) > 1})
        if dup_n:
            raise ConfigError(f"label names used twice: {dup_n}; give each label a distinct name")
        object.__setattr__(self, "labels", labels)

    # --- views -----------------------------------------------------------------------------------
    @property
    def values(self) -> tuple[int, ...]:
        return tuple(lab.value for lab in self.labels)

    @property
    def names(self) -> dict[int, str]:
        """value → name."""
        return {lab.value: lab.name for lab in self.labels}

    @property
    def max_value(self) -> int:
        return max(self.values, default=0)

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[Label]:
        return iter(self.labels)

    def get(self, value: int) -> Label | None:
        return next((lab for lab in self.labels if lab.value == value), None)

    def value_of(self, name: str) -> int:
        """Label value of ``name`` (``ConfigError`` listing the names if unknown)."""
        for lab in self.labels:
            if lab.name == name:
                return lab.value
        raise ConfigError(f"unknown label name {name!r}; known: {', '.join(self.names.values())}")

    # --- construction ------------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> LabelSpec:
        """From name → value (or value → name, as older MSD files have); ``background``/0 is dropped."""
        pairs: list[tuple[int, str]] = []
        for key, val in mapping.items():
            if _is_int(key) and not _is_int(val):
                value, name = int(key), str(val)
            elif _is_int(val):
                value, name = int(val), str(key)
            else:
                raise ConfigError(f"label entry {key!r}: {val!r} is not name → integer value")
            if value != 0:
                pairs.append((value, name))
        return cls(tuple(default_label(value, name) for value, name in pairs))

    @classmethod
    def from_values(cls, values: Iterable[int]) -> LabelSpec:
        """Numbered labels ``label_<v>`` for the non-zero ``values``."""
        unique = sorted({int(v) for v in values} - {0})
        return cls(tuple(default_label(v, f"label_{v}") for v in unique))

    # --- serialisation (checkpoints, YAML plans, spec files) -------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"labels": [_label_to_dict(lab) for lab in self.labels]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelSpec:
        entries = data.get("labels")
        if not isinstance(entries, list):
            raise ConfigError("a label spec needs a 'labels' list of {value, name, color, terminology}")
        return cls(tuple(_label_from_dict(e) for e in entries))


def default_label(value: int, name: str) -> Label:
    """A label with the colour and terminology of a known structure, else a palette colour."""
    from medseg.labels.anatomy import lookup_anatomy

    known = lookup_anatomy(name)
    if known is not None:
        return Label(value=value, name=name, color=known.color, terminology=known.terminology)
    return Label(value=value, name=name, color=PALETTE[(value - 1) % len(PALETTE)])


def load_label_spec(path: str | Path) -> LabelSpec:
    """Read a label spec from a ``dataset.json``, a JSON/YAML mapping or a medseg spec file.

    Raises:
        InvalidInputError: the file is missing or not valid JSON/YAML.
        ConfigError: the content is not a label mapping or spec.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(
            "label file not found; give a dataset.json or a JSON/YAML name → value mapping", path=p
        )
    data = _load_json_or_yaml(p)
    try:
        if isinstance(data, Mapping) and isinstance(data.get("labels"), list):
            return LabelSpec.from_dict(data)
        if isinstance(data, Mapping) and isinstance(data.get("labels"), Mapping):
            return LabelSpec.from_mapping(data["labels"])
        if isinstance(data, Mapping):
            return LabelSpec.from_mapping(data)
    except ConfigError as exc:
        raise ConfigError(exc.message, path=p) from exc
    raise ConfigError("expected a mapping of label names to values", path=p)


def _load_json_or_yaml(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"not valid YAML: {exc}", path=path) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"not valid JSON (line {exc.lineno}): {exc.msg}", path=path) from exc


def _is_int(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, int):
        return True
    return isinstance(x, str) and x.strip().lstrip("-").isdigit()


def _code_to_list(code: Code | None) -> list[str] | None:
    return None if code is None else [code.value, code.scheme, code.meaning]


def _code_from_list(data: Any) -> Code | None:
    if data is None:
        return None
    if not (isinstance(data, list | tuple) and len(data) == 3):
        raise ConfigError(f"a code must be [value, scheme, meaning]; got {data!r}")
    return Code(str(data[0]), str(data[1]), str(data[2]))


def _label_to_dict(lab: Label) -> dict[str, Any]:
    out: dict[str, Any] = {"value": lab.value, "name": lab.name, "color": list(lab.color)}
    if lab.terminology is not None:
        term = lab.terminology
        out["terminology"] = {
            "category": _code_to_list(term.category),
            "type": _code_to_list(term.type),
            "modifier": _code_to_list(term.modifier),
        }
        if term.region is not None:  # written only when present: older readers see the same keys
            out["terminology"]["region"] = _code_to_list(term.region)
            out["terminology"]["region_modifier"] = _code_to_list(term.region_modifier)
    return out


def _label_from_dict(e: Any) -> Label:
    if not isinstance(e, Mapping) or "value" not in e or "name" not in e:
        raise ConfigError(f"label entry needs 'value' and 'name'; got {e!r}")
    unknown = set(e) - {"value", "name", "color", "terminology"}
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted(unknown)} in label entry {e['name']!r}")
    base = default_label(int(e["value"]), str(e["name"]))
    color = tuple(int(c) for c in e.get("color", base.color))
    if len(color) != 3 or any(not 0 <= c <= 255 for c in color):
        raise ConfigError(
            f"colour of label {e['name']!r} must be three integers 0-255; got {e.get('color')!r}"
        )
    term = e.get("terminology")
    terminology = base.terminology
    if term is not None:
        category, type_ = _code_from_list(term.get("category")), _code_from_list(term.get("type"))
        if category is None or type_ is None:
            raise ConfigError(f"terminology of label {e['name']!r} needs 'category' and 'type' codes")
        terminology = Terminology(
            category,
            type_,
            _code_from_list(term.get("modifier")),
            _code_from_list(term.get("region")),
            _code_from_list(term.get("region_modifier")),
        )
    return Label(int(e["value"]), str(e["name"]), (color[0], color[1], color[2]), terminology)
