"""Serving: an OpenAI-compatible API server that batches concurrent requests (`vlit serve`), and a web demo
(`vlit demo`)."""
