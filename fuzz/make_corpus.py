#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from real files made through the C API.

    python3 fuzz/make_corpus.py [path/to/libreparo.so]

corpus/load/: weights files of every preset (vgg16, resnet20, resnet56 at width 0.0625) in
every state the method produces (dense, pruned, expanded, collapsed, folded = collapsed with
BatchNorm folded) and small generic models (bias, pools, linear chains, custom blocks).
corpus/checkpoint/: trainer checkpoints (reparo_trainer_save) of dense and expanded students.
corpus/spec/: the user-style spec of each preset, the resolved spec saved in each file above,
generic specs, and option objects of the trainer, prune, expand and collapse.
Deterministic (fixed seeds): the same library rewrites the same bytes (a change in the engine's
arithmetic changes the trained weights, and so the files).
"""
import ctypes
import json
import os
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIB = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build-release/release/libreparo.so")
WIDTH = 0.0625

lib = ctypes.CDLL(LIB)
P = ctypes.c_void_p
lib.reparo_last_error.restype = ctypes.c_char_p
lib.reparo_model_create.argtypes = [ctypes.c_char_p, ctypes.c_uint64, ctypes.POINTER(P)]
lib.reparo_model_save.argtypes = [P, ctypes.c_char_p]
lib.reparo_model_clone.argtypes = [P, ctypes.POINTER(P)]
lib.reparo_model_free.argtypes = [P]
lib.reparo_prune.argtypes = [P, ctypes.c_char_p, ctypes.POINTER(P)]
lib.reparo_expand.argtypes = [P, ctypes.c_char_p]
lib.reparo_collapse.argtypes = [P, ctypes.c_char_p]
lib.reparo_trainer_create.argtypes = [P, P, ctypes.c_char_p, ctypes.POINTER(P)]
lib.reparo_trainer_step.argtypes = [P, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int32),
                                    ctypes.c_int32, P]
lib.reparo_trainer_save.argtypes = [P, ctypes.c_char_p]
lib.reparo_trainer_free.argtypes = [P]
lib.reparo_model_shape.argtypes = [P] + [ctypes.POINTER(ctypes.c_int32)] * 4


def check(status, what):
    if status != 0:
        raise SystemExit(f"{what}: status {status}: {lib.reparo_last_error().decode()}")


def create(spec, seed=1):
    model = P()
    check(lib.reparo_model_create(json.dumps(spec).encode(), seed, ctypes.byref(model)), f"create {spec}")
    return model


def prune(model, options):
    pruned = P()
    check(lib.reparo_prune(model, json.dumps(options).encode(), ctypes.byref(pruned)), "prune")
    return pruned


def clone(model):
    copy = P()
    check(lib.reparo_model_clone(model, ctypes.byref(copy)), "clone")
    return copy


def write(directory, name, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as handle:
        handle.write(data)


def save(model, name):
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "model.safetensors")
        check(lib.reparo_model_save(model, path.encode()), "save")
        data = open(path, "rb").read()
    write(os.path.join(HERE, "corpus/load"), name + ".safetensors", data)
    (length,) = struct.unpack("<Q", data[:8])
    spec = json.loads(data[8:8 + length])["__metadata__"]["spec"]
    write(os.path.join(HERE, "corpus/spec"), "resolved-" + name + ".json", spec.encode())


def train_steps(model, steps=2, batch=2):
    """A couple of SGD steps so weights and BatchNorm statistics are not the initial ones."""
    c, h, w, k = (ctypes.c_int32() for _ in range(4))
    check(lib.reparo_model_shape(model, *(ctypes.byref(v) for v in (c, h, w, k))), "shape")
    count = batch * c.value * h.value * w.value
    images = (ctypes.c_float * count)(*[((i * 7919) % 255) / 127.5 - 1 for i in range(count)])
    labels = (ctypes.c_int32 * batch)(*[i % k.value for i in range(batch)])
    trainer = P()
    check(lib.reparo_trainer_create(model, None, b'{"lr":0.01}', ctypes.byref(trainer)), "trainer")
    for _ in range(steps):
        check(lib.reparo_trainer_step(trainer, images, labels, batch, None), "step")
    return trainer


def save_trainer(trainer, name):
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "trainer.safetensors")
        check(lib.reparo_trainer_save(trainer, path.encode()), "trainer save")
        write(os.path.join(HERE, "corpus/checkpoint"), name + ".safetensors", open(path, "rb").read())


def pipeline(prefix, dense, rate, prune_options):
    """dense → pruned → expanded → collapsed, and folded from a second collapse."""
    trainer = train_steps(dense)
    save_trainer(trainer, f"{prefix}-dense-trainer")
    lib.reparo_trainer_free(trainer)
    save(dense, f"{prefix}-dense")
    pruned = prune(dense, prune_options)
    save(pruned, f"{prefix}-pruned")
    expanded = clone(pruned)
    check(lib.reparo_expand(expanded, json.dumps({"rate": rate, "layers": "all"}).encode()), "expand")
    save(expanded, f"{prefix}-expanded")
    trainer = train_steps(expanded, steps=1)
    save_trainer(trainer, f"{prefix}-expanded-trainer")
    lib.reparo_trainer_free(trainer)
    collapsed = clone(expanded)
    check(lib.reparo_collapse(collapsed, b'{}'), "collapse")
    save(collapsed, f"{prefix}-collapsed")
    folded = clone(expanded)
    check(lib.reparo_collapse(folded, b'{"fold_batchnorm":true}'), "collapse (fold)")
    save(folded, f"{prefix}-folded")
    for model in (dense, pruned, expanded, collapsed, folded):
        lib.reparo_model_free(model)


def main():
    spec_dir = os.path.join(HERE, "corpus/spec")
    # Expansion multiplies a conv's parameters by about rate², so vgg16 (the largest) uses
    # rate 2 to keep the whole corpus under 5 MB.
    for preset, rate in (("vgg16", 2), ("resnet20", 4), ("resnet56", 4)):
        user_spec = {"preset": preset, "classes": 10, "input": [3, 32, 32], "width": WIDTH}
        write(spec_dir, f"preset-{preset}.json", json.dumps(user_spec).encode())
        pipeline(preset, create(user_spec), rate, {"ratio": 0.5, "criterion": "l1"})
    coupled = create({"preset": "resnet20", "width": 0.125, "input": [3, 8, 8]})
    pipeline("resnet20-coupled", coupled, 2, {"ratio": 0.5, "criterion": "bn_gamma", "residual": "coupled"})

    generic = {"input": [2, 9, 7], "classes": 3, "layers": [
        {"type": "conv", "out": 4, "kernel": 3, "stride": 2, "padding": 1, "bias": True, "name": "stem"},
        {"type": "batchnorm"}, {"type": "relu"},
        {"type": "basic_block", "out": 6, "stride": 1},
        {"type": "basic_block", "name": "custom", "main": [
            {"type": "conv", "out": 6, "kernel": 1}, {"type": "relu"}], "shortcut": []},
        {"type": "maxpool", "kernel": 2, "stride": 1},
        {"type": "avgpool", "kernel": 2, "stride": 2},
        {"type": "avgpool"}, {"type": "flatten"},
        {"type": "linear", "out": 5, "bias": False}, {"type": "relu"},
        {"type": "linear", "out": 3}]}
    write(spec_dir, "generic.json", json.dumps(generic).encode())
    pipeline("generic", create(generic), 2, {"ratio": 0.4, "criterion": "l2", "layers": {"stem": 0.5}})
    mlp = {"input": [1, 4, 4], "classes": 2, "layers": [
        {"type": "flatten"}, {"type": "linear", "out": 3, "chain": [6, 6]}, {"type": "relu"},
        {"type": "linear", "out": 2}]}
    write(spec_dir, "mlp-chain.json", json.dumps(mlp).encode())
    model = create(mlp)
    save(model, "mlp-chain")
    trainer = train_steps(model)
    save_trainer(trainer, "mlp-chain-trainer")
    lib.reparo_trainer_free(trainer)
    lib.reparo_model_free(model)

    options = {
        "trainer-all": {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
                        "schedule": "step", "total_steps": 10, "step_size": 3, "gamma": 0.5,
                        "augment": {"crop_padding": 4, "flip": True}, "kd_weight": 300,
                        "kd_layers": ["conv1", "layer1.0.conv1"], "clip_norm": 5, "seed": 7,
                        "threads": 1, "chain_mode": "online"},
        "trainer-cosine": {"schedule": "cosine", "total_steps": 100, "kd_layers": "pruned", "chain_mode": "naive"},
        "prune": {"ratio": 0.3, "criterion": "random", "seed": 3, "layers": {"conv1": 0.5}, "residual": "coupled"},
        "expand": {"rate": 4, "layers": ["conv1", "linear"], "seed": 1},
        "expand-all": {"rate": 2, "layers": "all"},
        "collapse": {"fold_batchnorm": True},
    }
    for name, value in options.items():
        write(spec_dir, f"options-{name}.json", json.dumps(value).encode())


if __name__ == "__main__":
    main()
