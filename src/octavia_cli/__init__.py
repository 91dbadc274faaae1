"""Octavia: dub video and audio into other languages on your own machine.

Importing this package is cheap on purpose: the command line imports it to answer
``--help`` and ``--version``, so nothing heavy (torch, CTranslate2, ONNX Runtime) may be
imported at module level anywhere on that path.
"""

__version__ = "0.1.0"
