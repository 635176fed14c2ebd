"""Analyses of sample sets: pure functions of SampleSets, arrays and torch modules."""
from .typicality import Typicality, annotate

__all__ = ["Typicality", "annotate"]
