"""scripts/sample_views.py on a small run folder made here: prior draws of the zoo's quick MNIST VAE
as the 'samples' of two targets, scored by the quick classifier."""
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO

ZOO = REPO / "zoo" / "quick" / "mnist"
pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(not ((ZOO / "classifier.ckpt").is_file() and (ZOO / "vae.ckpt").is_file()),
                                 reason=f"no quick MNIST classifier and VAE in {ZOO}: build them with `python -m "
                                        "lightning_modules.zoo --dataset mnist --profile quick --only classifier,vae`")]


def test_target_classes_are_those_the_target_asks_confidence_for():
    sys.path.insert(0, str(REPO / "scripts"))
    from sample_views import target_classes

    class S:
        def __init__(self, ideal):
            self.ideal = np.array(ideal)

    assert target_classes(S([0, 0.5, 0, 0.5])) == [1, 3]
    assert target_classes(S([0, 0, 0.4, 0.6])) == [3, 2]
    assert target_classes(S([0, 1.0, 0, 0])) == [1]
    assert target_classes(S([0.1] * 10)) == [0]  # uniform: no class stands out, the first


def test_the_script_writes_a_latent_map_and_a_saliency_figure_per_target(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    import sample_views
    import trex
    from lightning_modules.classifier import load_classifier
    from lightning_modules.loading import load_generator
    gen, (net, _) = load_generator(ZOO / "vae.ckpt"), load_classifier(ZOO / "classifier.ckpt")
    run = tmp_path / "run"
    for name, ideal in (("class_4", np.eye(10)[4]), ("ambiguous_1,7", (np.eye(10)[1] + np.eye(10)[7]) / 2)):
        z = torch.randn(2, 10, gen.latent_dim, generator=torch.Generator().manual_seed(len(name)))
        with torch.no_grad():
            p = net(gen(z.reshape(-1, gen.latent_dim))).softmax(-1).reshape(2, 10, -1).numpy()
        trex.SampleSet(latents=z.numpy(), probs=p, logdensity=np.zeros((2, 10)), accepted=np.ones((2, 10), bool),
                       divergent=np.zeros((2, 10), bool), step_size=np.ones(2), ideal=ideal,
                       meta={"target": name.replace("_", ":", 1)}).save(run / name)
    sample_views.main([str(run), "--classifier", str(ZOO / "classifier.ckpt"), "--generator", str(ZOO / "vae.ckpt"),
                       "--prior", "300", "--overlay", "15", "--saliency", "3"])
    out = run / "views"
    assert sorted(p.name for p in out.iterdir()) == ["latent_tsne.png", "saliency_ambiguous_1,7.png",
                                                    "saliency_class_4.png"]
    with Image.open(out / "saliency_ambiguous_1,7.png") as a, Image.open(out / "saliency_class_4.png") as b:
        assert a.size[1] > b.size[1]  # two classes per draw: six image-map pairs, against three
