"""hps-api: provisioning API for bare-metal clusters.

Importing this package is cheap on purpose: the config CLIs import the store through it and must
start fast, so nothing here imports Flask.
"""

__version__ = "0.1.0"
