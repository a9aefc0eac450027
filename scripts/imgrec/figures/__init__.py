"""Figures stage: slide-ready, byte-for-byte reproducible plots.

``style`` holds the shared look and the deterministic ``save_figure``;
each other module renders one figure and has a ``python -m`` entry point.
"""
