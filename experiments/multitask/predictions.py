"""A finished run's record, kept small beside the report so that it outlives the run folder.

A run folder (checkpoints, the best model, ``test_predictions.jsonl`` with every text) is too
big to keep in the repository; the analysis needs only what each run predicted per test
document (its entities, type and spans, and its CLS labels) and its dev history per epoch.
``store`` writes the predictions, gzipped and byte-stable (no text: the gold test file has
it), to ``reports/NAME/runs/RUN.predictions.jsonl.gz``; ``load`` gives back Documents with the
gold text, which score as the run's own predictions do. ``store_history`` copies the run's
``metrics.jsonl`` to ``RUN.history.jsonl`` beside it.
"""

import gzip
import io
import json
from pathlib import Path

def stored_path(folder, run):
    return Path(folder) / f"{run}.predictions.jsonl.gz"


def history_path(folder, run):
    return Path(folder) / f"{run}.history.jsonl"


def store_history(metrics_path, out_path):
    from nerelproc.io.writers import atomic_output

    with atomic_output(out_path) as file:
        file.write(Path(metrics_path).read_bytes())
    return Path(out_path)


def to_record(document):
    entities = sorted([entity.type, [list(span) for span in entity.spans]] for entity in document.entities)
    return {"id": str(document.id), "entities": entities, "relation_types": document.relation_labels()}


def store(predictions_path, out_path):
    """Write the compact copy of a run's ``test_predictions.jsonl``; return ``out_path``."""
    from nerelproc.io.readers import read_documents
    from nerelproc.io.writers import atomic_output

    lines = [json.dumps(to_record(d), ensure_ascii=False) + "\n"
             for d in read_documents(predictions_path, on_problem=lambda message: None)]
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as file:  # the same bytes each time
        file.write("".join(lines).encode("utf-8"))
    with atomic_output(out_path) as file:
        file.write(buffer.getvalue())
    return Path(out_path)


def load(path, gold):
    """The stored predictions as Documents carrying the gold documents' texts (matched by id)."""
    from nerelproc.io.document import Document, Entity

    texts = {str(d.id): d.text for d in gold}
    documents = []
    with gzip.open(path, "rt", encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            record = json.loads(line)
            if record["id"] not in texts:
                raise ValueError(f"{path}:{number}: document {record['id']!r} is not in the test set")
            entities = [Entity(kind, tuple(tuple(span) for span in spans)) for kind, spans in record["entities"]]
            documents.append(Document(record["id"], texts[record["id"]], entities,
                                      relation_types=record["relation_types"]))
    return documents
