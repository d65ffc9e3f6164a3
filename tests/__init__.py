"""Tests of ComposeXMesh."""
