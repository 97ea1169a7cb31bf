"""A run's last checkpoint as a model directory, like the ``best/`` that ``nerelproc train``
writes for its selected epoch: to compare the last epoch with the selected one on dev, or to
start a longer schedule from it (``train --init``).

    python -m experiments.last_checkpoint runs/full-ft runs/full-ft-last
    nerelproc export runs/full-ft-last -o runs/full-ft-last-int8  # or export --checkpoint
"""

import sys

from nerelproc.training.run import checkpoint_model

if __name__ == "__main__":
    run_dir, out_dir = sys.argv[1:3]
    print(f"{out_dir}: epoch {checkpoint_model(run_dir, out_dir)} of {run_dir}", file=sys.stderr)
