"""The one exception type that reaches users as a clean message and a non-zero exit."""


class DvmapError(Exception):
    """A problem with the user's input or configuration; the message names the file, column or key."""
