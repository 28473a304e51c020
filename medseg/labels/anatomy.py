"""A table of common structures → default colour and SNOMED CT terminology.

Colours are 3D Slicer's recommended display colours (``GenericAnatomyColors``), codes are the
SNOMED CT concepts Slicer's terminology uses (see ``../shared/specs/slicer-seg-nrrd.md`` §9).
Names are matched after normalisation (lower case, spaces and hyphens → ``_``), and a laterality
word (``left``/``right``, ``_l``/``_r``) becomes the type modifier: ``kidney_left`` → Kidney + Left.
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


@dataclass(frozen=True)
class Anatomy:
    """Default display colour and terminology of a named structure."""

    color: RGB
    terminology: Terminology


# normalised name → (category, SCT code, meaning, RGB)
_TABLE: dict[str, tuple[Code, str, str, RGB]] = {
    "liver": (ANATOMICAL_STRUCTURE, "10200004", "Liver", (221, 130, 101)),
    "spleen": (ANATOMICAL_STRUCTURE, "78961009", "Spleen", (157, 108, 162)),
    "kidney": (ANATOMICAL_STRUCTURE, "64033007", "Kidney", (185, 102, 83)),
    "adrenal_gland": (ANATOMICAL_STRUCTURE, "23451007", "Adrenal gland", (249, 186, 150)),
    "pancreas": (ANATOMICAL_STRUCTURE, "15776009", "Pancreas", (249, 180, 111)),
    "gallbladder": (ANATOMICAL_STRUCTURE, "28231008", "Gallbladder", (139, 150, 98)),
    "stomach": (ANATOMICAL_STRUCTURE, "69695003", "Stomach", (216, 132, 105)),
    "duodenum": (ANATOMICAL_STRUCTURE, "38848004", "Duodenum", (255, 253, 229)),
    "small_intestine": (ANATOMICAL_STRUCTURE, "30315005", "Small Intestine", (205, 167, 142)),
    "small_bowel": (ANATOMICAL_STRUCTURE, "30315005", "Small Intestine", (205, 167, 142)),
    "colon": (ANATOMICAL_STRUCTURE, "71854001", "Colon", (204, 168, 143)),
    "esophagus": (ANATOMICAL_STRUCTURE, "32849002", "Esophagus", (211, 171, 143)),
    "urinary_bladder": (ANATOMICAL_STRUCTURE, "89837001", "Urinary bladder", (222, 154, 132)),
    "bladder": (ANATOMICAL_STRUCTURE, "89837001", "Urinary bladder", (222, 154, 132)),
    "prostate": (ANATOMICAL_STRUCTURE, "41216001", "Prostate", (230, 158, 140)),
    "uterus": (ANATOMICAL_STRUCTURE, "35039007", "Uterus", (255, 181, 158)),
    "heart": (ANATOMICAL_STRUCTURE, "80891009", "Heart", (206, 110, 84)),
    "aorta": (ANATOMICAL_STRUCTURE, "15825003", "Aorta", (224, 97, 76)),
    "inferior_vena_cava": (ANATOMICAL_STRUCTURE, "64131007", "Inferior vena cava", (0, 151, 206)),
    "portal_vein_and_splenic_vein": (ANATOMICAL_STRUCTURE, "110765007", "Portal vein and splenic vein", (0, 151, 206)),
    "lung": (ANATOMICAL_STRUCTURE, "39607008", "Lung", (197, 165, 145)),
    "trachea": (ANATOMICAL_STRUCTURE, "44567001", "Trachea", (182, 228, 255)),
    "thyroid": (ANATOMICAL_STRUCTURE, "69748006", "Thyroid", (62, 162, 114)),
    "thyroid_gland": (ANATOMICAL_STRUCTURE, "69748006", "Thyroid", (62, 162, 114)),
    "brain": (ANATOMICAL_STRUCTURE, "12738006", "Brain", (250, 250, 225)),
    "spinal_cord": (ANATOMICAL_STRUCTURE, "2748008", "Spinal cord", (244, 214, 49)),
    "skull": (ANATOMICAL_STRUCTURE, "89546000", "Skull", (241, 213, 144)),
    "rib": (ANATOMICAL_STRUCTURE, "113197003", "Rib", (253, 232, 158)),
    "sternum": (ANATOMICAL_STRUCTURE, "56873002", "Sternum", (244, 217, 154)),
    "sacrum": (ANATOMICAL_STRUCTURE, "54735007", "Sacrum", (212, 188, 102)),
    "hip": (ANATOMICAL_STRUCTURE, "29836001", "Hip", (212, 188, 102)),
    "femur": (ANATOMICAL_STRUCTURE, "71341001", "Femur", (255, 238, 170)),
    "iliopsoas": (ANATOMICAL_STRUCTURE, "68455001", "Iliopsoas muscle", (188, 95, 76)),
    "bone": (TISSUE, "272673000", "Bone", (241, 214, 145)),
    "muscle": (TISSUE, "71616004", "Muscle", (192, 104, 88)),
    "fat": (TISSUE, "248300009", "Body fat", (230, 220, 70)),
    "skin": (TISSUE, "39937001", "Skin", (177, 122, 101)),
    "artery": (TISSUE, "51114001", "Artery", (216, 101, 79)),
    "vein": (TISSUE, "29092000", "Vein", (0, 151, 206)),
    "mass": (ALTERED, "4147007", "Mass", (144, 238, 144)),
    "tumor": (ALTERED, "4147007", "Mass", (144, 238, 144)),
    "tumour": (ALTERED, "4147007", "Mass", (144, 238, 144)),
    "lesion": (ALTERED, "4147007", "Mass", (144, 238, 144)),
    "cyst": (ALTERED, "367643001", "Cyst", (205, 205, 100)),
    "necrosis": (ALTERED, "6574001", "Necrosis", (216, 191, 216)),
    "edema": (ALTERED, "79654002", "Edema", (140, 224, 228)),
    "oedema": (ALTERED, "79654002", "Edema", (140, 224, 228)),
}

_LATERALITY = re.compile(r"^(left|right)_(.+)$|^(.+)_(left|right|l|r)$")


def normalise_name(name: str) -> str:
    """``"Kidney Left"`` → ``"kidney_left"``."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def lookup_anatomy(name: str) -> Anatomy | None:
    """Default colour and terminology for ``name``, or ``None`` if the structure is not in the table."""
    key = normalise_name(name)
    modifier = None
    if key not in _TABLE:
        m = _LATERALITY.match(key)
        if m is None:
            return None
        side, key = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        modifier = LEFT if side in ("left", "l") else RIGHT
        if key not in _TABLE:
            return None
    category, code, meaning, color = _TABLE[key]
    return Anatomy(color=color, terminology=Terminology(category, Code(code, "SCT", meaning), modifier))
