"""The numpy heads: the mirror of the torch heads that the runtime rests on."""

import numpy as np
from needs import need

from nerelproc.runtime.heads import Heads, combine_cls_partials


def random_heads(rng, hidden=16, channels=5, labels=7):
    return Heads(rng.normal(size=(hidden, channels * 3)), rng.normal(size=channels * 3),
                 rng.normal(size=(labels, hidden)), rng.normal(size=(labels, hidden)), rng.normal(size=labels))


def test_cls_pooled_window_by_window_equals_the_whole_document():
    rng = np.random.default_rng(0)
    heads = random_heads(rng)
    states = rng.normal(size=(300, 16)).astype(np.float32) * 3
    whole = heads.cls_logits(states)
    for cuts in ([0, 300], [0, 120, 121, 300], [0, 50, 100, 150, 200, 250, 300]):
        partials = [heads.cls_partial(states[a:b]) for a, b in zip(cuts, cuts[1:])]
        np.testing.assert_allclose(combine_cls_partials(partials, heads), whole, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(combine_cls_partials([], heads), heads.cls_bias)


def test_numpy_heads_equal_the_torch_heads():
    torch = need("torch")
    from transformers import BertConfig, BertModel

    from nerelproc.training.model import JointModel

    encoder = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=32), add_pooling_layer=False)
    model = JointModel(encoder, n_channels=5, n_labels=7)
    model.load_heads(random_heads(np.random.default_rng(1)))
    heads = model.export_heads()
    states = torch.randn(40, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ner = model.ner_logits(states).numpy()
        cls = model.cls_logits(states).numpy()
    numpy_ner = (states.numpy() @ heads.ner_weight + heads.ner_bias).reshape(40, 5, 3)
    np.testing.assert_allclose(numpy_ner, ner, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(heads.ner_tags(states.numpy()), ner.argmax(-1))
    np.testing.assert_allclose(heads.cls_logits(states.numpy()), cls, rtol=1e-5, atol=1e-5)
