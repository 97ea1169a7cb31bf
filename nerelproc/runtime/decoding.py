"""BIO-constrained NER decoding: per channel, the most probable tag path in which I never
follows O (Viterbi over O/B/I).

An argmax per token lets a stray I open an entity and a stray O cut one in two. On NEREL
dev the shipped model's nested F1 went from 0.742 (argmax) to 0.772 with this decoder
(precision 0.719 -> 0.780; `python benchmarks/decoding.py`).

Memory stays bounded by a window: only the (token, channel) pairs whose O is uncertain,
P(O) < 0.999, keep their three log-probabilities; every other pair is taken to be O, so
each run of uncertain tokens is decoded alone, between two O's.

``o_bias`` (nerelproc.json's ``ner_o_bias``, tuned on dev by ``nerelproc calibrate``) is
added to log P(O) of the uncertain pairs: above 0 it trades recall for precision. It
is never negative, so a pair taken to be O would stay O under it.
"""

import numpy as np

O, B, I = 0, 1, 2
CERTAIN_O = float(np.log(0.999))


def uncertain_pairs(log_probs, first_token):
    """``(tokens, channels, log_probs[n, 3])`` of one window's uncertain pairs (token indices
    into the document: the window's owned tokens start at ``first_token``)."""
    token, channel = np.nonzero(log_probs[:, :, O] < CERTAIN_O)
    # compact: 18 bytes a pair; a trained model is sure of O for most pairs (a random one is not)
    return (token + first_token).astype(np.int32), channel.astype(np.int16), log_probs[token, channel]


def constrained_tags(n_tokens, n_channels, pieces, o_bias=0.0):
    """Tags ``[tokens, channels]`` from the windows' ``uncertain_pairs``, given in window order."""
    if o_bias < 0:
        raise ValueError(f"o_bias must be >= 0, not {o_bias}")
    tags = np.zeros((n_tokens, n_channels), dtype=np.int8)
    pieces = [p for p in pieces if p is not None and len(p[0])]
    if not pieces:
        return tags
    token = np.concatenate([p[0] for p in pieces])
    channel = np.concatenate([p[1] for p in pieces])
    log_probs = np.concatenate([p[2] for p in pieces])
    order = np.lexsort((token, channel))  # by channel, then token
    token, channel, log_probs = token[order], channel[order], log_probs[order]
    if o_bias:
        log_probs = log_probs + np.array([o_bias, 0.0, 0.0], dtype=log_probs.dtype)
    starts = np.concatenate([[0], np.flatnonzero((np.diff(channel) != 0) | (np.diff(token) != 1)) + 1])
    tags[token, channel] = viterbi_runs(log_probs, starts, np.diff(np.append(starts, len(token))))
    return tags


def argmax_tags(n_tokens, n_channels, pieces, o_bias=0.0):
    """The decoding before this module, for comparison: each uncertain pair's most probable tag
    (a certain O is O either way). ``o_bias`` is ignored: argmax is the untuned baseline."""
    tags = np.zeros((n_tokens, n_channels), dtype=np.int8)
    for piece in pieces:
        if piece is not None:
            tags[piece[0], piece[1]] = piece[2].argmax(-1)
    return tags


def viterbi_runs(log_probs, starts, lengths):
    """``viterbi`` of every run ``log_probs[start : start + length]`` at once, the runs stepped
    together in numpy (a document has thousands, most of a few tokens): the same tags, ties
    included, in the rows' order. 3x faster than a loop over ``viterbi``, and it leaves the
    GIL to the windows encoded alongside."""
    order = np.argsort(-lengths, kind="stable")  # longest first: the runs still going are a prefix
    starts, lengths = starts[order], lengths[order]
    going = np.searchsorted(-lengths, -np.arange(lengths[0] if len(lengths) else 0))  # runs longer than t, per t
    rows = log_probs.astype(np.float64)  # viterbi adds Python floats
    o, b, i = rows[starts, O].copy(), rows[starts, B].copy(), np.full(len(starts), -np.inf)
    best_before = np.zeros(len(rows), np.int8)  # per row: the best state before it, for O and B ...
    inner_before = np.zeros(len(rows), np.int8)  # ... and for I (which may not follow O)
    for t in range(1, len(going)):
        n, at = going[t], starts[: going[t]] + t
        on, bn, inn = o[:n], b[:n], i[:n]
        best_before[at] = np.where((on >= bn) & (on >= inn), O, np.where(bn >= inn, B, I))
        inner_before[at] = np.where(bn >= inn, B, I)
        top, inner_top = np.maximum(np.maximum(on, bn), inn), np.maximum(bn, inn)
        o[:n], b[:n], i[:n] = top + rows[at, O], top + rows[at, B], inner_top + rows[at, I]
    state = np.where((o >= b) & (o >= i), O, np.where(b >= i, B, I)).astype(np.int8)
    tags = np.zeros(len(rows), np.int8)
    for t in range(len(going) - 1, -1, -1):  # back from each run's last token
        n, at = going[t], starts[: going[t]] + t
        tags[at] = state[:n]
        state[:n] = np.where(state[:n] == I, inner_before[at], best_before[at])
    return tags


def viterbi(log_probs):
    """The best O/B/I path through ``log_probs`` ``[n, 3]`` between an O before and an O after:
    I only after B or I. Ties go to O, then B, then I."""
    rows = log_probs.tolist()
    o, b, i = rows[0][0], rows[0][1], float("-inf")
    back = []
    for lo, lb, li in rows[1:]:
        best, top = (O, o) if o >= b and o >= i else ((B, b) if b >= i else (I, i))
        inner, inner_top = (B, b) if b >= i else (I, i)  # what an I may follow
        back.append((best, best, inner))
        o, b, i = top + lo, top + lb, inner_top + li
    state = O if o >= b and o >= i else (B if b >= i else I)
    path = [state]
    for pointers in reversed(back):
        state = pointers[state]
        path.append(state)
    return path[::-1]
