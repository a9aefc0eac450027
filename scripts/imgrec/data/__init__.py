"""Data: sources (``sources``) and the canonical prepared format (``prepared``)."""

from imgrec.data.prepared import DatasetError, PreparedDataset, Split, load_prepared, write_prepared  # noqa: F401
from imgrec.data.sources import SOURCES, load_source  # noqa: F401
