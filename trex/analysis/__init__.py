"""Analyses of sample sets: pure functions of SampleSets, arrays and torch modules.

ambiguity (pairs found, confidence matrix, ambiguity grid), testset (the test-set baselines),
coverage (level-set coverage), modes (recurring modes), table (the confidence table beside
paper_numbers), seeds (the seed ledger: per-seed summaries that join the table
across machines when their models match), typicality, labeler, saliency (SmoothGrad through Captum), latent_view (t-SNE of
prior draws with a target's samples). Import them by module: only typicality loads here, so that
`import trex.analysis` does not pull in scikit-learn or Captum.
"""
from .typicality import Typicality, annotate

__all__ = ["Typicality", "annotate"]
