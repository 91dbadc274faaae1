"""``octavia serve``: Octavia's stages as jobs over HTTP (FastAPI + uvicorn, SQLite)."""
