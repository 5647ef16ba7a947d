#!/usr/bin/env python3
"""Non-finite and extreme weights in a loaded file: the promise in SECURITY.md.

    python3 reliability/nonfinite.py [path/to/libreparo.so]

A model file whose tensors hold NaN, ±Inf, a negative running variance or huge values is
well-formed, so reparo_model_load accepts it. Then, for each poisoned file:
  - reparo_infer succeeds and returns the non-finite logits the arithmetic gives (no trap);
  - reparo_evaluate succeeds (its loss may be NaN);
  - reparo_trainer_step either succeeds or returns REPARO_ERR_NUMERIC, and on NUMERIC the
    model's logits are bit-identical to those before the step (nothing was changed);
  - prune, expand and collapse(fold_batchnorm) complete or fail with a status, never a trap.
Prints "nonfinite: N passed, M failed"; exit status 1 on a failure.
"""
import ctypes
import json
import os
import struct
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
lib = ctypes.CDLL(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build-release/release/libreparo.so"))
P = ctypes.c_void_p
lib.reparo_last_error.restype = ctypes.c_char_p
lib.reparo_status_name.restype = ctypes.c_char_p
lib.reparo_model_create.argtypes = [ctypes.c_char_p, ctypes.c_uint64, ctypes.POINTER(P)]
lib.reparo_model_save.argtypes = [P, ctypes.c_char_p]
lib.reparo_model_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(P)]
lib.reparo_model_free.argtypes = [P]
lib.reparo_infer.argtypes = [P, P, ctypes.c_int32, P, ctypes.c_size_t]
lib.reparo_evaluate.argtypes = [P, P, P, ctypes.c_int64, P, P]
lib.reparo_trainer_create.argtypes = [P, P, ctypes.c_char_p, ctypes.POINTER(P)]
lib.reparo_trainer_step.argtypes = [P, P, P, ctypes.c_int32, P]
lib.reparo_trainer_free.argtypes = [P]
lib.reparo_prune.argtypes = [P, ctypes.c_char_p, ctypes.POINTER(P)]
lib.reparo_expand.argtypes = [P, ctypes.c_char_p]
lib.reparo_collapse.argtypes = [P, ctypes.c_char_p]

OK, NUMERIC = 0, 5
BATCH, PIXELS, CLASSES = 2, 3 * 32 * 32, 10
images = (ctypes.c_float * (BATCH * PIXELS))(*[((i * 37) % 101) / 50.0 - 1 for i in range(BATCH * PIXELS)])
labels = (ctypes.c_int32 * BATCH)(1, 2)
passed, failed = 0, 0


def expect(condition, what):
    global passed, failed
    if condition:
        passed += 1
    else:
        failed += 1
        print(f"nonfinite: FAILED {what}: {lib.reparo_last_error().decode()}")


def logits(model):
    out = (ctypes.c_float * (BATCH * CLASSES))()
    status = lib.reparo_infer(model, images, BATCH, out, BATCH * CLASSES)
    return status, bytes(out), list(out)


def main():
    scratch = tempfile.mkdtemp()
    clean = os.path.join(scratch, "clean.safetensors")
    model = P()
    assert lib.reparo_model_create(b'{"preset":"resnet20","width":0.125}', 1, ctypes.byref(model)) == OK
    assert lib.reparo_model_save(model, clean.encode()) == OK
    lib.reparo_model_free(model)
    data = open(clean, "rb").read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])

    def poisoned(name, value):
        out = bytearray(data)
        begin, end = header[name]["data_offsets"]
        for offset in range(8 + length + begin, 8 + length + end, 4):
            out[offset:offset + 4] = struct.pack("<f", value)
        return bytes(out)

    cases = [("conv1.weight", float("nan")), ("linear.bias", float("inf")), ("linear.weight", float("-inf")),
             ("bn1.running_var", -1.0), ("layer1.0.bn1.weight", float("nan")), ("linear.weight", 3e38)]
    for name, value in cases:
        label = f"{name} = {value}"
        path = os.path.join(scratch, "poisoned.safetensors")
        open(path, "wb").write(poisoned(name, value))
        model = P()
        expect(lib.reparo_model_load(path.encode(), ctypes.byref(model)) == OK, f"{label}: load")
        status, before, values = logits(model)
        expect(status == OK, f"{label}: infer")
        accuracy, loss = ctypes.c_float(), ctypes.c_float()
        expect(lib.reparo_evaluate(model, images, labels, BATCH, ctypes.byref(accuracy), ctypes.byref(loss)) == OK,
               f"{label}: evaluate")
        trainer = P()
        expect(lib.reparo_trainer_create(model, None, b'{"lr":0.01}', ctypes.byref(trainer)) == OK, f"{label}: trainer")
        step = lib.reparo_trainer_step(trainer, images, labels, BATCH, None)
        expect(step in (OK, NUMERIC), f"{label}: step status {step}")
        lib.reparo_trainer_free(trainer)
        if step == NUMERIC:
            expect(logits(model)[1] == before, f"{label}: a NUMERIC step changed the model")
        pruned = P()
        if lib.reparo_prune(model, b'{"ratio":0.5}', ctypes.byref(pruned)) == OK:
            lib.reparo_expand(pruned, None)
            lib.reparo_collapse(pruned, b'{"fold_batchnorm":true}')
            expect(logits(pruned)[0] == OK, f"{label}: infer after prune/expand/collapse")
            lib.reparo_model_free(pruned)
        finite = sum(1 for v in values if v == v and abs(v) != float("inf"))
        print(f"nonfinite: {label}: load ok, infer ok ({finite}/{len(values)} logits finite, e.g. {values[0]}), "
              f"evaluate loss {loss.value}, step {lib.reparo_status_name(step).decode()}")
        lib.reparo_model_free(model)
    print(f"nonfinite: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
