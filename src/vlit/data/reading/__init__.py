"""Reading: dataset files into `Conversation`s (LLaVA JSON / JSONL), images decoded into RGB, and validation
that names every bad row. The first step a row takes; nothing here knows about prompts or models."""
