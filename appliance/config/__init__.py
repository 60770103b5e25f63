"""nanomq.conf (HOCON) and NanoMQ's environment variables -> one validated, frozen Config.

`load_config(path)` returns a LoadedConfig (`.config`, `.warnings`) or raises ConfigError,
whose str is one line: `<file>:<line>: <key.path>: <problem>`. Key reference: reference.py.
"""

from .errors import ConfigError
from .loader import LoadedConfig, default_config_path, load_config, load_config_text
from .model import Config
from .reference import KEYS, describe_keys

__all__ = [
    "Config",
    "ConfigError",
    "KEYS",
    "LoadedConfig",
    "default_config_path",
    "describe_keys",
    "load_config",
    "load_config_text",
]
