"""HPTR: bottom-up multi-task human parsing transformer (Loesch & Audigier, ICIP 2021)."""

from describeme.models.hptr.model import HPTR, MODEL_NAME, OUTPUT_NAMES, build_hptr

__all__ = ["HPTR", "MODEL_NAME", "OUTPUT_NAMES", "build_hptr"]
