// reparo-bench: kernel and model timings of the engine, against raw OpenBLAS sgemm.
//
//   reparo-bench conv-efficiency   each distinct VGG-16 conv (dense, pruned 0.7), batch 64:
//                                  forward / weight-gradient / input-gradient vs the same sgemm
//   reparo-bench step              one SGD step, batch 64, VGG-16 pruned 0.7: compact and
//                                  expanded (rate 4) with chain_mode naive / online / auto
//   reparo-bench layers            where a training step's time goes, per layer type
//   reparo-bench chains            per expanded chain of VGG-16: naive vs online, multiply-add
//                                  model (the auto mode's choice) against measured times
//   reparo-bench infer             collapsed + BN-folded VGG-16 (pruned, dense), batch 1 and 64
//   reparo-bench infer-layers      the same models' eval forward, per layer (not part of `all`)
//   reparo-bench all               all of the above
// Options: --threads N (2), --reps N (10, the minimum of timed repetitions after 2 warm-ups),
//          --batch N (64), --json PATH (also write the results as JSON),
//          --variant compact|naive|online|dense (layers: profile only that model, e.g. under perf;
//                    infer: only the models whose label contains it, e.g. collapsed or dense).
// Each section also reports the share of CPU other processes took meanwhile (from /proc).
// Every figure is the median of the timed repetitions. See bench/README.md.
import COpenBLAS
import Foundation
import ReparoCore

struct Settings {
    var command = "all"
    var threads = 2
    var repetitions = 10
    var batch = 64
    var jsonPath: String? = nil
    /// `layers` only: profile just the models whose label contains this (compact, naive, online,
    /// dense); by default all but the naive chain (its step is timed by `step`; profiling it costs a minute).
    var variant: String? = nil
    /// `layers` only: profile this model spec (JSON) dense and pruned 0.7 + expanded (rate 4,
    /// auto) instead of the VGG-16/ResNet-56 set, with a per-layer table.
    var spec: String? = nil

    static func parse(_ arguments: [String]) -> Settings {
        var settings = Settings()
        var index = 0
        func value(_ flag: String) -> String {
            index += 1
            guard index < arguments.count else { fail("\(flag) needs a value") }
            return arguments[index]
        }
        func integer(_ flag: String) -> Int {
            let text = value(flag)
            guard let number = Int(text), number >= 1 else { fail("\(flag): expected a positive integer, got \(text)") }
            return number
        }
        var commandSeen = false
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--threads": settings.threads = integer(argument)
            case "--reps": settings.repetitions = integer(argument)
            case "--batch": settings.batch = integer(argument)
            case "--json": settings.jsonPath = value(argument)
            case "--variant": settings.variant = value(argument)
            case "--spec": settings.spec = value(argument)
            case "-h", "--help":
                print(usage)
                exit(0)
            default:
                guard !commandSeen, !argument.hasPrefix("-") else { fail("unexpected argument \(argument)\n\(usage)") }
                settings.command = argument
                commandSeen = true
            }
            index += 1
        }
        guard ["conv-efficiency", "step", "layers", "chains", "infer", "infer-layers", "all"].contains(settings.command) else {
            fail("unknown command \(settings.command)\n\(usage)")
        }
        return settings
    }
}

let usage = """
usage: reparo-bench [conv-efficiency|step|layers|chains|infer|infer-layers|all] [--threads N] [--reps N] [--batch N] [--json PATH]
                    [--variant compact|naive|online|dense]   (layers, infer, infer-layers: only that model)
                    [--spec JSON]   (layers: this spec, dense and pruned 0.7 + expanded, per layer)
environment: BENCH_CPU_TIME=1 times with the process's CPU clock instead of the wall clock (a
             shared machine, with --threads 1: other processes' load then hardly moves the figures)
"""

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(("reparo-bench: " + message + "\n").data(using: .utf8) ?? Data())
    exit(2)
}

// MARK: Models

let denseSpec = #"{"preset":"vgg16"}"#

func makeModels() throws -> (dense: Model, pruned: Model) {
    let dense = try Model(specJSON: denseSpec, seed: 1)
    let pruned = try Pruning.prune(dense, options: PruneOptions(ratio: 0.7))
    return (dense, pruned)
}

