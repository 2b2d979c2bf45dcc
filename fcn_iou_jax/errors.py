"""The one exception type for problems a user can fix (bad flags, files, data)."""


class UserError(Exception):
  """A problem with the user's input; command lines print it as one line and exit 2."""


class DivergedError(UserError):
  """The training loss became NaN or infinite."""
