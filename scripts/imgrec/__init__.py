"""imgrec: the Python side of the "image recognition with JAX" pipeline.

Small single-purpose modules (nanodo style): ``data`` (sources and the prepared
format), ``models`` (a registry chosen by name), ``precision``, ``optim``,
``train`` (one trainer), ``metrics``, ``evaluate``, ``provenance``, ``recap``.
The thin entry points next to this package (``scripts/*.py``) are what the
Snakemake rules call.
"""

__version__ = "0.1.0"
