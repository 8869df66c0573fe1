"""Plain-Python stages: tracking, description, storage, search.

numpy/scipy/redis only; no ray, no torch.
"""
