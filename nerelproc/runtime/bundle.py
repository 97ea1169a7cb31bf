"""The model directory: its format (``Bundle``, the one owner of ``nerelproc.json``), where
the bundled one is, loading one into a ``Predictor``, its identity.

A model directory holds ``nerelproc.json`` (labels, thresholds, windowing),
``tokenizer.json`` (the NER tokenizer), ``heads.npz``, optionally ``pairs.npz`` (the
entity-pair CLS head, ``nerelproc train-pairs``) and ``relations.npz`` (the relation head,
``nerelproc train-relations``), optionally ``spans.npz`` (the span NER head,
``python -m experiments.span_head``; used when ``span_threshold`` is set), and either ``ct2/`` (the
exported int8 encoder; needs only ctranslate2) or ``encoder/`` (a transformers
checkpoint, as ``nerelproc train`` writes it; needs torch). Nothing here imports
torch unless the torch backend is asked for.
"""

import json
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from tokenizers import Tokenizer

from nerelproc.runtime.encoders import cores, ct2_encoder, torch_encoder
from nerelproc.runtime.heads import Heads
from nerelproc.runtime.pairs import PairHead
from nerelproc.runtime.predictor import Predictor
from nerelproc.runtime.relations import RELATIONS_FILE, RelationHead
from nerelproc.runtime.spans import SPANS_FILE, SpanHead

MODEL_NAME = "nerel-e5-small-int8"
FAST_MODEL_NAME = "nerel-e5-small-fast-int8"
BUNDLED = {"default": MODEL_NAME, "fast": FAST_MODEL_NAME}  # what --model and Annotator.load take by name
CONFIG_FILE = "nerelproc.json"
PAIRS_FILE = "pairs.npz"
OPTIONAL = ("train_config", "log_vars", "quantization", "exported_from", "ner_o_bias", "calibration",
            "pair_weight", "pairs", "relation_thresholds", "relation_thresholds_given", "relation_rule",
            "relation_single", "relations", "span_threshold", "spans", "pair_entities", "short_text_chars",
            "short_texts", "short_text_span_threshold", "restore_case", "casing")  # written only when set


@dataclass
class Bundle:
    """What ``nerelproc.json`` holds: labels, thresholds, windowing, provenance.

    ``nerelproc train`` writes it (``train_config``, ``log_vars``), ``nerelproc export``
    adds ``quantization`` and ``exported_from``, the runtime and the model card read it.
    Keys this version does not know are kept in ``extra`` and written back.
    """

    entity_types: list
    relation_types: list
    layers: int
    max_length: int
    stride: int | None  # None: three quarters of a window
    cls_id: int
    sep_id: int
    thresholds: list
    thresholds_tuning: dict | None
    tasks: list
    hidden_size: int
    train_config: dict | None = None
    log_vars: list | None = None
    quantization: str | None = None
    exported_from: str | None = None
    ner_o_bias: float | None = None  # added to log P(O) in NER decoding (decoding.py); None: 0
    calibration: dict | None = None  # what `nerelproc calibrate` measured when it set the decisions
    pair_weight: float | None = None  # of the pair head in the CLS probability (pairs.py); None: no pair head
    pairs: dict | None = None  # how `nerelproc train-pairs` trained and chose the pair head
    relation_thresholds: list | None = None  # per relation type, over predicted entities; None: no relation head
    relation_thresholds_given: list | None = None  # the same over given entities (annotate --given-entities)
    relation_rule: str | None = None  # "union" or "filter": how relations and relation_types agree (predictor.py)
    relation_single: dict | None = None  # {"arg1": labels, "arg2": labels} with one partner per argument (relations.py)
    relations: dict | None = None  # how `nerelproc train-relations` trained and chose the relation head
    span_threshold: float | None = None  # entities from the span head (spans.py) over this score; None: tagging head
    spans: dict | None = None  # how the span head was trained and its threshold chosen
    pair_entities: str | None = None  # "tags": with a span head, the pair head reads the tagging head's entities
    short_text_chars: int | None = None  # a text shorter than this gets its relations' types as labels (predictor.py)
    short_texts: dict | None = None  # how short_text_chars was chosen (experiments/headline_probe.py)
    short_text_span_threshold: float | None = None  # with a span head, the span threshold of a short text
    restore_case: bool | None = None  # all-lower and all-caps text re-cased for the encoder (casing.py)
    casing: dict | None = None  # how restore_case was chosen (experiments/case_probe.py)
    extra: dict = field(default_factory=dict)

    @classmethod
    def load(cls, model_dir):
        data = json.loads((Path(model_dir) / CONFIG_FILE).read_text("utf-8"))
        names = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in names},
                   extra={k: v for k, v in data.items() if k not in names})

    def to_json(self):
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        data = {k: v for k, v in data.items() if k not in OPTIONAL or v is not None}
        return {**data, **self.extra}

    def save(self, model_dir):
        (Path(model_dir) / CONFIG_FILE).write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False))