/// ResNet-56 pruned at 0.5 (narrow layers, many positions: online collapse is nearly free).
func makePrunedResNet() throws -> Model {
    try Pruning.prune(try Model(specJSON: #"{"preset":"resnet56"}"#, seed: 1), options: PruneOptions(ratio: 0.5))
}

func expanded(_ pruned: Model) throws -> Model {
    try Expansion.expand(pruned.clone(), options: ExpandOptions(rate: 4))
}

// MARK: conv-efficiency

/// One conv layer shape timed in the engine and as raw sgemm.
func convEfficiency(model: Model, label: String, settings: Settings) throws -> (markdown: String, json: [[String: Any]]) {
    let batch = settings.batch
    var groups: [(key: String, names: [String], conv: Conv2D)] = []
    for case let conv as Conv2D in model.network.layers {
        let key = "\(conv.inputShape.channels)→\(conv.outputShape.channels) @\(conv.inputShape.height)×\(conv.inputShape.width)"
        if let index = groups.firstIndex(where: { $0.key == key }) {
            groups[index].names.append(conv.name)
        } else {
            groups.append((key, [conv.name], conv))
        }
    }
    var rows: [[String]] = []
    var layoutRows: [[String]] = []
    var records: [[String: Any]] = []
    var totals = (reparo: 0.0, sgemm: 0.0, flops: 0.0)
    for group in groups {
        let conv = group.conv
        let m = conv.outputShape.channels
        let n = batch * conv.outputShape.spatial
        let k = conv.patchSize
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        let cache = try conv.makeCache(batch: batch, training: true)
        let x = try FloatBuffer(count: batch * conv.inputShape.count)
        let y = try FloatBuffer(count: batch * conv.outputShape.count)
        let dy = try FloatBuffer(count: batch * conv.outputShape.count)
        let dx = try FloatBuffer(count: batch * conv.inputShape.count)
        fillRandom(x.pointer, count: x.count, seed: 1)
        fillRandom(dy.pointer, count: dy.count, seed: 2)
        fillRandom(conv.weight.value.pointer, count: conv.weight.count, seed: 3)
        let forward = measure(repetitions: settings.repetitions) {
            conv.forward(x.pointer, y.pointer, cache: cache, training: true)
        }
        // backward without dx runs only the dy permutation and the weight-gradient GEMM; with dx
        // it adds the column-gradient GEMM and col2im, so the difference is the input-gradient part.
        let weightPart = measure(repetitions: settings.repetitions) {
            conv.backward(x.pointer, y.pointer, dy.pointer, nil, cache: cache)
        }
        let wholeBackward = measure(repetitions: settings.repetitions) {
            conv.backward(x.pointer, y.pointer, dy.pointer, dx.pointer, cache: cache)
        }
        let inputPart = max(wholeBackward.median - weightPart.median, 1e-9)

        // The same three GEMMs, same transposes and leading dimensions, on plain buffers.
        let w = conv.weight.value.pointer
        let columns = try FloatBuffer(count: k * n)
        let output = try FloatBuffer(count: m * n)
        let gradient = try FloatBuffer(count: m * k)
        fillRandom(columns.pointer, count: columns.count, seed: 4)
        fillRandom(output.pointer, count: output.count, seed: 5)
        // The peer is OpenBLAS's own threaded sgemm (the engine keeps OpenBLAS single-threaded
        // and splits GEMMs over its workers itself).
        openblas_set_num_threads(Int32(settings.threads))
        defer { openblas_set_num_threads(1) }
        let rawForward = measure(repetitions: settings.repetitions) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(m), blasint(n), blasint(k), 1,
                        w, blasint(k), columns.pointer, blasint(n), 0, output.pointer, blasint(n))
        }
        let rawWeight = measure(repetitions: settings.repetitions) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(m), blasint(k), blasint(n), 1,
                        output.pointer, blasint(n), columns.pointer, blasint(n), 1, gradient.pointer, blasint(k))
        }
        let rawInput = measure(repetitions: settings.repetitions) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blasint(k), blasint(n), blasint(m), 1,
                        w, blasint(k), output.pointer, blasint(n), 0, columns.pointer, blasint(n))
        }
        func gflops(_ seconds: Double) -> Double { flops / seconds / 1e9 }
        let parts: [(String, Double, Double)] = [
            ("forward", forward.median, rawForward.median),
            ("weight_gradient", weightPart.median, rawWeight.median),
            ("input_gradient", inputPart, rawInput.median),
        ]
        var row = [group.names.joined(separator: ", "), group.key, "\(m)×\(n)×\(k)"]
        var record: [String: Any] = ["model": label, "layers": group.names, "shape": group.key,
                                     "gemm_mnk": [m, n, k], "gflop_per_gemm": flops / 1e9]
        let count = Double(group.names.count)
        for (part, reparo, raw) in parts {
            // The first layer's input gradient is never computed in training (nothing to pass it to).
            let needed = !(part == "input_gradient" && group.names.contains(model.network.layers.first?.name ?? ""))
            row += [format(reparo * 1e3, 2), format(gflops(reparo), 0), format(gflops(raw), 0),
                    format(100 * raw / reparo, 0) + "%"]
            record[part] = ["reparo_ms": reparo * 1e3, "reparo_gflops": gflops(reparo),
                            "sgemm_ms": raw * 1e3, "sgemm_gflops": gflops(raw), "efficiency": raw / reparo,
                            "needed_in_training": needed]
            if needed {
                totals.reparo += reparo * count
                totals.sgemm += raw * count
                totals.flops += flops * count
            }
        }
        record["backward_ms"] = wholeBackward.median * 1e3
        // The forward GEMM laid out differently: one GEMM per image, written straight into NCHW
        // (no [Cout,N,P] → [N,Cout,P] copy), and the swapped product Y[N·P, Cout] = colsᵀ · Wᵀ.
        let positions = conv.outputShape.spatial
        let perImage = measure(repetitions: settings.repetitions) {
            for image in 0..<batch {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(m), blasint(positions), blasint(k), 1,
                            w, blasint(k), columns.pointer + image * positions, blasint(n), 0,
                            output.pointer + image * m * positions, blasint(positions))
            }
        }
        let swapped = measure(repetitions: settings.repetitions) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, blasint(n), blasint(m), blasint(k), 1,
                        columns.pointer, blasint(n), w, blasint(k), 0, output.pointer, blasint(m))
        }
        record["forward_layouts"] = ["batched_gflops": gflops(rawForward.median), "per_image_gflops": gflops(perImage.median),
                                     "swapped_gflops": gflops(swapped.median)]
        layoutRows.append([group.key, "\(m)×\(n)×\(k)", format(gflops(rawForward.median), 0),
                           format(gflops(perImage.median), 0), format(gflops(swapped.median), 0),
                           format(gflops(forward.median), 0)])
        rows.append(row)
        records.append(record)
    }
    let header = ["layers", "Cin→Cout @H×W", "M×N×K",
                  "fwd ms", "GF/s", "sgemm GF/s", "eff",
                  "dW ms", "GF/s", "sgemm GF/s", "eff",
                  "dX ms", "GF/s", "sgemm GF/s", "eff"]
    let summary = "All conv passes of one \(label) training step (each layer counted, first layer's dX excluded): " +
        "engine \(format(totals.reparo * 1e3, 1)) ms (\(format(totals.flops / totals.reparo / 1e9, 0)) GFLOP/s), " +
        "raw sgemm \(format(totals.sgemm * 1e3, 1)) ms (\(format(totals.flops / totals.sgemm / 1e9, 0)) GFLOP/s), " +
        "efficiency \(format(100 * totals.sgemm / totals.reparo, 0))%."
    records.append(["model": label, "total": ["reparo_ms": totals.reparo * 1e3, "sgemm_ms": totals.sgemm * 1e3,
                                              "gflop": totals.flops / 1e9, "efficiency": totals.sgemm / totals.reparo]])
    let layouts = table(["Cin→Cout @H×W", "M×N×K", "batched sgemm GF/s (engine's)", "64 per-image sgemm GF/s",
                         "swapped colsᵀ·Wᵀ GF/s", "engine fwd GF/s"], layoutRows)
    return ("### conv efficiency, VGG-16 \(label), batch \(batch)\n\n" + table(header, rows) + "\n\n" + summary +
            "\n\nForward GEMM in other layouts (raw sgemm only):\n\n" + layouts + "\n", records)
}

