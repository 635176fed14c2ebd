"""Where a target's samples sit in latent space: a t-SNE map of prior draws z ~ p(z), coloured by the
class the classifier predicts for g(z), with the samples of one or more targets (e.g. ambiguous draws)
overlaid as markers.

The prior draws and the samples are embedded in one t-SNE fit: t-SNE has no out-of-sample map, so
two separate fits would put them in unrelated coordinates. The samples take part in the fit and so
shape the map a little; keep them few against the prior draws (`max_overlay` thins them evenly).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.manifold import TSNE

MARKERS = ("*", "X", "P", "D", "^", "s")


@torch.no_grad()
def prior_predictions(generator, classifier, n: int = 5000, latent_dim: int | None = None, seed: int = 0,
                      batch_size: int = 1000, classes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """n draws z ~ N(0, I) (seeded) and the class the classifier predicts for g(z): (latents (n, D),
    labels (n,)), labels as `classes[argmax]` (original labels) when given, else output indices."""
    d = latent_dim or getattr(generator, "latent_dim", None)
    if d is None:
        raise ValueError("latent_dim is needed: the generator has no .latent_dim")
    z = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    device = next(iter(generator.parameters()), torch.empty(0)).device
    pred = torch.cat([classifier(generator(zb.to(device))).argmax(-1).cpu() for zb in z.split(batch_size)])
    labels = pred.numpy() if classes is None else np.asarray(classes)[pred.numpy()]
    return z.numpy(), labels


def _overlay_sets(samples) -> dict[str, np.ndarray]:
    """{name: (M, D) latents} from an array, a SampleSet (its flat latents) or a dict of either."""
    def flat(s):
        a = np.asarray(s.latents if hasattr(s, "latents") else s, dtype=np.float64)
        return a.reshape(-1, a.shape[-1])
    if samples is None:
        return {}
    if isinstance(samples, Mapping):
        return {str(k): flat(v) for k, v in samples.items()}
    return {"samples": flat(samples)}


def _thin(a: np.ndarray, m: int | None) -> np.ndarray:
    """At most m rows, evenly spaced (successive MCMC draws are correlated: even spacing keeps the
    chain's spread better than the first m)."""
    if m is None or len(a) <= m:
        return a
    return a[np.linspace(0, len(a) - 1, m).round().astype(int)]


def latent_tsne(prior_latents, samples=None, perplexity: float = 30.0, seed: int = 0,
                max_overlay: int | None = 500, **tsne_kwargs) -> dict:
    """One t-SNE fit of the prior draws (N, D) and the overlay samples together.

    Returns {"prior": (N, 2), "samples": {name: (M, 2)}, "overlay_latents": {name: (M, D)}} (the
    overlay rows actually embedded, after thinning to `max_overlay`)."""
    prior = np.asarray(prior_latents, dtype=np.float64)
    overlays = {k: _thin(v, max_overlay) for k, v in _overlay_sets(samples).items()}
    for k, v in overlays.items():
        if v.shape[1] != prior.shape[1]:
            raise ValueError(f"overlay {k!r} has latent dimension {v.shape[1]}, the prior draws {prior.shape[1]}")
    x = np.concatenate([prior, *overlays.values()]) if overlays else prior
    perplexity = min(perplexity, (len(x) - 1) / 3)  # sklearn requires perplexity < n_samples
    emb = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, **tsne_kwargs).fit_transform(x)
    out, start = {}, len(prior)
    for k, v in overlays.items():
        out[k] = emb[start:start + len(v)]
        start += len(v)
    return {"prior": emb[:len(prior)], "samples": out, "overlay_latents": overlays}


def pick_overlays(sets: dict, n: int | None = 6) -> dict:
    """At most n of a run's sample sets for the map: a map with 45 marker kinds (every ambiguous pair) is
    unreadable. Those whose draws reach their target best (the share within 0.1 the run stored), ties and
    unscored sets in the run's order; n None keeps all."""
    if n is not None and n < 1:
        raise ValueError(f"the map needs at least one target (n={n}); pass None to keep them all")
    if n is None or len(sets) <= n:
        return dict(sets)

    def reached(item):
        near = (getattr(item[1][1], "meta", {}).get("diagnostics") or {}).get("near_target_0.1")
        return -(float(near) if near is not None else -1.0), item[0]
    keep = sorted(enumerate(sets.items()), key=reached)[:n]
    return {name: s for _, (name, s) in sorted(keep)}


def latent_view(prior_latents, prior_labels, samples=None, class_names=None, title: str = "latent space (t-SNE)",
                perplexity: float = 30.0, seed: int = 0, max_overlay: int | None = 500, **tsne_kwargs):
    """The t-SNE embedding (latent_tsne's dict, plus "prior_labels") and its figure: prior draws as
    small dots coloured by predicted class, each overlay set as its own black-edged marker.
    `class_names`: {label: name} or a list indexed by label."""
    emb = latent_tsne(prior_latents, samples, perplexity=perplexity, seed=seed, max_overlay=max_overlay,
                      **tsne_kwargs)
    labels = np.asarray(prior_labels)
    if len(labels) != len(emb["prior"]):
        raise ValueError(f"{len(labels)} labels for {len(emb['prior'])} prior draws")
    emb["prior_labels"] = labels
    return emb, latent_figure(emb, class_names=class_names, title=title)


def latent_figure(emb: dict, class_names=None, title: str = "latent space (t-SNE)") -> Figure:
    from matplotlib import colormaps
    labels = emb["prior_labels"]
    fig = Figure(figsize=(7.2, 5.0), layout="constrained")
    ax = fig.subplots()
    cmap = colormaps["tab10" if len(np.unique(labels)) <= 10 else "tab20"]
    for k, c in enumerate(np.unique(labels)):
        name = class_names[c] if class_names is not None else str(c)
        pts = emb["prior"][labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.7, color=cmap(k % cmap.N), label=f"{name} ({len(pts)})",
                   linewidths=0)
    for k, (name, pts) in enumerate(emb["samples"].items()):
        ax.scatter(pts[:, 0], pts[:, 1], s=46, marker=MARKERS[k % len(MARKERS)], facecolor="white",
                   edgecolor="black", linewidths=0.8, label=f"{name} ({len(pts)})", zorder=3)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    fig.suptitle(title, fontsize=10)
    fig.legend(fontsize=7, markerscale=1.5, loc="outside right center", frameon=False,
               title="predicted class / samples", title_fontsize=7)
    return fig