def default_model_dir(name=MODEL_NAME):
    """A bundled model (the default one unless ``name``): for the default, ``$NERELPROC_MODEL``
    first; then the source tree's ``models/``, or the installed copy."""
    candidates = [
        Path(os.environ["NERELPROC_MODEL"]) if os.environ.get("NERELPROC_MODEL") and name == MODEL_NAME else None,
        Path(__file__).resolve().parents[2] / "models" / name,  # a checkout (or pip install -e)
        Path(sys.prefix) / "share" / "nerelproc" / "models" / name,  # pip install . (data_files)
    ]
    for candidate in filter(None, candidates):
        if (candidate / CONFIG_FILE).exists():
            return candidate
    raise FileNotFoundError(
        f"no bundled model found (models/{name}); pass --model DIR "
        "(a directory written by `nerelproc export` or `nerelproc train`)"
    )


def resolve_model(model=None):
    """The directory of ``model``: a bundled model's name (``default``, ``fast``; None: the
    default), or a model directory's path."""
    if model is None or str(model) in BUNDLED:
        return default_model_dir(BUNDLED[model or "default"])
    if not Path(model).exists():
        raise FileNotFoundError(f"model {model}: neither a bundled model ({', '.join(BUNDLED)}) "
                                "nor a model directory")
    return Path(model)


def load_predictor(model_dir=None, backend="auto", threads=0, batch_windows=1, *, pair_head=True,
                   relation_head=True, **options):
    """The model in ``model_dir`` assembled into a ``Predictor``, once. ``pair_head`` and
    ``relation_head``: False leaves that head out (the CLS head alone; encoder states only);
    ``options``: the ``Predictor`` options (``tasks``, ``decode_tags``, ``o_bias``, ...)."""
    model_dir = resolve_model(model_dir)
    bundle = Bundle.load(model_dir)
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    heads = Heads.load(model_dir / "heads.npz")
    pairs, pair_head = pair_head, None
    if bundle.pair_weight and pairs:  # its thresholds were tuned on the mixed probabilities: no silent fallback
        if not (model_dir / PAIRS_FILE).is_file():
            raise FileNotFoundError(f"{model_dir} has no {PAIRS_FILE}, which its {CONFIG_FILE} uses "
                                    f"(pair_weight {bundle.pair_weight}): copy the whole model directory")
        pair_head = PairHead.load(model_dir / PAIRS_FILE)
    relations, relation_head = relation_head, None
    if bundle.relation_thresholds is not None and relations:
        if not (model_dir / RELATIONS_FILE).is_file():
            raise FileNotFoundError(f"{model_dir} has no {RELATIONS_FILE}, which its {CONFIG_FILE} uses "
                                    "(relation_thresholds): copy the whole model directory")
        relation_head = RelationHead.load(model_dir / RELATIONS_FILE)
    span_head = None
    if bundle.span_threshold is not None:  # the other heads' decisions were tuned on its entities: no fallback
        if not (model_dir / SPANS_FILE).is_file():
            raise FileNotFoundError(f"{model_dir} has no {SPANS_FILE}, which its {CONFIG_FILE} uses "
                                    f"(span_threshold {bundle.span_threshold}): copy the whole model directory")
        span_head = SpanHead.load(model_dir / SPANS_FILE)
    if backend == "auto":
        backend = "ct2" if (model_dir / "ct2").exists() else "torch"
    needs = {"ct2": ("ct2", "the exported encoder; export the run, or use --backend torch"),
             "torch": ("encoder", "a training output's encoder; use --backend ct2")}
    if backend in needs and not (model_dir / needs[backend][0]).is_dir():
        folder, what = needs[backend]
        raise FileNotFoundError(f"{model_dir} has no {folder}/ ({what}): the {backend} backend needs it")
    workers = 1  # encoder calls at a time
    if backend == "ct2":
        workers = threads or cores()
        encode_batch = ct2_encoder(model_dir / "ct2", workers)
    elif backend == "torch":
        encode_batch = torch_encoder(model_dir / "encoder", threads)
    else:
        raise ValueError(f"unknown backend {backend!r}")
    return Predictor(tokenizer, heads, bundle, encode_batch, batch_windows, pair_head=pair_head, workers=workers,
                     relation_head=relation_head, span_head=span_head, **options)


def model_identity(model_dir=None):
    """sha256 over the files that decide a model's output: what a resumed run must match."""
    import hashlib

    from nerelproc.io.files import file_sha256

    model_dir = resolve_model(model_dir)
    digest = hashlib.sha256()
    names = [CONFIG_FILE, "tokenizer.json", "heads.npz", PAIRS_FILE, RELATIONS_FILE, SPANS_FILE]
    for sub in ("ct2", "encoder"):
        if (model_dir / sub).is_dir():
            names += sorted(f"{sub}/{p.name}" for p in (model_dir / sub).iterdir() if p.is_file())
    for name in names:
        path = model_dir / name
        if path.is_file():
            digest.update(name.encode() + b"\0")
            file_sha256(path, digest)
    return digest.hexdigest()
