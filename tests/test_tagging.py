import numpy as np

from nerelproc.io.document import Entity
from nerelproc.runtime.tagging import B, I, O, TagScheme
from nerelproc.runtime.windows import encode


def word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


TEXT = "Пресс-служба ГИБДД Москвы сообщила 5 мая"


def entity(type_, surface, text=TEXT):
    start = text.index(surface)
    return Entity(type_, ((start, start + len(surface)),))


def test_nested_entities_round_trip():
    scheme = TagScheme(["CITY", "ORGANIZATION", "DATE"], layers=2)
    gold = [
        entity("ORGANIZATION", "Пресс-служба ГИБДД Москвы"),
        entity("ORGANIZATION", "ГИБДД Москвы"),  # same type, nested: layer 1
        entity("CITY", "Москвы"),
        entity("DATE", "5 мая"),
    ]
    encoded = encode(word_tokenizer(), TEXT)
    tags = scheme.encode(gold, encoded.offsets)
    org0, org1 = scheme.channel("ORGANIZATION", 0), scheme.channel("ORGANIZATION", 1)
    assert tags[:, org0].tolist()[:6] == [B, I, I, I, I, O]
    assert tags[:, org1].tolist()[:6] == [O, O, O, B, I, O]
    assert {e.key for e in scheme.decode(tags, encoded.offsets, TEXT)} == {e.key for e in gold}


def test_adjacent_entities_of_one_type_stay_apart():
    text = "Иван Петр"
    scheme = TagScheme(["PERSON"], layers=1)
    gold = [entity("PERSON", "Иван", text), entity("PERSON", "Петр", text)]
    encoded = encode(word_tokenizer(), text)
    tags = scheme.encode(gold, encoded.offsets)
    assert tags[:, 0].tolist() == [B, B]
    assert {e.key for e in scheme.decode(tags, encoded.offsets, text)} == {e.key for e in gold}


def test_too_deep_is_left_out_and_decode_is_lenient():
    scheme = TagScheme(["ORGANIZATION"], layers=1)
    gold = [entity("ORGANIZATION", "Пресс-служба ГИБДД Москвы"), entity("ORGANIZATION", "ГИБДД")]
    encoded = encode(word_tokenizer(), TEXT)
    tags = scheme.encode(gold, encoded.offsets)
    assert len(scheme.decode(tags, encoded.offsets, TEXT)) == 1
    tags[:] = O
    tags[1:3, 0] = I  # an I with no B still opens an entity
    [decoded] = scheme.decode(tags, encoded.offsets, TEXT)
    assert decoded.surface(TEXT) == "-служба"


def test_decoded_spans_exclude_whitespace():
    text = "  Москва  "
    scheme = TagScheme(["CITY"], layers=1)
    offsets = np.array([[0, 8], [8, 10]])  # a "▁"-style token that includes the spaces
    tags = np.array([[B], [O]], dtype=np.int8)
    [decoded] = scheme.decode(tags, offsets, text)
    assert decoded.spans == ((2, 8),)


def test_scheme_ceiling_on_the_train_split_is_at_least_99_percent(nerel_dir, pruned_encoder_dir):
    """gold -> tags -> decode -> entities, scored against gold with the nested metric."""
    from tokenizers import Tokenizer

    from nerelproc.io.readers import read_documents
    from nerelproc.io.schema import entity_types
    from nerelproc.evaluation.score import score_documents
    from nerelproc.io.document import Document
    from nerelproc.runtime.windows import ner_tokenizer

    tokenizer = ner_tokenizer(Tokenizer.from_file(str(pruned_encoder_dir / "tokenizer.json")))
    scheme = TagScheme(entity_types(), layers=3)
    gold = list(read_documents(nerel_dir / "jsonl" / "train.jsonl"))
    decoded = []
    for document in gold:
        encoded = encode(tokenizer, document.text)
        tags = scheme.encode(document.entities, encoded.offsets)
        decoded.append(Document(document.id, document.text, scheme.decode(tags, encoded.offsets, document.text)))
    scores = score_documents(decoded, gold, warn=lambda message: None)
    print("ceiling", scores["ner"]["micro"])
    assert scores["ner"]["micro"]["r"] >= 0.99
    assert scores["ner"]["micro"]["f1"] >= 0.99


