"""Sliding-window inference: the :class:`Predictor` API and file/cohort helpers.

>>> from medseg.inference import Predictor, predict_file  # doctest: +SKIP
>>> predictor = Predictor.from_checkpoint("run/fold_0/best.pt", device="auto")  # doctest: +SKIP
>>> labels = predictor.predict(read_volume("scan.nii.gz"))  # same shape and affine  # doctest: +SKIP
>>> predict_file("scan.nii.gz", "scan_seg.nii.gz", model="brain")  # doctest: +SKIP
"""

from medseg.inference.api import CaseResult, OutputOptions, load_predictor, predict_cohort, predict_file
from medseg.inference.predictor import InferenceOptions, Prediction, Predictor

__all__ = ["CaseResult", "InferenceOptions", "OutputOptions", "Prediction", "Predictor", "load_predictor",
           "predict_cohort", "predict_file"]
