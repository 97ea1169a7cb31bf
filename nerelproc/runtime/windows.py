"""Long documents as overlapping windows of sub-word tokens, and back.

A document is tokenised once, whole (no truncation). Windows of at most
``max_length - 2`` tokens (room for ``<s>``/``</s>``) start every ``stride`` tokens.
Each token is *owned* by the window where it sits most centrally; merging keeps
each token's prediction from its owner only, so every character is covered once.
This module is shared by training (torch) and the int8 runtime (numpy only).
"""

from dataclasses import dataclass

import numpy as np
from tokenizers import Regex, Tokenizer, pre_tokenizers


@dataclass
class Encoded:
    ids: np.ndarray  # [tokens] sub-word ids, no special tokens
    offsets: np.ndarray  # [tokens, 2] character spans into the text


@dataclass
class Window:
    start: int  # first token (index into Encoded)
    end: int  # one past the last token
    own_start: int  # tokens [own_start, own_end) are owned by this window
    own_end: int


# Punctuation is split off before sentencepiece, so that an entity edge never falls
# inside a piece like "▁(4" of "(47,7 процента"; the space stays with what follows.
PUNCTUATION_SPLIT = r"\s?[^\w\s]"


def ner_tokenizer(tokenizer):
    """A copy of an XLM-R-style (Metaspace) tokenizer that isolates punctuation."""
    tokenizer = Tokenizer.from_str(tokenizer.to_str())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PUNCTUATION_SPLIT), "isolated"),
            pre_tokenizers.Metaspace(prepend_scheme="first"),
        ]
    )
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


# Characters tokenised at a time. The tokenizer holds about 120 bytes a character while it
# works (a 1,000,000-character text: 120 MB, most of it kept by the allocator afterwards);
# in pieces it holds a piece's worth.
ENCODE_PIECE = 50_000


def encode(tokenizer, text, piece=ENCODE_PIECE):
    """The text's sub-word ids and character offsets, tokenised whole or, when long, in pieces
    cut before a space that follows a non-space: there the pre-tokenizer (``PUNCTUATION_SPLIT``,
    then Metaspace) splits anyway and the normalizer (NFC, the charsmap) acts on neither side,
    so the pieces give the tokens of the whole text (``tests/test_windows.py``)."""
    ids, offsets = [], []
    for start, end in _pieces(text, piece):
        encoding = tokenizer.encode(text[start:end] if (start, end) != (0, len(text)) else text,
                                    add_special_tokens=False)
        ids.append(np.array(encoding.ids, dtype=np.int64))
        offsets.append(np.array(encoding.offsets, dtype=np.int64).reshape(-1, 2) + start)
        del encoding
    if len(ids) == 1:
        return Encoded(ids[0], offsets[0])
    return Encoded(np.concatenate(ids), np.concatenate(offsets))


def _pieces(text, piece):
    """``(start, end)`` of the pieces of ``text``: at least ``piece`` characters each (the last
    one may be shorter), each but the first starting at a space that follows a non-space."""
    start = 0
    while True:
        cut = text.find(" ", start + piece)
        while cut > 0 and text[cut - 1].isspace():
            cut = text.find(" ", cut + 1)
        if cut <= 0:
            yield start, len(text)
            return
        yield start, cut
        start = cut


def plan_windows(n_tokens, max_length=512, stride=None):
    """Windows covering ``n_tokens``; ownership goes to the most central window."""
    size = max_length - 2
    stride = stride or max(1, size * 3 // 4)
    if n_tokens <= size:
        return [Window(0, n_tokens, 0, n_tokens)]
    starts = list(range(0, n_tokens - size, stride)) + [n_tokens - size]
    windows = []
    for i, start in enumerate(starts):
        # Between two neighbours, the boundary is the midpoint of their overlap:
        # there each token is equally far from both windows' edges.
        own_start = 0 if i == 0 else (start + starts[i - 1] + size) // 2
        own_end = n_tokens if i == len(starts) - 1 else (starts[i + 1] + start + size) // 2
        windows.append(Window(start, start + size, own_start, own_end))
    return windows


def window_inputs(encoded, window, cls_id, sep_id):
    """Token ids of one window with its special tokens."""
    return np.concatenate([[cls_id], encoded.ids[window.start : window.end], [sep_id]])


def merge(window_outputs, windows, n_tokens):
    """Per-token rows of the owning windows: ``[n_tokens, ...]``.

    ``window_outputs[i]`` has one row per token of window ``i`` (special tokens removed).
    """
    merged = np.empty((n_tokens,) + window_outputs[0].shape[1:], dtype=window_outputs[0].dtype)
    for output, window in zip(window_outputs, windows):
        lo, hi = window.own_start - window.start, window.own_end - window.start
        merged[window.own_start : window.own_end] = output[lo:hi]
    return merged
