"""Tests of the foundations Python SDK against a real atlas-server (see atlas_server.py)."""
