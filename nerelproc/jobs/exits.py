"""What the commands exit with (the epilogs of ``nerelproc annotate --help`` and ``batch --help``
say when), and the errors found before any work that end a command with ``EXIT_USAGE``."""

EXIT_OK = 0
EXIT_FATAL = 1  # a bad model, an unreadable input, a full disk; a batch file with no output
EXIT_USAGE = 2  # bad inputs, options or paths, found before anything is read or written
EXIT_SOME_FAILED = 3  # finished, but some input was unusable (each unusable record said so)
EXIT_LOCKED = 4  # another run holds the output


class UsageError(ValueError):
    """Bad inputs, options or paths, found before any work is done (exit ``EXIT_USAGE``)."""
