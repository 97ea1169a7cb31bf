"""From texts to entities and relation types, whatever runs the encoder.

``Predictor`` owns the steps that do not depend on the encoder's runtime:
tokenising, windowing, the numpy heads and decoding. The encoder is any function
from a list of token-id arrays of *equal length* to a list of ``[length, hidden]``
state arrays: CTranslate2 int8 at annotation time, torch fp32 while training. So the
dev scores seen in training and the output of ``annotate`` come from one code path.

Two guarantees shape this module:

- **A document's output depends on nothing but the document.** An encoder call only
  ever holds windows of the same length (no padding, and CTranslate2 quantises each
  row with its own scale), the heads run window by window, and a document's
  per-window results are combined in window order. Neighbours, batch size, buffer
  size, input order and the number of windows encoded at once (``workers``) cannot
  change a bit of it (``tests/test_annotate.py``).
- **Memory is bounded by a window, not by the document.** The encoder states of a
  window are turned into the log-probabilities of its uncertain NER tags (``decoding.py``),
  a partial CLS pooling, with a pair head its entity pairs' max logits (``pairs.py``) and,
  with a relation head, its pairs' relation scores over the lowest threshold
  (``relations.py``) as soon as they exist, then dropped.

With a span head (``spans.py``; a bundle with ``span_threshold``) a window keeps its
candidate spans over a low floor instead of its uncertain NER tags; a document's entities are
its candidates over the threshold, crossing ones resolved (``decode_spans``), and the pair and
relation heads read each window's spans over the threshold.

With ``given`` entities (``annotate --given-entities``) a document's entities are the
caller's: the pair and relation heads read those instead of the decoded ones.
"""

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
from threadpoolctl import threadpool_limits

from nerelproc.io.document import Entity
from nerelproc.runtime import casing
from nerelproc.runtime.decoding import constrained_tags, uncertain_pairs
from nerelproc.runtime.heads import combine_cls_partials, sigmoid
from nerelproc.runtime.pairs import NO_PAIR, entity_token_spans, tag_spans, window_pair_logits, window_pairs
from nerelproc.runtime.relations import decide, keep_best, logit, sentence_breaks, window_relations, window_surfaces
from nerelproc.runtime.spans import FLOOR, decode_spans, select_spans, span_edges, window_span_entities
from nerelproc.runtime.tagging import TagScheme
from nerelproc.runtime.windows import encode, plan_windows, window_inputs


_BUNDLE = object()  # an option left to the bundle (None is a value of its own: no thresholds)


@dataclass
class Prediction:
    entities: list  # [Entity]
    relation_scores: np.ndarray  # [labels] probabilities
    relation_types: list  # names over the thresholds
    labels: list  # the names of relation_scores' entries
    relations: list = field(default_factory=list)  # [(head, tail, label, probability)]: indices into entities
    cased_text: str | None = None  # the text re-cased for the encoder (casing.py), None when read as given


@dataclass(frozen=True)
class Failure:
    """What a document whose prediction raised gets in its place (``Predictor.pipe``)."""

    message: str

    @classmethod
    def of(cls, item, error):
        return cls(f"annotation failed: {type(error).__name__}: {error}")


def _text_and_given(item):
    return (item, None) if isinstance(item, str) else (item[0], item[1])


class _DocumentState:
    """What is kept of one document while its windows are encoded."""

    def __init__(self, text, encoded, windows, channels, given=None, given_spans=None):
        self.text, self.encoded, self.windows = text, encoded, windows
        self.channels = channels
        self.given, self.given_spans = given, given_spans  # the caller's entities and their token spans
        self.relation_logits = {}  # with a relation head: {(key a, key b, label): best logit}
        self.ner_pieces = [None] * len(windows)  # per window: its uncertain (token, channel) pairs, or its spans
        self.span_edges = None  # with a span head: (can_start, can_end) per token (spans.span_edges)
        self.cls_partials = [None] * len(windows)
        self.pair_logits = None  # with a pair head: the max over the windows' pairs [labels]
        self.cased_text = None  # with restore_case, the re-cased text the encoder read, if it differs


