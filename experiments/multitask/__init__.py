"""The joint-vs-separate study: does joint training help NER and/or CLS?

``runner`` trains the grid of ``grid.json`` run by run (resumable), ``report`` writes
``reports/multitask.md`` from the finished runs, ``gradient_probe`` measures how the two
tasks pull on the shared layers. Run from the checkout root::

    python -m experiments.multitask experiments/multitask/grid.json [--only NAME-sSEED] [--analyse-only]
    python -m experiments.multitask.gradient_probe experiments/multitask/grid.json --run joint-uncertainty-s1
"""
