"""Analysis of the multi-task grid over whatever runs have finished: ``reports/multitask.md``.

Summary (mean ± std over seeds), joint-vs-single deltas per entity type and relation
label, a paired bootstrap over test documents, stability, timing, the documents where
joint and single-task disagree most, plots, and a verdict per task derived mechanically.

Bootstrap: both systems are scored on the same resample of test documents; F1 comes from
per-document tp/fp/fn counts, so a resample is one matrix product. Seeds are pooled by
averaging each document's counts over a configuration's seeds (the seed-averaged system);
the spread over seeds is reported on its own under "Stability". A grid with
``"verdict_test": "seeds_and_documents"`` takes its verdicts from a bootstrap over seeds and
documents instead (``stability``), and only once every configuration has ``min_seeds`` seeds.

Finished runs come from the run table (a row outlives its run folder) and their per-document
predictions and dev histories from the copies the runner keeps beside the report (``predictions``).
"""

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.multitask import stability
from experiments.multitask.runner import METRICS, dig, read_jsonl, read_table, run_name, table_rows, train_command
from nerelproc.analysis.plots import save_figure
from nerelproc.analysis.tables import markdown_table
from nerelproc.evaluation.score import HEADLINE, HEADLINE_LABELS

ALPHA = 0.05
MIN_SEEDS = 3  # per configuration before a verdict is given: one seed's delta is not a finding
TASK_METRIC = {"ner": "test_ner_f1", "cls": "test_cls_micro_f1"}  # what the verdict and bootstrap use
TASK_NAME = {"ner": "NER (nested micro-F1)", "cls": "CLS (micro-F1)"}
CURVES = tuple((f"dev_{name}_f1", f"dev {HEADLINE_LABELS[name]}", HEADLINE[name][0])
               for name in ("ner", "flat", "cls_micro", "cls_macro"))


@dataclass
class Run:
    config: str
    seed: int
    tasks: tuple
    row: dict  # the table row
    history: list  # metrics.jsonl
    predictions: dict | None = None  # id -> predicted Document on test
    scores: dict | None = None  # per type / per label scores of the predictions (item_scores)
    counts: dict | None = None  # task -> [documents, 3] tp/fp/fn, gold order


# ------------------------------------------------------------------- counts and bootstrap


def _tp_fp_fn(pred, gold):
    return len(pred & gold), len(pred - gold), len(gold - pred)


def _labels(document):
    return set(document.relation_labels()) if document is not None else set()


def document_counts(pred_docs, gold_docs):
    """Per gold document (gold order): tp/fp/fn of nested NER (exact match) and of CLS labels."""
    from nerelproc.io.schema import relation_types
    from nerelproc.evaluation.score import entity_keys, match_documents

    pairs, _ = match_documents(pred_docs, gold_docs, warn=lambda message: None)
    schema = set(relation_types())  # labels outside the schema are ignored, as in score.py
    ner = [_tp_fp_fn(entity_keys(pred) if pred else set(), entity_keys(gold)) for pred, gold in pairs]
    cls = [_tp_fp_fn(_labels(pred) & schema, _labels(gold) & schema) for pred, gold in pairs]
    return {"ner": np.array(ner, dtype=float).reshape(-1, 3), "cls": np.array(cls, dtype=float).reshape(-1, 3)}


f1 = stability.micro_f1


