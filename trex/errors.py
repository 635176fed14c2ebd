"""The one exception type for mistakes a user makes (a bad target, a wrong or damaged checkpoint, a
resume file of another run, models that do not fit together). Entry points print its message, with
no traceback, and exit with status 2; anything else is a bug and keeps its traceback."""


class UserError(ValueError):
    """What is wrong and how to fix it, in a line or two."""
