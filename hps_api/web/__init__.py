"""The HTTP layer: thin handlers over the commands and the store."""
