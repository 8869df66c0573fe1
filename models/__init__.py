"""Torch models (HPTR, PersonLab), losses, decoding, training and export (no ray)."""
