"""Ray actor graph: the only package that imports ray."""
