"""`vlit data convert`: the public datasets the papers train on, from the files their releases ship, into LLaVA
JSON rows that carry a task record, ready for `vlit train`.

- `items`: what a reader yields per example (an image and a task record, a LLaVA row passed through, or a bad
  row's one-line reason);
- `captions`, `questions`, `regions`, `passthrough`: one reader per release layout;
- `sources`: the one table of the sets vlit converts (name -> reader, files, category) and of the sets each
  paper holds out;
- `pipeline`: reading, a paper's augmentations (LLaVA-1.5's option orders and QA merge), rendering in a prompt
  style and writing.
"""
