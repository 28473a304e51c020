"""FreeSurfer label numbers → medseg's 16 brain classes, and the tables the synthetic generator needs.

The bundled brain model segments 16 structures, hemispheres merged (values 1..16 in this order):

=====  ===========================  ==========================================================
value  name                         FreeSurfer labels
=====  ===========================  ==========================================================
1      cerebral_white_matter        2, 41 (+ corpus callosum 251-255, WM hypointensities 77-79)
2      cerebral_cortex              3, 42 (+ cortical parcels 1000-1035, 2000-2035, 11100-11175,
                                    12100-12175 of ``aparc+aseg`` / ``aparc.a2009s+aseg``)
3      lateral_ventricle            4, 5, 43, 44
4      cerebellum_white_matter      7, 46
5      cerebellum_cortex            8, 47
6      thalamus                     10, 49
7      caudate                      11, 50
8      putamen                      12, 51
9      pallidum                     13, 52
10     third_ventricle              14
11     fourth_ventricle             15
12     brainstem                    16
13     hippocampus                  17, 53
14     amygdala                     18, 54
15     accumbens                    26, 58
16     ventral_dc                   28, 60
=====  ===========================  ==========================================================

Everything else is background 0. The corpus callosum and WM hypointensities, which FreeSurfer's
``aseg`` carves out of the white matter, are white matter here because the SynthSeg training label
maps label them so (their mid-sagittal corpus callosum is label 2/41); choroid plexus (31, 63) stays
background.

The synthetic generator (:mod:`medseg.transforms.synth`) also needs, for *every* FreeSurfer value:
its intensity group (left and right of a structure share one random intensity, as do all cortical
parcels) and whether it is inside the skull-stripping mask. Lookup tables cover values
``0 .. FREESURFER_LUT_SIZE - 1``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from medseg.errors import InvalidInputError
from medseg.labels.spec import LabelSpec

#: Lookup tables index FreeSurfer values 0..FREESURFER_LUT_SIZE-1 (the colour LUT ends at 14175).
FREESURFER_LUT_SIZE = 14176

#: The 16 classes of the bundled brain model, as label values 1..16 in this order.
BRAIN_CLASSES: tuple[str, ...] = (
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

#: Class name → the FreeSurfer ``aseg`` labels it merges (the issue's table).
BRAIN_CLASS_FREESURFER: dict[str, tuple[int, ...]] = {
    "cerebral_white_matter": (2, 41),
    "cerebral_cortex": (3, 42),
    "lateral_ventricle": (4, 5, 43, 44),
    "cerebellum_white_matter": (7, 46),
    "cerebellum_cortex": (8, 47),
    "thalamus": (10, 49),
    "caudate": (11, 50),
    "putamen": (12, 51),
    "pallidum": (13, 52),
    "third_ventricle": (14,),
    "fourth_ventricle": (15,),
    "brainstem": (16,),
    "hippocampus": (17, 53),
    "amygdala": (18, 54),
    "accumbens": (26, 58),
    "ventral_dc": (28, 60),
}

#: Cortical parcels of ``aparc+aseg`` (Desikan) and ``aparc.a2009s+aseg`` (Destrieux), inclusive ranges.
CORTICAL_PARCEL_RANGES: tuple[tuple[int, int], ...] = (
    (1000, 1035), (2000, 2035), (11100, 11175), (12100, 12175),
)

#: Corpus callosum segments (posterior .. anterior) and WM hypointensities (any, left, right).
CORPUS_CALLOSUM: tuple[int, ...] = (251, 252, 253, 254, 255)
WM_HYPOINTENSITIES: tuple[int, ...] = (77, 78, 79)

#: Cerebrospinal fluid: kept by skull stripping near the brain, at random further away (``skull_strip_lut``).
CSF = 24

#: (left, right) FreeSurfer pairs whose intensity is drawn once for both hemispheres. 136/163 and
#: 137/164 are intra-cranial labels of the SynthSeg training maps, paired by location (136/137 lie
#: beside the left lateral/inferior lateral ventricle, 163/164 beside the right ones).
HEMISPHERE_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 40), (2, 41), (3, 42), (4, 43), (5, 44), (6, 45), (7, 46), (8, 47), (9, 48), (10, 49), (11, 50),
    (12, 51), (13, 52), (17, 53), (18, 54), (19, 55), (20, 56), (25, 57), (26, 58), (27, 59), (28, 60),
    (29, 61), (30, 62), (31, 63), (78, 79), (81, 82), (91, 92), (136, 163), (137, 164),
)

#: Tissue classes of the generator's tissue prior (:func:`tissue_lut`): 0 none (intensity drawn on
#: its own), white matter, grey matter, CSF, and deep grey nuclei / brainstem whose intensity lies
#: between white and grey matter.
TISSUE_NONE, TISSUE_WM, TISSUE_GM, TISSUE_CSF, TISSUE_DEEP = 0, 1, 2, 3, 4
_TISSUE_LABELS: dict[int, tuple[int, ...]] = {
    TISSUE_WM: (2, 7, *CORPUS_CALLOSUM),
    TISSUE_GM: (3, 8, 11, 12, 17, 18, 26),
    TISSUE_CSF: (4, 5, 14, 15, CSF),
    TISSUE_DEEP: (10, 13, 16, 28),
}

#: FreeSurfer head (non-brain) labels below 256: dura, skin, skull, eye, muscle... (FreeSurferColorLUT).
_HEAD_LABELS_BELOW_256: tuple[int, ...] = (98, *range(118, 136), *range(140, 155), 165)


#: FreeSurferColorLUT colours of the left-hemisphere structure of each class.
BRAIN_CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "cerebral_white_matter": (245, 245, 245),
    "cerebral_cortex": (205, 62, 78),
    "lateral_ventricle": (120, 18, 134),
    "cerebellum_white_matter": (220, 248, 164),
    "cerebellum_cortex": (230, 148, 34),
    "thalamus": (0, 118, 14),
    "caudate": (122, 186, 220),
    "putamen": (236, 13, 176),
    "pallidum": (12, 48, 255),
    "third_ventricle": (204, 182, 142),
    "fourth_ventricle": (42, 204, 164),
    "brainstem": (119, 159, 176),
    "hippocampus": (220, 216, 20),
    "amygdala": (103, 255, 255),
    "accumbens": (255, 165, 0),
    "ventral_dc": (165, 42, 42),
}


def brain_label_spec() -> LabelSpec:
    """The label spec of the 16 brain classes: values 1..16, FreeSurfer colours."""
    spec = LabelSpec.from_mapping({name: value for value, name in enumerate(BRAIN_CLASSES, start=1)})
    return LabelSpec(tuple(replace(lab, color=BRAIN_CLASS_COLORS[lab.name]) for lab in spec.labels))


def brain16_lut() -> npt.NDArray[np.uint8]:
    """Lookup table FreeSurfer value → brain class (0..16), length :data:`FREESURFER_LUT_SIZE`."""
    lut = np.zeros(FREESURFER_LUT_SIZE, dtype=np.uint8)
    for value, name in enumerate(BRAIN_CLASSES, start=1):
        lut[list(BRAIN_CLASS_FREESURFER[name])] = value
    for lo, hi in CORTICAL_PARCEL_RANGES:
        lut[lo : hi + 1] = BRAIN_CLASSES.index("cerebral_cortex") + 1
    lut[list(CORPUS_CALLOSUM + WM_HYPOINTENSITIES)] = BRAIN_CLASSES.index("cerebral_white_matter") + 1
    return lut


def freesurfer_to_brain16(array: npt.ArrayLike, *, source: str | None = None) -> npt.NDArray[np.uint8]:
    """Map a FreeSurfer label map (``aseg``, ``aparc+aseg``, ``aparc.a2009s+aseg``, SynthSeg maps)
    to the 16 brain classes.

    Args:
        array: FreeSurfer label values, any shape; integer dtype or float holding whole numbers.
        source: file the labels came from, named in errors.

    Returns:
        ``uint8`` array of the same shape with values 0..16 (see the module table).

    Raises:
        InvalidInputError: values are negative, fractional or beyond the FreeSurfer colour table.

    Example:
        >>> freesurfer_to_brain16(np.array([0, 2, 41, 42, 11105, 24, 251]))
        array([0, 1, 1, 2, 2, 0, 1], dtype=uint8)
    """
    return brain16_lut()[checked_label_values(array, source=source)]


def checked_label_values(array: npt.ArrayLike, *, source: str | None = None) -> npt.NDArray[Any]:
    """``array`` as integers usable as an index into the FreeSurfer lookup tables.

    Raises:
        InvalidInputError: negative, fractional or too large values (the message names ``source``).
    """
    a = np.asarray(array)
    if a.dtype.kind == "f":
        if a.size and not np.array_equal(a, np.round(a)):
            raise InvalidInputError(
                "label map holds fractional values; it must hold whole FreeSurfer label numbers "
                "(was it resampled with linear interpolation? use nearest or majority)", path=source
            )
        a = a.astype(np.int64)
    elif a.dtype.kind not in "iu":
        raise InvalidInputError(f"label map has dtype {a.dtype}; expected integer label numbers", path=source)
    if a.size:
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi >= FREESURFER_LUT_SIZE:
            raise InvalidInputError(
                f"label values span {lo}..{hi}; FreeSurfer label numbers are 0..{FREESURFER_LUT_SIZE - 1}",
                path=source,
            )
    return a


def intensity_group_lut() -> npt.NDArray[np.int16]:
    """Lookup table FreeSurfer value → intensity group, length :data:`FREESURFER_LUT_SIZE`.

    The group of a value is a representative FreeSurfer value: the left label for right-hemisphere
    labels (:data:`HEMISPHERE_PAIRS`), 3 for every cortical parcel, 2 for the corpus callosum, the
    value itself otherwise. Labels of one group get one random intensity per synthetic image.
    """
    lut = np.arange(FREESURFER_LUT_SIZE, dtype=np.int16)
    for left, right in HEMISPHERE_PAIRS:
        lut[right] = left
    for lo, hi in CORTICAL_PARCEL_RANGES:
        lut[lo : hi + 1] = 3
    lut[list(CORPUS_CALLOSUM)] = 2
    return lut


def tissue_lut() -> npt.NDArray[np.uint8]:
    """Lookup table FreeSurfer value → tissue class (``TISSUE_*``), length :data:`FREESURFER_LUT_SIZE`.

    White matter (cerebral and cerebellar, corpus callosum), grey matter (cortex and its parcels,
    cerebellar cortex, caudate, putamen, hippocampus, amygdala, accumbens), CSF (ventricles, CSF),
    deep (thalamus, pallidum, brainstem, ventral DC); both hemispheres. Everything else (lesions,
    vessels, choroid plexus, head labels, background) is 0: its intensity stays independent.
    """
    lut = np.zeros(FREESURFER_LUT_SIZE, dtype=np.uint8)
    right_of = dict(HEMISPHERE_PAIRS)
    for tissue, labels in _TISSUE_LABELS.items():
        for label in labels:
            lut[label] = tissue
            if label in right_of:
                lut[right_of[label]] = tissue
    for lo, hi in CORTICAL_PARCEL_RANGES:
        lut[lo : hi + 1] = TISSUE_GM
    return lut


def skull_strip_lut() -> npt.NDArray[np.uint8]:
    """Lookup table FreeSurfer value → skull-stripping role, length :data:`FREESURFER_LUT_SIZE`.

    ``0``: outside the brain (background 0, head labels such as skin or skull, and every value
    from 256 up except cortical parcels, which covers the extra-cerebral labels 500-599 of the
    SynthSeg training maps); ``1``: brain, always kept; ``2``: CSF, kept near the brain and
    kept or removed at random further away.
    """
    lut = np.zeros(FREESURFER_LUT_SIZE, dtype=np.uint8)
    lut[1:256] = 1
    lut[list(_HEAD_LABELS_BELOW_256)] = 0
    for lo, hi in CORTICAL_PARCEL_RANGES:
        lut[lo : hi + 1] = 1
    lut[CSF] = 2
    return lut
