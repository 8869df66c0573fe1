"""Datasets: the synthetic scene engine, readers for CIHP/CCIHP, COCO and our own output."""
