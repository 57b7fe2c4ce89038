"""The one exception family evsim raises for bad input.

Every error a user can cause (a missing file, a malformed model, an input spike out of
range) is an :class:`EvsimError`.  The command line turns these into a one-line message
and a non-zero exit, in one place (``cli/main.py``); anything else is a bug.
"""


class EvsimError(Exception):
    """Bad input to evsim: the message says what was wrong, what was received and what
    was expected."""


class ModelFileError(EvsimError):
    """A model file that cannot be read or does not follow the schema."""


class InputFileError(EvsimError):
    """A spike input file that cannot be read or does not follow the SHD layout."""
