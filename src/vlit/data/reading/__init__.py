"""Reading: dataset files into `Conversation`s (LLaVA JSON / JSONL), images decoded into RGB, validation
that names every bad row (a row's task record checked as prompt styles read it), and the raw releases that
training sets and benchmarks share (`fields`, `vqa`, `refer`). The first step a row takes; nothing here renders
prompts or knows about models."""
