"""The ``nerelproc`` spaCy component: NEREL's nested entities and relation types on a ``Doc``.

    import spacy
    nlp = spacy.blank("ru")             # or a ru_core_news model: the component goes after it
    nlp.add_pipe("nerelproc")           # found through the ``spacy_factories`` entry point
    doc = nlp("Владимир Путин прилетел в Казань.")

    doc.spans["nerel"]       # every entity, nested ones included; span.label_ = the NEREL type
    doc.ents                 # the outermost ones (kept as they are when an earlier component set entities)
    doc.cats                 # {relation type: probability} for the model's 49 relation types
    doc._.relation_types     # the relation types over their tuned thresholds
    doc._.relations          # [Relation(type, head, tail, probability)], head and tail Spans
    span._.normal            # an entity Span's normal form: «Андреем Травниковым» -> «Андрей Травников»
    doc._.groups             # [{"name", "type", "mentions": [Span]}]: the mentions of one entity

The text is annotated by ``Annotator`` exactly as ``annotate`` does it; spaCy's tokens
decide only where the Spans can begin and end. An entity whose characters fall on token
boundaries gets a Span at exactly its offsets. One whose edge falls inside a spaCy token
is widened to the whole tokens it touches (``Doc.char_span(..., alignment_mode="expand")``),
so that it stays visible to everything that reads the Doc; two of one type widened to the
same tokens give one Span, and one that covers no token at all (whitespace only) is left out. ``annotate`` gives a discontinuous entity as its extent
(smallest start to largest end), so it becomes one Span over the gap too.

Relations, the relation types, the normal forms and the groups live in ``doc.user_data`` as
plain lists, so that
``Doc.to_bytes``, ``DocBin(store_user_data=True)`` and ``nlp.pipe(..., n_process=2)`` keep them.
"""

import os
from functools import partial
from pathlib import Path
from typing import NamedTuple, Optional

from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span
from spacy.util import minibatch

from nerelproc.evaluation.score import outermost
from nerelproc.io.schema import entity_types
from nerelproc.runtime.api import Annotator
from nerelproc.runtime.bundle import BUNDLED, CONFIG_FILE

FACTORY = "nerelproc"
RELATIONS_KEY = "nerelproc.relations"  # doc.user_data: [type, head start, end, label, tail ..., probability]
NORMAL_KEY = "nerelproc.normal"  # doc.user_data: [start, end, label, normal form] per entity Span
GROUPS_KEY = "nerelproc.groups"  # doc.user_data: [name, type, [[start, end, label], ...]] per group


class Relation(NamedTuple):
    type: str
    head: Span
    tail: Span
    probability: float


def _relations_of(doc):
    rows = doc.user_data.get(RELATIONS_KEY) or []
    return [Relation(kind, Span(doc, hs, he, label=hl), Span(doc, ts, te, label=tl), probability)
            for kind, hs, he, hl, ts, te, tl, probability in rows]


def _groups_of(doc):
    rows = doc.user_data.get(GROUPS_KEY) or []
    return [{"name": name, "type": kind,
             "mentions": [Span(doc, start, end, label=label) for start, end, label in spans]}
            for name, kind, spans in rows]


def _normal_of(span):
    """The normal form of an entity Span the component set (matched by tokens and label), else None."""
    for start, end, label, form in span.doc.user_data.get(NORMAL_KEY) or []:
        if start == span.start and end == span.end and label == span.label_:
            return form
    return None


for _name, _kwargs in (("relation_types", {"default": None}), ("relations", {"getter": _relations_of}),
                       ("groups", {"getter": _groups_of})):
    if not Doc.has_extension(_name):
        Doc.set_extension(_name, **_kwargs)
if not Span.has_extension("normal"):
    Span.set_extension("normal", getter=_normal_of)


