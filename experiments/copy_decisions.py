"""Give a model the decisions of another (CLS thresholds, the decoder's O bias, what was
measured when they were tuned): for a model trained on train+dev, which has no held-out
documents left to tune its own on.

    python -m experiments.copy_decisions runs/full-ft-more-int8 runs/more-traindev-int8
"""

import sys

from nerelproc.runtime.bundle import Bundle
from nerelproc.training.calibration import copy_decisions

if __name__ == "__main__":
    source, target = sys.argv[1:3]
    bundle = copy_decisions(Bundle.load(target), Bundle.load(source))
    bundle.extra["decisions_from"] = source
    bundle.save(target)
