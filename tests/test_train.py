"""Training on a tiny random BERT and a few NEREL documents: seconds on a CPU."""

import json
import shutil

import numpy as np
import pytest
from needs import need

torch = need("torch")  # every test here trains: a skip without torch, a failure under CI
need("transformers")

from nerelproc.training.config import TrainConfig  # noqa: E402
from nerelproc.training.data import batches, load_documents  # noqa: E402
from nerelproc.training.run import run  # noqa: E402
from nerelproc.training.trainer import Trainer  # noqa: E402


@pytest.fixture(scope="module")
def tiny(nerel_dir, tiny_encoder):
    docs = load_documents(nerel_dir / "jsonl" / "dev.jsonl")
    return {"encoder": str(tiny_encoder), "train": docs[:10], "dev": docs[10:14]}


def config(tiny, **overrides):
    options = dict(encoder=tiny["encoder"], epochs=2, max_length=64, batch_windows=8, threads=1, lr=1e-3)
    options.update(overrides)
    return TrainConfig(**options)


def test_loss_decreases(tiny, tmp_path):
    trainer = Trainer(config(tiny, epochs=50), tiny["train"][:4], tiny["dev"], tmp_path)
    trainer.model.train()
    batch = list(range(4))
    losses = [trainer._step(batch)[1] for _ in range(25)]
    assert losses[-1]["ner"] < losses[0]["ner"] * 0.95
    assert losses[-1]["cls"] < losses[0]["cls"] * 0.8


def test_uncertainty_weights_move_and_total_can_go_negative(tiny, tmp_path):
    trainer = Trainer(config(tiny, epochs=50, sigma_lr=0.5), tiny["train"][:4], tiny["dev"], tmp_path)
    before = trainer.model.log_vars.detach().clone()
    totals = [trainer._step([0, 1, 2, 3])[0] for _ in range(10)]
    assert (trainer.model.log_vars.detach() - before).abs().min() > 0.5
    assert np.isfinite(totals).all()
    # exp(-s) * L + s / 2 is negative for small losses and s < 0: nothing clamps the total at 0
    with torch.no_grad():
        trainer.model.log_vars.fill_(-2.0)
    small = {"ner": torch.tensor(0.01), "cls": torch.tensor(0.01)}
    assert float(trainer.model.combine(small).detach()) == pytest.approx(2 * (np.exp(2.0) * 0.01 - 1.0))
    assert float(trainer.model.combine(small).detach()) < 0


@pytest.mark.parametrize("tasks", [("ner",), ("cls",), ("ner", "cls")])
def test_tasks_train_and_save(tiny, tmp_path, tasks):
    results = run(config(tiny, tasks=tasks, epochs=1), _jsonl(tiny, "train", tmp_path),
                  _jsonl(tiny, "dev", tmp_path), tmp_path / "run", test_path=_jsonl(tiny, "dev", tmp_path))
    best = tmp_path / "run" / "best"
    assert (best / "encoder" / "config.json").exists() and (best / "heads.npz").exists()
    saved = json.loads((best / "nerelproc.json").read_text())
    assert saved["tasks"] == list(tasks) and len(saved["thresholds"]) == 49
    assert set(results["test"]) >= {"ner", "cls", "docs"}
    assert (tmp_path / "run" / "curves.png").exists()
    lines = (tmp_path / "run" / "test_predictions.jsonl").read_text().splitlines()
    assert len(lines) == len(tiny["dev"])