// MARK: step

func chains(_ model: Model) -> [ExpandedChain] { model.network.filterMap { $0 as? ExpandedChain } }

/// Multiply-adds of one training step (forward + two backward products, convs and linears);
/// expanded chains (also those inside residual blocks) cost what their training mode costs.
func stepMultiplyAdds(_ model: Model, mode: String, batch: Int) -> Double {
    var total = 3 * Double(batch) * Double(model.network.multiplyAdds)
    for chain in chains(model) {
        let cost = chain.trainingCost(batch: batch)
        total -= 3 * Double(batch) * Double(chain.multiplyAdds)
        switch mode {
        case "naive": total += Double(cost.naive)
        case "online": total += Double(cost.online)
        default: total += Double(min(cost.naive, cost.online))
        }
    }
    return total
}

func makeTrainer(_ model: Model, mode: String, settings: Settings) throws -> Trainer {
    // A small learning rate keeps random-data steps finite for any number of repetitions.
    let options = try TrainerOptions(learningRate: 0.001, momentum: 0.9, weightDecay: 5e-4, threads: settings.threads,
                                     chainMode: try chainMode(mode))
    return try Trainer(student: model, teacher: nil, options: options)
}

/// The chain mode named like its raw value (naive, online, auto).
func chainMode(_ name: String) throws -> ExpandedChain.TrainingMode {
    guard let mode = ExpandedChain.TrainingMode(rawValue: name) else { throw ReparoError.invalidArgument("unknown chain mode \(name)") }
    return mode
}

