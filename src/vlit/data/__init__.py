"""Instruction data: conversations, formats, templates, sources, mixtures, and the model-side processor."""