class Predictor:
    """The model side, assembled once: a tokenizer, the heads, the bundle's decisions and an
    encoder, with the options below fixed for the predictor's life (``with_options`` makes
    another one from the same parts). Nothing changes it after it is built.

    Options (each defaults to what the bundle says): ``tasks`` (one task only: what a
    single-task pipeline would compute, for benchmarks), ``decode_tags`` (``decoding.argmax_tags``
    gives the old decoder), ``o_bias``, ``pair_head`` and ``relation_head`` (None: without
    that head), ``relation_thresholds``, ``relation_thresholds_given``, ``relation_rule``
    (``"union"`` or ``"filter"``), ``relation_single`` (``{"arg1": labels, "arg2": labels}``),
    ``span_head`` (``spans.SpanHead``: entities from spans instead of tags; None: the tagging head),
    ``span_threshold`` and ``pair_entities`` (``"tags"``: with a span head, the pair head still
    reads the tagging head's entities; None: the predicted entities), ``short_text_chars`` (with a
    relation head, a text shorter than this many characters gets the types of its relations as
    ``relation_types``, whatever the rule; None or 0: every text by the rule), with a span head
    ``short_text_span_threshold`` (the span threshold of such a text, for its entities and the
    relation head's; None: ``span_threshold``), ``restore_case``
    (True: a text or line written all in lower case or all in capitals is re-cased for the encoder,
    ``casing.restore_case``; offsets and entity texts still come from the text as given).
    """

    def __init__(self, tokenizer, heads, config, encode_batch, batch_windows=1, tasks=("ner", "cls"),
                 pair_head=None, workers=1, relation_head=None, *, decode_tags=constrained_tags, o_bias=None,
                 relation_thresholds=_BUNDLE, relation_thresholds_given=_BUNDLE, relation_rule=None,
                 relation_single=None, span_head=None, span_threshold=None, pair_entities=_BUNDLE,
                 short_text_chars=_BUNDLE, short_text_span_threshold=_BUNDLE, restore_case=_BUNDLE):
        self._parts = dict(tokenizer=tokenizer, heads=heads, config=config, encode_batch=encode_batch,
                           batch_windows=batch_windows, tasks=tasks, pair_head=pair_head, workers=workers,
                           relation_head=relation_head, decode_tags=decode_tags, o_bias=o_bias,
                           relation_thresholds=relation_thresholds,
                           relation_thresholds_given=relation_thresholds_given, relation_rule=relation_rule,
                           relation_single=relation_single, span_head=span_head, span_threshold=span_threshold,
                           pair_entities=pair_entities, short_text_chars=short_text_chars,
                           short_text_span_threshold=short_text_span_threshold, restore_case=restore_case)
        self.tokenizer = tokenizer
        self.heads = heads
        self.config = config
        self.scheme = TagScheme(config.entity_types, config.layers)
        self.labels = list(config.relation_types)
        self.thresholds = np.asarray(config.thresholds, dtype=np.float32)
        self.encode_batch = encode_batch
        self.batch_windows = max(1, int(batch_windows))
        self.workers = max(1, int(workers))  # encoder calls at a time (ct2_encoder takes several)
        self.cls_id, self.sep_id = config.cls_id, config.sep_id
        self.tasks = tuple(tasks)
        self.decode_tags = decode_tags
        # None in models calibrated before it existed
        self.o_bias = float(config.ner_o_bias or 0.0) if o_bias is None else float(o_bias)
        self.pair_head = pair_head  # pairs.PairHead or None
        self.pair_weight = float(getattr(config, "pair_weight", None) or 0.0)
        self.relation_head = relation_head  # relations.RelationHead or None
        if relation_thresholds is _BUNDLE:
            relation_thresholds = getattr(config, "relation_thresholds", None)
        self.relation_thresholds = _array(relation_thresholds)
        if relation_thresholds_given is _BUNDLE:
            relation_thresholds_given = getattr(config, "relation_thresholds_given", None)
        given = _array(relation_thresholds_given)
        self.relation_thresholds_given = self.relation_thresholds if given is None else given
        # how relations meet relation_types
        self.relation_rule = relation_rule or getattr(config, "relation_rule", None) or "union"
        single = (getattr(config, "relation_single", None) or {}) if relation_single is None else relation_single
        self.relation_single = {arg: [label in single.get(arg, ()) for label in self.labels] for arg in ("arg1", "arg2")}
        self.span_head = span_head  # spans.SpanHead or None
        if span_threshold is None:
            span_threshold = getattr(config, "span_threshold", None)
        if span_head is not None and span_threshold is None:
            raise ValueError("a span head needs a span_threshold (the bundle's, or the option)")
        self.span_threshold = None if span_head is None else float(span_threshold)
        if pair_entities is _BUNDLE:
            pair_entities = getattr(config, "pair_entities", None)
        if pair_entities not in (None, "tags"):
            raise ValueError(f"pair_entities is {pair_entities!r}: \"tags\" or None (the predicted entities)")
        self.pair_entities = pair_entities
        if short_text_chars is _BUNDLE:
            short_text_chars = getattr(config, "short_text_chars", None)
        # the CLS thresholds were tuned on whole documents; on a shorter text the relations decide alone
        self.short_text_chars = int(short_text_chars or 0) if self.relation_head is not None else 0
        if short_text_span_threshold is _BUNDLE:
            short_text_span_threshold = getattr(config, "short_text_span_threshold", None)
        self.short_text_span_threshold = (self.span_threshold if span_head is None or short_text_span_threshold is None
                                          else float(short_text_span_threshold))
        if restore_case is _BUNDLE:
            restore_case = getattr(config, "restore_case", None)
        self.restore_case = bool(restore_case)
        self._assembled = True

    def __setattr__(self, name, value):
        if getattr(self, "_assembled", False):
            raise AttributeError(f"a Predictor is not changed once built: use with_options({name}=...)")
        super().__setattr__(name, value)

    def with_options(self, **changes):
        """Another predictor from the same parts (tokenizer, heads, encoder), ``changes`` applied."""
        unknown = set(changes) - set(self._parts)
        if unknown:
            raise TypeError(f"unknown predictor options: {', '.join(sorted(unknown))}")
        return Predictor(**{**self._parts, **changes})

    def pipe(self, items, buffer=64, on_error=None):
        """Predictions of ``items`` in input order, ``buffer`` documents encoded together: the one
        loop every caller runs documents through (``annotate``, ``batch``, Dask, the API, spaCy).

        An item is a text, a ``(text, given entities or None)`` pair, or None: nothing to predict
        (None comes back in its place). A buffer whose prediction raises is run again one
        document at a time, so that one failing document sinks nothing else: it gets
        ``on_error(item, error)`` in its place (``Failure.of``: a ``Failure``), or the error
        is raised when ``on_error`` is None."""
        items = iter(items)
        while True:
            chunk = list(islice(items, max(1, int(buffer))))
            if not chunk:
                return
            yield from self._predict_chunk(chunk, on_error)

    def _predict_chunk(self, chunk, on_error):
        todo = [(i, _text_and_given(item)) for i, item in enumerate(chunk) if item is not None]
        results = [None] * len(chunk)
        try:
            predicted = self.predict([text for _, (text, _) in todo], [given for _, (_, given) in todo])
            for (i, _), prediction in zip(todo, predicted):
                results[i] = prediction
        except Exception as failure:  # noqa: BLE001 - isolate the culprit, document by document
            if on_error is None:
                raise
            if len(todo) == 1:
                results[todo[0][0]] = on_error(chunk[todo[0][0]], failure)
                return results
            for i, (text, given) in todo:
                try:
                    results[i] = self.predict([text], [given])[0]
                except Exception as error:  # noqa: BLE001
                    results[i] = on_error(chunk[i], error)
        return results

    def predict(self, texts, given=None):
        """``Prediction`` per text; ``given``: per text, its own entities (or None to predict them)."""
        return [self.finish(document) for document in self.encode_documents(texts, given)]

    def encode_documents(self, texts, given=None):
        """Run the encoder and heads: per document, what ``finish`` decodes (compact: the
        uncertain NER pairs, the CLS poolings, the scored pairs), so that decisions can be
        re-tuned without running the encoder again (``nerelproc calibrate``)."""
        given = given or [None] * len(texts)
        documents = [self._plan(text, entities) for text, entities in zip(texts, given)]
        self._encode_batches(documents, list(self._equal_length_batches(documents)))
        return documents

    def _encode_batches(self, documents, batches):
        """Each worker encodes a batch ``[(document, window), ...]`` and runs the heads on it;
        only the heads' outputs come back, stored in batch order, so the workers change nothing
        but the time. numpy's BLAS on one thread: its idle threads spin and take the workers' cores."""
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(self.workers) as pool:
            for batch, outputs in zip(batches, pool.map(lambda batch: self._run_batch(documents, batch), batches)):
                for (d, k), output in zip(batch, outputs):
                    self._store(documents[d], k, output)

    def _run_batch(self, documents, batch):
        inputs = [window_inputs(documents[d].encoded, documents[d].windows[k], self.cls_id, self.sep_id)
                  for d, k in batch]
        return [self._window_outputs(documents[d], documents[d].windows[k], states[1:-1])  # drop <s> and </s>
                for (d, k), states in zip(batch, self.encode_batch(inputs))]

    def windows_of(self, text):
        """One document, window by window (one encoder call each, ``workers`` at a time):
        ``(document, k, states)`` after window k is consumed, its states still the caller's to
        use (``train-pairs``)."""
        document = self._plan(text)
        ks = [k for k, window in enumerate(document.windows) if window.end > window.start]

        def encode(k):
            return self.encode_batch([window_inputs(document.encoded, document.windows[k], self.cls_id,
                                                    self.sep_id)])[0][1:-1]

        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(self.workers) as pool:
            for k, states in zip(ks, pool.map(encode, ks)):
                self._consume(document, k, states)
                yield document, k, states

    def _plan(self, text, given=None):
        cased = casing.restore_case(text) if self.restore_case else text
        encoded = encode(self.tokenizer, cased)
        windows = plan_windows(len(encoded.ids), self.config.max_length, self.config.stride)
        given_spans = None if given is None else entity_token_spans(given, encoded.offsets,
                                                                    list(self.scheme.entity_types))
        document = _DocumentState(text, encoded, windows, self.scheme.channels, given, given_spans)
        document.cased_text = None if cased is text else cased
        if self.span_head is not None:
            document.span_edges = span_edges(text, encoded.offsets)
        return document

    def _equal_length_batches(self, documents):
        """``[(document, window), ...]`` groups of at most ``batch_windows`` windows of one length."""
        by_length = defaultdict(list)
        for d, document in enumerate(documents):
            for k, window in enumerate(document.windows):
                if window.end > window.start:
                    by_length[window.end - window.start].append((d, k))
        for length in sorted(by_length):
            group = by_length[length]
            for start in range(0, len(group), self.batch_windows):
                yield group[start : start + self.batch_windows]

    def _consume(self, document, k, states):
        self._store(document, k, self._window_outputs(document, document.windows[k], states))

    def _window_outputs(self, document, window, states):
        """One window's states -> ``(ner_piece, cls_partial, pair_logits, relations)``: its owned
        tokens' uncertain NER pairs, its share of the CLS pooling, with a pair head the max
        logits of the pairs among its entities, and with a relation head its pairs' relation
        scores over the lowest threshold (``(found, keys)``). The entities are decoded over the
        whole window, overlap included, so a near pair cut by one window's edge is whole in the
        next; with given entities, they are those whole in the window. Reads nothing but its
        inputs (the document's plan, the window, its states)."""
        lo, hi = window.own_start - window.start, window.own_end - window.start
        pairs = self.pair_head is not None and "cls" in self.tasks
        relations = self.relation_head is not None
        decoded = (pairs or relations) and document.given is None  # the pairs need the whole window's tags
        ner_piece = cls_partial = pair_logits = found = None
        if self.span_head is not None:
            if "ner" in self.tasks or decoded:
                candidates = self._window_spans(document, window, states, (lo, hi) if not decoded else None)
                threshold = self._span_threshold(document)
            if "ner" in self.tasks:
                ner_piece = self._owned_spans(candidates, window, lo, hi)
        else:
            if "ner" in self.tasks or decoded:
                log_probs = self.heads.ner_log_probs(states if decoded else states[lo:hi])
            if "ner" in self.tasks:
                ner_piece = uncertain_pairs(log_probs[lo:hi] if decoded else log_probs, window.own_start)
        if "cls" in self.tasks:
            cls_partial = self.heads.cls_partial(states[lo:hi])
        if pairs and self.pair_entities == "tags" and self.span_head is not None and document.given is None:
            # the pair head reads the tagging head's entities (it was chosen on them), the relation head the spans'
            types, first, last, _ = self._decoded_in_window(window, self.heads.ner_log_probs(states))
            shared = window_pairs(states, first, last)
            pair_logits = None if shared is None else window_pair_logits(self.pair_head, types, shared)
            pairs = False
        if pairs or relations:
            if document.given is not None:
                types, first, last, keys = self._given_in_window(document, window)
            elif self.span_head is not None:
                types, first, last, keys = self._selected_in_window(window, candidates, threshold)
            else:
                types, first, last, keys = self._decoded_in_window(window, log_probs)
            shared = window_pairs(states, first, last)  # both heads read the same pairs and entity features
        if pairs and shared is not None:
            pair_logits = window_pair_logits(self.pair_head, types, shared)
        if relations:
            found = None
            if shared is not None:
                thresholds = self.relation_thresholds if document.given is None else self.relation_thresholds_given
                surfaces = window_surfaces(document.text, document.encoded.offsets, first + window.start,
                                           last + window.start)
                breaks = sentence_breaks(document.text, document.encoded.offsets[window.start : window.end])
                found = window_relations(self.relation_head, states, types, first, last,
                                         float(logit(min(thresholds))), surfaces, shared, breaks)
            found = (found, keys)
        return ner_piece, cls_partial, pair_logits, found

    def _window_spans(self, document, window, states, owned=None):
        """The span head's candidates ``(types, first, last, scores)`` in one window (token
        indices into the window): those starting in ``owned`` (``(lo, hi)``; None: anywhere in
        the window) over ``FLOOR`` (or the threshold, if lower), so that ``finish`` can decode
        under another threshold without encoding again (``nerelproc calibrate``)."""
        can_start, can_end = document.span_edges
        edges = slice(window.start, window.end)
        owned = (0, len(states)) if owned is None else owned
        return window_span_entities(self.span_head, states, can_start[edges], can_end[edges], owned,
                                    min(FLOOR, self.span_threshold, self.short_text_span_threshold))

    @staticmethod
    def _owned_spans(candidates, window, lo, hi):
        """The candidates starting on the window's owned tokens, token indices into the document."""
        types, first, last, scores = candidates
        owned = (first >= lo) & (first < hi)
        return types[owned], first[owned] + window.start, last[owned] + window.start, scores[owned]

    def _selected_in_window(self, window, candidates, threshold=None):
        """``(types, first, last, keys)``: the span head's entities over the whole window (as
        ``decode_spans`` selects them, over ``threshold``: the model's), keyed as ``_decoded_in_window``'s."""
        threshold = self.span_threshold if threshold is None else threshold
        types, first, last, _ = select_spans(candidates, threshold, self.span_head.max_width)
        keys = list(zip(types.tolist(), (first + window.start).tolist(), (last + window.start).tolist()))
        return types, first, last, keys

    def _decoded_in_window(self, window, log_probs):
        """``(types, first, last, keys)``: the window's decoded entities, keyed in the whole
        document by ``(type, first token, last token)``."""
        types, first, last = self.window_entities(log_probs)
        keys = list(zip(types.tolist(), (first + window.start).tolist(), (last + window.start).tolist()))
        return types, first, last, keys

    @staticmethod
    def _given_in_window(document, window):
        """``(types, first, last, keys)``: the given entities whole in the window, keyed by their
        position in the document's list."""
        keys = [i for i, span in enumerate(document.given_spans)
                if span is not None and window.start <= span[1] and span[2] < window.end]
        types, first, last = (np.array([document.given_spans[i][c] for i in keys], np.int64) for c in range(3))
        return types, first - window.start, last - window.start, keys

    @staticmethod
    def _store(document, k, outputs):
        document.ner_pieces[k], document.cls_partials[k], logits, relations = outputs
        if logits is not None:  # a max: the same whatever the windows' order
            document.pair_logits = logits if document.pair_logits is None else np.maximum(document.pair_logits, logits)
        if relations is not None:
            keep_best(document.relation_logits, relations[1], relations[0])

    def window_entities(self, log_probs):
        """``(types, first, last)``: the entities a whole window's NER log-probabilities decode to
        (token indices into the window), under the model's O bias."""
        tags = constrained_tags(len(log_probs), self.scheme.channels, [uncertain_pairs(log_probs, 0)], self.o_bias)
        return tag_spans(tags, self.scheme.layers)

    def finish(self, document, o_bias=None, span_threshold=None):
        """A ``Prediction`` from an ``encode_documents`` result (``o_bias``, ``span_threshold``:
        the model's by default)."""
        o_bias = self.o_bias if o_bias is None else o_bias
        if document.given is None and self.span_head is not None:
            entities = self.span_entities(document, span_threshold)
        elif document.given is None:
            tags = self.decode_tags(len(document.encoded.ids), document.channels, document.ner_pieces, o_bias)
            entities = self.scheme.decode(tags, document.encoded.offsets, document.text)
        else:
            entities = list(document.given)
        scores = self.relation_scores(document)
        chosen = {label for label, score, t in zip(self.labels, scores, self.thresholds) if score >= t}
        relations = self.relations(document, entities)
        if len(document.text) < self.short_text_chars:  # the relations found are the labels
            chosen = {r[2] for r in relations}
        elif self.relation_rule == "filter":  # a relation stands only where its type is among the labels
            relations = [r for r in relations if r[2] in chosen]
        else:  # "union": a relation found adds its type to the labels
            chosen |= {r[2] for r in relations}
        return Prediction(entities, scores, sorted(chosen), self.labels, relations, document.cased_text)

    def span_entities(self, document, threshold=None):
        """The span head's entities of an ``encode_documents`` result (``threshold``: the model's
        for a text of that length)."""
        threshold = self._span_threshold(document) if threshold is None else threshold
        pieces = [piece for piece in document.ner_pieces if piece is not None]
        if not pieces:
            return []
        candidates = tuple(np.concatenate(column) for column in zip(*pieces))
        return decode_spans(candidates, threshold, document.encoded.offsets, document.text,
                            self.scheme.entity_types, self.span_head.max_width)

    def _span_threshold(self, document):
        short = len(document.text) < self.short_text_chars
        return self.short_text_span_threshold if short else self.span_threshold

    def relations(self, document, entities):
        """``[(head, tail, label, probability)]`` over ``entities`` (the document's final list)."""
        if self.relation_head is None or not document.relation_logits:
            return []
        if document.given is not None:
            return decide(document.relation_logits, {i: i for i in range(len(entities))},
                          self.relation_thresholds_given, self.labels, self.relation_single)
        position = {entity: p for p, entity in enumerate(entities)}
        index = {}
        for key in {k for pair in document.relation_logits for k in pair[:2]}:
            entity = self.scheme.entity_at(self.scheme.entity_types[key[0]], key[1], key[2],
                                           document.encoded.offsets, document.text)
            if entity in position:
                index[key] = position[entity]
        return decide(document.relation_logits, index, self.relation_thresholds, self.labels, self.relation_single)

    def relation_scores(self, document):
        """The CLS probabilities ``[labels]`` of an ``encode_documents`` result."""
        partials = [p for p in document.cls_partials if p is not None]
        probs = sigmoid(combine_cls_partials(partials, self.heads))
        if self.pair_head is None:
            return probs
        pairs = sigmoid(document.pair_logits if document.pair_logits is not None else np.full_like(probs, NO_PAIR))
        return (1 - self.pair_weight) * probs + self.pair_weight * pairs


def entities_with_ids(entities):
    """Predicted entities numbered T1, T2, ...; given ones (which have ids) keep theirs."""
    return [e if e.id else Entity(e.type, e.spans, f"T{i}") for i, e in enumerate(entities, 1)]


def _array(values):
    return None if values is None else np.asarray(values, dtype=np.float32)