def test_resume_after_interrupted_epoch_reproduces_metrics(tiny, tmp_path):
    train, dev = tiny["train"], tiny["dev"]
    straight = Trainer(config(tiny, epochs=3, freeze_layers=1), train, dev, tmp_path / "a").fit()

    interrupted = Trainer(config(tiny, epochs=3, freeze_layers=1), train, dev, tmp_path / "b")
    steps_per_epoch = len(list(batches(interrupted.train, 8, np.random.default_rng(0))))
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(interrupt_after_steps=steps_per_epoch + 2)  # dies inside epoch 2
    resumed = Trainer(config(tiny, epochs=3, freeze_layers=1), train, dev, tmp_path / "b")
    assert resumed.resume() and resumed.epoch == 1
    history = resumed.fit()

    drop = ("epoch_seconds", "eval_seconds")
    clean = lambda h: [{k: v for k, v in r.items() if k not in drop} for r in h]  # noqa: E731
    assert clean(history) == clean(straight)
    logged = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logged] == [1, 2, 3]


def test_refuses_to_overwrite_a_run_without_resume(tiny, tmp_path):
    train, dev = _jsonl(tiny, "train", tmp_path), _jsonl(tiny, "dev", tmp_path)
    run(config(tiny, epochs=1), train, dev, tmp_path / "run")
    with pytest.raises(FileExistsError):
        run(config(tiny, epochs=1), train, dev, tmp_path / "run")
    shutil.rmtree(tmp_path / "run")


def _jsonl(tiny, split, tmp_path):
    from nerelproc.io.writers import write_jsonl

    path = tmp_path / f"{split}.jsonl"
    if not path.exists():
        write_jsonl(tiny[split], path)
    return path


def test_frozen_layer_cache_is_shared_between_runs(tiny, tmp_path):
    cache = tmp_path / "cache"
    first = Trainer(config(tiny, freeze_layers=1, cache_dir=str(cache)), tiny["train"], tiny["dev"], tmp_path / "a")
    [saved] = list(cache.glob("lower-*.pt"))
    second = Trainer(config(tiny, freeze_layers=1, cache_dir=str(cache)), tiny["train"], tiny["dev"], tmp_path / "b")
    assert list(cache.glob("lower-*.pt")) == [saved]
    for a, b in zip(first.lower_cache, second.lower_cache):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    other = Trainer(config(tiny, freeze_layers=1, cache_dir=str(cache)), tiny["train"][:5], tiny["dev"], tmp_path / "c")
    assert len(list(cache.glob("lower-*.pt"))) == 2 and len(other.lower_cache) == 5


def test_bf16_autocast_and_attention_dropout_options(tiny, tmp_path):
    trainer = Trainer(config(tiny, precision="bf16", attention_dropout=0.0), tiny["train"][:4], tiny["dev"], tmp_path)
    dropouts = [m.dropout.p for m in trainer.encoder.modules() if type(m).__name__.endswith("SelfAttention")]
    assert dropouts and set(dropouts) == {0.0}
    assert trainer.encoder.config.attention_probs_dropout_prob == 0.0
    trainer.model.train()
    total, parts = trainer._step([0, 1, 2, 3])
    assert np.isfinite(total) and set(parts) == {"ner", "cls"}
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # autocast, not a bf16 model


@pytest.mark.parametrize("spelling", ["--batch-size", "--batch-windows"])
def test_train_batch_size_and_its_old_spelling(monkeypatch, spelling):
    from click.testing import CliRunner

    from nerelproc.cli import main
    import nerelproc.training.run

    seen = {}

    def fake_run(config, *args):
        seen["config"] = config
        return {"best_epoch": 1, "dev": {"dev_ner_f1": 0.5, "dev_cls_micro_f1": 0.5, "dev_cls_macro_f1": 0.5}}

    monkeypatch.setattr(nerelproc.training.run, "run", fake_run)
    result = CliRunner().invoke(main, ["train", "--train", "t", "--dev", "d", "-o", "o", spelling, "3"])
    assert result.exit_code == 0, result.output
    assert seen["config"].batch_windows == 3
    help_text = CliRunner().invoke(main, ["train", "--help"]).output
    assert "--batch-size" in help_text and "--batch-windows" not in help_text  # the old spelling is hidden


