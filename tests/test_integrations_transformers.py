"""calkit.integrations.transformers on tiny random models built from configs (no download)."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import calkit  # noqa: E402
from calkit.integrations.transformers import (  # noqa: E402
    AdaFocalCallback,
    adafocal_loss_func,
    calibration_metrics,
    multiple_choice_confidence,
    option_logits,
)
from calkit.training import AdaFocalLoss  # noqa: E402

VOCAB, SEQ, N_LABELS = 40, 8, 3


def bert_config(**kw):
    return transformers.BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2,
                                   num_attention_heads=2, intermediate_size=32,
                                   max_position_embeddings=32, num_labels=N_LABELS,
                                   hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                   **kw)


def sequence_data(n, seed):
    """Token ids built directly (no tokenizer): the label is the first token's id mod 3."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (n, SEQ), generator=g)
    labels = ids[:, 0] % N_LABELS
    return [{"input_ids": ids[i], "attention_mask": torch.ones(SEQ, dtype=torch.long),
             "labels": labels[i]} for i in range(n)]


def args(tmp_path, **kw):
    opts = dict(output_dir=str(tmp_path), per_device_train_batch_size=8,
                per_device_eval_batch_size=16, learning_rate=5e-3, max_steps=4,
                eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=2,
                logging_steps=2, report_to="none", use_cpu=True, seed=0,
                disable_tqdm=True)
    opts.update(kw)
    return transformers.TrainingArguments(**opts)


def make_trainer(tmp_path, loss, train, val, **kw):
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(bert_config())
    callback = AdaFocalCallback(loss)
    trainer = transformers.Trainer(
        model=model, args=args(tmp_path, **kw), train_dataset=train, eval_dataset=val,
        compute_loss_func=adafocal_loss_func(loss),
        compute_metrics=callback.compute_metrics(
            calibration_metrics(n_bins=5, diagram_dir=tmp_path / "diagrams")),
        callbacks=[callback])
    return trainer, model


def predict(model, data):
    model.eval()
    with torch.no_grad():
        z = model(input_ids=torch.stack([d["input_ids"] for d in data]),
                  attention_mask=torch.stack([d["attention_mask"] for d in data])).logits
    return z, torch.stack([d["labels"] for d in data])


def trained(tmp_path):
    """4 AdaFocal steps with evaluations (and checkpoints) at steps 2 and 4."""
    pytest.importorskip("matplotlib")  # the reliability diagrams
    train, val = sequence_data(64, 0), sequence_data(48, 1)
    loss = AdaFocalLoss(n_bins=5, lam=2.0)
    trainer, model = make_trainer(tmp_path / "a", loss, train, val)
    trainer.train()
    return trainer, model, loss, train, val


def test_trainer_adafocal_updates_on_evaluation(tmp_path):
    trainer, model, loss, train, val = trained(tmp_path)
    assert int(loss.num_updates) == 2  # evaluations at steps 2 and 4
    z, y = predict(model, val)
    ref = AdaFocalLoss(n_bins=5, lam=2.0)
    ref.gammas.copy_(torch.tensor(loss.history[0]["gamma_b"], dtype=torch.float64))
    ref.update(z, y)
    torch.testing.assert_close(loss.gammas, ref.gammas, rtol=1e-5, atol=1e-8)

    metrics = trainer.evaluate()  # after training: metrics only, gammas untouched
    assert int(loss.num_updates) == 2
    p, yn = calkit.softmax(z.numpy()), y.numpy()
    assert metrics["eval_ece"] == pytest.approx(calkit.ece(yn, p, n_bins=5), rel=1e-5)
    assert metrics["eval_nll"] == pytest.approx(calkit.nll(yn, p), rel=1e-5)
    assert metrics["eval_brier"] == pytest.approx(calkit.brier_score(yn, p), rel=1e-5)
    assert sorted(os.listdir(tmp_path / "a" / "diagrams")) == [
        "reliability-1.png", "reliability-2.png", "reliability-3.png"]
    saved = torch.load(tmp_path / "a" / "checkpoint-4" / "calkit_adafocal.pt", weights_only=True)
    assert torch.equal(saved["gammas"], loss.gammas)


@pytest.mark.slow
def test_trainer_resume_gives_bit_identical_gammas(tmp_path):
    trainer, model, loss, train, val = trained(tmp_path)
    resumed = AdaFocalLoss(n_bins=5, lam=2.0)  # fresh: state comes from checkpoint-2
    trainer_b, _ = make_trainer(tmp_path / "a", resumed, train, val)
    trainer_b.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-2"))
    assert int(resumed.num_updates) == 2
    assert torch.equal(resumed.gammas, loss.gammas)
    assert torch.equal(resumed.edges, loss.edges)


def test_loss_func_divides_by_num_items_in_batch():
    loss = AdaFocalLoss(n_bins=3)
    fn = adafocal_loss_func(loss)
    g = torch.Generator().manual_seed(3)
    z = torch.randn(4, 5, 3, generator=g)
    y = torch.randint(0, 3, (4, 5), generator=g)
    y[0, :2] = -100
    keep = y.reshape(-1) != -100
    per_token = AdaFocalLoss(n_bins=3, reduction="none")(z.reshape(-1, 3)[keep],
                                                         y.reshape(-1)[keep])
    value = fn({"logits": z}, y, num_items_in_batch=torch.tensor(36))
    torch.testing.assert_close(value, per_token.sum() / 36)
    torch.testing.assert_close(fn({"logits": z}, y), per_token.mean())


