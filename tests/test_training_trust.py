"""Training losses on edge input: +inf like the cross-entropy, checked state dicts and arguments.

Issue 14: a -inf target logit gave NaN where ``cross_entropy`` gives +inf;
``load_state_dict`` of AdaFocal / CalFocal accepted NaN gammas, decreasing edges
and gammas of 1e6; ``focal_term`` took anything.  The reference for the
gradient at ``p_t = 0`` is the gradient at a very small finite ``p_t`` (its
limit) and torch's own cross-entropy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from calkit.training import (  # noqa: E402
    FLSD53,
    AdaFocalLoss,
    CalFocalLoss,
    DualFocalLoss,
    FocalLoss,
    InverseFocalLoss,
    focal_term,
)

LOSSES = [FocalLoss(0.0), FocalLoss(2.0), FocalLoss(0.5), InverseFocalLoss(2.0), FLSD53(),
          DualFocalLoss(3.0), AdaFocalLoss(n_bins=4), CalFocalLoss(n_bins=4)]


def _ids(loss):
    return repr(loss)


def _logits(target_logit: float, dtype=torch.float64):
    z = torch.tensor([[target_logit, 0.0, 1.0], [1.0, 0.0, -0.5], [0.3, 2.0, 0.1]], dtype=dtype)
    return z, torch.tensor([0, 0, 1])


def _value_and_grad(loss, z, t, reduction):
    loss.reduction = reduction
    z = z.clone().requires_grad_(True)
    out = loss(z, t)
    out.sum().backward()
    return out.detach(), z.grad


@pytest.mark.parametrize("loss", LOSSES, ids=_ids)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_minus_inf_target_logit_gives_inf_like_cross_entropy(loss, dtype):
    z, t = _logits(-math.inf, dtype)
    ce = torch.nn.functional.cross_entropy(z, t, reduction="none")
    assert math.isinf(ce[0]) and ce[0] > 0
    per_sample, grad = _value_and_grad(loss, z, t, "none")
    assert math.isinf(per_sample[0]) and per_sample[0] > 0
    assert torch.isfinite(per_sample[1:]).all() and torch.isfinite(grad).all()
    for reduction in ("mean", "sum"):
        total, grad_total = _value_and_grad(loss, z, t, reduction)
        assert math.isinf(total) and total > 0 and torch.isfinite(grad_total).all()
    # the finite rows are untouched: same values and gradients as without the -inf row
    rest, rest_grad = _value_and_grad(loss, z[1:], t[1:], "none")
    torch.testing.assert_close(per_sample[1:], rest, rtol=0, atol=0)
    torch.testing.assert_close(grad[1:], rest_grad, rtol=0, atol=0)
    # the -inf row's gradient is the limit p_t -> 0: the gradient at a tiny finite p_t
    tiny, _ = _logits(-60.0, torch.float64)
    _, limit = _value_and_grad(loss, tiny, t, "none")
    torch.testing.assert_close(grad[0].double(), limit[0], rtol=0, atol=1e-6)
    ce_grad = torch.softmax(z[0].double(), 0) - torch.nn.functional.one_hot(t[0], 3)
    torch.testing.assert_close(grad[0].double(), ce_grad.double(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 2.0, -2.0, 0.5])
def test_focal_term_of_minus_inf_is_inf(gamma):
    lp = torch.tensor([-math.inf, math.log(0.5)], dtype=torch.float64, requires_grad=True)
    out = focal_term(lp, gamma)
    out.sum().backward()
    out = out.detach()
    assert math.isinf(out[0]) and out[0] > 0
    assert torch.isfinite(lp.grad).all()
    exp = abs(gamma)
    base = 0.5 if gamma >= 0 else 1.5
    assert math.isclose(float(out[1]), base ** exp * math.log(2), rel_tol=1e-12)


@pytest.mark.parametrize("args, error, match", [
    (([-0.5], 2.0), TypeError, "log_pt must be a torch tensor"),
    ((np.array([-0.5]), 2.0), TypeError, "log_pt must be a torch tensor"),
    ((torch.tensor([[-0.5]]), 2.0), ValueError, "1-D"),
    ((torch.tensor([-1, -2]), 2.0), ValueError, "floating-point"),
    ((torch.tensor([0.5]), 2.0), ValueError, "log-probabilities"),
    ((torch.tensor([math.nan]), 2.0), ValueError, "log-probabilities"),
    ((torch.tensor([-0.5]), math.nan), ValueError, "gamma must be a finite"),
    ((torch.tensor([-0.5]), math.inf), ValueError, "gamma must be a finite"),
    ((torch.tensor([-0.5]), "2"), ValueError, "gamma must be a finite"),
    ((torch.tensor([-0.5]), True), ValueError, "gamma must be a finite"),
    ((torch.tensor([-0.5]), [2.0]), ValueError, "gamma must be a finite"),
    ((torch.tensor([-0.5, -0.1]), torch.tensor([1.0, 2.0, 3.0])), ValueError, "shape \\(2,\\)"),
    ((torch.tensor([-0.5]), torch.tensor([math.nan])), ValueError, "gamma contains NaN"),
    ((torch.tensor([-0.5]), torch.tensor([2])), ValueError, "floating-point"),
    ((torch.tensor([-0.5]), 2.0, [0.5]), TypeError, "base must be a torch tensor"),
    ((torch.tensor([-0.5]), 2.0, torch.tensor([-1.0])), ValueError, "base must be >= 0"),
    ((torch.tensor([-0.5]), 2.0, torch.tensor([math.inf])), ValueError, "base contains"),
    ((torch.tensor([-0.5]), 2.0, torch.tensor([0.5, 0.5])), ValueError, "base must be"),
])
def test_focal_term_checks_its_arguments(args, error, match):
    with pytest.raises(error, match=match):
        focal_term(*args)


def test_numpy_scalars_are_numbers():
    assert FocalLoss(np.float32(2.0)).gamma == 2.0
    assert AdaFocalLoss(lam=np.float64(0.5), gamma_max=np.int64(10)).gamma_max == 10.0
    assert float(focal_term(torch.tensor([math.log(0.5)]), np.float64(1.0))) == \
        pytest.approx(0.5 * math.log(2))


# ---------------------------------------------------------------------------- state dicts
def _trained(cls, **kwargs):
    loss = cls(n_bins=4, **kwargs)
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        loss.update(torch.randn(64, 3, generator=gen) * 3, torch.randint(0, 3, (64,),
                                                                        generator=gen))
    return loss


def _change(key, fn):
    def apply(state):
        state[key] = fn(state[key])
    return apply


BAD_LOSS_STATES = [
    (_change("gammas", lambda g: torch.where(torch.arange(4) == 1, math.nan, g)), "gammas"),
    (_change("gammas", lambda g: torch.full_like(g, 1e6)), "gammas"),
    (_change("gammas", lambda g: torch.full_like(g, -1e6)), "gammas"),
    (_change("gammas", lambda g: torch.full_like(g, math.inf)), "gammas"),
    (_change("gammas", lambda g: g[:3]), "shape \\(4,\\)"),
    (_change("gammas", lambda g: g.long()), "floating-point"),
    (_change("gammas", lambda g: g.numpy()), "must be a tensor"),
    (_change("edges", lambda e: e.flip(0)), "edges"),
    (_change("edges", lambda e: torch.tensor([0.0, 0.6, 0.4, 0.8, 1.0], dtype=e.dtype)),
     "never decrease"),
    (_change("edges", lambda e: e * 2), "edges"),
    (_change("edges", lambda e: e + 0.1), "edges"),
    (_change("edges", lambda e: torch.where(torch.arange(5) == 2, math.nan, e)), "edges"),
    (_change("edges", lambda e: e[:-1]), "shape \\(5,\\)"),
    (_change("num_updates", lambda n: torch.tensor(-1)), "num_updates"),
    (_change("num_updates", lambda n: torch.tensor(2.0)), "integer"),
    (_change("num_updates", lambda n: torch.tensor([2])), "shape \\(\\)"),
    (_change("_extra_state", lambda s: "history"), "extra state"),
    (_change("_extra_state", lambda s: {"history": [1, 2]}), "extra state"),
]


def _snapshot(loss):
    return ({k: v.clone() for k, v in loss.state_dict().items() if k != "_extra_state"},
            [dict(r) for r in loss.history])


@pytest.mark.parametrize("cls", [AdaFocalLoss, CalFocalLoss])
@pytest.mark.parametrize("change, match", BAD_LOSS_STATES)
def test_bad_loss_states_are_refused_and_change_nothing(cls, change, match):
    state = _trained(cls).state_dict()
    change(state)
    target = cls(n_bins=4)
    before = _snapshot(target)
    with pytest.raises(ValueError, match=match):
        target.load_state_dict(state)
    after = _snapshot(target)
    assert after[1] == before[1]
    for key, value in before[0].items():
        assert torch.equal(after[0][key], value), key


def test_gammas_outside_the_losss_own_bounds():
    ada = _trained(AdaFocalLoss)
    narrow = AdaFocalLoss(n_bins=4, gamma_max=1.05, gamma_min=-0.5)
    if float(ada.gammas.max()) > 1.05:
        with pytest.raises(ValueError, match="gammas"):
            narrow.load_state_dict(ada.state_dict())
    cal = CalFocalLoss(n_bins=4, lam=10.0)
    state = cal.state_dict()
    state["gammas"] = torch.full((4,), math.exp(10.0))  # the largest gap there can be: loads
    cal.load_state_dict(state)
    state["gammas"] = torch.full((4,), 1e6)              # issue 14: training would stop
    with pytest.raises(ValueError, match=r"\[4.53999e-05, 22026.5\]"):
        cal.load_state_dict(state)
    assert CalFocalLoss(lam=800.0).gamma_bounds()[1] == math.inf


@pytest.mark.parametrize("cls", [AdaFocalLoss, CalFocalLoss])
def test_good_states_round_trip_also_inside_a_model(cls):
    loss = _trained(cls)
    again = cls(n_bins=4)
    again.load_state_dict(loss.state_dict())
    assert torch.equal(again.gammas, loss.gammas) and torch.equal(again.edges, loss.edges)
    assert again.history == loss.history
    parent = torch.nn.ModuleDict({"loss": cls(n_bins=4)})
    state = torch.nn.ModuleDict({"loss": loss}).state_dict()
    parent.load_state_dict(state)
    state["loss.gammas"] = state["loss.gammas"] * math.nan
    with pytest.raises(ValueError, match="gammas"):
        parent.load_state_dict(state)