def test_cls_loss_mean_is_the_sum_over_labels_divided_by_their_number(tiny, tmp_path):
    from nerelproc.training.model import cls_loss

    logits, targets = torch.randn(3, 49), (torch.rand(3, 49) < 0.3).float()
    assert torch.allclose(cls_loss(logits, targets, "mean") * 49, cls_loss(logits, targets))
    summed = Trainer(config(tiny), tiny["train"][:2], tiny["dev"], tmp_path / "sum")
    averaged = Trainer(config(tiny, cls_loss="mean"), tiny["train"][:2], tiny["dev"], tmp_path / "mean")
    averaged.model.load_state_dict(summed.model.state_dict())
    for trainer in (summed, averaged):
        trainer.model.eval()  # no dropout: the same forward twice
    with torch.no_grad():
        ratio = summed.losses([0, 1])["cls"] / averaged.losses([0, 1])["cls"]
    assert ratio.item() == pytest.approx(len(summed.labels), rel=1e-4)


def test_init_starts_from_a_saved_model_with_a_fresh_schedule(tiny, tmp_path):
    from nerelproc.runtime.heads import HEAD_PARAMS

    first = Trainer(config(tiny, epochs=1), tiny["train"][:4], tiny["dev"][:2], tmp_path / "first")
    first.fit()
    best = tmp_path / "first" / "best"
    second = Trainer(config(tiny, init=str(best)), tiny["train"][:4], tiny["dev"][:2], tmp_path / "second")
    saved, loaded = first.model.export_heads(), second.model.export_heads()
    for name in HEAD_PARAMS:
        np.testing.assert_array_equal(getattr(saved, name), getattr(loaded, name))
    assert torch.equal(first.model.log_vars, second.model.log_vars)
    for a, b in zip(first.encoder.state_dict().values(), second.encoder.state_dict().values()):
        assert torch.equal(a, b)
    assert second.epoch == 0 and second.scheduler.last_epoch == 0  # its own schedule, from the start


def test_stop_after_ends_the_sitting_and_resume_finishes_the_same_run(tiny, tmp_path):
    train, dev = _jsonl(tiny, "train", tmp_path), _jsonl(tiny, "dev", tmp_path)
    straight = run(config(tiny, epochs=3, max_train_docs=4), train, dev, tmp_path / "a")
    assert run(config(tiny, epochs=3, max_train_docs=4), train, dev, tmp_path / "b", stop_after_epoch=1) is None
    assert not (tmp_path / "b" / "metrics.json").exists()  # not finished: no summary yet
    resumed = run(config(tiny, epochs=3, max_train_docs=4), train, dev, tmp_path / "b", resume=True)
    drop = ("epoch_seconds", "eval_seconds")
    assert {k: v for k, v in resumed["dev"].items() if k not in drop} == \
        {k: v for k, v in straight["dev"].items() if k not in drop}


def test_export_checkpoint_gives_the_weights_of_the_epoch_the_sitting_stopped_at(tiny, tmp_path):
    from nerelproc.runtime.heads import Heads
    from nerelproc.runtime.bundle import Bundle
    from nerelproc.training.run import checkpoint_model

    trainer = Trainer(config(tiny, epochs=3), tiny["train"][:4], tiny["dev"][:2], tmp_path / "run")
    trainer.fit(stop_after_epoch=2)
    assert trainer.epoch == 2 and not trainer.finished
    assert checkpoint_model(tmp_path / "run", tmp_path / "model") == 2
    saved, expected = Heads.load(tmp_path / "model" / "heads.npz"), trainer.model.export_heads()
    np.testing.assert_array_equal(saved.ner_weight, expected.ner_weight)
    np.testing.assert_array_equal(saved.cls_query, expected.cls_query)
    assert Bundle.load(tmp_path / "model").thresholds == [0.5] * 49  # left for calibrate

    from nerelproc.training.export import export

    exported = export(tmp_path / "run", tmp_path / "int8", checkpoint=True)
    np.testing.assert_array_equal(Heads.load(exported / "heads.npz").cls_weight, expected.cls_weight)
    assert Bundle.load(exported).exported_from == f"{tmp_path / 'run'} (checkpoint, epoch 2)"


