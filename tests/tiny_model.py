"""A tiny random BERT with a tokenizer trained on a few NEREL texts: for fast tests."""

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tokenizers.processors import TemplateProcessing

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def build_tiny_encoder(texts, out_dir, vocab_size=600, hidden=32, layers=2):
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, unk_token="<unk>")
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.post_processor = TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", cls_token="<s>", eos_token="</s>",
        sep_token="</s>", pad_token="<pad>", unk_token="<unk>",
    )
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=2, intermediate_size=hidden * 2, max_position_embeddings=128,
        pad_token_id=1, position_embedding_type="absolute",
    )
    model = BertModel(config, add_pooling_layer=False)
    model.save_pretrained(out_dir)
    fast.save_pretrained(out_dir)
    return out_dir


def finding_entities(model_dir):
    """Make a tiny model find entities (~80 a document; trained one epoch, it finds none)."""
    from nerelproc.runtime.heads import Heads

    heads = Heads.load(model_dir / "heads.npz")
    heads.ner_bias[0::3] -= 4.0
    heads.save(model_dir / "heads.npz")
    return model_dir


def add_relation_head(model_dir, threshold=0.5, rule="union", seed=0):
    """Give a model directory a random relation head (``relations.npz``) and its decisions;
    returns the head's torch twin."""
    import torch

    from nerelproc.runtime.bundle import Bundle
    from nerelproc.runtime.relations import RELATIONS_FILE
    from nerelproc.training.relations import RelationModel

    bundle = Bundle.load(model_dir)
    torch.manual_seed(seed)
    twin = RelationModel(len(bundle.entity_types), len(bundle.relation_types), hidden=bundle.hidden_size).eval()
    twin.export().save(model_dir / RELATIONS_FILE)
    bundle.relation_thresholds = [threshold] * len(bundle.relation_types)
    bundle.relation_thresholds_given = [threshold] * len(bundle.relation_types)
    bundle.relation_rule = rule
    bundle.save(model_dir)
    return twin


def random_head(rng, hidden=12, width=8, max_width=5, n_types=4):
    """A span head (``runtime/spans.py``) of random weights."""
    from nerelproc.runtime.spans import PARTS, SpanHead

    return SpanHead(rng.normal(size=(hidden, PARTS * width)), rng.normal(size=width),
                    rng.normal(size=(max_width, width)), rng.normal(size=(width, 1 + n_types)),
                    rng.normal(size=1 + n_types))


def with_span_head(source, model_dir, threshold, seed=0):
    """A copy of the model ``source`` with a random span head (``spans.npz``) and ``span_threshold``."""
    import shutil

    import numpy as np

    from nerelproc.runtime.bundle import Bundle
    from nerelproc.runtime.spans import SPANS_FILE

    shutil.copytree(source, model_dir)
    bundle = Bundle.load(model_dir)
    head = random_head(np.random.default_rng(seed), hidden=bundle.hidden_size, width=16, max_width=6,
                       n_types=len(bundle.entity_types))
    head.save(model_dir / SPANS_FILE)
    bundle.span_threshold = threshold
    bundle.save(model_dir)
    return head
