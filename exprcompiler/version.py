"""The version, in a module of its own: the backends print it into generated code and
the cache keys on it, without importing the package (and its front door) itself."""

__version__ = "0.1.0"
