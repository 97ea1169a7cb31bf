import numpy as np
import pytest

from nerelproc.runtime.windows import merge, plan_windows


@pytest.mark.parametrize("n_tokens", [0, 1, 37, 510, 511, 1020, 1021, 5000, 12345])
@pytest.mark.parametrize("max_length,stride", [(512, None), (512, 100), (64, 62), (16, 3)])
def test_windows_cover_every_token_once(n_tokens, max_length, stride):
    windows = plan_windows(n_tokens, max_length, stride)
    owners = np.zeros(n_tokens, dtype=int)
    for w in windows:
        assert 0 <= w.start <= w.own_start <= w.own_end <= w.end <= n_tokens
        assert w.end - w.start <= max_length - 2
        owners[w.own_start : w.own_end] += 1
    assert (owners == 1).all()
    # Merging gives back each token's own row, from the window that owns it.
    outputs = [np.arange(w.start, w.end)[:, None] for w in windows]
    assert (merge(outputs, windows, n_tokens)[:, 0] == np.arange(n_tokens)).all()


def test_ownership_is_most_central():
    windows = plan_windows(2000, 512, 255)
    for token in range(2000):
        margins = [min(token - w.start, w.end - 1 - token) for w in windows if w.start <= token < w.end]
        owner = next(w for w in windows if w.own_start <= token < w.own_end)
        assert min(token - owner.start, owner.end - 1 - token) >= max(margins) - 1


def test_windows_cover_every_character_of_a_long_document():
    from tokenizers import Tokenizer, models, pre_tokenizers

    from nerelproc.runtime.windows import encode

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    text = " ".join(f"слово{i}" for i in range(3000))
    encoded = encode(tokenizer, text)
    windows = plan_windows(len(encoded.ids), 128)
    assert len(windows) > 20
    outputs = [encoded.offsets[w.start : w.end] for w in windows]
    merged = merge(outputs, windows, len(encoded.ids))
    covered = np.zeros(len(text), dtype=int)
    for start, end in merged:
        covered[start:end] += 1
    non_space = np.array([not c.isspace() for c in text])
    assert (covered[non_space] == 1).all() and (covered[~non_space] == 0).all()
    assert merged.shape == encoded.offsets.shape