def paired_bootstrap(a, b, resamples=1000, seed=0):
    """Paired bootstrap of micro-F1(a) - micro-F1(b) over documents.

    ``a``, ``b``: ``[documents, 3]`` tp/fp/fn of two systems on the same documents. Each
    resample draws documents with replacement (the same draw for both systems). The p-value
    is two-sided: twice the share of resamples whose difference is zero or has the sign
    opposite to the observed one (capped at 1; 1 when the observed difference is 0).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = len(a)
    observed = float(f1(a.sum(0)) - f1(b.sum(0)))
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(float)  # [resamples, docs]
    deltas = f1(draws @ a) - f1(draws @ b)
    p, interval = stability.p_and_interval(observed, deltas)
    return {"delta": observed, "p": p, "ci": interval, "resamples": resamples}


def verdict(mean_delta, bootstrap, alpha=ALPHA):
    """'confirmed' (joint helps), 'refuted' (joint hurts) or 'inconclusive'.

    Confirmed needs a positive mean delta over seeds, a positive pooled delta and p < alpha;
    refuted the same with negative deltas."""
    if bootstrap is None or mean_delta is None or math.isnan(mean_delta):
        return "not measured"
    if bootstrap["p"] < alpha and mean_delta > 0 and bootstrap["delta"] > 0:
        return "confirmed"
    if bootstrap["p"] < alpha and mean_delta < 0 and bootstrap["delta"] < 0:
        return "refuted"
    return "inconclusive"


def seeded_verdict(mean_delta, bootstrap, seeds, min_seeds=MIN_SEEDS):
    """``verdict``, once both configurations have ``min_seeds`` seeds (``seeds``: their counts)."""
    return verdict(mean_delta, bootstrap) if min(seeds) >= min_seeds else "too few seeds"


# ----------------------------------------------------------------------------- loading


def item_scores(pred_docs, gold_docs):
    """Per entity type and per label P/R/F1 as score_documents has them (without its slow flat view)."""
    from nerelproc.io.schema import entity_types
    from nerelproc.evaluation.score import _set_scores, cls_scores, entity_keys, match_documents

    pairs, _ = match_documents(pred_docs, gold_docs, warn=lambda message: None)
    return {"ner": {"per_type": _set_scores(pairs, entity_keys, entity_types())[1]},
            "cls": cls_scores(pairs, warn=lambda message: None)}


def load_runs(grid, gold):
    """Every finished run of the grid's configurations (the run table), with its kept test
    predictions, if any, re-scored against ``gold``."""
    from experiments.multitask.predictions import history_path, load, stored_path

    runs = []
    for row in table_rows(grid):
        if row["config"] not in grid.configs:
            continue
        run = Run(row["config"], row["seed"], grid.config(row["config"], row["seed"]).tasks, row,
                  read_jsonl(history_path(grid.kept, row["run"])))
        path = stored_path(grid.kept, row["run"])
        if path.exists():
            predicted = load(path, gold)
            run.predictions = {str(d.id): d for d in predicted}
            run.scores = item_scores(predicted, gold)
            run.counts = document_counts(predicted, gold)
        runs.append(run)
    return runs


def missing_runs(grid):
    """``[(run name, state)]`` of planned runs neither in the run table nor finished here."""
    from nerelproc.training.config import CHECKPOINT

    missing, recorded = [], {row["run"] for row in read_table(grid.table)}
    for name, seed in grid.plan():
        out = grid.run_dir(name, seed)
        if (out / "metrics.json").exists() or run_name(name, seed) in recorded:
            continue
        epochs = len(read_jsonl(out / "metrics.jsonl"))
        state = f"in progress, {epochs} epoch(s) done" if (out / CHECKPOINT).exists() else "not started"
        missing.append((run_name(name, seed), state))
    return missing


# -------------------------------------------------------------------------- summaries


def mean_std(values):
    values = [float(v) for v in values if v is not None and v != ""]
    if not values:
        return math.nan, math.nan, 0
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else math.nan, len(values)


def by_config(runs, names):
    return {name: [run for run in runs if run.config == name] for name in names}


def trains(grid, name, task):
    return task in grid.config(name, grid.seeds[0]).tasks


def comparisons(grid, groups, resamples, seed):
    """Joint vs single-task per task: mean delta over seeds, pooled bootstrap, verdict."""
    results = {}
    for task, spec in grid.spec["comparisons"].items():
        single = spec["single"]
        for joint in spec["joint"]:
            column = TASK_METRIC[task]
            mean_joint = mean_std(r.row[column] for r in groups.get(joint, []))[0]
            mean_single = mean_std(r.row[column] for r in groups.get(single, []))[0]
            a, b = _pooled(groups.get(joint, []), task), _pooled(groups.get(single, []), task)
            boot = paired_bootstrap(a, b, resamples, seed) if a is not None and b is not None else None
            delta = mean_joint - mean_single
            by_seed = {r.seed: r.row[column] for r in groups.get(single, []) if r.row[column] is not None}
            seed_deltas = {r.seed: r.row[column] - by_seed[r.seed] for r in groups.get(joint, [])
                           if r.seed in by_seed and r.row[column] is not None}
            seeds = (len(groups.get(joint, [])), len(groups.get(single, [])))
            min_seeds = grid.spec.get("min_seeds", MIN_SEEDS)
            results[(task, joint)] = {
                "seed_deltas": dict(sorted(seed_deltas.items())),
                "task": task, "joint": joint, "single": single, "mean_joint": mean_joint,
                "mean_single": mean_single, "mean_delta": delta, "bootstrap": boot, "seeds": seeds,
                "verdict": seeded_verdict(delta, boot, seeds, min_seeds),
            }
            if seeds_and_documents(grid):
                counts = [{r.seed: r.counts[task] for r in groups.get(name, []) if r.counts is not None}
                          for name in (joint, single)]
                assessed = stability.assess(*counts, *seeds, min_seeds, resamples, seed)
                results[(task, joint)].update(seed_test=assessed, verdict=SEED_VERDICT[assessed["words"]])
    return results


SEED_VERDICT = {"helps": "confirmed", "hurts": "refuted", "no difference shown": "inconclusive",
                None: "too few seeds"}


def seeds_and_documents(grid):
    """Whether the grid's verdicts come from the bootstrap over seeds and documents."""
    return grid.spec.get("verdict_test", "documents") == "seeds_and_documents"


def _pooled(runs, task):
    counts = [run.counts[task] for run in runs if run.counts is not None]
    return np.mean(counts, 0) if counts else None


def per_item_deltas(groups, joint, single, task):
    """``[(type or label, support, single F1, joint F1, delta)]`` from re-scored predictions, mean over seeds."""
    key = ("ner", "per_type") if task == "ner" else ("cls", "per_label")

    def means(runs):
        tables = [dig(run.scores, key) for run in runs if run.scores is not None]
        if not tables:
            return None, {}
        merged = {n: entry for t in tables for n, entry in t.items()}  # a type outside the schema may be in one
        return {n: float(np.mean([t[n]["f1"] for t in tables if n in t])) for n in merged}, merged

    joint_f1, _ = means(groups.get(joint, []))
    single_f1, reference = means(groups.get(single, []))
    if joint_f1 is None or single_f1 is None:
        return []
    rows = [(n, reference[n]["support"], single_f1[n], joint_f1.get(n, math.nan), joint_f1.get(n, math.nan)
             - single_f1[n]) for n in single_f1]
    return sorted(rows, key=lambda row: -row[4])


# ------------------------------------------------------------------------------- plots


def _pyplot():
    from nerelproc.analysis.plots import pyplot

    return pyplot()


