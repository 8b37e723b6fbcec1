"""The request fields beyond sampling: tools (refused), ranked choices, grammars and log-probabilities; each read
into what the worker does with it, or refused with a 400 naming it.

`guided_choice` answers by ranking (InstructBLIP's constrained decoding for classification and multiple choice:
the choice with the highest log-likelihood, `Pipeline.rank`, the code path of `vlit ask --candidates`), so the
fields that shape decoding have nothing to act on beside it and are refused with it. `response_format`,
`guided_json` and `guided_regex` constrain decoding with a grammar (`vlit.inference.constraints`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from vlit.serving.errors import APIError
from vlit.serving.schema import ChatRequest

NO_TOOLS = ("this model was not trained on a tool-call format, so this server offers no tool calls; send the "
            "conversation without tools")
# Fields that shape decoding, which a ranked answer never runs.
DECODING_FIELDS = ("temperature", "top_p", "top_k", "min_p", "seed", "stop", "stop_token_ids", "max_tokens",
                   "max_completion_tokens", "min_tokens", "frequency_penalty", "presence_penalty",
                   "repetition_penalty", "logit_bias", "logprobs", "top_logprobs")


@dataclass(frozen=True)
class Decoding:
    """How the worker answers beyond `GenerationOptions`."""

    choices: tuple[str, ...] | None = None
    """Rank these answers instead of decoding."""
    grammar: tuple[str, object, str] | None = None
    """("json", schema or None for any object, field) or ("regex", pattern, field), compiled by the
    `PromptEncoder`; `field` names the request field that asked for it."""
    top_logprobs: int | None = None
    """Log-probabilities wanted, with this many alternatives per token; None: none."""


def refuse_tools(request: ChatRequest) -> None:
    """400 for tools, a tool choice, or a conversation holding tool calls or results, naming the field."""
    if request.tools:
        raise APIError(400, f"tools: {NO_TOOLS}", "tools", "tools_not_supported")
    if request.tool_choice not in (None, "none"):
        raise APIError(400, f"tool_choice: {NO_TOOLS}", "tool_choice", "tools_not_supported")
    for i, m in enumerate(request.messages):
        if m.role in ("tool", "function"):
            raise APIError(400, f"messages[{i}]: a {m.role} result, but {NO_TOOLS}", f"messages[{i}].role",
                           "tools_not_supported")
        for name in ("tool_calls", "tool_call_id", "function_call"):
            if getattr(m, name):
                raise APIError(400, f"messages[{i}].{name}: {NO_TOOLS}", f"messages[{i}].{name}",
                               "tools_not_supported")
        if m.name is not None:
            raise APIError(400, f"messages[{i}].name: participant names are not supported (the chat template has "
                                "no place for them)", f"messages[{i}].name")
        if m.content is None:
            raise APIError(400, f"messages[{i}].content: required", f"messages[{i}].content")


def decoding(request: ChatRequest) -> Decoding:
    """The request's choices, grammar and log-probabilities; 400 for a combination that cannot be honoured."""
    grammar = _grammar(request)
    if request.top_logprobs is not None and not request.logprobs:
        raise APIError(400, "top_logprobs: needs logprobs: true", "top_logprobs")
    top = (request.top_logprobs or 0) if request.logprobs else None
    if request.guided_choice is None:
        return Decoding(None, grammar, top)
    choices = tuple(request.guided_choice)
    if len(set(choices)) < len(choices):
        raise APIError(400, "guided_choice: a choice is given twice", "guided_choice")
    if grammar is not None:
        raise APIError(400, "guided_choice: give one constraint, not guided_choice and a grammar "
                            "(response_format, guided_json, guided_regex)", "guided_choice")
    given = request.model_fields_set
    for name in DECODING_FIELDS:
        if name in given and getattr(request, name) not in (None, False):
            raise APIError(400, f"{name}: not used with guided_choice, whose answer is the most likely choice "
                                "(ranked, not decoded; message.scores holds every choice's log-likelihood)", name)
    return Decoding(choices, None, None)


def _grammar(request: ChatRequest) -> tuple[str, object, str] | None:
    found = []
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_object":
        found.append(("response_format", ("json", None)))
    elif fmt is not None and fmt.type == "json_schema":
        if fmt.json_schema is None:
            raise APIError(400, "response_format.json_schema: required when type is json_schema",
                           "response_format.json_schema")
        found.append(("response_format", ("json", fmt.json_schema.json_schema)))
    if request.guided_json is not None:
        schema = request.guided_json
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as e:
                raise APIError(400, f"guided_json: not JSON ({e})", "guided_json") from None
        if not isinstance(schema, dict):
            raise APIError(400, "guided_json: must be a JSON schema object", "guided_json")
        found.append(("guided_json", ("json", schema)))
    if request.guided_regex is not None:
        found.append(("guided_regex", ("regex", request.guided_regex)))
    if len(found) > 1:
        raise APIError(400, f"{found[1][0]}: give one grammar, not {found[0][0]} and {found[1][0]}", found[1][0])
    return (*found[0][1], found[0][0]) if found else None
