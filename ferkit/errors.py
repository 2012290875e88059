"""The project's error type: what a user did wrong, said in one line."""


class FERError(Exception):
    """Bad input (a file, a row, an argument). Scripts print it as one stderr line and exit 2."""