def plot_scatter(grid, groups, path):
    """Per seed: test NER vs CLS micro-F1. Single-task seeds are lines on their own axis."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (name, runs) in enumerate(groups.items()):
        colour, ner, cls = colours[k % len(colours)], trains(grid, name, "ner"), trains(grid, name, "cls")
        for i, run in enumerate(runs):
            x, y, label = run.row["test_ner_f1"], run.row["test_cls_micro_f1"], name if i == 0 else None
            if (ner and x is None) or (cls and y is None):
                continue
            if ner and cls:
                ax.scatter(x, y, color=colour, label=label)
                ax.annotate(f"s{run.seed}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
            elif ner:
                ax.axvline(x, color=colour, linestyle="--", label=label)
            else:
                ax.axhline(y, color=colour, linestyle="--", label=label)
    ax.set(xlabel="test NER nested micro-F1", ylabel="test CLS micro-F1",
           title="per seed (dashed: single-task seeds)")
    ax.legend(fontsize=8)
    save_figure(fig, path, dpi=100)


def plot_curves(grid, groups, path):
    """Dev metrics per epoch, mean over seeds, one line per configuration that trains the task."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(CURVES), figsize=(4 * len(CURVES), 3.6))
    for ax, (key, title, task) in zip(axes, CURVES):
        for name, runs in groups.items():
            if not runs or not trains(grid, name, task):
                continue
            per_epoch = {}
            for run in runs:
                for record in run.history:
                    per_epoch.setdefault(record["epoch"], []).append(record[key])
            epochs = sorted(per_epoch)
            ax.plot(epochs, [np.mean(per_epoch[e]) for e in epochs], "o-", label=name)
        ax.set(title=title, xlabel="epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7)
    save_figure(fig, path, dpi=100)


def plot_deltas(deltas_by_joint, title, path):
    """Horizontal bars: joint minus single-task F1 per type/label, one bar colour per joint config."""
    plt = _pyplot()
    names = [row[0] for row in next(iter(deltas_by_joint.values()))]
    height = 0.8 / max(1, len(deltas_by_joint))
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.22 * len(names) * max(1, len(deltas_by_joint)) ** 0.5))
    for k, (joint, rows) in enumerate(deltas_by_joint.items()):
        delta = {row[0]: row[4] for row in rows}
        ax.barh(np.arange(len(names)) + k * height, [delta[n] for n in names], height, label=joint)
    ax.set_yticks(np.arange(len(names)) + height * (len(deltas_by_joint) - 1) / 2, names, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set(title=title, xlabel="Δ F1 (joint − single-task), mean over seeds")
    ax.legend(fontsize=8)
    save_figure(fig, path, dpi=100)


# ------------------------------------------------------------------------ qualitative


def _disagreement(a, b, keys):
    return len(keys(a) ^ keys(b))


def pick_cases(gold, first, second, k):
    """Documents where the two pairs of systems disagree most, alternating NER and CLS.

    ``first`` / ``second``: ``(joint run, single run)`` for NER and for CLS (or None)."""
    from nerelproc.evaluation.score import entity_keys

    ranked = []
    for pair, keys in ((first, entity_keys), (second, _labels)):
        if pair is None:
            continue
        joint, single = pair
        sizes = [_disagreement(joint.predictions.get(str(d.id)), single.predictions.get(str(d.id)), _safe(keys))
                 for d in gold]
        ranked.append([i for i in np.argsort(sizes, kind="stable")[::-1] if sizes[i] > 0])
    chosen = []
    for i in (i for group in _interleave(ranked) for i in group):
        if i not in chosen:
            chosen.append(int(i))
        if len(chosen) == k:
            break
    return chosen


def _safe(keys):
    return lambda document: keys(document) if document is not None else set()


def _interleave(lists):
    for row in range(max((len(items) for items in lists), default=0)):
        yield [items[row] for items in lists if row < len(items)]


def _surface(entity, text, limit=40):
    surface = re.sub(r"\s+", " ", entity.surface(text))
    return surface if len(surface) <= limit else surface[: limit - 1] + "…"


def _entity_list(entities, gold_keys, text, limit=10):
    items = [f"{'✓' if e.key in gold_keys else '✗'} {e.type} «{_surface(e, text)}»"
             for e in sorted(entities, key=lambda e: (e.start, e.type))]
    more = f" … (+{len(items) - limit})" if len(items) > limit else ""
    return (", ".join(items[:limit]) + more) or "none"


_KIND_WORDS = {"split": "splits {} into pieces", "type": "types {} differently",
               "boundary": "gets the bounds of {} wrong", "missed": "misses {}"}


def _kinds_by_count(kinds):
    """(kind, count), commonest first; ties keep _KIND_WORDS order, so the phrase and its example agree."""
    counter = {kind: sum(k == kind for k in kinds) for kind in _KIND_WORDS}
    return [(k, n) for k, n in sorted(counter.items(), key=lambda kv: -kv[1]) if n]


def _kinds_phrase(kinds):
    return ", ".join(_KIND_WORDS[k].format(n) for k, n in _kinds_by_count(kinds))


def _example(gold, kind, evidence, text):
    if kind == "split":
        return f"{gold.type} «{_surface(gold, text)}» → " + " + ".join(f"«{_surface(p, text)}»" for p in evidence)
    if kind in ("type", "boundary"):
        return f"{gold.type} «{_surface(gold, text)}» → {evidence[0].type} «{_surface(evidence[0], text)}»"
    return f"{gold.type} «{_surface(gold, text)}» → no {gold.type} there"


def diagnose_ner(joint_doc, single_doc, gold_doc, joint, single):
    """What each system did with the gold entities only the other one gets right (errors.py's kinds)."""
    from nerelproc.evaluation.taxonomy import outcomes

    mine = {name: outcomes(doc, gold_doc) for name, doc in ((joint, joint_doc), (single, single_doc))}
    phrases = []
    for right, wrong in ((single, joint), (joint, single)):
        cases = [mine[wrong][key] for key, (_, kind, _) in mine[right].items()
                 if kind == "exact" and mine[wrong][key][1] != "exact"]
        if not cases:
            continue
        kinds = [kind for _, kind, _ in cases]
        top = _kinds_by_count(kinds)[0][0]
        example = next(_example(g, k, e, gold_doc.text) for g, k, e in cases if k == top)
        phrases.append(f"of the {len(cases)} gold {'entity' if len(cases) == 1 else 'entities'} only {right} "
                       f"gets right, {wrong} "
                       f"{_kinds_phrase(kinds)} (e.g. {example})")
    return "; ".join(phrases) or None


def _names(labels, support, limit=3):
    """Labels with how many gold relations back each one in the document: a label held by one
    relation is harder to see than one held by ten."""
    labels = sorted(labels)
    shown = [f"{label} ({support[label]}×)" if support.get(label) else label for label in labels[:limit]]
    return ", ".join(shown) + (f" (+{len(labels) - limit} more)" if len(labels) > limit else "")


def diagnose_cls(joint_doc, single_doc, gold_doc, joint, single):
    """At most two phrases: which correct labels only one system finds, else which wrong ones it adds."""
    from collections import Counter

    from nerelproc.io.document import relation_type

    support = Counter(relation_type(line) for line in gold_doc.relations)
    gold, jl, sl = _labels(gold_doc), _labels(joint_doc), _labels(single_doc)
    phrases = []
    if (jl - sl) & gold:
        phrases.append(f"{single} misses {_names((jl - sl) & gold, support)} that {joint} finds")
    if (sl - jl) & gold:
        phrases.append(f"{joint} misses {_names((sl - jl) & gold, support)} that {single} finds")
    if (jl - sl) - gold:
        phrases.append(f"{joint} wrongly adds {_names((jl - sl) - gold, support)}")
    if (sl - jl) - gold:
        phrases.append(f"{single} wrongly adds {_names((sl - jl) - gold, support)}")
    return "; ".join(phrases[:2]) or None


def case_section(gold, ner_pair, cls_pair, k):
    """Markdown for the ``k`` documents where joint and single-task disagree most."""
    from nerelproc.evaluation.score import entity_keys

    if ner_pair is None and cls_pair is None:
        return "No pair of joint and single-task runs with test predictions on a common seed yet.\n"
    lines = []
    for number, i in enumerate(pick_cases(gold, ner_pair, cls_pair, k), 1):
        document = gold[i]
        snippet = re.sub(r"\s+", " ", document.text[:300]).strip() + ("…" if len(document.text) > 300 else "")
        lines += [f"### {number}. document {document.id}", "", f"> {snippet}", ""]
        why = []
        if ner_pair is not None:
            gold_keys = entity_keys(document)
            docs = [run.predictions.get(str(document.id)) for run in ner_pair]
            only = [_safe(entity_keys)(docs[0]) - _safe(entity_keys)(docs[1]),
                    _safe(entity_keys)(docs[1]) - _safe(entity_keys)(docs[0])]
            lines.append(f"NER (seed {ner_pair[0].seed}), gold {len(gold_keys)} entities:")
            for run, doc, own in zip(ner_pair, docs, only):
                tp, fp, fn = _tp_fp_fn(_safe(entity_keys)(doc), gold_keys)
                extra = [e for e in (doc.entities if doc else []) if e.key in own]
                lines.append(f"- {run.config}: tp {tp}, fp {fp}, fn {fn} (F1 {float(f1([tp, fp, fn])):.3f}); "
                             f"only here: {_entity_list(extra, gold_keys, document.text)}")
            why.append(diagnose_ner(*docs, document, ner_pair[0].config, ner_pair[1].config))
        if cls_pair is not None:
            gold_labels = _labels(document)
            lines.append(f"\nCLS (seed {cls_pair[0].seed}), gold: {', '.join(sorted(gold_labels)) or 'none'}")
            docs = [run.predictions.get(str(document.id)) for run in cls_pair]
            for run, doc in zip(cls_pair, docs):
                predicted = _labels(doc)
                marked = [f"{'✓' if label in gold_labels else '✗'} {label}" for label in sorted(predicted)]
                lines.append(f"- {run.config}: {', '.join(marked) or 'none'}; missed: "
                             f"{', '.join(sorted(gold_labels - predicted)) or 'none'}")
            why.append(diagnose_cls(*docs, document, cls_pair[0].config, cls_pair[1].config))
        why = "; ".join(w for w in why if w) or "no difference on this seed"
        lines += ["", f"Why: {why}.", ""]
    return "\n".join(lines) or "The systems agree on every test document.\n"


def _case_pair(groups, joint, single):
    """(joint run, single run) on the smallest common seed with predictions, or None."""
    have = lambda name: {r.seed: r for r in groups.get(name, []) if r.predictions is not None}  # noqa: E731
    joint_runs, single_runs = have(joint), have(single)
    common = sorted(set(joint_runs) & set(single_runs))
    return (joint_runs[common[0]], single_runs[common[0]]) if common else None


# ------------------------------------------------------------------------------ report


def fmt(value, digits=4, sign=False):
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):+.{digits}f}" if sign else f"{float(value):.{digits}f}"


