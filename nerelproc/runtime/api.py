"""The Python API: ``Annotator.load().annotate(text)``. No torch.

It runs the same predictor and builds the same output objects as ``nerelproc
annotate`` (the command is built on it), so a text gives the same entities and
labels here and on the command line.

    from nerelproc import Annotator
    annotator = Annotator.load()                       # the bundled model
    result = annotator.annotate("Владимир Путин прилетел в Казань.")
    result.entities         # [Entity(type='PERSON', start=0, end=14, text='Владимир Путин',
                            #         normal='Владимир Путин'), ...]
    result.groups           # [Group(name='Владимир Путин', type='PERSON', mentions=(Entity(...), ...)), ...]
    result.relation_types   # ['...'];  result.relation_scores: {label: probability}
    result.relations        # [Relation(type='WORKS_AS', head=Entity(...), tail=Entity(...), probability=0.97)]
    annotator.annotate({"text": ..., "entities": [T-lines]}, given_entities=True)   # relations between yours
    for result in annotator.annotate_many(texts_or_dicts):   # streaming, in input order
        ...
"""

from dataclasses import dataclass, field
from itertools import tee

from nerelproc.io.readers import Record, document_from_json
from nerelproc.runtime.bundle import load_predictor, resolve_model
from nerelproc.runtime.output import error_object, output_object
from nerelproc.runtime.predictor import Failure


@dataclass(frozen=True)
class Entity:
    """A predicted entity: ``text == document_text[start:end]`` (end exclusive, ``str`` indices);
    ``normal``: its normal form («Андреем Травниковым» -> «Андрей Травников»,
    ``nerelproc.names``), None when names were left out."""

    type: str
    start: int
    end: int
    text: str
    normal: str | None = None


@dataclass(frozen=True)
class Group:
    """The mentions of one entity in a document: ``name`` is its fullest normal form, ``type``
    the mentions' type, ``mentions`` the ``Entity`` objects of ``Annotation.entities``, in text order."""

    name: str
    type: str
    mentions: tuple


@dataclass(frozen=True)
class Relation:
    """A predicted relation: ``head`` is NEREL's ``Arg1``, ``tail`` its ``Arg2``."""

    type: str
    head: Entity
    tail: Entity
    probability: float


@dataclass
class Annotation:
    """One document's result; ``error`` is set (and nothing else) when it could not be annotated."""

    id: object
    text: str | None
    entities: list = field(default_factory=list)  # [Entity], nested ones included, by (start, -end, type)
    relation_types: list = field(default_factory=list)  # the labels over their tuned thresholds
    relation_scores: dict = field(default_factory=dict)  # {label: probability} for all 49 labels
    relations: list = field(default_factory=list)  # [Relation] between the entities above
    groups: list = field(default_factory=list)  # [Group] of the entities above
    error: str | None = None
    _json: dict = field(default=None, repr=False, compare=False)

    def to_json(self):
        """The NEREL-style object that ``nerelproc annotate --scores`` writes for this document."""
        return dict(self._json)


class Annotator:
    def __init__(self, predictor, model_dir=None):
        self.predictor = predictor
        self.model_dir = model_dir

    @classmethod
    def load(cls, path=None, threads=0, backend="auto", batch_windows=1):
        """The model in ``path``: a model directory, or a bundled model by name (``"default"``, the
        default, or ``"fast"``); ``threads``: windows encoded at once,
        one core each (0: one per core). ``batch_windows`` windows of equal length share an
        encoder call (no effect on the output)."""
        model_dir = resolve_model(path)
        return cls(load_predictor(model_dir, backend, threads, batch_windows), model_dir)

    def annotate(self, item, given_entities=False, names=True):
        """A text, or a dict with ``text`` (and ``id``, NEREL fields, anything else passed through).
        ``given_entities``: the dict's own ``entities`` (T-lines) are the result's entities, and
        the model finds the relations between them and the document's labels. ``names``: each
        entity's normal form and the groups of mentions (``annotate --no-names`` leaves them out)."""
        return next(self.annotate_many([item], buffer=1, given_entities=given_entities, names=names))

    def annotate_many(self, items, buffer=64, given_entities=False, names=True):
        """Results in input order, ``buffer`` documents predicted at a time (``Predictor.pipe``);
        an item that cannot be read or annotated gives an ``Annotation`` with ``error`` set in
        its place, and the rest goes on."""
        records, readable = tee(_record(item, number) for number, item in enumerate(items, 1))
        items = (None if record.error is not None
                 else (record.document.text, record.document.entities if given_entities else None)
                 for record in readable)
        for record, prediction in zip(records, self.predictor.pipe(items, buffer, on_error=Failure.of)):
            error = record.error or (prediction.message if isinstance(prediction, Failure) else None)
            if error is not None:
                yield Annotation(record.id, None, error=error, _json=error_object(record, error))
            else:
                yield _annotation(record, prediction, names)


def _record(item, number):
    if isinstance(item, str):
        item = {"id": number, "text": item}
    try:
        document = document_from_json(item, number)
    except ValueError as error:
        return Record(number, error=str(error), id=item.get("id") if isinstance(item, dict) else None)
    return Record(number, document, id=document.id)


def _annotation(record, prediction, names=True):
    text = record.document.text
    obj = output_object(record, prediction, scores=True, names=names)
    ids = [line.split("\t", 1)[0] for line in obj["entities"]]  # one per predicted entity, in order
    normal = obj.get("normal", {})
    entities = [Entity(e.type, e.start, e.end, text[e.start : e.end], normal.get(entity_id))
                for e, entity_id in zip(prediction.entities, ids)]
    by_id = dict(zip(ids, entities))
    return Annotation(
        id=record.document.id,
        text=text,
        entities=entities,
        relation_types=list(prediction.relation_types),
        relation_scores={label: float(p) for label, p in zip(prediction.labels, prediction.relation_scores)},
        relations=[Relation(label, entities[head], entities[tail], probability)
                   for head, tail, label, probability in prediction.relations],
        groups=[Group(group["name"], group["type"], tuple(by_id[m] for m in group["mentions"]))
                for group in obj.get("groups", [])],
        _json=obj,
    )
