"""PersonLab (Papandreou et al., ECCV 2018): bottom-up poses and person instances from keypoint
heatmaps, short/mid/long-range offsets and a geometric embedding, plus the CCIHP semantic heads.

Importing the package registers ``personlab`` checkpoints with
:func:`describeme.models.checkpoint.register_model`.
"""

from describeme.models.checkpoint import register_model
from describeme.models.personlab.model import (
    MODEL_NAME,
    OUTPUT_NAMES,
    PersonLab,
    build_personlab,
    default_disk_radius,
)

register_model(MODEL_NAME, "describeme.models.personlab.model:build_personlab")

__all__ = ["MODEL_NAME", "OUTPUT_NAMES", "PersonLab", "build_personlab", "default_disk_radius"]