def md_table(header, rows):
    return markdown_table(header, rows, compact=True) + "\n"


def _metric_task(column):
    return HEADLINE[column.removeprefix("test_").removesuffix("_f1")][0]  # test_flat_f1 -> ner


def summary_table(grid, groups):
    rows = []
    for name, runs in groups.items():
        cells = []
        for column, _, _ in METRICS:
            if not trains(grid, name, _metric_task(column)):
                cells.append("(not trained)")
                continue
            mean, std, n = mean_std(r.row[column] for r in runs)
            cells.append(f"{fmt(mean)} ± {fmt(std)}" if n else "—")
        rows.append([name, len(runs), *cells])
    return md_table(["configuration", "seeds", *(label for _, label, _ in METRICS)], rows)


def stability_table(grid, groups):
    rows = []
    for column, label, _ in METRICS:
        cells = [stability.describe(stability.spread(r.row[column] for r in runs))
                 if trains(grid, name, _metric_task(column)) else "(not trained)" for name, runs in groups.items()]
        rows.append([label, *cells])
    return md_table(["std over seeds (range)", *groups], rows)


def _run_list(names):
    return ", ".join(names) if names else "none"


def cls_stability(grid, groups, gold, results):
    """Is CLS more stable jointly trained? Spread over seeds of CLS micro/macro-F1 and of each
    relation type's F1, joint against CLS-only; words only with ``min_seeds`` seeds of each."""
    from nerelproc.io.schema import relation_types

    spec = grid.spec["comparisons"].get("cls")
    if spec is None:
        return "No CLS comparison in the grid.\n"
    min_seeds = grid.spec.get("min_seeds", MIN_SEEDS)
    gold_sets = [_labels(d) for d in gold]
    labels = [label for label in relation_types() if any(label in g for g in gold_sets)]
    stored = {r.row["run"] for runs in groups.values() for r in runs if r.predictions is not None}
    finished = {r.row["run"] for runs in groups.values() for r in runs}
    single = spec["single"]
    lines = []
    for joint in spec["joint"]:
        names = (joint, single)
        not_finished, unkept = stability.missing(grid.plan(), finished, stored, names)
        rows = [[label, *(stability.describe(stability.spread(r.row[column] for r in groups.get(n, [])))
                          for n in names)]
                for column, label in (("test_cls_micro_f1", "CLS micro-F1"), ("test_cls_macro_f1", "CLS macro-F1"))]
        per_label = {n: {r.seed: stability.label_f1([_labels(r.predictions.get(str(d.id))) for d in gold],
                                                     gold_sets, labels)
                         for r in groups.get(n, []) if r.predictions is not None} for n in names}
        compared = stability.label_spreads(per_label[joint], per_label[single])
        words = stability.stability_words(compared, min_seeds)
        if compared is None:
            rows.append(["per-label F1: median std over the labels", *(
                f"undefined ({len(per_label[n])} seed{'s' if len(per_label[n]) != 1 else ''} with kept predictions)"
                for n in names)])
            label_text = (f"The per-label spread needs 2 or more seeds of each with their predictions kept; there "
                          f"are {len(per_label[joint])} and {len(per_label[single])}.")
        else:
            rows.append(["per-label F1: median std over the labels", fmt(compared["median_joint"]),
                         fmt(compared["median_single"])])
            label_text = (f"Per relation type ({compared['labels']} types with test support, "
                          f"{compared['seeds'][0]} / {compared['seeds'][1]} seeds): {joint}'s F1 moves less over seeds "
                          f"than {single}'s on {compared['joint_smaller']}, more on {compared['joint_larger']}, "
                          f"equally on {compared['equal']} (two-sided sign test over the types that differ, "
                          f"p = {fmt(compared['p'], 3)}).")
        if words is not None:
            verdict_text = f"**CLS stability: jointly trained CLS is {words}** ({joint} vs {single})."
        else:
            needed = not_finished + unkept
            verdict_text = (f"**CLS stability: no verdict** ({joint} vs {single}): it needs {min_seeds} seeds of each "
                            f"with their test predictions kept. Not finished: {_run_list(not_finished)}. Finished "
                            f"without kept predictions: {_run_list(unkept)}." if needed else
                            f"**CLS stability: no verdict** ({joint} vs {single}): fewer than {min_seeds} seeds "
                            "in the grid.")
        lines += [verdict_text, "", md_table(["spread over seeds: std (range)", *names], rows), label_text, ""]
    lines += [
        "A spread is the standard deviation over seeds (ddof 1) with the range (max − min); with one seed "
        "there is none (*undefined*), not 0. Micro- and macro-F1 spreads are shown, not tested: three seeds "
        "give each std only two degrees of freedom. The words come from the per-type comparison: *more stable* "
        f"if joint's per-type F1 moves less on more types and the sign test gives p < {ALPHA}, *less stable* the "
        "other way round, else *no difference shown*; the types are not independent of one another, so the sign "
        "test is a guide, not an exact p.",
        "",
    ]
    return "\n".join(lines)


