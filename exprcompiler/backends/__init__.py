"""Backends: a trace becomes source code in a target language, and a callable."""
