"""Loading: rows into model batches. Datasets with their prompt style (`dataset`), the sqrt-balanced mixture
(`mixture`), batches grouped by modality and length (`batching`), the rank-aware batch sampler and the
DataLoader's dataset (`loader`), images made square with their box geometry (`transforms`), and the processor
that tokenizes, expands image markers and builds the typed `Batch` (`batch`) with the side inputs connectors
declare (`side_inputs`)."""
