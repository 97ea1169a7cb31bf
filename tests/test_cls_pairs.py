"""The entity-pair CLS experiment's data (experiments/cls_pairs.py): which pairs it scores, the
labels it trains on and the document max. The figures in reports/model_recipes.md rest on it."""

import numpy as np
from needs import need

from experiments import cls_pairs

torch = need("torch")  # every test here trains: a skip without torch, a failure under CI

TYPES = ["PERSON", "PROFESSION", "CITY"]
RELATIONS = ["WORKS_AS", "PLACE_RESIDES_IN"]


def record(n_tokens=100):
    """Tokens of 2 characters each; a PERSON at tokens 0-1, a PROFESSION at 3, a CITY at 90,
    and an entity in a gap between tokens (it covers no token)."""
    rng = np.random.default_rng(0)
    offsets = np.array([(3 * i, 3 * i + 2) for i in range(n_tokens)])
    return dict(
        states=rng.normal(size=(n_tokens, 384)).astype(np.float16), offsets=offsets,
        gold_entities=[("T1", "PERSON", ((0, 5),)), ("T2", "PROFESSION", ((9, 11),)),
                       ("T3", "CITY", ((270, 272),)), ("T4", "CITY", ((2, 3),))],
        relations=["R1\tWORKS_AS Arg1:T1 Arg2:T2", "R2\tPLACE_RESIDES_IN Arg1:T1 Arg2:T3"],
        labels=["PLACE_RESIDES_IN", "WORKS_AS"])


def test_pairs_are_ordered_near_and_labelled_from_the_r_lines():
    pairs = cls_pairs.entity_pairs([record()], "gold_entities", TYPES, RELATIONS)
    # T4 covers no token and is dropped; T3 is 88 tokens from T1/T2, past MAX_DISTANCE (64)
    assert len(pairs["entities"]) == 3
    assert sorted(zip(pairs["a"].tolist(), pairs["b"].tolist())) == [(0, 1), (1, 0)]
    labels = {(a, b): y.tolist() for a, b, y in zip(pairs["a"].tolist(), pairs["b"].tolist(), pairs["y"])}
    assert labels == {(0, 1): [1.0, 0.0], (1, 0): [0.0, 0.0]}  # WORKS_AS goes from T1 to T2 only
    # the entity's features: the mean of its tokens' states, then its first token's
    states = record()["states"].astype(np.float32)
    assert np.allclose(pairs["entities"][0].numpy(), np.concatenate([states[0:2].mean(0), states[0]]))
    assert pairs["distance"].tolist() == [2, 2]  # token 3 - token 1 = 2: the bucket of 2 (index 2)


def test_document_probs_are_the_max_over_pairs_and_zero_without_any():
    docs = [record(), dict(record(), gold_entities=[("T1", "PERSON", ((0, 5),))])]
    pairs = cls_pairs.entity_pairs(docs, "gold_entities", TYPES, RELATIONS)
    model = cls_pairs.pair_head(len(TYPES), len(RELATIONS))
    probs = cls_pairs.document_probs(model, pairs, len(RELATIONS))
    with torch.no_grad():
        pair_probs = torch.sigmoid(model(pairs, torch.arange(len(pairs["a"])))).numpy()
    assert np.allclose(probs[0], pair_probs.max(0), atol=1e-6)
    assert probs[1].max() < 1e-9  # one entity: no pair, no relation