def seed_test_section(grid, groups, results):
    """The seeds × documents test per task, or which runs it waits for."""
    if not seeds_and_documents(grid):
        return ""
    rows, waits = [], []
    stored = {r.row["run"] for runs in groups.values() for r in runs if r.predictions is not None}
    finished = {r.row["run"] for runs in groups.values() for r in runs}
    for r in results.values():
        not_finished, unkept = stability.missing(grid.plan(), finished, stored, (r["joint"], r["single"]))
        if not_finished or unkept:
            waits.append(f"{TASK_NAME[r['task']]} waits for: not finished: {_run_list(not_finished)}; finished "
                         f"without kept predictions: {_run_list(unkept)}.")
        assessed = r["seed_test"]
        test = assessed["test"]
        if test is None:
            rows.append([TASK_NAME[r["task"]], f"{r['joint']} vs {r['single']}", f"{len(assessed['seeds'])}",
                         "—", "—", "—", "—", "no verdict (too few seeds)"])
            continue
        rows.append([TASK_NAME[r["task"]], f"{r['joint']} vs {r['single']}", str(test["seeds"]),
                     fmt(test["delta"], sign=True), ", ".join(fmt(d, sign=True) for d in test["per_seed"]),
                     f"[{fmt(test['ci'][0], sign=True)}, {fmt(test['ci'][1], sign=True)}]", fmt(test["p"], 3),
                     f"**{assessed['words']}**"])
    return ("### The verdict's test: seeds and documents\n\n"
            + md_table(["task", "comparison", "paired seeds", "mean Δ", "Δ per seed", "95% CI", "p",
                        "joint training"], rows)
            + "\nSeeds × documents bootstrap (the rule above); *paired seeds*: seeds with a finished joint and "
              "single-task run whose test predictions are kept." + "".join(f" {w}" for w in waits) + "\n")


def run_cpu(run):
    """The CPU a run trained on ("unknown" for runs recorded before the table named it)."""
    return str(run.row.get("cpus") or "unknown")


def by_cpu(runs):
    """``{cpu: [runs]}``: times compare only between runs on one kind of CPU."""
    groups = {}
    for run in runs:
        groups.setdefault(run_cpu(run), []).append(run)
    return groups


def timing_table(groups):
    """Seconds per configuration and CPU: a mean over runs on different CPUs would be no one's time."""
    rows = []
    for name, runs in groups.items():
        for cpu, same in by_cpu(runs).items():
            per_epoch, total = mean_std(r.row["seconds_per_epoch"] for r in same), [r.row["train_seconds"] for r in same]
            hosts = sorted({h for r in same for h in str(r.row["hosts"]).split(";") if h})
            rows.append([name, cpu, len(same), fmt(per_epoch[0], 1), fmt(np.mean(total) if total else None, 0),
                         fmt(sum(total), 0), fmt(mean_std(r.row["epochs_run"] for r in same)[0], 1),
                         ", ".join(hosts) or "—"])
    return md_table(["configuration", "CPU", "runs", "s/epoch (mean)", "train s per run (mean)",
                     "train s (all seeds)", "epochs run (mean)", "hosts"], rows)


