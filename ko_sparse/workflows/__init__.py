"""Cluster workflows that need the model: encode and index a corpus, register a packaged model.

They sit at the pipeline's opensearch tier (above export) and use the torch-free client in
:mod:`ko_sparse.opensearch`, which sits just above text and imports no torch.
"""
