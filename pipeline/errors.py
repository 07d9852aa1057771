"""Errors the CLI turns into a message and an exit code instead of a traceback."""


class UserError(Exception):
    """Bad input from the user (file, flag, config). The CLI prints it and exits 2."""

    exit_code = 2


class ConfigError(UserError):
    """A config key that does not exist or a value of the wrong type; names the key."""
