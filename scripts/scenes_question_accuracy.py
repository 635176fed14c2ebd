"""Held-out accuracy of the counting network on the test split, overall (its fixed random questions)
and for the questions the scene targets ask: `python scripts/scenes_question_accuracy.py [CKPT]`."""
import glob
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from lightning_modules.counting import load_counter
from trex.scenes.questions import answer, parse

torch.set_num_threads(1)
net = load_counter(sys.argv[1] if len(sys.argv) > 1 else "zoo/quick/scenes/counting.ckpt")
d = torch.load(sorted(glob.glob("data/scenes/test-*.pt"))[0], weights_only=True)
x, z, q, a = d["images"], d["scenes"], d["questions"], d["answers"]
named = ["spheres", "blue spheres", "cubes", "cylinders", "objects"]
right = {k: 0 for k in ["random questions"] + named}
with torch.no_grad():
    for i in range(0, len(x), 100):
        maps = net.maps(x[i:i + 100].float() / 255)
        for k in range(q.shape[1]):
            pred = net.answer_logits(net.count(None, q[i:i + 100, k], maps=maps)).argmax(-1)
            right["random questions"] += int((pred == a[i:i + 100, k]).sum())
        for name in named:
            qq = parse(name).expand(len(maps[0]), 4)
            pred = net.answer_logits(net.count(None, qq, maps=maps)).argmax(-1)
            right[name] += int((pred == answer(z[i:i + 100], qq)).sum())
print(f"{len(x)} held-out scenes (test split), {q.shape[1]} random questions each")
print("| question | accuracy |\n|---|---|")
for k, v in right.items():
    n = len(x) * (q.shape[1] if k == "random questions" else 1)
    print(f"| {k} | {v / n:.4f} ({v} of {n}) |")