def token_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (n, SEQ), generator=g)
    labels = ids % N_LABELS
    lengths = torch.randint(3, SEQ + 1, (n,), generator=g)
    mask = (torch.arange(SEQ)[None, :] < lengths[:, None]).long()
    labels = labels.masked_fill(mask == 0, -100)
    labels[:, 0] = -100  # e.g. [CLS]
    return [{"input_ids": ids[i], "attention_mask": mask[i], "labels": labels[i]}
            for i in range(n)]


@pytest.mark.parametrize("batch_eval_metrics", [False, True])
def test_token_classification_ignores_minus_100(tmp_path, batch_eval_metrics):
    torch.manual_seed(0)
    model = transformers.BertForTokenClassification(bert_config())
    val = token_data(40, 5)
    trainer = transformers.Trainer(
        model=model, args=args(tmp_path, batch_eval_metrics=batch_eval_metrics),
        eval_dataset=val, compute_metrics=calibration_metrics(n_bins=6))
    metrics = trainer.evaluate()
    model.eval()
    with torch.no_grad():
        z = model(input_ids=torch.stack([d["input_ids"] for d in val]),
                  attention_mask=torch.stack([d["attention_mask"] for d in val])).logits
    y = torch.stack([d["labels"] for d in val])
    keep = y != -100
    p, yn = calkit.softmax(z[keep].numpy()), y[keep].numpy()
    assert len(yn) < 40 * SEQ
    assert metrics["eval_ece"] == pytest.approx(calkit.ece(yn, p, n_bins=6), rel=1e-5)
    assert metrics["eval_ece_quantile"] == pytest.approx(
        calkit.ece(yn, p, n_bins=6, strategy="quantile"), rel=1e-5)
    assert metrics["eval_accuracy"] == pytest.approx(calkit.accuracy(yn, p))


OPTIONS = [4, 5, 6, 7]  # token ids of "A", "B", "C", "D" in a hand-made vocabulary


def gpt2():
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=VOCAB, n_embd=16, n_layer=2, n_head=2,
                                     n_positions=32, bos_token_id=None, eos_token_id=None)
    return transformers.AutoModelForCausalLM.from_config(config)


def test_option_logits_at_the_last_real_token_match_unpadded_sequences():
    model = gpt2().eval()
    g = torch.Generator().manual_seed(4)
    lengths = [5, 8, 3]
    ids = torch.zeros(3, 8, dtype=torch.long)
    mask = torch.zeros(3, 8, dtype=torch.long)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(8, VOCAB, (n,), generator=g)
        mask[b, :n] = 1
    with torch.no_grad():
        padded = model(input_ids=ids, attention_mask=mask).logits
        got = option_logits(padded, OPTIONS, attention_mask=mask)
        for b, n in enumerate(lengths):
            alone = model(input_ids=ids[b:b + 1, :n]).logits[0, -1, OPTIONS]
            torch.testing.assert_close(got[b], alone, rtol=1e-5, atol=1e-5)
    out = multiple_choice_confidence(padded, OPTIONS, answer=np.array([0, 1, 3]),
                                     attention_mask=mask)
    probs = torch.softmax(got.double(), 1).numpy()
    np.testing.assert_allclose(out["probabilities"], probs, rtol=1e-12)
    np.testing.assert_allclose(out["confidence"], probs.max(1), rtol=1e-12)
    assert out["correct"].tolist() == (probs.argmax(1) == [0, 1, 3]).tolist()
    with pytest.raises(ValueError, match="option_ids"):
        option_logits(padded, [3])
    with pytest.raises(ValueError, match="answer"):
        multiple_choice_confidence(padded, OPTIONS, answer=np.array([0, 1, 4]))


def test_multiple_choice_through_trainer_evaluate(tmp_path):
    """Trainer.evaluate on a causal LM, option letters selected per batch, then grouped."""
    model = gpt2()
    g = torch.Generator().manual_seed(6)
    ids = torch.randint(8, VOCAB, (24, 6), generator=g)
    answers = torch.randint(0, 4, (24,), generator=g)
    data = [{"input_ids": ids[i], "labels": answers[i]} for i in range(24)]
    seen = {}

    def select(logits, labels):  # preprocess_logits_for_metrics: (B, T, V) -> (B, 4)
        return option_logits(logits, OPTIONS)

    def compute_metrics(eval_pred):
        out = multiple_choice_confidence(eval_pred.predictions, list(range(4)),
                                         eval_pred.label_ids)
        seen.update(out)
        (row,) = calkit.grouped_calibration(out, confidence="confidence", correct="correct",
                                            n_bins=3)
        return {"ece": row["ece_uniform"], "accuracy": row["accuracy"]}

    class OptionLoss:
        def __call__(self, outputs, labels, num_items_in_batch=None):
            return torch.nn.functional.cross_entropy(option_logits(outputs.logits, OPTIONS),
                                                     labels)

    trainer = transformers.Trainer(model=model, args=args(tmp_path), eval_dataset=data,
                                   compute_loss_func=OptionLoss(), compute_metrics=compute_metrics,
                                   preprocess_logits_for_metrics=select)
    metrics = trainer.evaluate()
    model.eval()
    with torch.no_grad():
        direct = multiple_choice_confidence(model(input_ids=ids).logits, OPTIONS, answers)
    np.testing.assert_allclose(seen["confidence"], direct["confidence"], rtol=1e-5)
    assert metrics["eval_accuracy"] == pytest.approx(direct["correct"].mean())
    expected = calkit.ece(direct["correct"].astype(int), direct["confidence"], n_bins=3,
                          view="positive")
    assert metrics["eval_ece"] == pytest.approx(expected, rel=1e-4)
