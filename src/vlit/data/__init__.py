"""Instruction data, in the order a row travels:

- `reading/`: files into `Conversation`s (LLaVA JSON / JSONL read by content, images decoded safely, every
  row validated);
- `sources/`: vlit's own data (Fashion-MNIST, rendered scenes) as task records, and the quickstart build;
- `convert/`: the public sets the papers train on (COCO, VQAv2, GQA, RefCOCO, ...) from their release files
  into rows with task records (`vlit data convert`);
- `prompting/`: how a task record becomes a prompt and an answer is read back (task specs, templates, prompt
  styles, boxes as text, chat templates);
- `loading/`: rows into model batches (datasets, the mixture, the batch sampler, image transforms, the
  processor and its typed `Batch`).

`conversation.py` holds the one data object every step passes on. Nothing here imports `vlit.models`.
"""