def test_decoded_spans_take_whole_words():
    text = "Он провёл встречу"
    scheme = TagScheme(["EVENT"], layers=1)
    offsets = np.array([[0, 2], [2, 7], [7, 9], [9, 17]])  # "Он", " пров", "ёл", " встречу"
    tags = np.array([[O], [B], [O], [O]], dtype=np.int8)
    [decoded] = scheme.decode(tags, offsets, text)
    assert decoded.surface(text) == "провёл"
    tags = np.array([[O], [O], [B], [O]], dtype=np.int8)  # a run starting inside the word
    assert scheme.decode(tags, offsets, text)[0].surface(text) == "провёл"


def test_spans_never_cut_a_grapheme_cluster():
    scheme = TagScheme(["COUNTRY", "CITY"], layers=1)
    text = "Флаг 🇺🇸 и Йо\u0301шкар-Ола"
    flag = text.index("🇺")
    city = text.index("Й")
    # sub-word offsets that split the flag's two regional indicators and the letter from its stress mark
    offsets = np.array([[0, 4], [flag, flag + 1], [flag + 1, flag + 2], [city, city + 2], [city + 2, city + 3]])
    tags = np.zeros((5, 2), dtype=np.int8)
    tags[1, 0] = B  # COUNTRY: the first half of the flag only
    tags[3, 1] = B  # CITY: "Йо" without its combining accent
    found = {e.type: text[e.start : e.end] for e in scheme.decode(tags, offsets, text)}
    assert found["COUNTRY"] == "🇺🇸"
    assert found["CITY"].startswith("Йо\u0301")


def test_a_character_standing_alone_is_the_cluster_the_full_search_finds():
    """The shortcut for characters that never join a cluster agrees with the ``\\X`` search, at
    every index of texts mixing them with those that do (marks, joiners, flags, CR LF, Hangul)."""
    import random

    from nerelproc.runtime import tagging

    def searched(text, index):
        for match in tagging.GRAPHEME.finditer(text):
            if match.start() <= index < match.end():
                return match.span()

    pieces = list("Москва, ёлки-2024 Zürich ÀÆ ʼ\u00ad") + ["\u0301", "\u0483", "\u200d", "\u200c", "\r\n", "\r",
                                                         "🇺🇸", "🇷", "👍🏽", "한", "\u1100\u1161", "\u0915\u093f",
                                                         "\u0600", "e\u0308", "\ufe0f", "\n"]
    rng = random.Random(0)
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        for index in range(len(text)):
            assert tagging._cluster_at(text, index) == searched(text, index), (text, index)


def test_invisible_characters_are_trimmed_from_entity_edges_as_spaces_are():
    """A zero-width joiner, non-joiner or space, a word joiner, a byte order mark or a soft hyphen
    at an edge is no part of the entity («Москву\u200d» is «Москву»); inside one it stays."""
    scheme = TagScheme(["CITY"], layers=1)
    for invisible in "\u200b\u200c\u200d\u2060\ufeff\u00ad":
        text = f"в {invisible}Москву{invisible} и Мос{invisible}кву"
        first, second = text.index("Москву") - 1, text.rindex("Мос")
        # "▁"-style tokens that take the invisible characters on both sides with the word
        offsets = np.array([[0, 1], [1, first + 7 + 1], [first + 8, second - 1], [second - 1, len(text)]])
        tags = np.array([[O], [B], [O], [B]], dtype=np.int8)
        found = [e.surface(text) for e in scheme.decode(tags, offsets, text)]
        assert found == ["Москву", f"Мос{invisible}кву"], repr(invisible)
    text = "Москву\u200d\u200d"
    [decoded] = scheme.decode(np.array([[B]], dtype=np.int8), np.array([[0, len(text)]]), text)
    assert decoded.surface(text) == "Москву"
    assert scheme.decode(np.array([[B]], dtype=np.int8), np.array([[0, 2]]), "\u200b\u00ad") == []
