"""The anatomy table: TotalSegmentator classes, the default brain model's classes, laterality."""

from __future__ import annotations

import json

import pytest

from medseg.labels import Code, Label, LabelSpec, Terminology
from medseg.labels.anatomy import LEFT, RIGHT, lookup_anatomy
from tests.conftest import shared_path

BRAIN_CLASSES = (
    "cerebral_white_matter",
    "cerebral_cortex",
    "lateral_ventricle",
    "cerebellum_white_matter",
    "cerebellum_cortex",
    "thalamus",
    "caudate",
    "putamen",
    "pallidum",
    "third_ventricle",
    "fourth_ventricle",
    "brainstem",
    "hippocampus",
    "amygdala",
    "accumbens",
    "ventral_dc",
)


def test_every_totalsegmentator_total_class_has_codes_and_colour():
    names = json.loads(shared_path("totalsegmentator_example", "class_map.json").read_text())["total"]
    assert len(names) == 117
    missing = [n for n in names.values() if lookup_anatomy(n) is None]
    assert missing == []


@pytest.mark.parametrize("name", BRAIN_CLASSES)
def test_brain_classes_are_known_snomed_structures(name):
    anatomy = lookup_anatomy(name)
    assert anatomy is not None
    assert anatomy.terminology.category.value == "123037004"
    assert anatomy.terminology.type.scheme == "SCT"
    assert anatomy.terminology.modifier is None


def test_brain_colours_are_freesurfer_lut_colours():
    assert lookup_anatomy("cerebral_cortex").color == (205, 62, 78)
    assert lookup_anatomy("putamen").color == (236, 13, 176)
    assert lookup_anatomy("hippocampus").terminology.type == Code("5366008", "SCT", "Hippocampus")


@pytest.mark.parametrize(
    ("name", "code", "side"),
    [
        pytest.param("kidney_left", "64033007", LEFT, id="suffix"),
        pytest.param("Right Kidney", "64033007", RIGHT, id="prefix-spaces"),
        pytest.param("rib_left_3", "25888004", LEFT, id="side-in-the-middle"),
        pytest.param("Left-Hippocampus", "5366008", LEFT, id="freesurfer"),
        pytest.param("iliopsoas_r", "68455001", RIGHT, id="single-letter"),
        pytest.param("vertebrae_L1", "66794005", None, id="L-is-a-level-not-a-side"),
        pytest.param("lung_middle_lobe_right", "72481006", None, id="side-in-the-concept"),
        pytest.param("3rd-Ventricle", "49841001", None, id="alias"),
    ],
)
def test_laterality_becomes_the_type_modifier(name, code, side):
    term = lookup_anatomy(name).terminology
    assert term.type.value == code
    assert term.modifier == side


def test_cyst_laterality_qualifies_the_region():
    term = lookup_anatomy("kidney_cyst_left").terminology
    assert (term.category.value, term.type.value, term.modifier) == ("49755003", "367643001", None)
    assert term.region == Code("64033007", "SCT", "Kidney") and term.region_modifier == LEFT


def test_side_specific_slicer_colours():
    assert lookup_anatomy("subclavian_artery_left").color == (216, 101, 69)
    assert lookup_anatomy("subclavian_artery_right").color == (216, 101, 89)


def test_unknown_structures_are_not_guessed():
    assert lookup_anatomy("my_special_blob") is None
    assert lookup_anatomy("left") is None


def test_spec_serialisation_round_trips_region_and_reads_older_dicts():
    spec = LabelSpec.from_mapping({"kidney_cyst_left": 23, "liver": 5})
    assert LabelSpec.from_dict(spec.to_dict()) == spec
    old = {
        "labels": [
            {
                "value": 1,
                "name": "x",
                "color": [1, 2, 3],
                "terminology": {
                    "category": ["85756007", "SCT", "Tissue"],
                    "type": ["85756007", "SCT", "Tissue"],
                    "modifier": None,
                },
            }
        ]
    }
    tissue = Code("85756007", "SCT", "Tissue")
    assert LabelSpec.from_dict(old).labels == (Label(1, "x", (1, 2, 3), Terminology(tissue, tissue)),)
    assert "region" not in LabelSpec.from_dict(old).to_dict()["labels"][0]["terminology"]
