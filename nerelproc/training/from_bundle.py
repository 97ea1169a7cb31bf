"""A torch encoder from an exported model directory (``ct2/`` int8 + ``heads.npz``): the start
of ``nerelproc train --init MODEL`` when the fp32 weights behind a model are gone.

``ct2/model.bin`` is CTranslate2's binary format (``ctranslate2.specs.ModelSpec._serialize``):
a version, the spec's name, its revision, then the variables (name, rank, shape, dtype id,
byte count, bytes) and the aliases (alias, variable name). An int8 weight comes with a float32
``weight_scale`` per row (``int8 = round(weight * scale)``), so ``weight = int8 / scale``.
The layout of a BERT encoder is the converter's (``ctranslate2.converters.transformers.BertLoader``):
query, key and value fused into ``self_attention/linear_0``, the word and token-type embeddings
as ``embeddings_0`` and ``embeddings_1``. Reading needs numpy only; building the model needs torch.
"""

import json
import struct
from pathlib import Path

import numpy as np

from nerelproc.training.config import SetupError

CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")  # CTranslate2's DataType ids
GELU = 3  # ctranslate2.specs.common_spec.Activation.GELU
SPECIALS = {"bos_token": "<s>", "eos_token": "</s>", "cls_token": "<s>", "sep_token": "</s>",
            "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"}


def is_bundle(path):
    """Whether ``path`` is an exported model directory (``ct2/`` and heads, no ``encoder/``)."""
    path = Path(path)
    return (path / "ct2" / "model.bin").is_file() and (path / "heads.npz").is_file() \
        and not (path / "encoder").is_dir()


