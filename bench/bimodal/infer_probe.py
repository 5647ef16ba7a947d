"""Median batch-1 inference time (ms) of a saved model with the given thread count, one line of JSON.
   python infer_probe.py MODEL.safetensors THREADS [REPETITIONS]"""
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bindings" / "python"))
import numpy as np  # noqa: E402
import reparo  # noqa: E402

path, threads = sys.argv[1], int(sys.argv[2])
repetitions = int(sys.argv[3]) if len(sys.argv) > 3 else 800
model = reparo.Model.load(path)
model.threads = threads
channels, height, width = model.input_shape
x = np.random.default_rng(0).standard_normal((1, channels, height, width), dtype=np.float32)
for _ in range(20):
    model.infer(x)
times = []
for _ in range(repetitions):
    start = time.perf_counter()
    model.infer(x)
    times.append(time.perf_counter() - start)
print(json.dumps({"threads": threads, "median_ms": 1e3 * float(np.median(times))}))
