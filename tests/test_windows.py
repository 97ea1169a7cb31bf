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


def test_a_long_text_tokenised_in_pieces_gives_the_tokens_of_the_whole(nerel_dir):
    """Pieces cut before a space that follows a non-space: the same ids and offsets as the text
    tokenised whole, on NEREL dev and on strings made of what could break a cut (runs of
    spaces, line breaks, punctuation after a space, combining marks, invisible characters)."""
    import random
    from pathlib import Path

    import orjson
    from tokenizers import Tokenizer

    from nerelproc.runtime.windows import encode

    tokenizer = Tokenizer.from_file(str(Path(__file__).resolve().parents[1] / "models" / "nerel-e5-small-int8"
                                        / "tokenizer.json"))
    texts = [orjson.loads(line)["text"] for line in (nerel_dir / "jsonl" / "dev.jsonl").read_bytes().splitlines()]
    alphabet = list("абв ёж  ,.()-—«»\n\t\r\u00a0\u200d\u0301\u00adAB12🇺🇸ﬁ½\u3000") + ["  ", " (", "\n ", " \u0301"]
    rng = random.Random(0)
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 300))) for _ in range(300)]
    for text in texts[:40] + texts[-300:]:
        whole, pieces = encode(tokenizer, text, piece=10**9), encode(tokenizer, text, piece=rng.randint(1, 40))
        assert np.array_equal(whole.ids, pieces.ids) and np.array_equal(whole.offsets, pieces.offsets), repr(text)
    joined = "\n\n".join(texts[:40])
    assert np.array_equal(encode(tokenizer, joined, piece=500).offsets, encode(tokenizer, joined, piece=10**9).offsets)


def test_a_long_text_never_goes_to_the_tokenizer_whole(nerel_dir):
    """The tokenizer holds about 120 bytes a character while it works: a 300,000-character text
    goes to it in pieces of about ``ENCODE_PIECE`` characters (benchmarks/memory.py measures the
    whole run on 1,000,000)."""
    from pathlib import Path

    import orjson
    from tokenizers import Tokenizer

    from nerelproc.runtime.windows import ENCODE_PIECE, encode

    tokenizer = Tokenizer.from_file(str(Path(__file__).resolve().parents[1] / "models" / "nerel-e5-small-int8"
                                        / "tokenizer.json"))
    seen = []

    class Recording:
        def encode(self, text, **kwargs):
            seen.append(len(text))
            return tokenizer.encode(text, **kwargs)

    texts = [orjson.loads(line)["text"] for line in (nerel_dir / "jsonl" / "dev.jsonl").read_bytes().splitlines()]
    text = ("\n\n".join(texts) * 3)[:300_000]
    encoded = encode(Recording(), text)
    assert len(text) == 300_000 and sum(seen) == len(text) and len(seen) >= 5 and max(seen) < min(ENCODE_PIECE + 100, 60_000)
    assert encoded.offsets[-1, 1] == len(text.rstrip())
