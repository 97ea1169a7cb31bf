"""Names people can count: each entity's normal form, and the mentions of one entity grouped.

    from nerelproc.names import annotate_names
    normal, groups = annotate_names(text, entities)   # entities: [nerelproc.io.document.Entity]
    normal   # {"T1": "Андрей Травников", ...}
    groups   # [{"name": "Андрей Травников", "type": "PERSON", "mentions": ["T1", "T5"]}, ...]

An entity without an id is named ``T<n>`` by its place in the list (n from 1), as the
annotation output numbers them. The morphology dictionaries load on the first call.
"""

from nerelproc.names.groups import group_mentions
from nerelproc.names.normal import VALUE_TYPES, normal_form


def annotate_names(text, entities):
    """``(normal, groups)`` of a document's entities: ``{id: normal form}`` and the groups
    of mentions that name one entity (``groups.group_mentions``), both in text order."""
    ids = [entity.id or f"T{n}" for n, entity in enumerate(entities, 1)]
    order = sorted(range(len(entities)), key=lambda k: (entities[k].start, -entities[k].end, k))
    normal = {}
    mentions = []
    for k in order:
        entity = entities[k]
        form = normal_form(entity.surface(text), entity.type)
        normal[ids[k]] = form
        mentions.append((ids[k], entity.type, form))
    return normal, group_mentions(mentions)


__all__ = ["VALUE_TYPES", "annotate_names", "group_mentions", "normal_form"]