func stepBench(pruned: Model, label modelLabel: String, settings: Settings) throws -> (markdown: String, json: [[String: Any]]) {
    let batch = settings.batch
    let shape = pruned.inputShape
    let images = try FloatBuffer(count: batch * shape.count)
    fillRandom(images.pointer, count: images.count, seed: 7)
    let labelPointer = UnsafeMutablePointer<Int32>.allocate(capacity: batch)
    defer { labelPointer.deallocate() }
    for i in 0..<batch { labelPointer[i] = Int32(i % pruned.classes) }
    let variants = [("compact (pruned)", "auto"), ("expanded naive", "naive"),
                    ("expanded online", "online"), ("expanded auto", "auto")]
    // Every variant is built and warmed up first (its engine memory measured then), then the
    // steps run in interleaved rounds: "vs compact" is the median of per-round ratios.
    var models: [Model] = [], trainers: [Trainer] = [], engineMiB: [Double] = []
    for (label, mode) in variants {
        let engineBase = FloatBuffer.allocated
        let model = label.hasPrefix("compact") ? try pruned.clone() : try expanded(pruned)
        let trainer = try makeTrainer(model, mode: mode, settings: settings)
        for _ in 0..<2 { try trainer.step(images: images.pointer, labels: labelPointer, batch: batch) }
        // Engine buffers this model and its trainer hold (weights, gradients, momentum,
        // activations, workspaces), measured after warm-up.
        engineMiB.append(Double(FloatBuffer.allocated - engineBase) / Double(1 << 20))
        models.append(model)
        trainers.append(trainer)
    }
    let measured = try measureInterleaved(warmup: 0, rounds: settings.repetitions, trainers.map { trainer in
        { try trainer.step(images: images.pointer, labels: labelPointer, batch: batch) }
    })
    var rows: [[String]] = []
    var records: [[String: Any]] = []
    for (index, (label, mode)) in variants.enumerated() {
        let (sample, times) = measured[index]
        let model = models[index]
        let ratio = pairedRatio(times, measured[0].times)
        let work = stepMultiplyAdds(model, mode: label.hasPrefix("compact") ? "compact" : mode, batch: batch)
        let chainModes = chains(model).map { $0.trainingCost(batch: batch) }
            .map { $0.online <= $0.naive ? "online" : "naive" }
        let resolved = label == "expanded auto" ? " (\(chainModes.filter { $0 == "online" }.count)/\(chainModes.count) chains online)" : ""
        rows.append([label + resolved, format(sample.milliseconds, 1), format(sample.minimum * 1e3, 1),
                     format(ratio, 2) + "×", format(work / 1e9, 2),
                     format(2 * work / sample.median / 1e9, 0), format(engineMiB[index], 0),
                     "\(sample.allocations) (\(format(Double(sample.allocatedBytes) / 1024, 1)) KiB)",
                     "\(sample.repetitions)"])
        records.append(["model": modelLabel, "variant": label, "chain_mode": label.hasPrefix("compact") ? "none" : mode,
                        "gmac_per_step": work / 1e9, "achieved_gflops": 2 * work / sample.median / 1e9,
                        "engine_mib": engineMiB[index], "vs_compact": ratio, "times_ms": times.map { $0 * 1e3 }]
                       .merging(sample.json) { a, _ in a })
    }
    let header = ["\(modelLabel), batch \(batch)", "median ms", "min ms", "vs compact", "GMAC/step", "GFLOP/s", "engine MiB",
                  "allocs/step", "reps"]
    return ("### training step (SGD momentum, CE, forward+backward+update)\n\n" + table(header, rows)
            + "\nvs compact: median over rounds of this step's time / the compact step's in the same round (the four steps run interleaved, round after round).\n"
            + "engine MiB: buffers the model and its trainer hold; allocs/step: most heap allocations (whole process) of one timed step after warm-up.\n", records)
}

// MARK: layers

/// The layer benchmarks' input: `batch` random images (fixed seed).
func randomInput(_ model: Model, batch: Int) throws -> FloatBuffer {
    let input = try FloatBuffer(count: batch * model.inputShape.count)
    fillRandom(input.pointer, count: input.count, seed: 11)
    return input
}

