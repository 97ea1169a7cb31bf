"""The pair and relation heads' CPU time per document on the NEREL test texts, apart from the
encoder: every window's encoder states are computed once (the model's int8 encoder), then the
heads' share of ``Predictor._window_outputs`` runs over them and is timed with
``time.process_time`` (CPU seconds, not wall time: other work on the machine blurs it less).

The heads' share is what follows the NER decoding: ``window_pairs``, ``window_pair_logits``,
``window_surfaces``, ``sentence_breaks``, ``window_relations`` and ``keep_best``, plus
``entity_token_spans`` per document with given entities. Two modes: the entities decoded
from the window's NER tags (``annotate``) and the gold ones (``annotate --given-entities``).

``--against DIR`` also times the heads of another checkout (``DIR/nerelproc/runtime/pairs.py``
and ``relations.py``) over the same states in the same run, alternating with this one's, and
compares their outputs: the largest difference of a logit, and the relation scores over the
floor in one only. Writes
benchmarks/heads.json.

    python benchmarks/heads.py --against /path/to/other/checkout
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from nerelproc.io.readers import read_documents
from nerelproc.machine import cpu_model
from nerelproc.runtime import pairs as this_pairs
from nerelproc.runtime import relations as this_relations
from nerelproc.runtime.bundle import PAIRS_FILE, load_predictor
from nerelproc.runtime.relations import RELATIONS_FILE

ROOT = Path(__file__).resolve().parents[1]
MODES = ("decoded", "given")


def heads_of(checkout):
    """``(pairs, relations)`` modules of another checkout, imported beside this one's."""
    names = ("nerelproc.runtime.pairs", "nerelproc.runtime.relations")
    saved = {name: sys.modules[name] for name in names}
    loaded = []
    try:
        for name in names:  # its relations.py imports its own pairs.py
            path = Path(checkout) / Path(*name.split(".")).with_suffix(".py")
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            loaded.append(module)
    finally:
        sys.modules.update(saved)
    return tuple(loaded)


def cached_windows(predictor, documents):
    """Per document ``(text, offsets, given entities, [(window, states, decoded entities)])``:
    the encoder and the NER decoding run once, here, outside the timed part (a document
    without a token has no window: the heads never run on it)."""
    cached = []
    for document in documents:
        windows, offsets = [], None
        for state, k, states in predictor.windows_of(document.text):
            window, offsets = state.windows[k], state.encoded.offsets
            types, first, last = predictor.window_entities(predictor.heads.ner_log_probs(states))
            keys = list(zip(types.tolist(), (first + window.start).tolist(), (last + window.start).tolist()))
            windows.append((window, np.array(states), (types, first, last, keys)))
        if windows:
            cached.append((document.text, offsets, document.entities, windows))
    return cached


def given_in_window(spans, window):
    """``(types, first, last, keys)``: the given entities whole in the window (as the predictor
    takes them)."""
    keys = [i for i, span in enumerate(spans) if span is not None and window.start <= span[1] and span[2] < window.end]
    types, first, last = (np.array([spans[i][c] for i in keys], np.int64) for c in range(3))
    return types, first - window.start, last - window.start, keys


def run_heads(modules, heads, cached, mode, entity_types, floor):
    """The heads over every cached window: ``(CPU seconds, outputs)``; outputs per document:
    its windows' pair logits and its relation scores ``{(key a, key b, label): logit}``."""
    pairs, relations = modules
    pair_head, relation_head = heads
    outputs = []
    start = time.process_time()
    for text, offsets, given, windows in cached:
        spans = pairs.entity_token_spans(given, offsets, entity_types) if mode == "given" else None
        scores, pair_logits = {}, []
        for window, states, decoded in windows:
            types, first, last, keys = decoded if mode == "decoded" else given_in_window(spans, window)
            shared = pairs.window_pairs(states, first, last)
            found = None
            if shared is not None:
                pair_logits.append(pairs.window_pair_logits(pair_head, types, shared))
                surfaces = relations.window_surfaces(text, offsets, first + window.start, last + window.start)
                breaks = relations.sentence_breaks(text, offsets[window.start : window.end])
                found = relations.window_relations(relation_head, states, types, first, last, floor, surfaces,
                                                   shared, breaks)
            relations.keep_best(scores, keys, found)
        outputs.append((pair_logits, scores))
    return time.process_time() - start, outputs


