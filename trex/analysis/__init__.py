"""Analyses of sample sets: pure functions of SampleSets, arrays and torch modules.

ambiguity (pairs found, confidence matrix, ambiguity grid), testset (the test-set baselines),
coverage (level-set coverage), modes (recurring modes), table (the confidence table beside
paper_numbers), typicality, labeler. Import them by module: only typicality loads here, so that
`import trex.analysis` does not pull in scikit-learn.
"""
from .typicality import Typicality, annotate

__all__ = ["Typicality", "annotate"]
