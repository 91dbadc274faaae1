"""Stages of the dub: each a function ``(project, ..., hook)`` that reads the manifest, adds
to it and saves it. ``pipeline.dub`` composes them; the CLI commands call them one by one."""
