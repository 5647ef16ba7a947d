"""The method end to end on the bundled digits: train dense → prune → expand → fine-tune with
SP-KD from the dense teacher → collapse."""

from __future__ import annotations

import numpy as np

import reparo

from conftest import DIGITS_SPEC, relative_error

# Expand and collapse are exact in real arithmetic; Reparo multiplies the factors in Double
# and stores float32, and the forward pass runs in float32 through 3 layers instead of 1, so
# logits agree to ~1e-6 relative. 1e-4 leaves a 100× margin and still catches a wrong factor.
EXACTNESS = 1e-4


def test_digits_pipeline(digits_train: reparo.Dataset, digits_test: reparo.Dataset, tmp_path) -> None:
    x_train, y_train = digits_train.images, digits_train.labels
    x_test, y_test = digits_test.images, digits_test.labels
    assert x_train.shape == (1438, 1, 8, 8) and x_test.shape == (359, 1, 8, 8)  # data/README.md
    assert np.bincount(y_test).tolist() == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]

    with reparo.Model.create(DIGITS_SPEC, seed=1) as dense:
        # 1. Train the dense model.
        with reparo.Trainer(dense, lr=0.05, momentum=0.9, weight_decay=5e-4, seed=0) as trainer:
            history = trainer.fit(x_train, y_train, epochs=6, batch_size=32, seed=0, validation=(x_test, y_test))
        assert history[-1].loss < history[0].loss
        dense_accuracy, _ = dense.evaluate(x_test, y_test)
        assert dense_accuracy >= 0.90, history
        assert history[-1].val_accuracy == dense_accuracy
        dense_info = dense.describe()

        # 2. Prune half the filters of every conv: a new, smaller model; the dense one is intact.
        with dense.prune(ratio=0.5) as student:
            pruned_info = student.describe()
            assert pruned_info["state"] == "pruned" and dense.state == "dense"
            assert pruned_info["parameters"] < dense_info["parameters"] / 2
            widths = [layer["weight"][0] for layer in pruned_info["layers"] if layer["type"] == "conv"]
            assert widths == [8, 16]
            pruned_accuracy, _ = student.evaluate(x_test, y_test)
            pruned_logits = student.infer(x_test)

            # 3. Expand: more parameters, same function.
            student.expand(rate=4)
            assert student.state == "expanded"
            assert student.parameter_count > 4 * pruned_info["parameters"]
            assert relative_error(student.infer(x_test), pruned_logits) <= EXACTNESS

            # 4. Fine-tune the expanded student with SP-KD against the dense teacher.
            with reparo.Trainer(student, dense, lr=0.02, kd_weight=300.0, seed=0) as trainer:
                steps = trainer.fit(x_train, y_train, epochs=2, batch_size=32, seed=1)
                result = trainer.step(x_train[:32], y_train[:32])
            assert result.kd_loss > 0 and np.isfinite(result.loss)
            # loss = ce + kd_weight · kd (reparo.h), each reported in float32.
            assert abs(result.loss - (result.ce_loss + 300.0 * result.kd_loss)) <= 1e-5 * max(1.0, result.loss)
            assert result.step == steps[-1].step + 1
            expanded_logits = student.infer(x_test)
            finetuned_accuracy, _ = student.evaluate(x_test, y_test)
            assert finetuned_accuracy > pruned_accuracy

            # 5. Collapse: back to the pruned shape, same function as the expanded model.
            student.collapse()
            collapsed_info = student.describe()
            assert collapsed_info["state"] == "collapsed"
            assert collapsed_info["parameters"] == pruned_info["parameters"]
            assert [l.get("weight") for l in collapsed_info["layers"]] == [l.get("weight") for l in pruned_info["layers"]]
            assert relative_error(student.infer(x_test), expanded_logits) <= EXACTNESS
            collapsed_accuracy, _ = student.evaluate(x_test, y_test)
            assert abs(collapsed_accuracy - finetuned_accuracy) <= 1 / len(y_test)

            # The collapsed model round-trips through a file.
            student.save(tmp_path / "collapsed.safetensors")
            with reparo.Model.load(tmp_path / "collapsed.safetensors") as loaded:
                assert loaded.state == "collapsed"
                assert np.array_equal(loaded.infer(x_test), student.infer(x_test))

            # Optional BatchNorm folding for deployment keeps the function too.
            before = student.infer(x_test)
            student.collapse(fold_batchnorm=True)
            assert not any(layer["type"] == "batchnorm" for layer in student.describe()["layers"])
            assert relative_error(student.infer(x_test), before) <= EXACTNESS


def test_chain_modes_train_alike(rng) -> None:
    """reparo.h: chain_mode "online" trains an expanded chain through one collapsed conv with
    the same gradients as "naive" (three factors). A few SGD steps from the same start must
    give the same model up to float32 rounding; 1e-4 relative to the largest logit allows for
    rounding that SGD carries from step to step, while a wrong gradient moves logits by ~1e-1."""
    images = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 10, 16)
    with reparo.Model.create(DIGITS_SPEC, seed=5) as naive:
        naive.expand(rate=2)
        with naive.clone() as online:
            before = naive.infer(images)
            for model, mode in ((naive, "naive"), (online, "online")):
                with reparo.Trainer(model, lr=0.05, chain_mode=mode) as trainer:
                    for _ in range(3):
                        trainer.step(images, labels)
            assert relative_error(naive.infer(images), before) > 1e-2  # training did move it
            assert relative_error(online.infer(images), naive.infer(images)) <= 1e-4
