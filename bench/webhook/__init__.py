"""WebHook benchmark (python -m bench.webhook)."""