def differences(one, two):
    """How two runs' outputs differ: the largest difference of a pair logit (per window and
    label) or of a relation score (per kept pair and label), and the relation scores only one
    run kept (over the floor in one, not in the other)."""
    largest, only_one = 0.0, 0
    for (logits_1, scores_1), (logits_2, scores_2) in zip(one, two, strict=True):
        for x, y in zip(logits_1, logits_2, strict=True):
            largest = max(largest, float(np.abs(x - y).max()))
        for key in scores_1.keys() & scores_2.keys():
            largest = max(largest, abs(scores_1[key] - scores_2[key]))
        only_one += len(scores_1.keys() ^ scores_2.keys())
    return {"largest logit difference": largest, "relation scores kept by one only": only_one}


def commit(checkout):
    """The checkout's commit, and "+ changes" when its tree differs from it."""
    def run(*command):
        return subprocess.run(["git", "-C", str(checkout), *command], capture_output=True, text=True)

    head = run("rev-parse", "--short", "HEAD").stdout.strip() or str(checkout)
    return head + (" + changes" if run("status", "--porcelain", "--untracked-files=no").stdout.strip() else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "nerel-e5-small-int8"))
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "nerel" / "jsonl" / "test.jsonl"))
    parser.add_argument("--against", help="another checkout whose heads are timed too (e.g. a worktree of main)")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes per checkout and mode; the least is kept")
    parser.add_argument("--threads", type=int, default=2, help="encoder threads (the heads run on one)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "heads.json"))
    args = parser.parse_args()

    predictor = load_predictor(args.model, threads=args.threads)
    documents = list(read_documents(args.data))
    start = time.perf_counter()
    cached = cached_windows(predictor, documents)
    print(f"{len(documents)} documents, {sum(len(c[3]) for c in cached)} windows encoded in "
          f"{time.perf_counter() - start:.1f} s", flush=True)
    floors = {"decoded": predictor.relation_thresholds, "given": predictor.relation_thresholds_given}
    checkouts = {"this": (this_pairs, this_relations)}
    if args.against:
        checkouts["against"] = heads_of(args.against)
    heads = {name: (modules[0].PairHead.load(Path(args.model) / PAIRS_FILE),
                    modules[1].RelationHead.load(Path(args.model) / RELATIONS_FILE))
             for name, modules in checkouts.items()}
    entity_types = list(predictor.scheme.entity_types)
    seconds = {name: {mode: [] for mode in MODES} for name in checkouts}
    results = {}
    with threadpool_limits(1, user_api="blas"):  # as the predictor runs them
        for _ in range(args.repeat):
            for mode in MODES:
                floor = float(this_relations.logit(min(floors[mode])))
                for name, modules in checkouts.items():  # alternating: drifts in the machine's load hit both
                    cpu, outputs = run_heads(modules, heads[name], cached, mode, entity_types, floor)
                    seconds[name][mode].append(cpu)
                    results[name, mode] = outputs
    figures = {
        "what": "CPU milliseconds per document of the pair and relation heads (time.process_time, the least of "
                "the passes, one BLAS thread)",
        "data": f"{Path(args.data).name} ({len(documents)} documents, {sum(len(c[3]) for c in cached)} windows)",
        "model": Path(args.model).name,
        "cpu": f"{cpu_model()}, {os.cpu_count()} cores",
        "repeat": args.repeat,
    }
    for name in checkouts:
        label = f"this checkout ({commit(ROOT)})" if name == "this" else f"against ({commit(args.against)})"
        figures[label] = {f"{mode} ms/doc": round(1000 * min(seconds[name][mode]) / len(documents), 3)
                          for mode in MODES}
    if args.against:
        for mode in MODES:
            ratio = min(seconds["against"][mode]) / min(seconds["this"][mode])
            figures[f"{mode}: against / this (CPU)"] = round(ratio, 2)
            figures[f"{mode}: outputs against / this"] = differences(results["this", mode], results["against", mode])
    print(json.dumps(figures, indent=1, ensure_ascii=False))
    Path(args.out).write_text(json.dumps(figures, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
