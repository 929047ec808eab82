"""Talking to OpenSearch: connections, ML-Commons models, sparse indices and queries."""
