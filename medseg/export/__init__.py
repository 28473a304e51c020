"""Clinical export: Slicer ``.seg.nrrd``, DICOM SEG, plain label maps, statistics, previews, reports.

:func:`export_labelmap` is the single entry point ``medseg export`` and ``medseg infer`` use; the format
follows the output's extension. Heavy dependencies (highdicom, matplotlib) load only when used.
"""

from medseg.export.exporter import EXPORT_EXTENSIONS, export_labelmap
from medseg.export.preview import write_preview
from medseg.export.report import CaseSummary, write_cohort_report, write_report
from medseg.export.statistics import StructureStatistics, compute_statistics, write_statistics

__all__ = [
    "EXPORT_EXTENSIONS",
    "CaseSummary",
    "StructureStatistics",
    "compute_statistics",
    "export_labelmap",
    "write_cohort_report",
    "write_preview",
    "write_report",
    "write_statistics",
]
