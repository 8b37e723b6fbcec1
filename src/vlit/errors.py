"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class VlitError(Exception):
    """A user-facing error: bad config, bad data file, missing part. Its message is the whole story."""
