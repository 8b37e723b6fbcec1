"""`vlit.inference.stopping`: answers cut at stop strings, whole or while they stream."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vlit.inference.stopping import StopCutter, cut_at_stop


def test_stop_cutter_holds_back_a_split_stop_string():
    cutter = StopCutter(("<|im_end|>",))
    out = [cutter.feed(c) for c in ("  hel", "lo <|im", "_end|> more", " text")] + [cutter.finish()]
    assert out == ["hel", "lo", "", "", ""]


_STOPS = ("<|im_end|>", "\n\n", "END")


@settings(deadline=None)
@given(st.lists(st.sampled_from(["a", " ", "\n", "<|im", "_end|>", "E", "ND", "xy", "<", "|"]), max_size=12),
       st.data())
def test_streamed_cut_equals_the_whole_cut(parts, data):
    """However the text is chunked, streaming emits exactly what cutting the whole text gives."""
    text = "".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=6)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    cutter = StopCutter(_STOPS)
    streamed = "".join(cutter.feed(c) for c in chunks) + cutter.finish()
    assert streamed == cut_at_stop(text, _STOPS).strip()
