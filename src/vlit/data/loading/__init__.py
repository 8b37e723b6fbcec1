"""Loading: rows into model batches. Datasets with their prompt style (`dataset`), the sqrt-balanced mixture
(`mixture`), batches grouped by modality and length (`batching`), images made square with their box geometry
(`transforms`), and the processor that tokenizes, expands image markers and builds the typed `Batch`."""