def read_ct2(path):
    """``(spec name, revision, {name: array})`` of a CTranslate2 ``model.bin``; aliases resolved."""
    data = Path(path).read_bytes()
    at = 0

    def unpack(fmt):
        nonlocal at
        values = struct.unpack_from("<" + fmt, data, at)
        at += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def string():
        nonlocal at
        length = unpack("H")  # with the trailing NUL
        text = data[at : at + length - 1].decode("utf-8")
        at += length
        return text

    version = unpack("I")
    if version != 6:
        raise SetupError(f"{path}: CTranslate2 binary version {version}; this reader knows version 6")
    name, revision, count = string(), unpack("I"), unpack("I")
    variables = {}
    for _ in range(count):
        key = string()
        rank = unpack("B")
        shape = [unpack("I") for _ in range(rank)]
        dtype_id, size = unpack("B"), unpack("I")
        dtype = CT2_DTYPES[dtype_id]
        if dtype == "bfloat16":  # numpy has none: the upper half of a float32
            raw = np.frombuffer(data, np.uint16, size // 2, at).astype(np.uint32) << 16
            array = raw.view(np.float32)
        else:
            array = np.frombuffer(data, np.dtype(dtype), size // np.dtype(dtype).itemsize, at)
        variables[key] = array.reshape(shape)
        at += size
    for _ in range(unpack("I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    if at != len(data):
        raise SetupError(f"{path}: {len(data) - at} bytes left after the aliases: not a CTranslate2 model")
    return name, revision, variables


def dequantized(variables):
    """float32 arrays: every ``X`` with an ``X_scale`` becomes ``X / X_scale`` (per row); scales dropped."""
    out = {}
    for key, value in variables.items():
        if key.endswith("_scale"):
            continue
        scale = variables.get(key + "_scale")
        if scale is not None:
            scale = np.asarray(scale, np.float32)
            value = value.astype(np.float32) / (scale.reshape(-1, *[1] * (value.ndim - 1)) if scale.ndim else scale)
        elif value.dtype.kind == "f":
            value = value.astype(np.float32)
        out[key] = value
    return out


def bert_config(variables, ct2_config, vocabulary):
    """A ``BertConfig`` for the encoder in ``variables`` (the CTranslate2 spec's own fields)."""
    from transformers import BertConfig

    if int(variables["encoder/pre_norm"]) or "encoder/layernorm_embedding/gamma" not in variables:
        raise SetupError("not a BERT encoder (post-norm, with an embedding LayerNorm)")
    if int(variables["encoder/activation"]) != GELU:
        raise SetupError(f"activation {int(variables['encoder/activation'])}: only GELU (BERT's) is read")
    layers = 1 + max(int(k.split("/")[1][len("layer_"):]) for k in variables if k.startswith("encoder/layer_"))
    words, hidden = variables["encoder/embeddings_0/weight"].shape
    return BertConfig(
        vocab_size=words, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=int(variables["encoder/num_heads"]),
        intermediate_size=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0], hidden_act="gelu",
        max_position_embeddings=variables["encoder/position_encodings/encodings"].shape[0],
        type_vocab_size=variables["encoder/embeddings_1/weight"].shape[0],
        layer_norm_eps=float(ct2_config.get("layer_norm_epsilon", 1e-12)),
        pad_token_id=vocabulary.index(SPECIALS["pad_token"]) if SPECIALS["pad_token"] in vocabulary else 0,
        position_embedding_type="absolute",
    )


def bert_state_dict(weights, layers):
    """The dequantized CTranslate2 variables under ``BertModel``'s names (the pooler left out)."""
    state = {
        "embeddings.word_embeddings.weight": weights["encoder/embeddings_0/weight"],
        "embeddings.token_type_embeddings.weight": weights["encoder/embeddings_1/weight"],
        "embeddings.position_embeddings.weight": weights["encoder/position_encodings/encodings"],
        "embeddings.LayerNorm.weight": weights["encoder/layernorm_embedding/gamma"],
        "embeddings.LayerNorm.bias": weights["encoder/layernorm_embedding/beta"],
    }
    for i in range(layers):
        ct2, hf = f"encoder/layer_{i}/", f"encoder.layer.{i}."
        qkv_weight = np.split(weights[ct2 + "self_attention/linear_0/weight"], 3)
        qkv_bias = np.split(weights[ct2 + "self_attention/linear_0/bias"], 3)
        for part, w, b in zip(("query", "key", "value"), qkv_weight, qkv_bias):
            state[f"{hf}attention.self.{part}.weight"], state[f"{hf}attention.self.{part}.bias"] = w, b
        for theirs, ours in (("self_attention/linear_1", "attention.output.dense"),
                             ("ffn/linear_0", "intermediate.dense"), ("ffn/linear_1", "output.dense")):
            state[f"{hf}{ours}.weight"] = weights[f"{ct2}{theirs}/weight"]
            state[f"{hf}{ours}.bias"] = weights[f"{ct2}{theirs}/bias"]
        for theirs, ours in (("self_attention/layer_norm", "attention.output.LayerNorm"),
                             ("ffn/layer_norm", "output.LayerNorm")):
            state[f"{hf}{ours}.weight"] = weights[f"{ct2}{theirs}/gamma"]
            state[f"{hf}{ours}.bias"] = weights[f"{ct2}{theirs}/beta"]
    return state


def load_bundle_encoder(model_dir):
    """``(BertModel, fast tokenizer, cls id, sep id)`` from an exported model directory, as
    ``model.load_encoder`` returns them: the encoder dequantized to float32 from ``ct2/``,
    the tokenizer the model's own ``tokenizer.json``."""
    import torch
    from transformers import BertModel, PreTrainedTokenizerFast

    from nerelproc.runtime.bundle import Bundle

    model_dir = Path(model_dir)
    name, _, variables = read_ct2(model_dir / "ct2" / "model.bin")
    if name != "TransformerEncoderSpec":
        raise SetupError(f"{model_dir}/ct2 holds a {name}, not an encoder")
    ct2_config = json.loads((model_dir / "ct2" / "config.json").read_text("utf-8"))
    vocabulary = json.loads((model_dir / "ct2" / "vocabulary.json").read_text("utf-8"))
    config = bert_config(variables, ct2_config, vocabulary)
    state = bert_state_dict(dequantized(variables), config.num_hidden_layers)
    model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=True)
    model.name_or_path = model.config._name_or_path = str(model_dir.resolve())  # the frozen-layer cache's key
    model.eval()
    known = {role: token for role, token in SPECIALS.items() if token in vocabulary}  # never a new row
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(model_dir / "tokenizer.json"),
                                        model_max_length=config.max_position_embeddings, **known)
    bundle = Bundle.load(model_dir)
    return model, tokenizer, bundle.cls_id, bundle.sep_id
