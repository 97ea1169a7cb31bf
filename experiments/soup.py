"""A uniform weight average ("model soup") of model directories written by ``nerelproc train``:
encoders, heads and σ's averaged; the rest copied from the last one.

    python -m experiments.soup runs/soup runs/full-ft/best runs/full-ft-last runs/full-ft-more/best
    nerelproc export runs/soup -o runs/soup-int8
    nerelproc calibrate runs/soup-int8 --dev ../shared/nerel/jsonl/dev.jsonl
"""

import shutil
import sys
from pathlib import Path

import numpy as np
from transformers import AutoModel

from nerelproc.runtime.bundle import Bundle
from nerelproc.runtime.heads import HEAD_PARAMS, Heads


def soup(out_dir, sources):
    out_dir, sources = Path(out_dir), [Path(s) for s in sources]
    shutil.copytree(sources[-1], out_dir)
    encoders = [AutoModel.from_pretrained(s / "encoder", add_pooling_layer=False) for s in sources]
    states = [e.state_dict() for e in encoders]
    encoders[0].load_state_dict({k: sum(s[k].float() for s in states) / len(states) for k in states[0]})
    encoders[0].save_pretrained(out_dir / "encoder")
    heads = [Heads.load(s / "heads.npz") for s in sources]
    Heads(**{name: np.mean([getattr(h, name) for h in heads], 0) for name in HEAD_PARAMS}).save(out_dir / "heads.npz")
    bundle = Bundle.load(out_dir)
    bundle.log_vars = np.mean([Bundle.load(s).log_vars for s in sources], 0).tolist()
    bundle.save(out_dir)


if __name__ == "__main__":
    soup(sys.argv[1], sys.argv[2:])