def training_cost_line(grid, groups):
    """One joint model vs the single-task models it replaces, in mean training seconds per run,
    on each CPU that trained all of them."""
    singles = sorted({spec["single"] for spec in grid.spec["comparisons"].values()})
    joints = list(dict.fromkeys(j for spec in grid.spec["comparisons"].values() for j in spec["joint"]))
    cpus = dict.fromkeys(run_cpu(r) for runs in groups.values() for r in runs)
    lines = []
    for cpu in cpus:
        mean_seconds = {name: mean_std(r.row["train_seconds"] for r in runs if run_cpu(r) == cpu)[0]
                        for name, runs in groups.items()}
        if any(math.isnan(mean_seconds.get(name, math.nan)) for name in singles):
            continue
        separate = sum(mean_seconds[name] for name in singles)
        parts = [f"{joint} {mean_seconds[joint]:.0f} s ({mean_seconds[joint] / separate:.2f}×)"
                 for joint in joints if not math.isnan(mean_seconds.get(joint, math.nan))]
        if parts:
            lines.append(f"\nTraining cost of what a deployment needs, on {cpu}: {' + '.join(singles)} = "
                         f"{separate:.0f} s; one joint model: {', '.join(parts)}.\n")
    return "".join(lines)


def comparison_table(results):
    rows = []
    for r in results.values():
        boot = r["bootstrap"] or {}
        ci = boot.get("ci")
        rows.append([TASK_NAME[r["task"]], f"{r['joint']} vs {r['single']}", f"{r['seeds'][0]} / {r['seeds'][1]}",
                     fmt(r["mean_joint"]), fmt(r["mean_single"]), fmt(r["mean_delta"], sign=True),
                     fmt(boot.get("delta"), sign=True), f"[{fmt(ci[0], sign=True)}, {fmt(ci[1], sign=True)}]"
                     if ci else "—", fmt(boot.get("p"), 3), f"**{r['verdict']}**",
                     ", ".join(f"s{seed} {fmt(d, sign=True)}" for seed, d in r["seed_deltas"].items()) or "—"])
    return md_table(["task", "comparison", "seeds", "joint", "single", "mean Δ over seeds", "pooled Δ",
                     "95% bootstrap CI", "p", "verdict", "Δ per seed (same seed)"], rows)


def deltas_table(deltas_by_joint, first):
    if not deltas_by_joint:
        return "Not measured yet (needs test predictions of both configurations).\n"
    joints = list(deltas_by_joint)
    merged = {row[0]: {"support": row[1], "single": row[2]} for row in deltas_by_joint[joints[0]]}
    for joint in joints:
        for name, _, _, joint_f1, delta in deltas_by_joint[joint]:
            merged[name][joint] = (joint_f1, delta)
    rows = [[name, m["support"], fmt(m["single"]), *(f"{fmt(m[j][0])} ({fmt(m[j][1], sign=True)})" for j in joints)]
            for name, m in merged.items()]
    return md_table([first, "test support", "single-task F1", *(f"{j} F1 (Δ)" for j in joints)], rows)


def headline(verdict, mean_delta):
    """The verdict in words that follow its sign and its test: "helps" only when confirmed,
    "hurts" only when refuted; otherwise the direction of the mean delta, said as no finding."""
    if verdict == "confirmed":
        return "joint training helps (confirmed)"
    if verdict == "refuted":
        return "joint training hurts (refuted)"
    if mean_delta is None or math.isnan(mean_delta):
        return "not measured"
    direction = (f"joint {'higher' if mean_delta > 0 else 'lower'} by {abs(mean_delta):.4f}" if mean_delta
                 else "no difference")
    if verdict == "too few seeds":
        return f"no verdict yet (too few seeds); so far {direction}"
    return f"no difference shown (inconclusive); {direction}, within chance"


def _test_text(result):
    """The p-value behind a verdict: the seeds × documents bootstrap's, or the pooled one's."""
    if "seed_test" not in result:
        return f"bootstrap p = {fmt((result['bootstrap'] or {}).get('p'), 3)}"
    test = result["seed_test"]["test"]
    if test is None:
        return "no test before every configuration has its seeds"
    return f"seeds × documents bootstrap p = {fmt(test['p'], 3)}"


def verdict_paragraph(grid, results):
    parts = []
    for task, spec in grid.spec["comparisons"].items():
        main, *others = [results[(task, joint)] for joint in spec["joint"]]
        text = (f"**{TASK_NAME[task]}: {headline(main['verdict'], main['mean_delta'])}** ({main['joint']} vs "
                f"{main['single']}: mean Δ {fmt(main['mean_delta'], sign=True)} over "
                f"{main['seeds'][0]}/{main['seeds'][1]} seeds, {_test_text(main)}")
        text += "".join(f"; {r['joint']}: {r['verdict']}, Δ {fmt(r['mean_delta'], sign=True)}, "
                        f"{_test_text(r)}" for r in others) + ")."
        parts.append(text)
    min_seeds = grid.spec.get("min_seeds", MIN_SEEDS)
    if seeds_and_documents(grid):
        rule = (f"Rule: *helps* (confirmed) only if the mean delta over seeds is > 0 and the bootstrap over seeds "
                f"and documents gives p < {ALPHA}; *hurts* (refuted) if it is < 0 with p < {ALPHA}; otherwise "
                f"*no difference shown* (inconclusive); no test and no verdict before each configuration has "
                f"{min_seeds} finished seeds, paired by seed, with their test predictions kept (*too few seeds*). "
                "The bootstrap draws the seed pairs with replacement and, within each, the test documents (the same "
                "draw for the joint and the single-task run); its statistic is the mean over seeds of joint − "
                "single micro-F1.")
    else:
        rule = ("Rule: *confirmed* only if the mean delta over seeds and the pooled delta are both > 0 and the "
                f"paired bootstrap p < {ALPHA}; *refuted* if both < 0 with p < {ALPHA}; otherwise *inconclusive*; "
                f"none before both configurations have {min_seeds} seeds (*too few seeds*).")
    return "\n\n".join(parts) + "\n\n" + rule + "\n"


def quality_section(path):
    if not Path(path).exists():
        return f"Not measured yet: `{path}` does not exist (the export benchmark writes it).\n"
    quality = json.loads(Path(path).read_text("utf-8"))
    variants = [v for v in ("fp32", "int8") if v in quality] or list(quality)
    rows = []
    for _, label, metric_path in METRICS:
        values = [dig(quality[v], metric_path) for v in variants]
        delta = values[-1] - values[0] if len(values) == 2 and None not in values else None
        rows.append([label, *(fmt(v) for v in values), fmt(delta, sign=True)])
    return f"From `{path}`.\n\n" + md_table(["metric", *variants, "Δ (last − first)"], rows)


