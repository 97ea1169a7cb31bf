"""A student: the first layers of an exported model, trained against its outputs and the gold."""

import shutil

import numpy as np
import pytest
from needs import need

torch = need("torch")
need("transformers")

from nerelproc.training.config import TrainConfig  # noqa: E402
from nerelproc.training.data import load_documents  # noqa: E402
from nerelproc.training.distill import soft_ner_loss, teacher_outputs  # noqa: E402
from nerelproc.training.model import ner_loss  # noqa: E402
from nerelproc.training.trainer import Trainer  # noqa: E402


@pytest.fixture(scope="module")
def docs(nerel_dir):
    documents = load_documents(nerel_dir / "jsonl" / "dev.jsonl")
    return documents[:3], documents[10:12]


def _config(bundle, **overrides):
    options = dict(init=str(bundle), epochs=1, max_length=64, batch_windows=8, threads=1, lr=1e-3)
    options.update(overrides)
    return TrainConfig(**options)


def test_teacher_outputs_are_the_runtime_probabilities(tiny_model, docs):
    need("ctranslate2")
    from nerelproc.runtime.bundle import load_predictor

    predictor = load_predictor(tiny_model, threads=1, pair_head=False, relation_head=False)
    from nerelproc.training.data import make_examples

    examples = make_examples(docs[0], predictor.tokenizer, predictor.scheme, predictor.labels,
                             predictor.config.max_length, predictor.config.stride)
    outputs = teacher_outputs(tiny_model, examples, threads=1)
    for example, (tags, cls) in zip(examples, outputs):
        assert tags.shape == (len(example.encoded.ids), predictor.scheme.channels, 3)
        np.testing.assert_allclose(tags.astype(np.float32).sum(-1), 1.0, atol=2e-3)  # a distribution per channel
        expected = predictor.predict([example.document.text])[0].relation_scores
        np.testing.assert_allclose(cls, expected, atol=1e-5)


def test_soft_loss_on_one_hot_teacher_is_the_gold_loss():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 4, 3, generator=generator)
    tags = torch.randint(0, 3, (2, 5, 4), generator=generator)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.float32)
    one_hot = torch.nn.functional.one_hot(tags, 3).float()
    assert soft_ner_loss(logits, one_hot, mask).item() == pytest.approx(ner_loss(logits, tags, mask).item(), rel=1e-6)


def test_a_student_keeps_the_first_layers_learns_from_the_teacher_and_exports(tiny_model, docs, tmp_path):
    need("ctranslate2")
    from nerelproc.runtime.bundle import load_predictor
    from nerelproc.training.export import export

    bundle = tmp_path / "teacher"
    shutil.copytree(tiny_model, bundle)
    teacher_layers = Trainer(_config(bundle), *docs, tmp_path / "probe").encoder.config.num_hidden_layers
    assert teacher_layers >= 2
    student = Trainer(_config(bundle, encoder_layers=1, teacher=str(bundle), distill=0.5), *docs, tmp_path / "run")
    assert len(student.encoder.encoder.layer) == 1 and student.encoder.config.num_hidden_layers == 1
    assert student.teacher is not None and len(student.teacher) == len(student.train)

    student.model.eval()  # no dropout: the two losses differ by the teacher's part alone
    batch = list(range(len(student.train)))
    taught = student.losses(batch)
    gold_only = Trainer(_config(bundle, encoder_layers=1), *docs, tmp_path / "gold")
    gold_only.model.load_state_dict(student.model.state_dict())
    gold_only.model.eval()
    plain = gold_only.losses(batch)
    assert all(np.isfinite(float(v.detach())) for v in taught.values())
    assert abs(float(taught["ner"].detach()) - float(plain["ner"].detach())) > 1e-4  # the teacher's targets count
    assert abs(float(taught["cls"].detach()) - float(plain["cls"].detach())) > 1e-4

    student.fit()
    model = export(tmp_path / "run", tmp_path / "student")
    predictor = load_predictor(model, backend="ct2")
    assert predictor.predict([docs[1][0].text])[0].relation_scores.shape == (len(predictor.labels),)
