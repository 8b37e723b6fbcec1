"""Dataset file formats read into and written from `Conversation`."""

from vlit.data.formats.llava import (
    Problem,
    RawRow,
    RowError,
    conversation_to_row,
    dumps_conversations,
    iter_raw_rows,
    parse_row,
    read_conversations,
    read_questions,
    row_images,
    row_problems,
    write_conversations,
)

__all__ = [
    "Problem",
    "RawRow",
    "RowError",
    "conversation_to_row",
    "dumps_conversations",
    "iter_raw_rows",
    "parse_row",
    "read_conversations",
    "read_questions",
    "row_images",
    "row_problems",
    "write_conversations",
]
