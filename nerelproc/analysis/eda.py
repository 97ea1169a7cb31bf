"""Exploratory analysis of a NEREL-style corpus: a Markdown report with PNG plots.

``write_report(data_dir, out_dir, tokenizer_path=None)`` reads the ``train``/``dev``/
``test`` splits (``{split}.jsonl`` files or BRAT ``{split}/`` folders), computes the
statistics (``corpus_stats``) and writes ``README.md``, ``summary.json`` and the plots
into ``out_dir``.

Definitions used throughout (an entity's *extent* is from its smallest start to its
largest end, so a discontinuous entity covers its gaps):

* **nested**: an entity whose extent lies strictly inside another entity's extent
  (same extent, other type does not count as nesting; it is counted on its own).
* **nesting depth**: the number of distinct extents of other entities that strictly
  contain the entity's extent; 0 = not nested.
* **flat-BIO ceiling**: the share of entities that one BIO layer keeps under the rule
  of ``nerelproc.evaluation.score.outermost`` (the ``score`` flat view): visiting entities by
  start, longest first, keep one that does not overlap the last kept one.
* **one-layer-per-type ceiling**: the same rule applied within each type separately
  (one BIO layer per entity type).
* **best single layer**: the largest set of pairwise non-overlapping entities
  (interval scheduling); the most any flat tagging could hold.
"""

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import orjson

from nerelproc.analysis.tables import markdown_table
from nerelproc.io.readers import read_documents
from nerelproc.io.schema import entity_types, relation_types
from nerelproc.evaluation.score import outermost

SPLITS = ("train", "dev", "test")
COLORS = {"train": "#4C72B0", "dev": "#DD8452", "test": "#55A868"}
MAX_TOKENS = 512


# -------------------------------------------------------------------------- loading


def find_splits(data_dir):
    """``{split: path}`` for ``{split}.jsonl`` files or ``{split}/`` BRAT folders.

    Looks in ``data_dir`` itself, then in ``data_dir/jsonl`` and ``data_dir/brat``
    (the layout of the NEREL data folder).
    """
    data_dir = Path(data_dir)
    for folder in (data_dir, data_dir / "jsonl", data_dir / "brat"):
        found = {}
        for split in SPLITS:
            if (folder / f"{split}.jsonl").is_file():
                found[split] = folder / f"{split}.jsonl"
            elif (folder / split).is_dir():
                found[split] = folder / split
        if found:
            return found
    raise FileNotFoundError(f"no {{train,dev,test}}.jsonl or BRAT {{train,dev,test}}/ in {data_dir}")


# ---------------------------------------------------------------------- statistics


def nesting_depths(entities):
    """Per entity, the number of distinct other extents strictly containing its extent."""
    extents = sorted({(e.start, e.end) for e in entities})
    depth = {
        (s, e): sum(1 for (s2, e2) in extents if s2 <= s and e <= e2 and (s2, e2) != (s, e))
        for s, e in extents
    }
    return [depth[(e.start, e.end)] for e in entities]


def per_type_kept(entities):
    by_type = defaultdict(list)
    for entity in entities:
        by_type[entity.type].append(entity)
    return sum(len(outermost(group)) for group in by_type.values())


def best_single_layer(entities):
    count, last_end = 0, -1
    for entity in sorted(entities, key=lambda e: e.end):
        if entity.start >= last_end:
            count, last_end = count + 1, entity.end
    return count


def relation_arguments(line):
    """``R5\\tWORKPLACE Arg1:T10 Arg2:T9`` -> ``("WORKPLACE", ["T10", "T9"])``."""
    fields = line.split("\t")[1].split()
    return fields[0], [arg.split(":", 1)[1] for arg in fields[1:] if ":" in arg]


def token_boundaries(text, offsets):
    """Character positions where a token starts or ends, spaces trimmed off the tokens
    (SentencePiece offsets include the space before a word: ``"▁Хор"`` covers ``" Хор"``)."""
    bounds = set()
    for start, end in offsets:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            bounds.update((start, end))
    return bounds


def _quantiles(values):
    if not values:
        return {"mean": 0.0, "median": 0.0, "p95": 0.0, "max": 0}
    array = np.asarray(values)
    return {
        "mean": float(array.mean()),
        "median": float(np.median(array)),
        "p95": float(np.percentile(array, 95)),
        "max": int(array.max()),
    }


