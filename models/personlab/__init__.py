"""PersonLab (Papandreou et al., ECCV 2018): bottom-up poses and person instances from keypoint
heatmaps, short/mid/long-range offsets and a geometric embedding, plus the CCIHP semantic heads.

Call :func:`register` (from :mod:`.parser`) to make ``personlab`` checkpoints loadable by
:func:`describeme.models.checkpoint.load_checkpoint` and parseable by
:func:`describeme.models.registry.load_parser`; importing the package changes no global table.
"""

from describeme.models.personlab.model import (
    MODEL_NAME,
    OUTPUT_NAMES,
    PersonLab,
    build_personlab,
    default_disk_radius,
)
from describeme.models.personlab.parser import register

__all__ = [
    "MODEL_NAME",
    "OUTPUT_NAMES",
    "PersonLab",
    "build_personlab",
    "default_disk_radius",
    "register",
]