/// Median forward and backward seconds of each top-level layer in a training-mode pass
/// (chains in `mode`), the layers' own caches, a random output gradient.
/// Per-layer forward and backward medians of `model` (batch `settings.batch`), each layer timed
/// alone in turn; `betweenRounds` runs after each round (warm-up rounds included) untimed.
/// `roundTotals`: the sum over layers of each timed round.
func layerTimes(model: Model, input: FloatBuffer, mode: String, settings: Settings,
                betweenRounds: () throws -> Void = {}) throws
    -> (layers: [(forward: Double, backward: Double)], roundTotals: [Double]) {
    let batch = settings.batch
    let layers = model.network.layers
    let options = WorkspaceOptions(chainMode: ExpandedChain.TrainingMode(rawValue: mode) ?? .automatic)
    let caches = try layers.map { try $0.makeCache(batch: batch, training: true, options: options) }
    let outputs = try layers.map { try FloatBuffer(count: batch * $0.outputShape.count) }
    let gradients = try layers.map { try FloatBuffer(count: batch * $0.outputShape.count) }
    var forwardTimes = [[Double]](repeating: [], count: layers.count)
    var backwardTimes = [[Double]](repeating: [], count: layers.count)
    var roundTotals: [Double] = []
    for repetition in 0..<(settings.repetitions + 2) {
        var total = 0.0
        var x = UnsafePointer(input.pointer)
        for (index, layer) in layers.enumerated() {
            let start = now()
            layer.forward(x, outputs[index].pointer, cache: caches[index], training: true)
            let elapsed = now() - start
            total += elapsed
            if repetition >= 2 { forwardTimes[index].append(elapsed) }
            x = UnsafePointer(outputs[index].pointer)
        }
        fillRandom(gradients[layers.count - 1].pointer, count: gradients[layers.count - 1].count, seed: 12)
        for index in stride(from: layers.count - 1, through: 0, by: -1) {
            let x = index == 0 ? UnsafePointer(input.pointer) : UnsafePointer(outputs[index - 1].pointer)
            let dx = index == 0 ? nil : gradients[index - 1].pointer
            let start = now()
            layers[index].backward(x, outputs[index].pointer, gradients[index].pointer, dx, cache: caches[index])
            let elapsed = now() - start
            total += elapsed
            if repetition >= 2 { backwardTimes[index].append(elapsed) }
        }
        if repetition >= 2 { roundTotals.append(total) }
        try betweenRounds()
    }
    return (zip(forwardTimes, backwardTimes).map { (median($0), median($1)) }, roundTotals)
}

/// Per-layer forward and backward times of a training step, grouped by layer type, and the
/// rest of the step (loss, finiteness check, SGD update): per round, a full step minus the sum
/// of that round's layer times, median over rounds.
func layerProfile(model: Model, label: String, mode: String, settings: Settings) throws -> (markdown: String, json: [String: Any]) {
    let batch = settings.batch
    let layers = model.network.layers
    let input = try randomInput(model, batch: batch)
    // The whole step through the Trainer, once after each round of layer timings, for the
    // remainder (loss, checks, update): the median over rounds of step − Σ layers, so the
    // machine's drift between rounds cancels out.
    let trainer = try makeTrainer(try model.clone(), mode: mode, settings: settings)
    let labels = (0..<batch).map { Int32($0 % model.classes) }
    var stepTimes: [Double] = []
    let (times, roundTotals) = try labels.withUnsafeBufferPointer { pointer in
        guard let base = pointer.baseAddress else { fail("no labels") }
        return try layerTimes(model: model, input: input, mode: mode, settings: settings) {
            let start = now()
            try trainer.step(images: input.pointer, labels: base, batch: batch)
            stepTimes.append(now() - start)
        }
    }
    stepTimes.removeFirst(stepTimes.count - roundTotals.count)   // the warm-up rounds'
    let step = median(stepTimes)
    let other = median(zip(stepTimes, roundTotals).map { $0 - $1 })
    var byType: [(type: String, forward: Double, backward: Double)] = []
    var perLayer: [[String: Any]] = []
    for (index, layer) in layers.enumerated() {
        let type = String(describing: Swift.type(of: layer))
        let (f, b) = times[index]
        perLayer.append(["name": layer.name, "type": type, "forward_ms": f * 1e3, "backward_ms": b * 1e3])
        if let position = byType.firstIndex(where: { $0.type == type }) {
            byType[position].forward += f
            byType[position].backward += b
        } else {
            byType.append((type, f, b))
        }
    }
    var rows = byType.map { entry in
        [entry.type, format(entry.forward * 1e3, 1), format(entry.backward * 1e3, 1),
         format((entry.forward + entry.backward) * 1e3, 1),
         format(100 * (entry.forward + entry.backward) / step, 0) + "%"]
    }
    rows.append(["rest: step − Σ layers (loss, finiteness check, SGD update; < 0 when the layers timed alone, each with its own buffers, ran slower than inside the step)", "", "", format(other * 1e3, 1),
                 format(100 * other / step, 0) + "%"])
    rows.append(["**Trainer.step**", "", "", format(step * 1e3, 1), "100%"])
    let markdown = "#### \(label)\n\n" + table(["layer type", "forward ms", "backward ms", "total ms", "share of step"], rows) + "\n"
    let json: [String: Any] = [
        "model": label, "chain_mode": mode, "step_ms": step * 1e3, "other_ms": other * 1e3,
        "by_type": byType.map { ["type": $0.type, "forward_ms": $0.forward * 1e3, "backward_ms": $0.backward * 1e3] },
        "layers": perLayer,
    ]
    return (markdown, json)
}

// MARK: chains