def errors_table(grid, groups, gold):
    """NER errors by kind (errors.py), mean over seeds, per configuration that trains NER,
    and where each joint configuration's errors differ from the NER-only one's."""
    from nerelproc.evaluation.taxonomy import KINDS, error_counts

    total = sum(len({e.key for e in d.entities}) for d in gold)
    means, rows = {}, []
    for name, runs in groups.items():
        counted = [error_counts(run.predictions, gold) for run in runs if run.predictions is not None]
        if not counted or not trains(grid, name, "ner"):
            continue
        mean = means[name] = {kind: float(np.mean([c[kind] for c in counted])) for kind in (*KINDS, "spurious")}
        rows.append([name, len(counted), *(f"{mean[k]:.0f} ({mean[k] / total:.1%})" for k in KINDS),
                     f"{mean['spurious']:.0f}"])
    if not rows:
        return "Not measured yet.\n"
    text = (f"What each configuration did with the {total} gold test entities (mean over seeds; share of gold). "
            "*exact*: right; *type*: right span, other type; *split*: two or more pieces of the right type "
            "inside the gold span; *boundary*: the right type, overlapping bounds; *missed*: nothing of the "
            "right type there. *spurious*: predicted entities that match no gold entity.\n\n"
            + md_table(["configuration", "seeds", *KINDS, "spurious"], rows))
    spec = grid.spec["comparisons"].get("ner", {})
    for joint in spec.get("joint", []):
        single = spec["single"]
        if joint in means and single in means:
            shifts = ", ".join(f"{kind} {means[joint][kind] - means[single][kind]:+.0f}" for kind in (*KINDS, "spurious"))
            text += f"\n{joint} minus {single}, entities per kind: {shifts}.\n"
    return text


def gradients_line(path):
    """One line from experiments/multitask/gradient_probe.py's results, if it has been run."""
    if not Path(path).exists():
        return ""
    g = json.loads(Path(path).read_text("utf-8"))
    start, end = g["start"], g["end"]
    return (f"\nHow the two tasks pull on the shared layers (`python -m experiments.multitask.gradient_probe`, run {g['run']}, "
            f"{start['batches']} training batches; `{Path(path).with_suffix('.md').name}`): at the start of training "
            f"the CLS gradient on the trainable shared layers is {start['cls_over_ner']:.1f}× the NER gradient "
            f"(median ratio of norms; cosine {start['cosine_mean']:+.3f}, i.e. unrelated directions), so the shared "
            f"layers first follow CLS; after epoch {end['after_epoch']}, with σ_cls {end['sigma']['cls']:.2f} and "
            f"σ_ner {end['sigma']['ner']:.2f}, it is {end['cls_over_ner']:.2f}×.\n")


def speed_section(path):
    """Inference cost of one joint model vs two single-task models, from the benchmark's results."""
    if not Path(path).exists():
        return f"Not measured yet: `{path}` does not exist (`python benchmarks/run.py` writes it).\n"
    results = json.loads(Path(path).read_text("utf-8"))
    rows = [[s["setup"], s["docs"], fmt(s["docs_per_second"], 2), s["chars_per_second"], fmt(s["load_seconds"], 2),
             s["peak_rss_mb"]] for s in results.get("speed", [])]
    ratios = "; ".join(f"{name}: {value:.2f}×" for name, value in results.get("ratios", {}).items())
    return (f"From `{path}` ({results.get('date')}, {results.get('machine')}, {results.get('threads')} threads, "
            f"model `{results.get('model')}`). Every configuration of the grid has the same encoder, so what a "
            "deployment costs depends only on how many encoder passes it makes: a joint model makes one "
            "(*joint* rows), a NER-only plus a CLS-only model make two (*separate*). "
            f"{results.get('note', '')}\n\n"
            + md_table(["setup", "docs", "docs/s", "chars/s", "load s", "peak RSS MB"], rows)
            + (f"\nRatios: {ratios}.\n" if ratios else ""))


def runs_table(runs):
    columns = ["run", "cpus", "best_epoch", "epochs_run", "seconds_per_epoch", "test_ner_f1", "test_cls_micro_f1",
               "test_cls_macro_f1", "sigma_ner", "sigma_cls", "config_matches_grid"]

    def cell(run, column):
        # an untrained head still scores something (ner-only's CLS head is random): not a result
        if column.startswith("test_") and _metric_task(column) not in run.tasks:
            return "(not trained)"
        value = run.row[column]
        if isinstance(value, float):
            return fmt(value, 1 if "seconds" in column else 4)
        return "—" if value is None else value

    return md_table(columns, [[cell(run, c) for c in columns] for run in runs])