def test_layer_wise_lr_decay_gives_lower_layers_smaller_steps(tiny, tmp_path):
    flat = Trainer(config(tiny), tiny["train"][:2], tiny["dev"], tmp_path / "flat")
    decayed = Trainer(config(tiny, lr_decay=0.5), tiny["train"][:2], tiny["dev"], tmp_path / "decayed")
    lr_of = lambda trainer: {id(p): group["lr"] for group in trainer.optimizer.param_groups  # noqa: E731
                             for p in group["params"]}
    encoder = dict(decayed.model.encoder.named_parameters())
    top = len(decayed.model.encoder.encoder.layer)
    assert set(lr_of(flat)[id(p)] for p in flat.model.encoder.parameters()) == {1e-3}
    lrs = lr_of(decayed)
    assert all(id(p) in lrs for p in encoder.values())  # every encoder parameter trains, once
    assert lrs[id(encoder["embeddings.word_embeddings.weight"])] == pytest.approx(1e-3 * 0.5 ** top)
    for i in range(top):
        assert lrs[id(encoder[f"encoder.layer.{i}.attention.self.query.weight"])] == pytest.approx(1e-3 * 0.5 ** (top - 1 - i))
    assert lrs[id(decayed.model.ner.weight)] == flat.config.head_lr  # the heads keep their own rate


def test_init_from_an_exported_int8_model(tiny, tiny_model, tmp_path):
    """``--init`` on an exported model: the encoder dequantized from ct2/model.bin (within half
    an int8 step of the fp32 weights it was exported from), the heads and σ's as saved; its dev
    predictions agree with the int8 runtime's; and the run trains (a frozen layer cached) and
    exports again."""
    from nerelproc.runtime.bundle import Bundle, load_predictor
    from nerelproc.runtime.heads import HEAD_PARAMS, Heads
    from nerelproc.training.export import export
    from nerelproc.training.from_bundle import dequantized, read_ct2
    from nerelproc.training.model import load_encoder
    from tiny_model import finding_entities

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_model, bundle)
    finding_entities(bundle)  # entities to compare (one epoch of training finds none)
    options = dict(init=str(bundle), epochs=1, freeze_layers=1, cache_dir=str(tmp_path / "cache"))
    trainer = Trainer(config(tiny, **options), tiny["train"][:3], tiny["dev"][:3], tmp_path / "run")
    assert len(list((tmp_path / "cache").glob("lower-*.pt"))) == 1  # the frozen layer's outputs, kept

    original = load_encoder(str(tiny_model.parent / "run" / "best" / "encoder"))[0].state_dict()
    loaded = trainer.encoder.state_dict()
    assert set(original) == set(loaded)
    _, _, variables = read_ct2(bundle / "ct2" / "model.bin")
    scales = {k[: -len("_scale")]: v for k, v in variables.items() if k.endswith("_scale")}
    assert len(scales) >= 2 + 4 * trainer.encoder.config.num_hidden_layers  # embeddings and every linear layer
    qkv = dequantized(variables)["encoder/layer_0/self_attention/linear_0/weight"]
    assert torch.equal(loaded["encoder.layer.0.attention.self.key.weight"], torch.from_numpy(np.split(qkv, 3)[1]))
    step = 1 / torch.tensor(scales["encoder/layer_1/ffn/linear_0/weight"])[:, None]
    name = "encoder.layer.1.intermediate.dense.weight"
    error = loaded[name] - original[name]
    assert (error.abs() <= step / 2 + 1e-6).all() and error.abs().max() > 0  # dequantized, not the fp32 copy
    for name in original:
        assert torch.allclose(loaded[name], original[name], atol=0.02), name

    saved = Heads.load(bundle / "heads.npz")
    for name in HEAD_PARAMS:
        np.testing.assert_array_equal(getattr(trainer.model.export_heads(), name), getattr(saved, name))
    assert trainer.model.log_vars.tolist() == pytest.approx(Bundle.load(bundle).log_vars)

    texts = [d.text for d in tiny["dev"]]
    ours = trainer.predictor(thresholds=Bundle.load(bundle).thresholds).predict(texts)
    theirs = load_predictor(bundle, backend="ct2").predict(texts)
    spans = lambda p: {(e.type, e.start, e.end) for e in p.entities}  # noqa: E731
    assert sum(len(spans(p)) for p in ours) > 50
    for a, b in zip(ours, theirs):
        assert len(spans(a) & spans(b)) >= 0.9 * max(len(spans(a)), len(spans(b)))
        np.testing.assert_allclose(a.relation_scores, b.relation_scores, atol=0.02)

    trainer.fit()
    assert (tmp_path / "run" / "best" / "heads.npz").exists()
    again = export(tmp_path / "run", tmp_path / "again")
    assert load_predictor(again, backend="ct2").predict(texts[:1])
    assert b"\n" not in (again / "tokenizer.json").read_bytes().strip()  # written unindented