def split_stats(documents, tokenizer=None):
    """All per-split figures as plain data (see ``corpus_stats``)."""
    ent_names, rel_names = entity_types(), relation_types()
    stats = {
        "documents": len(documents),
        "chars": [len(d.text) for d in documents],
        "entity_types": Counter(),
        "nested_by_type": Counter(),
        "depths": Counter(),
        "discontinuous_by_type": Counter(),
        "fragments": Counter(),
        "relation_instances": Counter(),
        "relation_doc_freq": Counter(),
        "labels_per_doc": [],
        "entities": 0,
        "nested": 0,
        "same_extent_other_type": 0,
        "flat_kept": 0,
        "per_type_kept": 0,
        "best_single_layer": 0,
        "relations": 0,
    }
    # co-occurrence: relation label x entity type of its arguments; documents with both
    args = np.zeros((len(rel_names), len(ent_names)), dtype=np.int64)
    docs_with = np.zeros((len(rel_names), len(ent_names)), dtype=np.int64)
    ent_docs = np.zeros(len(ent_names), dtype=np.int64)
    rel_col = {name: i for i, name in enumerate(rel_names)}
    ent_col = {name: i for i, name in enumerate(ent_names)}
    tokens, checked, cut = [], 0, 0  # entities checked, those with an edge inside a token
    for document in documents:
        entities = document.entities
        stats["entities"] += len(entities)
        stats["entity_types"].update(e.type for e in entities)
        depths = nesting_depths(entities)
        stats["depths"].update(depths)
        for entity, depth in zip(entities, depths):
            if depth:
                stats["nested"] += 1
                stats["nested_by_type"][entity.type] += 1
            if len(entity.spans) > 1:
                stats["discontinuous_by_type"][entity.type] += 1
                stats["fragments"][len(entity.spans)] += 1
        types_by_extent = defaultdict(set)
        for entity in entities:
            types_by_extent[(entity.start, entity.end)].add(entity.type)
        stats["same_extent_other_type"] += sum(
            1 for e in entities if len(types_by_extent[(e.start, e.end)]) > 1
        )
        stats["flat_kept"] += len(outermost(entities))
        stats["per_type_kept"] += per_type_kept(entities)
        stats["best_single_layer"] += best_single_layer(entities)

        labels = document.relation_labels()
        stats["labels_per_doc"].append(len(labels))
        stats["relation_doc_freq"].update(labels)
        stats["relations"] += len(document.relations)
        by_id = {e.id: e for e in entities}
        for line in document.relations:
            label, arg_ids = relation_arguments(line)
            stats["relation_instances"][label] += 1
            for arg in arg_ids:
                if arg in by_id and label in rel_col and by_id[arg].type in ent_col:
                    args[rel_col[label], ent_col[by_id[arg].type]] += 1
        present = [ent_col[t] for t in {e.type for e in entities} if t in ent_col]
        ent_docs[present] += 1
        for label in labels:
            if label in rel_col:
                docs_with[rel_col[label], present] += 1

        if tokenizer is not None:
            encoding = tokenizer.encode(document.text)
            tokens.append(len(encoding.ids))
            bounds = token_boundaries(document.text, encoding.offsets)
            for entity in entities:
                checked += 1
                cut += any(b not in bounds for span in entity.spans for b in span)
    stats["args"], stats["docs_with"], stats["ent_docs"] = args, docs_with, ent_docs
    stats["tokens"] = tokens if tokenizer is not None else None
    stats["checked_entities"], stats["cut_entities"] = checked, cut
    return stats


def corpus_stats(splits, tokenizer=None):
    return {split: split_stats(documents, tokenizer) for split, documents in splits.items()}


def _share(part, whole):
    return part / whole if whole else 0.0


def headline(stats):
    """The summary figures of one split (or of the pooled corpus), JSON-ready."""
    n = stats["entities"]
    result = {
        "documents": stats["documents"],
        "chars": _quantiles(stats["chars"]),
        "entities": n,
        "entities_per_doc": _share(n, stats["documents"]),
        "nested_share": _share(stats["nested"], n),
        "flat_bio_ceiling": _share(stats["flat_kept"], n),
        "per_type_bio_ceiling": _share(stats["per_type_kept"], n),
        "best_single_layer": _share(stats["best_single_layer"], n),
        "max_depth": max(stats["depths"], default=0),
        "discontinuous": sum(stats["discontinuous_by_type"].values()),
        "same_extent_other_type": stats["same_extent_other_type"],
        "relations": stats["relations"],
        "relation_types_per_doc": float(np.mean(stats["labels_per_doc"])) if stats["labels_per_doc"] else 0.0,
        "labels_present": len(stats["relation_doc_freq"]),
    }
    if stats["tokens"] is not None:
        result["tokens"] = _quantiles(stats["tokens"])
        result["over_max_tokens"] = _share(sum(t > MAX_TOKENS for t in stats["tokens"]), len(stats["tokens"]))
        result["entities_with_edge_inside_token"] = _share(stats["cut_entities"], stats["checked_entities"])
    return result


