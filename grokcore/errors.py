"""The error types a user's input can raise, in their own module so that every layer can raise them.

ConfigError: both the config and the task catalogue raise it, so it lives here rather than in
grokcore.config (which imports the catalogue). AnalysisError: results that cannot be used; it lives
here, not in analysis, because grokcore.damage (which sweeps, the writer, and analysis, the reader,
both call) raises it, and the writer must not import the reader. analysis.errors re-exports it."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value that is not allowed; the message names the field."""

    def __init__(self, field_name: str, message: str):
        self.field_name = field_name
        super().__init__(f"{field_name}: {message}")


class AnalysisError(ValueError):
    """Input that analysis cannot use; the message names the file, column or axis and what is allowed.

    Why one type: the CLI turns it into a one-line message and exit code 2, and a notebook user can
    catch it without also catching real bugs (KeyError, TypeError) that should surface with a traceback.
    """
