"""The bundled platform guidelines and their search index (`index.py`)."""