/// The automatic chain mode checked by measurement: for each chain of the expanded VGG-16
/// (rate 4), the multiply-adds of a training step's products in each mode (the model `auto`
/// decides by, `ExpandedChain.trainingCost`) against the measured forward + backward time of
/// that layer in each mode. The SGD update is the same in both modes and not included.
func chainChoice(pruned: Model, settings: Settings) throws -> (markdown: String, json: [[String: Any]]) {
    let batch = settings.batch
    let naiveModel = try expanded(pruned), onlineModel = try expanded(pruned)
    let input = try randomInput(pruned, batch: batch)
    let naiveTimes = try layerTimes(model: naiveModel, input: input, mode: "naive", settings: settings).layers
    let onlineTimes = try layerTimes(model: onlineModel, input: input, mode: "online", settings: settings).layers
    var rows: [[String]] = []
    var records: [[String: Any]] = []
    var total = (auto: 0.0, best: 0.0, online: 0.0, naive: 0.0)
    var agreed = 0, count = 0
    for (index, layer) in onlineModel.network.layers.enumerated() {
        guard let chain = layer as? ExpandedChain else { continue }
        let cost = chain.trainingCost(batch: batch)
        let naive = naiveTimes[index].forward + naiveTimes[index].backward
        let online = onlineTimes[index].forward + onlineTimes[index].backward
        let predicted = cost.online <= cost.naive ? "online" : "naive"
        let faster = online <= naive ? "online" : "naive"
        total.auto += predicted == "online" ? online : naive
        total.best += min(online, naive)
        total.online += online
        total.naive += naive
        count += 1
        if predicted == faster { agreed += 1 }
        let input = chain.inputShape
        rows.append([chain.name, "\(input.channels)→\(chain.outputShape.channels) @\(input.height)×\(input.width)",
                     format(Double(cost.naive) / 1e9, 3), format(Double(cost.online) / 1e9, 3),
                     format(naive * 1e3, 2), format(online * 1e3, 2), predicted,
                     predicted == faster ? "✓" : "✗ (\(format(100 * (max(online, naive) / min(online, naive) - 1), 0)) % slower)"])
        records.append(["chain": chain.name, "naive_gmac": Double(cost.naive) / 1e9, "online_gmac": Double(cost.online) / 1e9,
                        "naive_ms": naive * 1e3, "online_ms": online * 1e3, "auto": predicted, "faster": faster])
    }
    let header = ["chain", "Cin→Cout @plane", "naive GMAC", "online GMAC", "naive ms", "online ms", "auto picks", "measured faster"]
    let summary = "Sum over the \(count) chains (forward + backward, update excluded): auto's choices \(format(total.auto * 1e3, 1)) ms, " +
        "the measured faster mode of each \(format(total.best * 1e3, 1)) ms, all online \(format(total.online * 1e3, 1)) ms, " +
        "all naive \(format(total.naive * 1e3, 1)) ms; the multiply-add model picked the faster mode for \(agreed) of \(count)."
    return ("### expanded chains of VGG-16 pruned 0.7 (rate 4, batch \(batch)): the auto mode's multiply-add model against measurement\n\n"
            + table(header, rows) + "\n\n" + summary + "\n", records)
}

// MARK: infer

func inferBench(dense: Model, pruned: Model, settings: Settings) throws -> (markdown: String, json: [[String: Any]]) {
    let fold = try CollapseOptions(foldBatchNorm: true)
    // The method's deliverable: pruned → expanded → fine-tuned → collapsed with BN folded.
    let prunedFolded = try Collapse.collapse(try expanded(pruned), options: fold)
    let denseFolded = try Collapse.collapse(dense, options: fold)
    var rows: [[String]] = []
    var records: [[String: Any]] = []
    for (label, model) in [("pruned 0.7, collapsed + BN folded", prunedFolded), ("pruned 0.7, BN not folded", pruned),
                           ("dense, BN folded", denseFolded)]
        where settings.variant.map({ label.contains($0) }) ?? true {
        for batch in [1, settings.batch] {
            let images = try FloatBuffer(count: batch * model.inputShape.count)
            fillRandom(images.pointer, count: images.count, seed: 21)
            let logits = try FloatBuffer(count: batch * model.classes)
            let engineBase = FloatBuffer.allocated
            model.threads = settings.threads
            let sample = try measure(warmup: 3, repetitions: max(settings.repetitions, 10)) {
                try model.infer(images.pointer, batch: batch, logits: logits.pointer)
            }
            // The inference workspace the model keeps for this batch size (activations, im2col tiles).
            let workspaceMiB = Double(FloatBuffer.allocated - engineBase) / Double(1 << 20)
            let macs = Double(model.multiplyAdds) * Double(batch)
            rows.append([label, "\(batch)", format(sample.milliseconds, 3), format(sample.median * 1e3 / Double(batch), 3),
                         format(Double(batch) / sample.median, 0), format(2 * macs / sample.median / 1e9, 0),
                         format(workspaceMiB, 1),
                         "\(sample.allocations) (\(format(Double(sample.allocatedBytes) / 1024, 1)) KiB)", "\(sample.repetitions)"])
            records.append(["model": label, "batch": batch, "mflops_per_image": 2 * Double(model.multiplyAdds) / 1e6,
                            "workspace_mib": workspaceMiB]
                           .merging(sample.json) { a, _ in a })
        }
    }
    let header = ["model", "batch", "median ms", "ms/image", "images/s", "GFLOP/s", "workspace MiB", "allocs/call", "reps"]
    return ("### inference (eval forward, Model.infer)\n\n" + table(header, rows)
            + "\nworkspace MiB: buffers the model keeps for that batch size; allocs/call: most heap allocations (whole process) of one timed call after warm-up.\n", records)
}