def pooled(all_stats):
    """Sum the per-split statistics into one corpus-wide ``split_stats``-like dict."""
    total = {}
    for stats in all_stats.values():
        for key, value in stats.items():
            if value is None:
                total.setdefault(key, None)
            elif key not in total:
                total[key] = value.copy() if hasattr(value, "copy") else value
            else:  # counts, Counters and lists all add up with +
                total[key] = total[key] + value
    return total


# --------------------------------------------------------------------------- plots


STYLE = {"font.size": 11, "axes.titlesize": 13, "axes.labelsize": 11, "figure.dpi": 110, "savefig.dpi": 110}


def _plt():
    from nerelproc.analysis.plots import pyplot

    return pyplot(STYLE)


def _save(fig, path):
    from nerelproc.analysis.plots import save_figure

    save_figure(fig, path, bbox_inches="tight")


def plot_lengths(all_stats, path):
    plt = _plt()
    from matplotlib.ticker import PercentFormatter

    with_tokens = all(s["tokens"] is not None for s in all_stats.values())
    fig, axes = plt.subplots(1, 2 if with_tokens else 1, figsize=(13 if with_tokens else 7.5, 4.5), squeeze=False)
    panels = [("chars", "characters per document")] + ([("tokens", "model tokens per document")] if with_tokens else [])
    for ax, (key, title) in zip(axes[0], panels):
        values = [v for s in all_stats.values() for v in s[key]]
        bins = np.linspace(0, np.percentile(values, 99.5), 40)
        for split, stats in all_stats.items():
            values = np.clip(stats[key], 0, bins[-1])
            ax.hist(values, bins=bins, weights=np.full(len(values), 1 / max(len(values), 1)), histtype="step",
                    linewidth=2, color=COLORS.get(split), label=f"{split} (median {np.median(stats[key]):.0f})")
        if key == "tokens":
            ax.axvline(MAX_TOKENS, color="black", linestyle="--", linewidth=1)
            ax.text(MAX_TOKENS, ax.get_ylim()[1] * 0.95, f" {MAX_TOKENS}", va="top")
        ax.set_title(title)
        ax.set_xlabel(f"{key} (last bin: 99.5th percentile and above)")
        ax.set_ylabel("share of the split's documents")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
        ax.legend()
    _save(fig, path)


def _grouped_barh(ax, names, values_by_split, xlabel):
    height = 0.8 / max(len(values_by_split), 1)
    y = np.arange(len(names))
    for i, (split, values) in enumerate(values_by_split.items()):
        ax.barh(y + (i - (len(values_by_split) - 1) / 2) * height, values, height=height,
                color=COLORS.get(split), label=split)
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right")


def _percent_axis(ax):
    from matplotlib.ticker import PercentFormatter

    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))


def plot_entity_types(all_stats, path):
    plt = _plt()
    total = pooled(all_stats)
    counts = total["entity_types"]
    names = [name for name, _ in counts.most_common()] + [t for t in entity_types() if t not in counts]
    labels = [f"{name} ({counts[name]:,})" for name in names]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(14, 9), sharey=True, gridspec_kw={"width_ratios": [3, 2]})
    shares = {
        split: [_share(s["entity_types"][n], s["entities"]) for n in names] for split, s in all_stats.items()
    }
    _grouped_barh(ax, labels, shares, "share of the split's entities")
    _percent_axis(ax)
    ax.set_title("Entity types (in brackets: count over all splits)")
    ax2.barh(np.arange(len(names)), [_share(total["nested_by_type"][n], counts[n]) for n in names], color="#8172B2")
    _percent_axis(ax2)
    ax2.set_xlabel("share of the type's entities that are nested")
    ax2.set_title("Nested inside another entity (all splits)")
    ax2.grid(axis="x", alpha=0.3)
    _save(fig, path)


