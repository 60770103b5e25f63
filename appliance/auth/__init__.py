"""Who may connect and what they may do: passwords, NanoMQ's ACL rules and HTTP auth.

`AccessControl` (access.py) is what the broker asks; `python -m appliance.auth hash`
makes a hashed password-file entry.
"""
