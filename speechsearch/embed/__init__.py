"""Embedders: text (sentence-transformers) now; acoustic and voice embedders live beside it."""

from .text import TextEmbedder

__all__ = ["TextEmbedder"]