def plot_nesting(all_stats, path):
    plt = _plt()
    max_depth = max(max(s["depths"], default=0) for s in all_stats.values())
    depths = list(range(max_depth + 1))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(all_stats)
    for i, (split, stats) in enumerate(all_stats.items()):
        values = [_share(stats["depths"][d], stats["entities"]) for d in depths]
        x = np.arange(len(depths)) + (i - (len(all_stats) - 1) / 2) * width
        ax.bar(x, values, width=width, color=COLORS.get(split), label=split)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(depths)))
    ax.set_xticklabels([str(d) for d in depths])
    ax.set_xlabel("nesting depth (number of enclosing entity extents; 0 = outermost)")
    ax.set_ylabel("share of entities (log scale)")
    ax.set_title("Nesting depth")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_discontinuous(all_stats, path):
    plt = _plt()
    counts = pooled(all_stats)["discontinuous_by_type"]
    names = [n for n, _ in counts.most_common()]
    fig, ax = plt.subplots(figsize=(7.5, max(2.5, 0.4 * len(names) + 1.2)))
    ax.barh(np.arange(len(names)), [counts[n] for n in names], color="#C44E52")
    ax.set_yticks(np.arange(len(names)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    for i, name in enumerate(names):
        ax.text(counts[name], i, f" {counts[name]}", va="center", fontsize=9)
    ax.set_xlabel("discontinuous entities (all splits)")
    ax.set_title("Discontinuous entities by type")
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def plot_relation_types(all_stats, path):
    plt = _plt()
    total = pooled(all_stats)
    names = sorted(relation_types(), key=lambda n: -_share(total["relation_doc_freq"][n], total["documents"]))
    labels = [f"{name} ({total['relation_instances'][name]:,})" for name in names]
    freqs = {
        split: [_share(s["relation_doc_freq"][n], s["documents"]) for n in names] for split, s in all_stats.items()
    }
    fig, ax = plt.subplots(figsize=(11, 16))
    _grouped_barh(ax, labels, freqs, "share of the split's documents with the label (CLS prevalence)")
    _percent_axis(ax)
    ax.set_title("Relation types: document frequency per split\n(in brackets: relation instances, all splits)")
    _save(fig, path)


def plot_labels_per_doc(all_stats, path):
    plt = _plt()
    from matplotlib.ticker import PercentFormatter

    fig, ax = plt.subplots(figsize=(8, 4.5))
    top = max(max(s["labels_per_doc"], default=0) for s in all_stats.values())
    bins = np.arange(0, top + 2) - 0.5
    for split, stats in all_stats.items():
        ax.hist(stats["labels_per_doc"], bins=bins, weights=np.full(len(stats["labels_per_doc"]), 1 / max(len(stats["labels_per_doc"]), 1)), histtype="step", linewidth=2,
                color=COLORS.get(split), label=f"{split} (mean {np.mean(stats['labels_per_doc']):.1f})")
    ax.set_xlabel("distinct relation types in a document (CLS labels)")
    ax.set_ylabel("share of the split's documents")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
    ax.set_title("Relation types per document")
    ax.legend()
    _save(fig, path)


def _heatmap(ax, matrix, rows, cols, title, cmap, vmin, vmax, label, fig):
    image = ax.imshow(matrix, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks(np.arange(len(cols)))
    ax.set_xticklabels(cols, rotation=90, fontsize=9)
    ax.set_yticks(np.arange(len(rows)))
    ax.set_yticklabels(rows, fontsize=9)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=label, fraction=0.04, pad=0.02)


def plot_cooccurrence(all_stats, path_args, path_docs, min_docs=5):
    plt = _plt()
    total = pooled(all_stats)
    rows, cols = list(relation_types()), list(entity_types())
    args = total["args"].astype(float)
    share = args / np.maximum(args.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(12, 15))
    _heatmap(ax, np.where(args > 0, share, np.nan), rows, cols,
             "Entity types of relation arguments (row: share of the label's Arg1+Arg2; all splits)",
             "YlGnBu", 0, 1, "share of the label's arguments (blank: none)", fig)
    _save(fig, path_args)

    # document level: lift = P(label | type present) / P(label)
    n_docs = total["documents"]
    p_label = total["relation_doc_freq"]
    p_label = np.array([_share(p_label[r], n_docs) for r in rows])
    docs_with = total["docs_with"].astype(float)
    cond = docs_with / np.maximum(total["ent_docs"][None, :], 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.log2(cond / p_label[:, None])
    lift[(docs_with < min_docs) | ~np.isfinite(lift)] = np.nan
    fig, ax = plt.subplots(figsize=(12, 15))
    _heatmap(ax, lift, rows, cols,
             f"Document co-occurrence: log2 lift of P(label | type in doc) over P(label)\n"
             f"(blank: fewer than {min_docs} documents with both; all splits)",
             "RdBu_r", -2, 2, "log2 lift (clipped to ±2)", fig)
    _save(fig, path_docs)


# -------------------------------------------------------------------------- report


def _pct(value):
    return f"{value:.1%}"


def _table(header, rows):
    return markdown_table(header, rows)


def write_report(data_dir, out_dir, tokenizer_path=None, on_problem=None, command=None):
    """Read the splits, write ``README.md``, ``summary.json`` and PNGs into ``out_dir``.

    Returns the summary dict (per split and ``all``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problems = []

    def collect(message):
        problems.append(message)
        if on_problem:
            on_problem(message)

    sources = find_splits(data_dir)
    splits = {split: list(read_documents(path, collect)) for split, path in sources.items()}
    tokenizer = None
    if tokenizer_path:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.no_truncation()
        tokenizer.no_padding()
    all_stats = corpus_stats(splits, tokenizer)
    total = pooled(all_stats)
    summary = {split: headline(stats) for split, stats in all_stats.items()}
    summary["all"] = headline(total)

    plot_lengths(all_stats, out_dir / "lengths.png")
    plot_entity_types(all_stats, out_dir / "entity_types.png")
    plot_nesting(all_stats, out_dir / "nesting_depth.png")
    plot_discontinuous(all_stats, out_dir / "discontinuous.png")
    plot_relation_types(all_stats, out_dir / "relation_types.png")
    plot_labels_per_doc(all_stats, out_dir / "relation_types_per_doc.png")
    plot_cooccurrence(all_stats, out_dir / "cooccurrence_arguments.png", out_dir / "cooccurrence_documents.png")

    (out_dir / "summary.json").write_bytes(
        orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )
    text = _markdown(summary, all_stats, total, sources, tokenizer_path, problems, command)
    (out_dir / "README.md").write_text(text, encoding="utf-8")
    return summary


def _markdown(summary, all_stats, total, sources, tokenizer_path, problems, command):
    a = summary["all"]
    names = list(all_stats)
    columns = names + ["all"]
    with_tokens = "tokens" in a
    lines = [
        "# NEREL: exploratory data analysis",
        "",
        f"Generated by `{command or 'nerelproc eda'}` from "
        + ", ".join(f"`{path}`" for path in sources.values())
        + (f"; model tokens counted with `{Path(tokenizer_path).name}` ({tokenizer_path})." if tokenizer_path
           else "; no tokenizer given, so no model-token lengths."),
        "Definitions are in the docstring of `nerelproc/analysis/eda.py`; an entity's extent runs from its",
        "smallest start to its largest end (a discontinuous entity covers its gaps).",
        "",
        "## Headline figures (all splits)",
        "",
        f"- **{_pct(a['nested_share'])}** of the {a['entities']:,} entities lie strictly inside another entity"
        f" (maximum nesting depth {a['max_depth']}); {a['same_extent_other_type']} entities share their exact"
        " extent with an entity of another type.",
        f"- **Flat-BIO ceiling: {_pct(a['flat_bio_ceiling'])}** of the entities are outermost (the entities one BIO"
        " layer keeps with the `score` flat rule: by start, longest first, drop what overlaps a kept one)."
        f" Even the best possible single layer (most non-overlapping entities) holds only"
        f" {_pct(a['best_single_layer'])}.",
        f"- **One BIO layer per entity type: ceiling {_pct(a['per_type_bio_ceiling'])}** (the same rule within each"
        " type): what it loses are same-type nestings, such as an ORGANIZATION inside an ORGANIZATION.",
        f"- **{a['relation_types_per_doc']:.1f} relation types per document** on average (the CLS labels;"
        f" {a['relations']:,} relation instances, {len(relation_types())} possible labels).",
        f"- {a['discontinuous']} discontinuous entities.",
    ]
    if with_tokens:
        lines.append(
            f"- Model tokens per document: median {a['tokens']['median']:.0f}, 95th percentile"
            f" {a['tokens']['p95']:.0f}, max {a['tokens']['max']:,}; **{_pct(a['over_max_tokens'])} of the documents"
            f" are longer than {MAX_TOKENS} tokens** (they need windows)."
            f" {_pct(a['entities_with_edge_inside_token'])} of the entities have an edge inside a token (a tagger of"
            " whole tokens cannot reach them exactly)."
        )
    if problems:
        lines += ["", "Input problems (the lines were skipped):", ""] + [f"- `{p}`" for p in problems]

    def row(title, fn):
        return [title] + [fn(summary[c]) for c in columns]

    table = [
        row("documents", lambda s: f"{s['documents']:,}"),
        row("characters / doc: mean", lambda s: f"{s['chars']['mean']:,.0f}"),
        row("characters / doc: median", lambda s: f"{s['chars']['median']:,.0f}"),
        row("characters / doc: max", lambda s: f"{s['chars']['max']:,}"),
    ]
    if with_tokens:
        table += [
            row("tokens / doc: median", lambda s: f"{s['tokens']['median']:,.0f}"),
            row("tokens / doc: p95", lambda s: f"{s['tokens']['p95']:,.0f}"),
            row("tokens / doc: max", lambda s: f"{s['tokens']['max']:,}"),
            row(f"docs over {MAX_TOKENS} tokens", lambda s: _pct(s["over_max_tokens"])),
            row("entities with an edge inside a token", lambda s: _pct(s["entities_with_edge_inside_token"])),
        ]
    table += [
        row("entities", lambda s: f"{s['entities']:,}"),
        row("entities / doc", lambda s: f"{s['entities_per_doc']:.1f}"),
        row("nested entities", lambda s: _pct(s["nested_share"])),
        row("max nesting depth", lambda s: s["max_depth"]),
        row("flat-BIO ceiling", lambda s: _pct(s["flat_bio_ceiling"])),
        row("one-layer-per-type ceiling", lambda s: _pct(s["per_type_bio_ceiling"])),
        row("best single layer", lambda s: _pct(s["best_single_layer"])),
        row("discontinuous entities", lambda s: s["discontinuous"]),
        row("same extent, other type", lambda s: s["same_extent_other_type"]),
        row("relations", lambda s: f"{s['relations']:,}"),
        row("relation types / doc", lambda s: f"{s['relation_types_per_doc']:.1f}"),
        row(f"labels present (of {len(relation_types())})", lambda s: s["labels_present"]),
    ]
    lines += ["", "## Per-split comparison", "", _table([""] + columns, table)]

    lines += [
        "",
        "## Document length",
        "",
        "![document lengths](lengths.png)",
        "",
        "## Entity types",
        "",
        "Left: each type's share of its split's entities (in brackets: count over all splits). Right: how often"
        " the type lies inside another entity.",
        "",
        "![entity types](entity_types.png)",
        "",
        "## Nesting",
        "",
        "![nesting depth](nesting_depth.png)",
        "",
        _table(
            ["depth"] + columns,
            [
                [d] + [f"{all_stats[c]['depths'][d]:,}" if c != "all" else f"{total['depths'][d]:,}" for c in columns]
                for d in range(a["max_depth"] + 1)
            ],
        ),
        "",
        "## Discontinuous entities",
        "",
        f"{a['discontinuous']} entities have more than one fragment ("
        + ", ".join(f"{k} fragments: {v}" for k, v in sorted(total["fragments"].items()))
        + "). Scoring compares their full span list; the flat view and the ceilings use their extent.",
        "",
        "![discontinuous entities](discontinuous.png)",
        "",
        "## Relation types (the CLS labels)",
        "",
        "A document's labels are the distinct types of its relations. The prevalence is the share of"
        " documents carrying the label; labels with few dev/test documents give unstable per-label and"
        " macro figures.",
        "",
        "![relation types](relation_types.png)",
        "",
        "![relation types per document](relation_types_per_doc.png)",
        "",
    ]
    rel_rows = []
    for name in sorted(relation_types(), key=lambda n: -total["relation_doc_freq"][n]):
        rel_rows.append(
            [name]
            + [f"{_pct(_share(all_stats[c]['relation_doc_freq'][name], all_stats[c]['documents']))}"
               f" ({all_stats[c]['relation_doc_freq'][name]})" for c in names]
            + [f"{total['relation_instances'][name]:,}"]
        )
    lines += [
        _table(["label"] + [f"{c}: docs" for c in names] + ["instances (all)"], rel_rows),
        "",
        "## Entity / relation-label co-occurrence",
        "",
        "Which entity types the relations connect (row-normalised), and which entity types in a document"
        " make a label more (red) or less (blue) likely than its base rate.",
        "",
        "![relation arguments](cooccurrence_arguments.png)",
        "",
        "![document co-occurrence](cooccurrence_documents.png)",
        "",
    ]
    return "\n".join(lines)
