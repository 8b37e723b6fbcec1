"""The Jinja scaffolding shared by the chat templates' Jinja forms (`ChatTemplate.jinja`).

A Jinja form renders transformers-style messages (`{"role", "content"}`, content a string or a list of
`{"type": "image"}` / `{"type": "text", "text": ...}` parts) to exactly the text `ChatTemplate.render` gives
for the same conversation. A list of parts is read as vlit's server reads it: the parts joined with newlines,
an image part as the image marker, so `[image, text]` is LLaVA's `<image>\\nquestion`.

transformers renders with `trim_blocks` and `lstrip_blocks`; every tag here trims the source around it and all
text is printed by expressions, so the layout of the source never reaches the prompt.
"""

from __future__ import annotations

import json

from vlit.data.conversation import IMAGE_TOKEN


def literal(text: str) -> str:
    """`text` as a Jinja string literal. Jinja unescapes a literal as Python's `unicode-escape` does, which
    reads JSON's escapes (quotes, backslashes, control characters) back exactly."""
    return json.dumps(text, ensure_ascii=False)


def content_macro(image: str) -> str:
    """`vlit_text(content)`: a message's content as vlit's text, each image part printed as `image`; and
    `marker`, vlit's image marker, which the templates place and wrap as their Python halves do."""
    return (
        "{%- set marker = " + literal(IMAGE_TOKEN) + " -%}\n"
        "{%- macro vlit_text(content) -%}\n"
        "  {%- if content is string -%}\n"
        "    {{- content -}}\n"
        "  {%- else -%}\n"
        "    {%- for part in content -%}\n"
        '      {%- if not loop.first -%}{{- "\\n" -}}{%- endif -%}\n'
        '      {%- if part["type"] == "image" -%}\n'
        "        {{- " + literal(image) + " -}}\n"
        '      {%- elif part["type"] == "text" -%}\n'
        '        {{- part["text"] -}}\n'
        "      {%- else -%}\n"
        '        {{- raise_exception("vlit templates take text and image parts, not " ~ part["type"]) -}}\n'
        "      {%- endif -%}\n"
        "    {%- endfor -%}\n"
        "  {%- endif -%}\n"
        "{%- endmacro -%}\n"
    )


def turns_form(system: str, begin: str, user: str, assistant_prefix: str, answer_prefix: str, answer_suffix: str,
               after_assistant: str) -> str:
    """The turn loop of `ChatTemplate.render`: a leading system message (else `system`), then alternating user
    and assistant messages. `begin` and `user` are Jinja reading `system`, `text` and `loop.first`; the learned
    answer is `answer_prefix`, the text, then the Jinja expression `answer_suffix`, inside `{% generation %}`
    so that transformers' assistant mask is vlit's loss mask."""
    prefix = _print(assistant_prefix, "    ")
    return (
        '{%- if messages and messages[0]["role"] == "system" -%}\n'
        '  {%- set system = vlit_text(messages[0]["content"]) -%}\n'
        "  {%- set turns = messages[1:] -%}\n"
        "{%- else -%}\n"
        "  {%- set system = " + literal(system) + " -%}\n"
        "  {%- set turns = messages -%}\n"
        "{%- endif -%}\n"
        + begin +
        "{%- for message in turns -%}\n"
        '  {%- if message["role"] != ["user", "assistant"][loop.index0 % 2] -%}\n'
        '    {{- raise_exception("messages: a system message only first, then user and assistant in turn") -}}\n'
        "  {%- endif -%}\n"
        '  {%- set text = vlit_text(message["content"]) -%}\n'
        '  {%- if message["role"] == "user" -%}\n'
        + "".join(f"    {line}\n" for line in user.splitlines()) +
        "  {%- else -%}\n"
        + prefix +
        "    {%- generation -%}{{- " + literal(answer_prefix) + " ~ text ~ " + answer_suffix + " -}}"
        "{%- endgeneration -%}\n"
        + _print(after_assistant, "    ") +
        "  {%- endif -%}\n"
        "{%- endfor -%}\n"
        + ('{%- if add_generation_prompt and turns and turns[-1]["role"] == "user" -%}\n'
           + _print(assistant_prefix, "  ") + "{%- endif -%}\n" if assistant_prefix else "")
    )


def _print(text: str, indent: str) -> str:
    return f"{indent}{{{{- {literal(text)} -}}}}\n" if text else ""


def own_template_form(system: str | None, template: str) -> str:
    """An LLM's own chat template, taking part lists and vlit's system prompt: a preamble rewrites `messages`
    as `LLMOwnTemplate.render` (own_template.py) passes them (content as text, an empty system message dropped,
    `system` first when the messages have none), then the template itself runs unchanged."""
    baked = (
        '{%- if not (messages and messages[0]["role"] == "system") -%}\n'
        '  {%- set ns.messages = [{"role": "system", "content": ' + literal(system) + "}] + ns.messages -%}\n"
        "{%- endif -%}\n"
    ) if system else ""
    # The last tag keeps the newline after it for trim_blocks to eat: the template then starts a line, as alone.
    return (
        "{%- set ns = namespace(messages=[]) -%}\n"
        "{%- for message in messages -%}\n"
        '  {%- if loop.first and message["role"] == "system" and not vlit_text(message["content"]) -%}\n'
        '  {%- elif message["content"] is string -%}\n'
        "    {%- set ns.messages = ns.messages + [message] -%}\n"
        "  {%- else -%}\n"
        '    {%- set ns.messages = ns.messages + [dict(message, content=vlit_text(message["content"]))] -%}\n'
        "  {%- endif -%}\n"
        "{%- endfor -%}\n"
        + baked +
        "{%- set messages = ns.messages %}\n"
        + template
    )
