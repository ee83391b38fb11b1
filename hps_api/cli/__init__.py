"""Console scripts: thin over the same library the server uses, and free of Flask imports."""
