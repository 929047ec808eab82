"""ko-sparse: Korean neural sparse (SPLADE) search on OpenSearch."""

__version__ = "0.1.0"
