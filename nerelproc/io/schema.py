"""The NEREL label inventory: 29 entity types and 49 relation types.

A copy of the release's ``ent_types.jsonl`` / ``rel_types.jsonl`` ships inside the
package, so a bundled model knows its labels without the data folder.
"""

from functools import lru_cache
from importlib import resources

import orjson


def _read_types(name):
    lines = resources.files("nerelproc.io").joinpath("resources", name).read_text("utf-8").splitlines()
    records = [orjson.loads(line) for line in lines if line.strip()]
    return tuple(record["type"] for record in sorted(records, key=lambda r: r["id"]))


@lru_cache(maxsize=None)
def entity_types():
    return _read_types("ent_types.jsonl")


@lru_cache(maxsize=None)
def relation_types():
    return _read_types("rel_types.jsonl")


# Coarse PER/LOC/ORG view, the one natasha/slovnet users compare against.
COARSE = {
    "PERSON": "PER",
    "CITY": "LOC",
    "COUNTRY": "LOC",
    "STATE_OR_PROVINCE": "LOC",
    "LOCATION": "LOC",
    "DISTRICT": "LOC",
    "ORGANIZATION": "ORG",
}
