"""Reparo's fine-tuning agrees with an independent PyTorch implementation of the same method.

A dense digits CNN (the teacher, moved a few steps away from its initialization) is pruned at
0.5 and expanded; both models go to PyTorch through `reparo.torch_interop`. Then 50 SGD steps
run both ways on the same batches: Reparo through `reparo.Trainer.step`, PyTorch through the
reference below, written from the definitions (reparo.h and the engine's doc comments), not
from Reparo's code paths:

- loss = CE (mean over the batch) + kd_weight · mean over the layer pairs of SP-KD
  (Tung & Mori 2019, eq. 2–4): Ĝ = row-L2-normalized A·Aᵀ, L = ‖Ĝ_s − Ĝ_t‖²_F / b²;
- pairs: the top-level ReLU closing conv (→ BN) → ReLU whose conv widths differ between
  student and teacher (kd_layers "pruned", the default); the teacher runs in eval mode;
- SGD in PyTorch's form (v ← μv + g + λw, v₀ = g; w ← w − η·v, Nesterov w ← w − η(g + λw + μv)),
  weight decay λ on conv/linear weights only (expanded factors included), none on biases and
  BatchNorm; learning rate per step from the schedule (cosine: η·½(1 + cos(π·t/T)), t from 0);
- BatchNorm in training mode: batch statistics, running averages with momentum 0.1 and the
  unbiased variance (PyTorch's nn.BatchNorm2d does this itself).

The reference computes in float64 from the same float32 starting tensors, so what the
comparison measures is Reparo's float32 arithmetic (plus anything it does differently).

Tolerances (measured values are printed; run with -s):
- per-step loss, CE and KD parts and learning rate: 1e-3 relative (measured ≤ 5e-7: Reparo
  reports them as float32, ≈ 6e-8 relative, and its float32 forward drifts slowly from the
  float64 one). Changing one detail of the reference by 1% (momentum, the SP-KD scale, the
  Gram normalization by 0.1%) or the Nesterov term, the teacher's BatchNorm mode, the
  schedule's step index, or decaying biases too fails this bound within 1 to 34 steps.
- weights after 50 steps, BatchNorm statistics included: max |Δ| over a tensor ≤ 1e-3 ·
  max |reference tensor|, relative to the tensor's scale because elements near zero have no
  meaningful relative error (measured ≤ 1e-6: float32 rounding, ≈ 1e-7 per operation,
  grown through 50 momentum steps). A BatchNorm momentum of 0.11 instead of 0.1 gives 1e-2.
- collapsed logits (Reparo's collapsed model vs the product of the reference's trained
  factors, eval mode, 200 test images): 1e-3 of the largest logit, for the same reason
  (measured ≤ 8e-7); and Reparo's collapsed tensors against the float64 product of its own
  trained factors: 1e-5 of the tensor's scale (one float32 product of three matrices,
  measured ≤ 4e-8).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import reparo
from reparo import torch_interop

from conftest import DIGITS_SPEC, relative_error

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
F = torch.nn.functional

STEPS = 50
BATCH = 32
LOSS_TOLERANCE = 1e-3
WEIGHT_TOLERANCE = 1e-3
LOGIT_TOLERANCE = 1e-3
COLLAPSE_TOLERANCE = 1e-5
#: The default SP-KD weight with a teacher (reparo.h, "kd_weight").
DEFAULT_KD_WEIGHT = 300.0

#: Options given to both sides. lr, momentum and weight decay differ from the defaults so
#: that both sides cannot agree by sharing a default; weight decay is large enough to matter.
COMMON = {"lr": 0.03, "momentum": 0.8, "weight_decay": 2e-3}

CASES: Dict[str, Tuple[Dict[str, Any], Dict[str, Any]]] = {
    # (expand options, trainer options)
    "spkd": ({}, {}),  # kd_weight by default (300), constant rate, chain mode "auto"
    "vanilla": ({}, {"kd_weight": 0}),
    "spkd-cosine-nesterov-all-naive": (
        {"layers": "all", "rate": 2},
        {"kd_weight": 100, "schedule": "cosine", "total_steps": STEPS, "nesterov": True, "chain_mode": "naive"},
    ),
    "spkd-step-online": ({}, {"kd_weight": 50, "schedule": "step", "step_size": 20, "gamma": 0.5, "chain_mode": "online"}),
}


# --- the reference ---------------------------------------------------------------------------


def learning_rate(options: Dict[str, Any], step: int) -> float:
    """Rate of the step with 0-based index `step` (reparo.h: "schedule")."""
    base = options["lr"]
    schedule = options.get("schedule", "constant")
    if schedule == "cosine":
        total = options["total_steps"]
        return base * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    if schedule == "step":
        return base * options.get("gamma", 0.1) ** (step // options.get("step_size", 1000))
    return base


def distillation_taps(student: List[Dict[str, Any]], teacher: List[Dict[str, Any]]) -> List[Tuple[int, int]]:
    """(student index, teacher index) of the top-level ReLUs closing conv (→ BN) → ReLU whose
    conv was pruned (its width differs from the teacher's conv of the same name)."""
    teacher_index = {layer["name"]: index for index, layer in enumerate(teacher)}
    taps = []
    for index, layer in enumerate(student[:-1]):
        if layer["type"] != "relu" or index == 0:
            continue
        source = index - 1
        if student[source]["type"] == "batchnorm" and source >= 1:
            source -= 1
        conv = student[source]
        if conv["type"] != "conv" or layer["name"] not in teacher_index:
            continue
        if conv["out"] != teacher[teacher_index[conv["name"]]]["out"]:
            taps.append((index, teacher_index[layer["name"]]))
    return taps


def run(net: Any, layers: List[Dict[str, Any]], x: Any) -> Tuple[Any, List[Any]]:
    """Logits [N, classes] and every top-level layer's output (4-D activations, as Reparo)."""
    outputs = []
    for layer in layers:
        kind = layer["type"]
        if kind in ("conv", "batchnorm"):
            x = net.get_submodule(layer["name"])(x)
        elif kind == "linear":
            x = net.get_submodule(layer["name"])(x.flatten(1))[:, :, None, None]
        elif kind == "relu":
            x = F.relu(x)
        elif kind == "maxpool":
            x = F.max_pool2d(x, layer["kernel"], layer["stride"])
        elif kind == "avgpool" and not layer.get("kernel"):
            x = x.mean((2, 3), keepdim=True)
        elif kind == "flatten":
            x = x.reshape(x.shape[0], -1, 1, 1)
        else:
            raise AssertionError(f"layer type {kind} is not used by this test")
        outputs.append(x)
    return x.flatten(1), outputs


def similarity_loss(student: Any, teacher: Any) -> Any:
    """SP-KD of one layer pair (Tung & Mori 2019, eq. 2–4)."""
    b = student.shape[0]
    a_s, a_t = student.reshape(b, -1), teacher.reshape(b, -1)
    g_s = F.normalize(a_s @ a_s.T, p=2, dim=1)
    g_t = F.normalize(a_t @ a_t.T, p=2, dim=1)
    return ((g_s - g_t) ** 2).sum() / b**2


def load_double(path: Any) -> Tuple[Any, Dict[str, Any]]:
    state_dict, spec = torch_interop.load_into_torch(path, with_spec=True)
    net = torch_interop.build_torch_model(spec)
    net.load_state_dict(state_dict, strict=True)
    return net.double(), spec


class Reference:
    """SGD fine-tuning with CE + SP-KD in float64 PyTorch."""

    def __init__(self, student_path: Any, teacher_path: Any, options: Dict[str, Any]) -> None:
        self.options = options
        self.net, self.spec = load_double(student_path)
        self.net.train()
        self.teacher, self.teacher_spec = load_double(teacher_path)
        self.teacher.eval()
        self.kd_weight = float(options.get("kd_weight", DEFAULT_KD_WEIGHT))
        self.taps = distillation_taps(self.spec["layers"], self.teacher_spec["layers"]) if self.kd_weight > 0 else []
        decayed = {id(m.weight) for m in self.net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}
        self.parameters = [(p, id(p) in decayed) for p in self.net.parameters()]
        self.velocity: List[Any] = []
        self.step_index = 0

    def step(self, images: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
        x = torch.from_numpy(images).double()
        y = torch.from_numpy(labels.astype(np.int64))
        logits, outputs = run(self.net, self.spec["layers"], x)
        ce = F.cross_entropy(logits, y)
        kd = torch.zeros((), dtype=torch.float64)
        if self.taps:
            with torch.no_grad():
                _, teacher_outputs = run(self.teacher, self.teacher_spec["layers"], x)
            kd = sum(similarity_loss(outputs[s], teacher_outputs[t]) for s, t in self.taps) / len(self.taps)
        loss = ce + self.kd_weight * kd
        gradients = torch.autograd.grad(loss, [p for p, _ in self.parameters])
        rate = learning_rate(self.options, self.step_index)
        momentum, decay = self.options["momentum"], self.options["weight_decay"]
        nesterov = self.options.get("nesterov", False)
        with torch.no_grad():
            for index, ((p, decayed), g) in enumerate(zip(self.parameters, gradients)):
                if decayed:
                    g = g + decay * p
                if self.step_index == 0:
                    self.velocity.append(g.clone())
                else:
                    self.velocity[index].mul_(momentum).add_(g)
                v = self.velocity[index]
                p.sub_(rate * (g + momentum * v if nesterov else v))
        self.step_index += 1
        return {"loss": loss.item(), "ce_loss": ce.item(), "kd_loss": kd.item(), "learning_rate": rate}

    def collapsed_state_dict(self) -> Dict[str, np.ndarray]:
        return collapse_tensors({k: v.detach().numpy() for k, v in self.net.state_dict().items()}, self.spec)


def collapse_tensors(tensors: Dict[str, np.ndarray], spec: Dict[str, Any]) -> Dict[str, np.ndarray]:
    """Each chain's product W = F₂·F₁·F₀ (per kernel tap for a conv) under the compact layer's
    names; the other tensors as they are."""
    result = {}
    chains = {layer["name"] for layer in spec["layers"] if layer.get("chain")}
    for name, value in tensors.items():
        if name.endswith("num_batches_tracked"):
            continue
        layer, _, rest = name.rpartition(".factors.")
        if layer not in chains:
            result[name] = np.asarray(value, np.float64)
            continue
        if rest == "2.bias":
            result[layer + ".bias"] = np.asarray(value, np.float64)
        elif rest == "0.weight":
            f0, f1, f2 = (np.asarray(tensors[f"{layer}.factors.{i}.weight"], np.float64) for i in range(3))
            if f1.ndim == 4:
                result[layer + ".weight"] = np.einsum("ab,bcij,cd->adij", f2[:, :, 0, 0], f1, f0[:, :, 0, 0])
            else:
                result[layer + ".weight"] = f2 @ f1 @ f0
    return result


# --- the test --------------------------------------------------------------------------------


def teacher_model(images: np.ndarray, labels: np.ndarray) -> reparo.Model:
    """A dense digits CNN 30 steps into training: weights and BatchNorm statistics away from
    their initial values, so that a swapped tensor would show."""
    model = reparo.Model.create(DIGITS_SPEC, seed=11)
    rng = np.random.default_rng(11)
    with reparo.Trainer(model, lr=0.05) as trainer:
        for _ in range(30):
            index = rng.choice(len(labels), BATCH, replace=False)
            trainer.step(images[index], labels[index])
    return model


def max_relative(actual: float, expected: float) -> float:
    return abs(actual - expected) / max(abs(expected), 1e-30)


@pytest.fixture
def one_torch_thread():
    """PyTorch on one thread while the test runs: its ops here are tiny, and its idle OpenMP
    threads spinning beside Reparo's workers on 2 busy cores made a case take 66 s instead of 0.5 s."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("case", sorted(CASES))
def test_fine_tuning_agrees_with_pytorch(case: str, digits_train, digits_test, tmp_path, one_torch_thread) -> None:
    expand, extra = CASES[case]
    options = {**COMMON, **extra}
    images, labels = digits_train.images, digits_train.labels
    with teacher_model(images, labels) as teacher:
        teacher.save(tmp_path / "teacher.safetensors")
        with teacher.prune(ratio=0.5) as student:
            student.expand(**expand)
            student.save(tmp_path / "student.safetensors")
            reference = Reference(tmp_path / "student.safetensors", tmp_path / "teacher.safetensors", options)
            rng = np.random.default_rng(2024)
            deviation = {"loss": 0.0, "ce_loss": 0.0, "kd_loss": 0.0, "learning_rate": 0.0}
            with reparo.Trainer(student, teacher, **options) as trainer:
                for step in range(STEPS):
                    index = rng.choice(len(labels), BATCH, replace=False)
                    result = trainer.step(images[index], labels[index])
                    expected = reference.step(images[index], labels[index])
                    for key in deviation:
                        if expected[key] == 0:
                            assert getattr(result, key) == 0, (step, key)
                            continue
                        error = max_relative(getattr(result, key), expected[key])
                        deviation[key] = max(deviation[key], error)
                        assert error <= LOSS_TOLERANCE, (
                            f"step {step + 1}: {key} {getattr(result, key)!r} vs PyTorch {expected[key]!r}")
            if reference.kd_weight > 0:
                assert reference.taps and deviation["kd_loss"] > 0, "no distillation happened"
            student.save(tmp_path / "trained.safetensors")
            _, trained = torch_interop.read_file(tmp_path / "trained.safetensors")
            expected_tensors = {k: v.detach().numpy() for k, v in reference.net.state_dict().items()
                                if not k.endswith("num_batches_tracked")}
            assert set(trained) == set(expected_tensors)
            weight_errors = {name: relative_error(trained[name], expected_tensors[name]) for name in trained}
            worst = max(weight_errors, key=weight_errors.get)
            # The weights moved: agreement is not the starting point kept on both sides.
            _, initial = torch_interop.read_file(tmp_path / "student.safetensors")
            moved = max(relative_error(trained[name], initial[name]) for name in trained)

            student.collapse()
            student.save(tmp_path / "collapsed.safetensors")
            _, collapsed = torch_interop.read_file(tmp_path / "collapsed.safetensors")
            own_product = collapse_tensors(trained, reference.spec)
            collapse_errors = {name: relative_error(collapsed[name], own_product[name]) for name in collapsed}
            compact, compact_spec = load_double(tmp_path / "collapsed.safetensors")
            mine = reference.collapsed_state_dict()
            assert set(mine) == set(collapsed)
            counters = {k: v for k, v in compact.state_dict().items() if k.endswith("num_batches_tracked")}
            compact.load_state_dict({**counters, **{k: torch.from_numpy(v) for k, v in mine.items()}}, strict=True)
            compact.eval()
            test_images = digits_test.images[:200].copy()  # writable, as torch.from_numpy wants
            with torch.no_grad():
                expected_logits = compact(torch.from_numpy(test_images).double()).numpy()
            logit_error = relative_error(student.infer(test_images), expected_logits)

    print(f"\n[{case}] taps {reference.taps}; max relative deviation over {STEPS} steps: "
          + ", ".join(f"{key} {value:.2e}" for key, value in deviation.items())
          + f"; weights {weight_errors[worst]:.2e} ({worst}; weights moved {moved:.2e});"
          f" collapse vs own product {max(collapse_errors.values()):.2e}; collapsed logits {logit_error:.2e}")
    assert moved > 1e-2, "training hardly moved the weights; the comparison would be empty"
    assert weight_errors[worst] <= WEIGHT_TOLERANCE, f"{worst}: {weight_errors[worst]:.3e}"
    assert max(collapse_errors.values()) <= COLLAPSE_TOLERANCE, collapse_errors
    assert logit_error <= LOGIT_TOLERANCE, logit_error
