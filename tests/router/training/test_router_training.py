"""Training and the evaluation protocol on a small synthetic mix, with the fake encoder."""

from __future__ import annotations

import numpy as np
import pytest

from router.errors import RouterError
from router.training.data import Example
from router.training.evaluation import NAIVE, leave_one_source_out, pooled, summary
from router.training.fit import TrainConfig, feature_matrix, source_weights, train, train_arrays
from tests.support.routerdata import synthetic


def test_source_weights_balance_sources() -> None:
    w = source_weights(["a"] * 30 + ["b"] * 10, 1.0)
    assert w[:30].sum() == pytest.approx(w[30:].sum())
    assert w.mean() == pytest.approx(1.0)
    assert np.allclose(source_weights(["a", "b", "b"], 0.0), 1.0)


def test_train_ranks_code_above_lookup(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    examples = synthetic()
    artifact = train(examples, fake_encoder, TrainConfig(cs=(0.1, 1.0), folds=3), name="synthetic")
    assert artifact.training["C"] in (0.1, 1.0)
    assert set(artifact.training["cv_apgr_by_C"]) == {"0.1", "1"}
    x = feature_matrix(examples, artifact.features, fake_encoder)
    p = artifact.predict(x)
    code = p[[e.source == "code" for e in examples]].mean()
    lookup = p[[e.source == "lookup" for e in examples]].mean()
    assert code > lookup
    assert artifact.threshold_for_fraction(0.0) > p.max()


def test_train_reads_and_records_the_configured_input_length(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    artifact = train(synthetic(), fake_encoder, TrainConfig(C=1.0, max_length=64))
    assert artifact.encoder_max_length == 64
    assert set(fake_encoder.max_lengths) == {64}  # every text embedded at that length


def test_train_refuses_a_single_class(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    easy = [Example((("user", "hi"),), 1.0, 1.0, "s", "s")] * 5
    with pytest.raises(RouterError, match="every training label is the same"):
        train(easy, fake_encoder, TrainConfig(C=1.0))


def test_leave_one_source_out_holds_out_the_family(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    examples = synthetic()
    # A second "code" source of the same family must not be trained on when "code" is held out.
    examples += [
        Example(e.conversation, e.weak, e.strong, "code-copy", "code")
        for e in examples
        if e.source == "code"
    ]
    x = feature_matrix(examples, ("last_user", "shape"), fake_encoder)
    x_naive = feature_matrix(examples, NAIVE.features, fake_encoder)
    seen: list[str] = []
    results, held = leave_one_source_out(
        examples, x, x_naive, TrainConfig(C=1.0), on_source=seen.append
    )
    assert seen == sorted({e.source for e in examples})
    assert [r.source for r in results] == seen
    assert held["ours"].shape == (len(examples),)
    pool = pooled(examples, held, None)
    assert pool.oracle.apgr >= pool.ours.apgr > 0.5 and pool.random.apgr == pytest.approx(0.5)
    assert pooled(examples, held, 10).ours.n == 40
    assert set(summary(results)) == {"mean_apgr", "mean_apgr_naive", "min_apgr", "sources_with_gap"}


def test_train_arrays_with_fixed_c() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    weak = (x[:, 0] < 0).astype(float)
    fit = train_arrays(x, weak, np.ones(200), ["a"] * 200, TrainConfig(C=0.5, label="weak_wrong"))
    assert fit.C == 0.5 and fit.cv == {}
    assert fit.coef[0] > 0  # higher x0 -> weak model wrong -> higher p_strong


def test_train_arrays_fits_a_soft_panel_label() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    small = 1.0 / (1.0 + np.exp(2.0 * x[:, 1]))  # fraction of small models right falls with x1
    config = TrainConfig(C=1.0, label="small_fail")
    fit = train_arrays(x, np.ones(200), np.ones(200), ["a"] * 200, config, small, np.ones(200))
    assert fit.coef[1] > 0 and abs(fit.coef[1]) > 5 * abs(fit.coef[0])


def test_class_balanced_fit_moves_the_intercept_towards_the_minority() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    weak = (x[:, 0] + rng.normal(size=400) > -1.5).astype(float)  # about one prompt in ten fails
    plain = train_arrays(x, weak, np.ones(400), ["a"] * 400, TrainConfig(C=1.0))
    config = TrainConfig(C=1.0, class_balanced=True)
    balanced = train_arrays(x, weak, np.ones(400), ["a"] * 400, config)
    assert balanced.intercept > plain.intercept and balanced.coef[0] < 0
