"""Korean text analysis shared by data building, benchmarks and the cluster's BM25 field (the lowest layer)."""
