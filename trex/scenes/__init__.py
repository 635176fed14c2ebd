"""The CLEVR-style scene domain: a scene-graph prior with its random-walk proposal, a batched
ray-casting renderer (its decode step), and the counting-question vocabulary. Pure torch."""
from trex.scenes import vocab
from trex.scenes.prior import ScenePrior
from trex.scenes.render import Camera, Renderer
from trex.scenes.vocab import describe, make_scene

__all__ = ["ScenePrior", "Renderer", "Camera", "vocab", "describe", "make_scene"]
