"""The OpenSearch client: connection, retries, bulk writes, ML-Commons, pipelines, index layout and search.

It imports no torch, transformers, sentence-transformers or datasets (only opensearch-py, numpy, scipy and
the Korean morphemes of :mod:`ko_sparse.text`), so it sits just above text and ``ko-sparse search`` starts
fast. What needs the model (encoding and indexing a corpus, registering a package, local query encoding)
is in :mod:`ko_sparse.workflows`.
"""
