"""A table of common structures → default colour and SNOMED CT terminology.

Sources (see ``../shared/specs/slicer-seg-nrrd.md`` §9 and ``docs/export.md``):

* colours: 3D Slicer's recommended display colours (General Anatomy terminology, identical to
  ``GenericAnatomyColors``) and, for TotalSegmentator structures Slicer's list lacks, the
  SlicerTotalSegmentator terminology; brain structures use the FreeSurfer colour table;
* codes: the SNOMED CT concepts Slicer's terminologies and TotalSegmentator's
  ``totalsegmentator_snomed_mapping.csv`` use; brain structures the DICOM CID 7140 concepts.

Names are matched after normalisation (lower case; spaces and hyphens → ``_``). A laterality word
anywhere in the name (``left``/``right``, or a trailing ``l``/``r``) becomes a modifier:
``kidney_left``, ``Left-Kidney`` and ``rib_left_3`` → Kidney + Left, Third rib + Left. The modifier
qualifies the type, or the anatomic region for structures defined by their region (``kidney_cyst_left``
→ Cyst in the left kidney).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medseg.labels.spec import RGB, Code, Terminology

ANATOMICAL_STRUCTURE = Code("123037004", "SCT", "Anatomical Structure")
TISSUE = Code("85756007", "SCT", "Tissue")
ALTERED = Code("49755003", "SCT", "Morphologically Altered Structure")
LEFT = Code("7771000", "SCT", "Left")
RIGHT = Code("24028007", "SCT", "Right")

_AS = ANATOMICAL_STRUCTURE


@dataclass(frozen=True)
class Anatomy:
    """Default display colour (RGB 0-255) and terminology of a named structure."""

    color: RGB
    terminology: Terminology


@dataclass(frozen=True)
class _Entry:
    category: Code
    code: str
    meaning: str
    color: RGB
    region: Code | None = None


def _e(category: Code, code: str, meaning: str, color: RGB, region: Code | None = None) -> _Entry:
    return _Entry(category, code, meaning, color, region)


_KIDNEY = Code("64033007", "SCT", "Kidney")
_VEIN_BLUE: RGB = (0, 151, 206)
_C_SPINE: RGB = (255, 255, 207)
_T_SPINE: RGB = (226, 202, 134)
_L_SPINE: RGB = (212, 188, 102)

# normalised name → entry. Keys without laterality; a side in the name becomes the modifier.
_TABLE: dict[str, _Entry] = {
    # abdomen, thorax (Slicer General Anatomy colours)
    "liver": _e(_AS, "10200004", "Liver", (221, 130, 101)),
    "spleen": _e(_AS, "78961009", "Spleen", (157, 108, 162)),
    "kidney": _e(_AS, "64033007", "Kidney", (185, 102, 83)),
    "adrenal_gland": _e(_AS, "23451007", "Adrenal gland", (249, 186, 150)),
    "pancreas": _e(_AS, "15776009", "Pancreas", (249, 180, 111)),
    "gallbladder": _e(_AS, "28231008", "Gallbladder", (139, 150, 98)),
    "stomach": _e(_AS, "69695003", "Stomach", (216, 132, 105)),
    "duodenum": _e(_AS, "38848004", "Duodenum", (255, 253, 229)),
    "small_intestine": _e(_AS, "30315005", "Small Intestine", (205, 167, 142)),
    "small_bowel": _e(_AS, "30315005", "Small Intestine", (205, 167, 142)),
    "colon": _e(_AS, "71854001", "Colon", (204, 168, 143)),
    "esophagus": _e(_AS, "32849002", "Esophagus", (211, 171, 143)),
    "urinary_bladder": _e(_AS, "89837001", "Urinary bladder", (222, 154, 132)),
    "bladder": _e(_AS, "89837001", "Urinary bladder", (222, 154, 132)),
    "prostate": _e(_AS, "41216001", "Prostate", (230, 158, 140)),
    "uterus": _e(_AS, "35039007", "Uterus", (255, 181, 158)),
    "heart": _e(_AS, "80891009", "Heart", (206, 110, 84)),
    "aorta": _e(_AS, "15825003", "Aorta", (224, 97, 76)),
    "inferior_vena_cava": _e(_AS, "64131007", "Inferior vena cava", _VEIN_BLUE),
    "superior_vena_cava": _e(_AS, "48345005", "Superior vena cava", (0, 141, 226)),
    "portal_vein_and_splenic_vein": _e(_AS, "110765007", "Portal vein and splenic vein", _VEIN_BLUE),
    "pulmonary_vein": _e(_AS, "122972007", "Pulmonary vein", _VEIN_BLUE),
    "pulmonary_artery": _e(_AS, "81040000", "Pulmonary artery", (0, 122, 171)),
    "brachiocephalic_trunk": _e(_AS, "12691009", "Brachiocephalic artery", (196, 121, 79)),
    "subclavian_artery": _e(_AS, "29700009", "Subclavian artery", (216, 101, 79)),
    "common_carotid_artery": _e(_AS, "32062004", "Common carotid artery", (0, 112, 165)),
    "brachiocephalic_vein": _e(_AS, "8887007", "Brachiocephalic vein", _VEIN_BLUE),
    "atrial_appendage": _e(_AS, "305223006", "Entire atrial appendage", (180, 151, 26)),
    "iliac_artery": _e(_AS, "73634005", "Common iliac artery", (216, 101, 79)),
    "iliac_vena": _e(_AS, "46027005", "Common iliac vein", _VEIN_BLUE),
    "iliac_vein": _e(_AS, "46027005", "Common iliac vein", _VEIN_BLUE),
    "lung": _e(_AS, "39607008", "Lung", (197, 165, 145)),
    "lung_upper_lobe": _e(_AS, "45653009", "Upper lobe of lung", (172, 138, 115)),
    "lung_middle_lobe_right": _e(_AS, "72481006", "Middle lobe of right lung", (202, 164, 140)),
    "lung_lower_lobe": _e(_AS, "90572001", "Lower lobe of lung", (224, 186, 162)),
    "trachea": _e(_AS, "44567001", "Trachea", (182, 228, 255)),
    "thyroid": _e(_AS, "69748006", "Thyroid", (62, 162, 114)),
    "thyroid_gland": _e(_AS, "69748006", "Thyroid", (62, 162, 114)),
    "kidney_cyst": _e(ALTERED, "367643001", "Cyst", (205, 205, 100), region=_KIDNEY),
    # skeleton and muscles
    "skull": _e(_AS, "89546000", "Skull", (241, 213, 144)),
    "rib": _e(_AS, "113197003", "Rib", (253, 232, 158)),
    "sternum": _e(_AS, "56873002", "Sternum", (244, 217, 154)),
    "costal_cartilages": _e(_AS, "244703004", "Costal Cartilage", (111, 184, 210)),
    "sacrum": _e(_AS, "54735007", "Sacrum", _L_SPINE),
    "hip": _e(_AS, "29836001", "Hip", _L_SPINE),
    "femur": _e(_AS, "71341001", "Femur", (255, 238, 170)),
    "humerus": _e(_AS, "85050009", "Humerus", (205, 179, 108)),
    "scapula": _e(_AS, "79601000", "Scapula", _L_SPINE),
    "clavicula": _e(_AS, "51299004", "Clavicle", (205, 179, 108)),
    "clavicle": _e(_AS, "51299004", "Clavicle", (205, 179, 108)),
    "iliopsoas": _e(_AS, "68455001", "Iliopsoas muscle", (188, 95, 76)),
    "gluteus_maximus": _e(_AS, "181674001", "Gluteus maximus muscle", (188, 95, 76)),
    "gluteus_medius": _e(_AS, "78333006", "Gluteus medius muscle", (178, 105, 76)),
    "gluteus_minimus": _e(_AS, "75297007", "Gluteus minimus muscle", (178, 95, 86)),
    "autochthon": _e(_AS, "244849004", "Deep muscle of back", (171, 85, 68)),
    # central nervous system (colours: FreeSurferColorLUT; codes: DICOM CID 7140 / Slicer)
    "brain": _e(_AS, "12738006", "Brain", (250, 250, 225)),
    "spinal_cord": _e(_AS, "2748008", "Spinal cord", (244, 214, 49)),
    "cerebral_white_matter": _e(_AS, "68523003", "Cerebral White Matter", (245, 245, 245)),
    "cerebral_cortex": _e(_AS, "40146001", "Cerebral cortex", (205, 62, 78)),
    "lateral_ventricle": _e(_AS, "66720007", "Lateral ventricle", (120, 18, 134)),
    "cerebellum_white_matter": _e(_AS, "33060004", "Cerebellar white matter", (220, 248, 164)),
    "cerebellum_cortex": _e(_AS, "25991003", "Cerebellar cortex", (230, 148, 34)),
    "thalamus": _e(_AS, "119406000", "Thalamus", (0, 118, 14)),
    "caudate": _e(_AS, "11000004", "Caudate nucleus", (122, 186, 220)),
    "putamen": _e(_AS, "89278009", "Putamen", (236, 13, 176)),
    "pallidum": _e(_AS, "14738005", "Globus pallidus", (12, 48, 255)),
    "third_ventricle": _e(_AS, "49841001", "Third ventricle", (204, 182, 142)),
    "fourth_ventricle": _e(_AS, "35918002", "Fourth ventricle", (42, 204, 164)),
    "brainstem": _e(_AS, "119238007", "Brain stem", (119, 159, 176)),
    "hippocampus": _e(_AS, "5366008", "Hippocampus", (220, 216, 20)),
    "amygdala": _e(_AS, "4958002", "Amygdala", (103, 255, 255)),
    "accumbens": _e(_AS, "427667007", "Nucleus accumbens", (255, 165, 0)),
    # FreeSurfer's "ventral DC" (hypothalamus and neighbours) has no own concept: Diencephalon
    "ventral_dc": _e(_AS, "87563008", "Diencephalon", (165, 42, 42)),
    # tissues
    "bone": _e(TISSUE, "272673000", "Bone", (241, 214, 145)),
    "muscle": _e(TISSUE, "71616004", "Muscle", (192, 104, 88)),
    "fat": _e(TISSUE, "248300009", "Body fat", (230, 220, 70)),
    "skin": _e(TISSUE, "39937001", "Skin", (177, 122, 101)),
    "artery": _e(TISSUE, "51114001", "Artery", (216, 101, 79)),
    "vein": _e(TISSUE, "29092000", "Vein", _VEIN_BLUE),
    # lesions
    "mass": _e(ALTERED, "4147007", "Mass", (144, 238, 144)),
    "tumor": _e(ALTERED, "4147007", "Mass", (144, 238, 144)),
    "tumour": _e(ALTERED, "4147007", "Mass", (144, 238, 144)),
    "lesion": _e(ALTERED, "4147007", "Mass", (144, 238, 144)),
    "cyst": _e(ALTERED, "367643001", "Cyst", (205, 205, 100)),
    "necrosis": _e(ALTERED, "6574001", "Necrosis", (216, 191, 216)),
    "edema": _e(ALTERED, "79654002", "Edema", (140, 224, 228)),
    "oedema": _e(ALTERED, "79654002", "Edema", (140, 224, 228)),
}

_RIBS = (
    "48535007 First",
    "78247007 Second",
    "25888004 Third",
    "25523003 Fourth",
    "15339008 Fifth",
    "59558009 Sixth",
    "24915002 Seventh",
    "5953002 Eighth",
    "22565002 Ninth",
    "77644006 Tenth",
    "58830002 Eleventh",
    "43993008 Twelfth",
)
for _n, _item in enumerate(_RIBS, start=1):
    _code, _ordinal = _item.split()
    _TABLE[f"rib_{_n}"] = _e(_AS, _code, f"{_ordinal} rib", (253, 232, 158))

_VERTEBRAE = {
    "c1": "14806007",
    "c2": "39976000",
    "c3": "113205007",
    "c4": "5329002",
    "c5": "36978003",
    "c6": "36054005",
    "c7": "87391001",
    "t1": "64864005",
    "t2": "53733008",
    "t3": "1626008",
    "t4": "73071006",
    "t5": "56401006",
    "t6": "45296009",
    "t7": "62487009",
    "t8": "11068009",
    "t9": "82687006",
    "t10": "7610001",
    "t11": "12989004",
    "t12": "23215003",
    "l1": "66794005",
    "l2": "14293000",
    "l3": "36470004",
    "l4": "11994002",
    "l5": "49668003",
    "s1": "65985001",
}
_SPINE_COLOR = {"c": _C_SPINE, "t": _T_SPINE, "l": _L_SPINE, "s": _L_SPINE}
for _level, _code in _VERTEBRAE.items():
    _TABLE[f"vertebrae_{_level}"] = _e(_AS, _code, f"{_level.upper()} vertebra", _SPINE_COLOR[_level[0]])

#: Other spellings of table keys (FreeSurfer, TotalSegmentator MR, plain English).
_ALIASES: dict[str, str] = {
    "3rd_ventricle": "third_ventricle",
    "4th_ventricle": "fourth_ventricle",
    "brain_stem": "brainstem",
    "thalamus_proper": "thalamus",
    "ventraldc": "ventral_dc",
    "accumbens_area": "accumbens",
    "nucleus_accumbens": "accumbens",
    "cerebellar_cortex": "cerebellum_cortex",
    "cerebellar_white_matter": "cerebellum_white_matter",
    "caudate_nucleus": "caudate",
    "globus_pallidus": "pallidum",
    "ivc": "inferior_vena_cava",
    "svc": "superior_vena_cava",
    "ribs": "rib",
}

#: Slicer colours that differ by side: (key, side) → RGB.
_SIDE_COLORS: dict[tuple[str, str], RGB] = {
    ("subclavian_artery", "right"): (216, 101, 89),
    ("subclavian_artery", "left"): (216, 101, 69),
    ("common_carotid_artery", "right"): (0, 112, 165),
    ("common_carotid_artery", "left"): (10, 105, 155),
    ("brachiocephalic_vein", "left"): (0, 161, 196),
}

_SIDES = {"left": "left", "right": "right", "l": "left", "r": "right"}


def normalise_name(name: str) -> str:
    """``"Kidney Left"`` → ``"kidney_left"``, ``"Left-Cerebellum-Cortex"`` → ``"left_cerebellum_cortex"``."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def lookup_anatomy(name: str) -> Anatomy | None:
    """Default colour and terminology for ``name``, or ``None`` if the structure is not in the table.

    Example:
        >>> a = lookup_anatomy("kidney_left")
        >>> a.color, a.terminology.type.meaning, a.terminology.modifier.meaning
        ((185, 102, 83), 'Kidney', 'Left')
    """
    key = normalise_name(name)
    found = _find(key)
    if found is None:
        return None
    base, side = found
    entry = _TABLE[base]
    modifier = None if side is None else (LEFT if side == "left" else RIGHT)
    color = _SIDE_COLORS.get((base, side or ""), entry.color)
    type_code = Code(entry.code, "SCT", entry.meaning)
    if entry.region is not None:
        terminology = Terminology(entry.category, type_code, None, entry.region, modifier)
    else:
        terminology = Terminology(entry.category, type_code, modifier)
    return Anatomy(color=color, terminology=terminology)


def known_structures() -> tuple[str, ...]:
    """The table's structure names (without laterality), sorted."""
    return tuple(sorted(_TABLE))


def _canonical(key: str) -> str | None:
    key = _ALIASES.get(key, key)
    return key if key in _TABLE else None


def _find(key: str) -> tuple[str, str | None] | None:
    """(table key, side or None) for a normalised name."""
    exact = _canonical(key)
    if exact is not None:
        return exact, None
    tokens = key.split("_")
    for i, token in enumerate(tokens):
        side = _SIDES.get(token)
        if side is None or (len(token) == 1 and i != len(tokens) - 1):
            continue  # a lone "l"/"r" counts only as the last token ("vertebrae_l1" is no side)
        rest = _canonical("_".join(tokens[:i] + tokens[i + 1 :]))
        if rest is not None:
            return rest, side
    return None
