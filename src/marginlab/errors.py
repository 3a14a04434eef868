"""The one exception type for mistakes a user can fix.

Everything raised as a :class:`UserError` (a bad configuration field, a damaged or locked
run directory, a file that cannot be written) carries a message that names the field,
file or argument and says what to do. The command line prints it as one line
``marginlab: error: ...`` and exits with status 2; anything else that escapes is a bug.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with what the user gave or with their files, not a bug in marginlab.

    Examples
    --------
    >>> from marginlab.config import ConfigError
    >>> issubclass(ConfigError, UserError)
    True
    """
