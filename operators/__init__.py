"""Plain-Python stages: tracking, description, storage, search (numpy/scipy/redis; no ray, no torch)."""
