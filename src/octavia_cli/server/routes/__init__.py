"""The API's routes under ``/api/v1``, one router per resource; what they share (the
server's parts, the caller's identity, errors) is in :mod:`.deps`."""