// MARK: infer-layers

/// Where an inference pass's time goes: each top-level layer's eval-mode forward timed alone
/// (no conv + ReLU fusion, so a ReLU's time is what the fused pass saves), medians.
func inferenceLayerProfile(model: Model, label: String, batch: Int, settings: Settings) throws -> (markdown: String, json: [String: Any]) {
    let layers = model.network.layers
    let caches = try layers.map { try $0.makeCache(batch: batch, training: false) }
    let outputs = try layers.map { try FloatBuffer(count: batch * $0.outputShape.count) }
    let input = try randomInput(model, batch: batch)
    let repetitions = max(settings.repetitions, batch == 1 ? 200 : 10)
    var times = [[Double]](repeating: [], count: layers.count)
    for repetition in 0..<(repetitions + 3) {
        var x = UnsafePointer(input.pointer)
        for (index, layer) in layers.enumerated() {
            let start = now()
            layer.forward(x, outputs[index].pointer, cache: caches[index], training: false)
            if repetition >= 3 { times[index].append(now() - start) }
            x = UnsafePointer(outputs[index].pointer)
        }
    }
    let medians = times.map(median)
    let total = medians.reduce(0, +)
    var rows: [[String]] = []
    var records: [[String: Any]] = []
    for (index, layer) in layers.enumerated() {
        let type = String(describing: Swift.type(of: layer))
        let macs = Double(layer.multiplyAdds) * Double(batch)
        let shape = layer.outputShape
        rows.append([layer.name, type, "\(shape.channels)×\(shape.height)×\(shape.width)", format(medians[index] * 1e6, 1),
                     format(100 * medians[index] / total, 1) + "%",
                     layer is Conv2D || layer is Linear ? format(2 * macs / medians[index] / 1e9, 0) : ""])
        records.append(["name": layer.name, "type": type, "us": medians[index] * 1e6])
    }
    rows.append(["**sum**", "", "", format(total * 1e6, 1), "100%", ""])
    return ("#### \(label), batch \(batch)\n\n" + table(["layer", "type", "output", "µs", "share", "GFLOP/s"], rows) + "\n",
            ["model": label, "batch": batch, "layers": records, "sum_us": total * 1e6])
}

// MARK: main

let settings = Settings.parse(Array(CommandLine.arguments.dropFirst()))
// Through the engine: it fixes a generic OpenBLAS core first (BLASCore), so the raw sgemm
// baselines below run on the core the engine uses.
let coreName = ComputeEnvironment.blasCore
let config = openblas_get_config().map { String(cString: $0) } ?? "?"
let environment = ProcessInfo.processInfo.environment
print("# reparo-bench \(settings.command): threads \(settings.threads), batch \(settings.batch), ≥\(settings.repetitions) timed repetitions after warm-up, medians")
print("OpenBLAS: \(config) (core \(coreName)); OPENBLAS_CORETYPE=\(environment["OPENBLAS_CORETYPE"] ?? "unset"), OPENBLAS_L2_SIZE=\(environment["OPENBLAS_L2_SIZE"] ?? "unset")\n")

