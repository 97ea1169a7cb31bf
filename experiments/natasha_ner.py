"""natasha's NER (slovnet, PER/LOC/ORG) on NEREL documents, written for ``nerelproc score``.

    python -m experiments.natasha_ner ../shared/nerel/jsonl/test.jsonl /tmp/natasha-test.jsonl
    nerelproc score /tmp/natasha-test.jsonl ../shared/nerel/jsonl/test.jsonl   # "coarse" rows

natasha knows three types; they are written as PERSON, LOCATION and ORGANIZATION, which the
score's PER/LOC/ORG view maps back to PER, LOC and ORG (it maps NEREL's CITY, COUNTRY, ... to
LOC too), so only that view compares the two systems. Needs natasha (the train extra).
"""

import sys

from nerelproc.io.document import Entity
from nerelproc.io.readers import read_documents
from nerelproc.io.writers import write_jsonl

NEREL_TYPE = {"PER": "PERSON", "LOC": "LOCATION", "ORG": "ORGANIZATION"}


def natasha_documents(documents):
    from natasha import Doc, NewsEmbedding, NewsNERTagger, Segmenter

    segmenter, tagger = Segmenter(), NewsNERTagger(NewsEmbedding())
    for document in documents:
        doc = Doc(document.text)
        doc.segment(segmenter)
        doc.tag_ner(tagger)
        document.entities = [Entity(NEREL_TYPE[span.type], ((span.start, span.stop),)) for span in doc.spans]
        document.relations, document.links, document.relation_types = [], [], []
        yield document


if __name__ == "__main__":
    source, target = sys.argv[1:3]
    write_jsonl(natasha_documents(read_documents(source)), target, renumber=True)
