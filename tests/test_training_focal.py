"""Focal-loss family: values against hand-computed and brute-force references, gradients, edges."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from calkit.training import _focal_core as focal_core  # noqa: E402
from calkit.training.adafocal import AdaFocalLoss, CalFocalLoss  # noqa: E402
from calkit.training.focal import (  # noqa: E402
    FLSD53,
    DualFocalLoss,
    FocalLoss,
    InverseFocalLoss,
    focal_term,
)


def _softmax_rows(logits):
    """Plain-Python softmax of each row (float64 maths, independent of torch)."""
    out = []
    for row in logits.tolist():
        m = max(row)
        e = [math.exp(v - m) for v in row]
        s = sum(e)
        out.append([v / s for v in e])
    return out


def _reference(logits, target, rule):
    """Per-sample loss from a loop: ``rule(p_row, t)`` returns (gamma, base)."""
    out = []
    for p, t in zip(_softmax_rows(logits), target.tolist(), strict=True):
        gamma, base = rule(p, t)
        out.append(-(base ** gamma) * math.log(p[t]))
    return torch.tensor(out, dtype=torch.float64)


def _data(n=64, k=5, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g, dtype=torch.float64) * scale
    target = torch.randint(0, k, (n,), generator=g)
    return logits, target


def _dual_rule(gamma):
    def rule(p, t):
        below = [v for v in p if v < p[t]]
        return gamma, 1 - p[t] + (max(below) if below else 0.0)
    return rule


RULES = {
    "focal": (lambda: FocalLoss(2.5, reduction="none"), lambda p, t: (2.5, 1 - p[t])),
    "inverse": (lambda: InverseFocalLoss(1.5, reduction="none"), lambda p, t: (1.5, 1 + p[t])),
    "flsd53": (lambda: FLSD53(reduction="none"),
               lambda p, t: (5.0 if p[t] < 0.2 else 3.0, 1 - p[t])),
    "dual": (lambda: DualFocalLoss(2.0, reduction="none"), _dual_rule(2.0)),
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_losses_match_a_per_sample_loop(name):
    make, rule = RULES[name]
    logits, target = _data()
    got = make()(logits, target)
    torch.testing.assert_close(got, _reference(logits, target, rule), rtol=1e-12, atol=1e-14)


def test_hand_computed_values():
    # p_t = 0.25 (logits log 1, log 3): focal gamma 2: 0.75^2 * ln 4; inverse: 1.25^2 * ln 4
    logits = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)
    t = torch.tensor([0])
    assert FocalLoss(2.0)(logits, t).item() == pytest.approx(0.5625 * math.log(4), rel=1e-14)
    assert InverseFocalLoss(2.0)(logits, t).item() == pytest.approx(1.5625 * math.log(4),
                                                                     rel=1e-14)
    # FLSD-53: p_t = 0.25 >= 0.2 -> gamma 3; p_t = 0.75 -> gamma 3; p_t = 0.1 -> gamma 5
    assert FLSD53()(logits, t).item() == pytest.approx(0.75 ** 3 * math.log(4), rel=1e-14)
    low = torch.tensor([[0.0, math.log(9.0)]], dtype=torch.float64)
    assert FLSD53()(low, t).item() == pytest.approx(0.9 ** 5 * math.log(10), rel=1e-12)
    # dual: p = (0.5, 0.3, 0.2), t = 0 -> p_j = 0.3; t = 2 -> p_j = 0 (nothing below)
    p = torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)
    assert DualFocalLoss(3.0)(p.log(), t).item() == pytest.approx(0.8 ** 3 * math.log(2))
    assert DualFocalLoss(3.0)(p.log(), torch.tensor([2])).item() == pytest.approx(
        0.8 ** 3 * -math.log(0.2))


def test_dual_focal_excludes_ties_with_the_true_class():
    p = torch.tensor([[0.4, 0.4, 0.2]], dtype=torch.float64)
    got = DualFocalLoss(2.0)(p.log(), torch.tensor([0])).item()
    assert got == pytest.approx((1 - 0.4 + 0.2) ** 2 * -math.log(0.4))


def test_flsd53_threshold_is_half_open():
    logits = torch.tensor([[math.log(0.2), math.log(0.8)]], dtype=torch.float64)
    p_t = torch.softmax(logits, 1)[0, 0].item()
    at = FLSD53(threshold=p_t)(logits, torch.tensor([0])).item()  # p_t == threshold -> high
    above = FLSD53(threshold=math.nextafter(p_t, 1.0))(logits, torch.tensor([0])).item()
    assert at == pytest.approx(-((1 - p_t) ** 3) * math.log(p_t), rel=1e-14)
    assert above == pytest.approx(-((1 - p_t) ** 5) * math.log(p_t), rel=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("make", [lambda r: FocalLoss(0.0, r), lambda r: InverseFocalLoss(0.0, r),
                                  lambda r: DualFocalLoss(0.0, r),
                                  lambda r: FLSD53(0.0, 0.0, reduction=r),
                                  lambda r: AdaFocalLoss(gamma_init=0.0, reduction=r)])
def test_gamma_zero_is_cross_entropy(make, reduction):
    logits, target = _data(n=32, k=7, seed=1)
    torch.testing.assert_close(make(reduction)(logits, target),
                               F.cross_entropy(logits, target, reduction=reduction))


def test_segmentation_shaped_inputs_match_cross_entropy_at_gamma_zero():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 4, 3, 5, generator=g)
    target = torch.randint(0, 4, (2, 3, 5), generator=g)
    torch.testing.assert_close(FocalLoss(0.0)(logits, target), F.cross_entropy(logits, target))
    flat = logits.movedim(1, -1).reshape(-1, 4)
    torch.testing.assert_close(FocalLoss(2.0, "sum")(logits, target),
                               FocalLoss(2.0, "sum")(flat, target.reshape(-1)))


@pytest.mark.parametrize("make", [lambda: FocalLoss(2.3), lambda: FocalLoss(0.4),
                                  lambda: InverseFocalLoss(1.7), lambda: FLSD53(),
                                  lambda: DualFocalLoss(2.6)])
def test_gradcheck_float64(make):
    logits, target = _data(n=6, k=4, seed=3, scale=1.5)
    loss = make()
    assert torch.autograd.gradcheck(lambda z: loss(z, target), (logits.requires_grad_(),))


def test_gradcheck_mixed_sign_per_sample_gamma():
    logits, target = _data(n=8, k=3, seed=4, scale=1.0)
    gamma = torch.tensor([0.0, 0.3, 2.5, -0.2, -1.7, 5.0, -2.0, 1.0], dtype=torch.float64)

    def f(z):
        log_pt = torch.log_softmax(z, 1).gather(1, target[:, None]).squeeze(1)
        return focal_term(log_pt, gamma)
    assert torch.autograd.gradcheck(f, (logits.requires_grad_(),))


@pytest.mark.parametrize("make", [lambda: FocalLoss(0.2), lambda: FocalLoss(0.5),
                                  lambda: DualFocalLoss(0.3), lambda: FLSD53(0.5, 0.3),
                                  lambda: AdaFocalLoss(gamma_init=0.2),
                                  lambda: CalFocalLoss()])
def test_saturated_float32_probability_has_finite_gradient(make):
    logits = torch.tensor([[60.0, 0.0, -5.0], [1.0, 0.0, 0.5]], requires_grad=True)
    target = torch.tensor([0, 1])
    assert torch.log_softmax(logits, 1)[0, 0].exp().item() == 1.0  # p_t is exactly 1.0
    loss = make()(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    # the saturated sample has zero loss and (numerically) zero gradient
    assert logits.grad[0].abs().max().item() < 1e-12


def test_focal_term_float_and_tensor_gamma_agree():
    logits, target = _data(n=16, k=3, seed=5)
    log_pt = torch.log_softmax(logits, 1).gather(1, target[:, None]).squeeze(1)
    for g in (-1.5, 0.0, 0.7, 3.0):
        torch.testing.assert_close(focal_term(log_pt, g),
                                   focal_term(log_pt, torch.full_like(log_pt, g)))


def _updated_adafocal(reduction):
    loss = AdaFocalLoss(n_bins=4, reduction=reduction)
    loss.update(*_data(n=200, k=5, seed=8, scale=2.0))  # equal-mass edges
    loss.gammas.copy_(torch.tensor([-1.5, -0.2, 0.7, 3.0]))  # inverse-focal and focal bins
    return loss


PATH_LOSSES = {
    "focal": lambda r: FocalLoss(2.5, r), "inverse": lambda r: InverseFocalLoss(1.5, r),
    "flsd53": lambda r: FLSD53(reduction=r), "adafocal": _updated_adafocal,
    "calfocal": lambda r: CalFocalLoss(reduction=r),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(PATH_LOSSES))
def test_torch_weight_path_equals_the_numpy_path(name, reduction, monkeypatch):
    # CPU tensors get their per-sample weights from a numpy view; CUDA tensors use the same
    # maths in torch.  Force the torch path on the CPU and compare values and gradients.
    logits, target = _data(n=48, k=5, seed=9)
    loss = PATH_LOSSES[name](reduction)
    results = []
    for torch_path in (False, True):
        if torch_path:
            monkeypatch.setattr(focal_core, "_detached", lambda ce: ce.detach())
        z = logits.clone().requires_grad_()
        value = loss(z, target)
        value.sum().backward()
        results.append((value.detach(), z.grad))
    (v_np, g_np), (v_torch, g_torch) = results
    torch.testing.assert_close(v_torch, v_np, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(g_torch, g_np, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("gamma", [0.5, 3.0, 20.0])
def test_float32_value_keeps_float32_accuracy_for_large_gamma(gamma):
    # the loss is assembled as c * ce + (m - c) * ce (value m * ce, gradient c): check that
    # the split loses no accuracy against a float64 evaluation
    logits, target = _data(n=256, k=10, seed=10, scale=2.0)
    for reduction in ("mean", "none"):
        want = FocalLoss(gamma, reduction)(logits, target)
        got = FocalLoss(gamma, reduction)(logits.float(), target)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), want, rtol=2e-6, atol=1e-7)


def test_autocast_half_precision_logits_are_computed_in_float32():
    logits, target = _data(n=32, k=5, seed=6)
    want = FocalLoss(2.0)(logits.float(), target)
    got = FocalLoss(2.0)(logits.to(torch.bfloat16), target)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, FocalLoss(2.0)(logits.to(torch.bfloat16).float(), target))
    assert abs(got.item() - want.item()) < 0.05 * want.item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lin = torch.nn.Linear(5, 5)
        out = FocalLoss(2.0)(lin(logits.float()), target)
    assert out.dtype == torch.float32 and torch.isfinite(out)


@pytest.mark.parametrize("bad, match", [
    (dict(gamma=-1.0), "gamma must be >= 0"),
    (dict(gamma=float("nan")), "finite"),
    (dict(gamma=True), "finite number"),
    (dict(reduction="avg"), "reduction must be one of"),
])
def test_bad_settings_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        FocalLoss(**bad)


def test_bad_inputs_raise():
    loss = FocalLoss(2.0)
    z = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="target must have shape"):
        loss(z, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer class indices"):
        loss(z, torch.zeros(4))
    with pytest.raises(ValueError, match=r"lie in \[0, 2\]"):
        loss(z, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="shape"):
        loss(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 2 classes"):
        loss(torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="floating point"):
        loss(torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="threshold"):
        FLSD53(threshold=1.5)


def test_focal_lowers_confidence_compared_to_cross_entropy():
    """The gradient of focal loss on a confident right sample is smaller than CE's."""
    logits = torch.tensor([[3.0, 0.0, 0.0]], requires_grad=True)
    F.cross_entropy(logits, torch.tensor([0])).backward()
    ce_grad = logits.grad[0, 0].item()
    logits.grad = None
    FocalLoss(3.0)(logits, torch.tensor([0])).backward()
    assert 0 > logits.grad[0, 0].item() > ce_grad
    logits.grad = None
    InverseFocalLoss(2.0)(logits, torch.tensor([0])).backward()
    assert logits.grad[0, 0].item() < ce_grad


def test_calkit_imports_without_torch():
    import subprocess
    import sys

    code = "import calkit, sys; calkit.ece; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