var results: [String: Any] = [
    "threads": settings.threads, "batch": settings.batch, "min_repetitions": settings.repetitions,
    "openblas": ["config": config, "core": coreName,
                 "OPENBLAS_CORETYPE": (environment["OPENBLAS_CORETYPE"].map { $0 as Any } ?? NSNull()),
                 "OPENBLAS_L2_SIZE": (environment["OPENBLAS_L2_SIZE"].map { $0 as Any } ?? NSNull())] as [String: Any],
]
do {
    let (dense, pruned) = try makeModels()
    let all = settings.command == "all"
    /// Runs a section and reports how much of the CPU other processes took meanwhile.
    func section(_ key: String, _ body: () throws -> Any) rethrows {
        let load = ForeignLoad()
        // Layers called directly run on the bench's threads; models and trainers on their own
        // (set to the same count).
        let value = try ExecutionContext(threads: settings.threads).run { try body() }
        let share = load.share
        results[key] = ["results": value, "foreign_cpu_share": share]
        print("Peak resident memory of the process so far: \(format(peakResidentMiB(), 0)) MiB.")
        print("Other processes used \(format(100 * share, 1))% of the CPU during this section\(share > 0.05 ? " — NOISY, rerun on a quiet machine" : "").\n")
    }
    if all || settings.command == "conv-efficiency" {
        try section("conv_efficiency") {
            var records: [[String: Any]] = []
            for (label, model) in [("dense", dense), ("pruned 0.7", pruned)] {
                let result = try convEfficiency(model: model, label: label, settings: settings)
                print(result.markdown)
                records += result.json
            }
            print("eff = sgemm time / engine time for the same GEMM (M×N×K, same transposes). fwd includes im2col and the [Cout,N,P]→[N,Cout,P] copy; dW = backward without dx (dy permutation + dW GEMM); dX = full backward − dW (dcols GEMM + col2im).")
            return records
        }
    }
    if all || settings.command == "step" {
        try section("step") {
            // VGG-16 at 0.7 (wide late layers at 4×4 and 2×2: online collapse is costly there) and
            // ResNet-56 at 0.5.
            let resnet = try makePrunedResNet()
            var records: [[String: Any]] = []
            for (label, model) in [("VGG-16 pruned 0.7", pruned), ("ResNet-56 pruned 0.5", resnet)] {
                let result = try stepBench(pruned: model, label: label, settings: settings)
                print(result.markdown)
                records += result.json
            }
            return records
        }
    }
    if all || settings.command == "layers" {
        try section("layers") {
            var records: [[String: Any]] = []
            print("### where a training step's time goes (batch \(settings.batch), per-layer medians)\n")
            if let spec = settings.spec {
                let dense = try Model(specJSON: spec, seed: 1)
                let pruned = try Pruning.prune(dense, options: PruneOptions(ratio: 0.7))
                for (label, model) in [("spec dense", dense), ("spec pruned 0.7, expanded auto", try expanded(pruned))]
                    where settings.variant.map({ label.contains($0) }) ?? true {
                    let result = try layerProfile(model: try model.clone(), label: label, mode: "auto", settings: settings)
                    print(result.markdown)
                    for layer in result.json["layers"] as? [[String: Any]] ?? [] {
                        print(String(format: "  %-12@ %-14@ forward %7.2f ms  backward %7.2f ms", layer["name"] as? String ?? "",
                                     layer["type"] as? String ?? "", layer["forward_ms"] as? Double ?? 0,
                                     layer["backward_ms"] as? Double ?? 0))
                    }
                    records.append(result.json)
                }
                return records
            }
            for (label, model, mode) in [("VGG-16 pruned 0.7, compact", pruned, "auto"),
                                         ("VGG-16 pruned 0.7, expanded naive", try expanded(pruned), "naive"),
                                         ("VGG-16 pruned 0.7, expanded online", try expanded(pruned), "online"),
                                         ("VGG-16 dense", dense, "auto"),
                                         ("ResNet-56 pruned 0.5, compact", try makePrunedResNet(), "auto"),
                                         ("ResNet-56 pruned 0.5, expanded online", try expanded(try makePrunedResNet()), "online")]
                where settings.variant.map({ label.contains($0) }) ?? !label.contains("naive") {
                let result = try layerProfile(model: try model.clone(), label: label, mode: mode, settings: settings)
                print(result.markdown)
                records.append(result.json)
            }
            return records
        }
    }
    if all || settings.command == "chains" {
        try section("chains") {
            let result = try chainChoice(pruned: pruned, settings: settings)
            print(result.markdown)
            return result.json
        }
    }
    if settings.command == "infer-layers" {
        try section("infer_layers") {
            let fold = try CollapseOptions(foldBatchNorm: true)
            var records: [[String: Any]] = []
            print("### where an inference pass's time goes (eval forward per layer, unfused, medians)\n")
            for (label, model) in [("pruned 0.7, collapsed + BN folded", try Collapse.collapse(try expanded(pruned), options: fold)),
                                   ("dense, BN folded", try Collapse.collapse(dense, options: fold))]
                where settings.variant.map({ label.contains($0) }) ?? true {
                for batch in Array(Set([1, settings.batch])).sorted() {
                    let result = try inferenceLayerProfile(model: model, label: label, batch: batch, settings: settings)
                    print(result.markdown)
                    records.append(result.json)
                }
            }
            return records
        }
    }
    if all || settings.command == "infer" {
        try section("infer") {
            let result = try inferBench(dense: dense, pruned: pruned, settings: settings)
            print(result.markdown)
            return result.json
        }
    }
} catch {
    fail("\(error)")
}
if let path = settings.jsonPath {
    do {
        let data = try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path))
    } catch {
        fail("could not write \(path): \(error)")
    }
}
