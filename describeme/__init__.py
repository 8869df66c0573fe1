"""describeme: describe and find people in video.

Importing the root package is cheap: it pulls in neither torch, ray, av nor redis. The heavy
subpackages (``describeme.pipeline`` for Ray, ``describeme.models`` for torch) load on demand.
"""

__version__ = "0.1.0"
