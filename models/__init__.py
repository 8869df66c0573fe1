"""Torch models (HPTR, PersonLab), losses, decoding, metrics, training and export (no ray)."""
