"""Errors that both the config and the task catalogue raise; their own module so that
grokcore.task can raise ConfigError without importing grokcore.config, which imports it."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value that is not allowed; the message names the field."""

    def __init__(self, field_name: str, message: str):
        self.field_name = field_name
        super().__init__(f"{field_name}: {message}")