@Language.factory(
    FACTORY,
    default_config={"model": None, "threads": 0, "span_key": "nerel", "set_ents": True, "overwrite_ents": False},
    assigns=["doc.spans", "doc.ents", "doc.cats", "doc._.relation_types", "doc._.relations", "doc._.groups",
             "span._.normal"],
)
def make_nerelproc(nlp: Language, name: str, model: Optional[str], threads: int, span_key: str,
                   set_ents: bool, overwrite_ents: bool):
    """``model``: a model directory or a bundled model by name ("default", "fast"; null: the
    default one); it is referenced by the saved pipeline's config, not copied. ``threads``:
    windows encoded at once (0: one per core)."""
    if model and model not in BUNDLED and not (Path(model) / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{name}: no nerelproc model in {model} (its `model` setting: a directory "
                                "written by `nerelproc export`, or null for the bundled model)")
    load = partial(Annotator.load, model, threads=threads)
    return NerelprocComponent(name, load(), span_key=span_key, set_ents=set_ents, overwrite_ents=overwrite_ents,
                              reload=load)


class NerelprocComponent(Pipe):
    def __init__(self, name, annotator, *, span_key="nerel", set_ents=True, overwrite_ents=False, reload=None):
        """``reload``: makes a new ``Annotator`` in a forked worker of ``nlp.pipe(n_process=...)``."""
        self.name = name
        self._annotator, self._pid, self._reload = annotator, os.getpid(), reload
        self._inherited = None
        self.span_key = span_key
        self.set_ents = set_ents
        self.overwrite_ents = overwrite_ents

    @property
    def annotator(self):
        if self._reload is not None and self._pid != os.getpid():
            # A worker forked by nlp.pipe(n_process=...) has the encoder's memory but none of its
            # threads: it loads its own. The parent's is kept, never freed: freeing it would wait
            # forever on those threads.
            self._inherited = self._annotator
            self._annotator, self._pid = self._reload(), os.getpid()
        return self._annotator

    @property
    def labels(self):
        return tuple(self.annotator.predictor.config.entity_types)

    def __call__(self, doc):
        return self.set_annotations(doc, self.annotator.annotate(doc.text))

    def pipe(self, stream, *, batch_size=128):
        """The Docs through ``annotate_many`` (``Predictor.pipe``), ``batch_size`` at a time (the
        output does not depend on the batching: the same as calling the component per Doc). A Doc
        that cannot be annotated goes alone to the pipeline's error handler (spaCy's default
        raises; ``nlp.set_error_handler`` can let the others go on) and the rest are yielded."""
        error_handler = self.get_error_handler()
        for docs in minibatch(stream, size=batch_size):
            try:
                results = list(self.annotator.annotate_many([doc.text for doc in docs], buffer=len(docs)))
            except Exception as error:  # noqa: BLE001 - not one Doc's fault (the model itself)
                error_handler(self.name, self, docs, error)
                continue
            for doc, result in zip(docs, results):
                try:
                    yield self.set_annotations(doc, result)
                except Exception as error:  # noqa: BLE001
                    error_handler(self.name, self, [doc], error)

    def set_annotations(self, doc, result):
        if result.error is not None:
            raise ValueError(f"{self.name}: the text could not be annotated: {result.error}")
        spans = entity_spans(doc, result.entities)
        doc.spans[self.span_key] = spans
        if self.set_ents and (self.overwrite_ents or not doc.has_annotation("ENT_IOB")):
            doc.ents = outermost_spans(spans)
        doc.cats.update(result.relation_scores)
        doc._.relation_types = list(result.relation_types)
        doc.user_data[RELATIONS_KEY] = relation_rows(doc, getattr(result, "relations", None) or [])
        doc.user_data[NORMAL_KEY] = normal_rows(doc, result.entities)
        doc.user_data[GROUPS_KEY] = group_rows(doc, getattr(result, "groups", None) or [])
        return doc


def entity_span(doc, entity):
    """The Span of ``entity``'s characters (``.type``, ``.start``, ``.end``): exact where both
    ends are token boundaries, else widened to the tokens touched; None if it covers no token."""
    return doc.char_span(entity.start, entity.end, label=entity.type, alignment_mode="expand")


def entity_spans(doc, entities):
    """The Spans of ``entities``, by (start, -end, label); two entities of one type widened to
    the same tokens ("1908" and "2011" in "1908—2011") give one Span."""
    spans = {}
    for entity in entities:
        span = entity_span(doc, entity)
        if span is not None:
            spans.setdefault((span.start, -span.end, span.label_), span)
    return [spans[key] for key in sorted(spans)]


def is_token_aligned(doc, entity):
    """Whether ``entity`` starts and ends on spaCy token boundaries (its Span is exact)."""
    return doc.char_span(entity.start, entity.end) is not None


class _Extent(NamedTuple):
    start: int
    end: int
    type: str
    span: Span


def outermost_spans(spans):
    """The flat layer of ``nerelproc score``: its ``outermost`` rule on the Spans' token extents
    (so that no two kept Spans share a token, which ``doc.ents`` requires)."""
    return [extent.span for extent in outermost([_Extent(s.start, s.end, s.label_, s) for s in spans])]


def relation_rows(doc, relations):
    """``annotate``'s relations (``.type``, ``.head``, ``.tail`` entities, ``.probability``) as
    plain lists of token indices; a relation whose head or tail has no Span is left out."""
    rows = []
    for relation in relations:
        head, tail = entity_span(doc, relation.head), entity_span(doc, relation.tail)
        if head is not None and tail is not None:
            rows.append([relation.type, head.start, head.end, head.label_,
                         tail.start, tail.end, tail.label_, float(relation.probability)])
    return rows


def normal_rows(doc, entities):
    """``[start, end, label, normal form]`` per entity Span; of two entities widened to one Span,
    the first one's form (as ``entity_spans`` keeps the first)."""
    rows = {}
    for entity in entities:
        span = entity_span(doc, entity)
        if span is not None and getattr(entity, "normal", None) is not None:
            rows.setdefault((span.start, span.end, span.label_), entity.normal)
    return [[start, end, label, form] for (start, end, label), form in sorted(rows.items())]


def group_rows(doc, groups):
    """``annotate``'s groups (``.name``, ``.type``, ``.mentions`` entities) as plain lists of token
    extents; a mention without a Span is left out, two widened to one Span count once, and a
    group left with no mention is dropped."""
    rows = []
    for group in groups:
        spans = []
        for entity in group.mentions:
            span = entity_span(doc, entity)
            if span is not None and [span.start, span.end, span.label_] not in spans:
                spans.append([span.start, span.end, span.label_])
        if spans:
            rows.append([group.name, group.type, spans])
    return rows


def displacy_colors():
    """A background colour per NEREL type for ``displacy.render(..., options={"colors": ...})``:
    the hues of ``nerelproc render``'s page (golden angle, schema order), light enough for black labels, dark enough for the underlines."""
    return {name: f"hsl({i * 137.508 % 360:.0f} 75% {66 if i % 2 else 74}%)" for i, name in enumerate(entity_types())}
