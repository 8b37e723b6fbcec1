"""Prompting: how a row's task record becomes the text a model reads and how an answer is read back. One spec
per task type (`tasks`), its instruction templates (`templates`), the three papers' prompt styles (`styles`),
boxes as text (`boxes`), the papers' own benchmark prompts (`benchmarks`) and the chat templates that wrap a
conversation for an LLM (`chat_templates`)."""
