"""Small helpers for run folders: code version and JSON files written atomically."""
import json
import os
import subprocess
from pathlib import Path


def code_version() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (sha or "unknown") + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_json(path, obj) -> None:
    path = Path(path)
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")  # two writers never share a temporary file
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def record_models(out, paths: dict, digests: dict) -> dict:
    """Write which models a run folder draws from (`models.json`: checkpoint and weights digest per role,
    and the code version of the call that started the folder), or check that an existing folder was
    started with the same weights: a retrained model under the same name must not add draws to, or
    count as finished, a folder sampled from the old one. Returns the record."""
    from trex.errors import UserError
    f = Path(out) / "models.json"
    now = {role: {"checkpoint": str(paths[role]), "weights": digests[role]} for role in digests}
    if f.exists():
        old = json.loads(f.read_text())
        changed = [r for r in now if (old.get(r) or {}).get("weights") != now[r]["weights"]]
        if changed:
            raise UserError(
                f"{out} was started with other weights for the {' and '.join(changed)} ("
                + "; ".join(f"{r}: {(old.get(r) or {}).get('weights')} then, {now[r]['weights']} now "
                            f"({now[r]['checkpoint']})" for r in changed)
                + "): its draws belong to those models. Delete the folder to sample again with these, or "
                  "give this run another folder (hydra.run.dir=...)")
        return old
    record = {**now, "code_version": code_version()}
    write_json(f, record)
    return record