def analyse(grid, grid_arg=None):
    """Write the report, its plots and the run table; return ``{"report", "table", "figures", "verdicts"}``."""
    from experiments.multitask.runner import record_all
    from nerelproc.io.readers import read_documents

    record_all(grid)
    gold = list(read_documents(grid.data("test")))
    runs = load_runs(grid, gold)
    groups = by_config(runs, grid.configs)
    boot = grid.spec.get("bootstrap", {})
    results = comparisons(grid, groups, boot.get("resamples", 1000), boot.get("seed", 0))
    grid.figures.mkdir(parents=True, exist_ok=True)
    figures = grid.figures.name
    sections = {}
    for task, spec in grid.spec["comparisons"].items():
        deltas = {joint: per_item_deltas(groups, joint, spec["single"], task) for joint in spec["joint"]}
        deltas = {joint: rows for joint, rows in deltas.items() if rows}
        if deltas:
            plot_deltas(deltas, f"{task.upper()}: Δ F1 per {'entity type' if task == 'ner' else 'relation type'}",
                        grid.figures / f"{task}_deltas.png")
        sections[task] = deltas_table(deltas, "entity type" if task == "ner" else "relation type")
        if deltas:
            sections[task] += f"\n![{task} deltas]({figures}/{task}_deltas.png)\n"
    curves = any(run.history for run in runs)
    if runs:
        plot_scatter(grid, groups, grid.figures / "scatter.png")
    if curves:
        plot_curves(grid, groups, grid.figures / "curves.png")
    specs = grid.spec["comparisons"]
    ner_pair = _case_pair(groups, specs["ner"]["joint"][0], specs["ner"]["single"]) if "ner" in specs else None
    cls_pair = _case_pair(groups, specs["cls"]["joint"][0], specs["cls"]["single"]) if "cls" in specs else None
    missing = missing_runs(grid)
    stale = [r.row["run"] for r in runs if r.row["config_matches_grid"] != "yes"]
    unkept = [r.row["run"] for r in runs if r.predictions is None]
    command = f"python -m experiments.multitask {grid_arg or grid.path}"
    name, seed = next(iter(grid.configs)), grid.seeds[0]
    text = "\n".join([
        "# " + grid.spec.get("title", "Multi-task experiment: does joint training help NER and/or CLS?"),
        "",
        "*Generated by `python -m experiments.multitask`; edits are overwritten on the next run.*",
        "",
        verdict_paragraph(grid, results),
        f"Finished runs: {len(runs)} of {len(grid.plan())}. "
        + ("Missing: " + ", ".join(f"{n} ({s})" for n, s in missing) + "." if missing else "None missing.")
        + (f" **Runs whose settings differ from the grid now:** {', '.join(stale)}." if stale else "")
        + (f" Finished without their test predictions kept (the per-document sections and the verdict need "
           f"them; `--retrain-unkept` trains them again): {', '.join(unkept)}." if unkept else ""),
        "",
        "Setting (the same for every configuration; the verdicts hold for this budget, not beyond it): "
        + ", ".join(f"{key} {value}" for key, value in grid.spec.get("shared", {}).items()) + ". "
        + grid.spec.get("description", ""),
        "",
        f"Test set: `{grid.spec['data']['test']}` ({len(gold)} documents). Selection on dev, scores on test. "
        "Metrics of a task a configuration does not train are shown as *(not trained)*.",
        "",
        "## Results (test, mean ± std over seeds)",
        "",
        summary_table(grid, groups),
        "## Joint vs single-task",
        "",
        comparison_table(results),
        f"Paired bootstrap over the {len(gold)} test documents, {boot.get('resamples', 1000)} resamples "
        f"(numpy seed {boot.get('seed', 0)}): both systems are scored on the same resample; micro-F1 from "
        "per-document tp/fp/fn. Seeds are pooled by averaging each document's counts over a configuration's "
        "seeds (the seed-averaged system). p is two-sided: twice the share of resamples whose difference is "
        "zero or of the opposite sign to the observed one. The bootstrap measures the sampling of test documents "
        "only; what seeds do is in the last column and under *Stability*: a verdict whose per-seed deltas change "
        "sign rests on the seed average alone."
        + ("\n\n" + seed_test_section(grid, groups, results).rstrip("\n") if seeds_and_documents(grid) else ""),
        "",
        "## Per entity type: NER F1, joint vs NER-only",
        "",
        sections.get("ner", "Not in the grid.\n"),
        "### NER errors by kind",
        "",
        errors_table(grid, groups, gold) + gradients_line(grid.report.with_name(grid.report.stem + "_gradients.json")),
        "## Per relation type: CLS F1, joint vs CLS-only",
        "",
        sections.get("cls", "Not in the grid.\n"),
        "## Stability across seeds",
        "",
        cls_stability(grid, groups, gold, results),
        "### Every metric, every configuration",
        "",
        stability_table(grid, groups),
        "## Timing",
        "",
        timing_table(groups) + training_cost_line(grid, groups),
        "Seconds per epoch are training only; train seconds add dev evaluation. Runs on different CPUs are "
        "not comparable in time, so each CPU has its own rows; a run that shared its cores with other work is "
        "slower than its CPU's others (the run table has each run's time).",
        "",
        "## Plots",
        "",
        (f"![per seed]({figures}/scatter.png)\n" if runs else "None yet.\n")
        + (f"\n![dev curves]({figures}/curves.png)\n" if curves else
           "\nDev curves: no finished run has its dev history kept.\n" if runs else ""),
        "## Where joint and single-task disagree most (test)",
        "",
        "Documents ranked by how many entities (joint vs NER-only) or labels (joint vs CLS-only) the two "
        "predict differently, alternating NER and CLS; ✓ correct, ✗ wrong. *Why* is derived from the "
        "predictions: for NER, what each system did with the gold entities only the other gets right (the kinds "
        "of the error table); for CLS, the labels only one system finds, with how many gold relations back "
        "each in the document.",
        "",
        case_section(gold, ner_pair, cls_pair, int(grid.spec.get("qualitative_docs", 10))),
        "## Inference cost",
        "",
        speed_section(grid.speed),
        "## int8 vs fp32",
        "",
        quality_section(grid.quality),
        "## Runs",
        "",
        f"One row per finished run; full table: `{grid.table}`.",
        "",
        runs_table(runs) if runs else "None yet.\n",
        "## How to reproduce",
        "",
        "```sh",
        "# the whole grid, run by run; continues where it stopped (skips finished runs, resumes checkpoints)",
        command,
        "# one run = one row of the table",
        f"{command} --only {run_name(name, seed)}",
        "# this report, its plots and the run table from whatever has finished",
        f"{command} --analyse-only",
        "```",
        "",
        "A finished run (a folder with `metrics.json`, or a row in the run table) is skipped: to recompute one, "
        "delete its folder and its row, or train it elsewhere with "
        f"`--runs-root /tmp/check --report /tmp/check/multitask.md --only {run_name(name, seed)}` (both, so that "
        "the report and table here are not replaced by a one-run version).",
        "",
        f"A run is equivalent to `nerelproc train` with the grid's settings, e.g. for {run_name(name, seed)} "
        "(paths relative to the grid's `base`, the repository root):",
        "",
        f"```sh\n{train_command(grid, name, seed)}\n```",
        "",
    ])
    grid.report.parent.mkdir(parents=True, exist_ok=True)
    grid.report.write_text(text, "utf-8")
    verdicts = {f"{task}:{joint}": r["verdict"] for (task, joint), r in results.items()}
    return {"report": grid.report, "table": grid.table, "figures": grid.figures, "verdicts": verdicts}
