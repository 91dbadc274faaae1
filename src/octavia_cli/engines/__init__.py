"""Engines: one sub-package per kind (asr, mt, tts), a Protocol per kind, backends by name.

Backends import their heavy libraries inside functions, so importing a registry costs
nothing; constructors load nothing either: models load on first use.
"""
