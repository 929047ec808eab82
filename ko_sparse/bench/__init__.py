"""Retrieval benchmarks: Korean test sets, BM25 / sparse / hybrid systems, embedded and on OpenSearch."""