def test_init_refuses_what_is_not_a_model(tiny, tmp_path):
    from nerelproc.training.config import SetupError

    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither a model written by train"):
        Trainer(config(tiny, init=str(tmp_path / "empty")), tiny["train"][:2], tiny["dev"][:2], tmp_path / "run")
    with pytest.raises(SetupError, match="nesting layers"):
        Trainer(config(tiny, init=str(_tiny_best(tiny, tmp_path)), layers=2), tiny["train"][:2], tiny["dev"][:2],
                tmp_path / "run2")


def _tiny_best(tiny, tmp_path):
    Trainer(config(tiny, epochs=1), tiny["train"][:2], tiny["dev"][:2], tmp_path / "first").fit()
    return tmp_path / "first" / "best"


def test_resume_after_a_kill_within_an_epoch_gives_the_same_weights(tiny, tmp_path):
    """Checkpoints every 2 steps; a run killed after step 3 of epoch 2 resumes from step 2 of it
    (the data order, the position, the RNG states, the optimiser) and ends with the weights, σ's
    and dev figures of a run never stopped. Frozen layers and their cache on disk included."""
    options = dict(epochs=2, freeze_layers=1, cache_dir=str(tmp_path / "cache"), checkpoint_every="2")
    train, dev = tiny["train"], tiny["dev"][:2]
    messages = []
    straight = Trainer(config(tiny, **options), train, dev, tmp_path / "a", log=messages.append)
    straight_history = straight.fit()
    per_epoch = straight.steps_per_epoch
    assert per_epoch >= 6
    assert any("torch capability" in m and "native bf16" in m for m in messages)
    assert any(" s a step " in m and "to the end of the run" in m for m in messages)

    killed = Trainer(config(tiny, **options), train, dev, tmp_path / "b")
    kill_at = per_epoch + 3  # epoch 2 checkpoints after its steps 2, 4, ...: killed one step after one
    with pytest.raises(KeyboardInterrupt):
        killed.fit(interrupt_after_steps=kill_at)
    position = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["position"]
    assert position["step"] == 2 and len(position["order"]) == per_epoch  # within epoch 2, a step behind

    resumed = Trainer(config(tiny, **options), train, dev, tmp_path / "b")
    assert resumed.resume() and resumed.where() == f"in epoch 2, after step {position['step']} of {per_epoch}"
    history = resumed.fit()

    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    drop = ("epoch_seconds", "eval_seconds")
    clean = lambda h: [{k: v for k, v in r.items() if k not in drop} for r in h]  # noqa: E731
    assert clean(history) == clean(straight_history)
    for run_dir in ("a", "b"):  # the last checkpoints hold the same optimiser state
        state = torch.load(tmp_path / run_dir / "checkpoint.pt", weights_only=False)
        assert state["position"] is None and state["epoch"] == 2
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["optimizer"]["state"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["optimizer"]["state"]
    assert all(torch.equal(a[k]["exp_avg_sq"], b[k]["exp_avg_sq"]) for k in a)


def test_resume_refuses_other_training_documents(tiny, tmp_path):
    from nerelproc.training.config import SetupError

    first = Trainer(config(tiny, epochs=2, checkpoint_every="1"), tiny["train"][:3], tiny["dev"][:2], tmp_path)
    with pytest.raises(KeyboardInterrupt):
        first.fit(interrupt_after_steps=1)
    other = Trainer(config(tiny, epochs=2, checkpoint_every="1"), tiny["train"][3:6], tiny["dev"][:2], tmp_path)
    with pytest.raises(SetupError, match="other documents"):
        other.resume()


@pytest.mark.parametrize("value, expected", [("200", ("steps", 200)), ("10m", ("seconds", 600.0)),
                                             ("90s", ("seconds", 90.0)), ("0", ("steps", 0)),
                                             ("1.5h", ("seconds", 5400.0))])
def test_checkpoint_interval(value, expected):
    from nerelproc.training.config import checkpoint_interval

    assert checkpoint_interval(value) == expected


def test_train_rejects_a_bad_checkpoint_interval():
    from click.testing import CliRunner

    from nerelproc.cli import main

    arguments = ["train", "--train", "t", "--dev", "d", "-o", "o", "--checkpoint-every", "10 min"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 2 and "checkpoint-every" in result.output


def test_recased_writes_a_share_of_documents_in_one_case_without_moving_offsets(tiny):
    from nerelproc.training.data import recased

    docs = tiny["train"]
    out, counts = recased(docs, 0.4, seed=13)
    assert counts == {"lower": 2, "upper": 2}
    assert out == recased(docs, 0.4, seed=13)[0]  # the seed decides which
    changed = [(a, b) for a, b in zip(docs, out) if a.text != b.text]
    assert sorted(b.text == a.text.lower() for a, b in changed) == [False, False, True, True]
    for before, after in changed:
        assert after.entities == before.entities and after.relations == before.relations
        for entity in after.entities:
            assert entity.surface(after.text).lower() == entity.surface(before.text).lower()
    assert recased(docs, 0.0, seed=13) == (docs, {"lower": 0, "upper": 0})
    with pytest.raises(ValueError, match="from 0 to 1"):
        recased(docs, 1.5, seed=13)


def test_recase_option_trains_on_the_recased_documents(tiny, tmp_path):
    trainer = Trainer(config(tiny, recase=1.0), tiny["train"][:4], tiny["dev"][:2], tmp_path)
    texts = [example.document.text for example in trainer.train]
    assert [text == original.text.lower() for text, original in zip(texts, tiny["train"][:4])].count(True) == 2
    assert [text == original.text.upper() for text, original in zip(texts, tiny["train"][:4])].count(True) == 2


def test_a_span_head_trains_on_the_encoder_beside_the_tagging_head(tiny, tiny_model, tmp_path):
    """``--span-head``: its training spans are the runtime's candidates with their gold classes,
    its loss falls as the encoder and it train, and a run saves it with the threshold dev chose
    (the epoch's dev figure is at that threshold); export carries it to the int8 runtime."""
    from nerelproc.runtime.bundle import load_predictor
    from nerelproc.runtime.spans import SPANS_FILE, span_edges, window_spans
    from nerelproc.training.calibration import SPAN_THRESHOLD_GRID
    from nerelproc.training.export import export
    from nerelproc.training.spans import MAX_WIDTH, gold_targets
    from tiny_model import with_span_head

    trainer = Trainer(config(tiny, span_head=True, epochs=50, head_lr=1e-2), tiny["train"][:4], tiny["dev"][:2],
                      tmp_path / "steps")
    labelled, gold = 0, 0
    for example, windows in zip(trainer.train, trainer.span_targets):
        offsets = example.encoded.offsets
        can_start, can_end = span_edges(example.document.text, offsets)
        for w, (first, last, target) in zip(example.windows, windows):
            expected = window_spans(can_start[w.start : w.end], can_end[w.start : w.end],
                                    (w.own_start - w.start, w.own_end - w.start), MAX_WIDTH)
            np.testing.assert_array_equal(first, expected[0])
            np.testing.assert_array_equal(last, expected[1])
            labelled += int((target > 0).sum())
        gold += len(gold_targets(example.document, offsets, trainer.entity_types))
    assert len(trainer.train[0].windows) > 1 and 0.9 * gold <= labelled <= gold  # each owned by one window

    batch = [0, 1, 2, 3]

    def span_loss():
        trainer.model.eval()
        with torch.no_grad():
            input_ids, attention, *_, spans = trainer._batch_tensors(batch)
            return float(trainer.model.span_loss(trainer.model.states(input_ids, attention), spans))

    before = span_loss()
    trainer.model.train()
    for _ in range(20):
        trainer._step(batch)
    assert span_loss() < 0.5 * before

    # from a model whose span head finds entities, so that the dev figures differ between thresholds
    with_span_head(tiny_model, tmp_path / "bundle", threshold=0.3)
    results = run(config(tiny, init=str(tmp_path / "bundle"), span_head=True, epochs=1, lr=1e-4, head_lr=1e-4),
                  _jsonl(tiny, "train", tmp_path), _jsonl(tiny, "dev", tmp_path), tmp_path / "run")
    best = tmp_path / "run" / "best"
    saved = json.loads((best / "nerelproc.json").read_text())
    assert (best / SPANS_FILE).exists() and saved["span_threshold"] in SPAN_THRESHOLD_GRID
    assert results["dev"]["span_threshold"] == saved["span_threshold"]
    by_threshold = saved["calibration"]["span_threshold_dev_nested_f1"]
    assert len(set(by_threshold.values())) > 1
    assert round(results["dev"]["dev_ner_f1"], 4) == by_threshold[str(saved["span_threshold"])]
    model = export(tmp_path / "run", tmp_path / "model")
    predictor = load_predictor(model, backend="ct2", threads=1)
    assert predictor.span_head is not None and predictor.span_threshold == saved["span_threshold"]
    assert predictor.predict([tiny["dev"][0].text])


def test_init_takes_the_span_head_of_the_model_it_starts_from(tiny, tiny_model, tmp_path):
    """``--init`` on an exported model with a span head and ``--span-head``: the head's weights
    and threshold are the model's, and the dequantized encoder with it finds the int8 runtime's
    entities; without ``--span-head`` the run trains the tagging head alone."""
    from nerelproc.runtime.bundle import load_predictor
    from nerelproc.runtime.spans import SPAN_PARAMS
    from tiny_model import with_span_head

    bundle = tmp_path / "bundle"
    head = with_span_head(tiny_model, bundle, threshold=0.3)
    trainer = Trainer(config(tiny, init=str(bundle), span_head=True), tiny["train"][:2], tiny["dev"][:3],
                      tmp_path / "run")
    exported = trainer.model.span.export()
    for name in SPAN_PARAMS:
        np.testing.assert_allclose(getattr(exported, name), getattr(head, name), rtol=1e-6)
    texts = [d.text for d in tiny["dev"][:3]]
    ours = trainer.predictor().predict(texts)
    theirs = load_predictor(bundle, backend="ct2", threads=1).predict(texts)
    spans = lambda p: {(e.type, e.start, e.end) for e in p.entities}  # noqa: E731
    assert sum(len(spans(p)) for p in theirs) > 20
    for a, b in zip(ours, theirs):
        assert len(spans(a) & spans(b)) >= 0.9 * max(len(spans(a)), len(spans(b)))
    plain = Trainer(config(tiny, init=str(bundle)), tiny["train"][:2], tiny["dev"][:3], tmp_path / "plain")
    assert plain.model.span is None and plain.predictor().span_head is None
