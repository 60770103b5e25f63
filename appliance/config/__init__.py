"""nanomq.conf (HOCON) and NanoMQ's environment variables -> one validated, frozen Config.

`load_config(path)` returns a LoadedConfig (`.config`, `.warnings`) or raises ConfigError,
whose str is one line: `<file>:<line>: <key.path>: <problem>`. Keys are declared once in
model.py with keys.key(); reference.table() lists them all.
"""

from .errors import ConfigError, StartupError
from .loader import LoadedConfig, default_config_path, load_config, load_config_text
from .model import Config
from .reference import markdown, table

__all__ = [
    "Config",
    "ConfigError",
    "LoadedConfig",
    "StartupError",
    "default_config_path",
    "load_config",
    "load_config_text",
    "markdown",
    "table",
]
