import CVectorKernels
import Foundation

/// A 3×3, stride-1 convolution (zero padding 0 or 1) computed by Winograd's minimal filtering
/// F(2×2, 3×3) (Lavin & Gray 2016, arXiv:1509.09308, §4): each 2×2 output tile is
///   Y = Aᵀ · [ Σ_ci U[co, ci] ⊙ V[ci] ] · A,   U = G·g·Gᵀ (4×4 per kernel g),  V = Bᵀ·d·B (4×4 per input tile d)
/// so, with the 16 entries ξ of the 4×4 tiles as separate planes, the channel sums are 16 GEMMs
///   M[ξ] [Cout, T] = U[ξ] [Cout, Cin] · V[ξ] [Cin, T]     (T tiles)
/// of 16·Cout·Cin multiply-adds per tile against 36·Cout·Cin for the direct conv: 2.25× fewer.
/// The transforms are the C functions of winograd.h; the GEMMs go through `BLAS.serialGemm`.
///
/// Tiles are processed in blocks of `blockTiles` (V and M of a block ≈ 1 MiB, so they are still
/// in cache between the transforms and the GEMMs). Blocks are fixed by the shape and the machine
/// (`Parallel.reductionGroups`), never by the thread setting: every output element is computed
/// by the same calls whatever the threads, so results do not depend on them. Several blocks run
/// as contiguous groups, one per worker; a single block splits its transforms over channels and
/// its 16 GEMMs over ξ instead.
///
/// Error: F(2×2, 3×3)'s transforms only add and halve, so its rounding error is that of the
/// direct conv within 2× (WinogradConvolutionTests: 1.5–3.8e-7 of max |y| on VGG-16's layers,
/// the direct conv 1.5–2.9e-7). F(4×4, 3×3) (its G and B hold 1/6, 1/24, 4, 5) measured
/// 0.8–7.1e-6, 10–25× the direct conv's, and is not implemented.
///
/// Inference only (`Conv2D` forward with `training: false`), chosen per layer shape and batch
/// size by `KernelCalibration` unless `REPARO_WINOGRAD` forces it (`mode`).
struct WinogradConvolution: Equatable {
    let inputChannels: Int
    let outputChannels: Int
    let height: Int
    let width: Int
    let padding: Int
    let outputHeight: Int
    let outputWidth: Int

    var tilesHigh: Int { (outputHeight + 1) / 2 }
    var tilesWide: Int { (outputWidth + 1) / 2 }
    var tilesPerImage: Int { tilesHigh * tilesWide }
    /// Floats of the transformed weight U [16, Cout, Cin].
    var transformedWeightCount: Int { 16 * outputChannels * inputChannels }

    init(conv: Conv2D) {
        inputChannels = conv.inputShape.channels
        outputChannels = conv.outputShape.channels
        height = conv.inputShape.height
        width = conv.inputShape.width
        padding = conv.padding
        outputHeight = conv.outputShape.height
        outputWidth = conv.outputShape.width
    }

    /// Whether F(2×2, 3×3) computes `conv`: 3×3 kernel, stride 1, padding 0 or 1, a non-empty output.
    static func applies(to conv: Conv2D) -> Bool {
        conv.kernelSize == 3 && conv.stride == 1 && (conv.padding == 0 || conv.padding == 1)
            && conv.outputShape.height >= 1 && conv.outputShape.width >= 1
    }

    /// `REPARO_WINOGRAD`: `on` uses Winograd for every conv it applies to (in inference, from
    /// `minimumTiles` tiles per batch), `off` for none, `auto` (the default; anything else too)
    /// lets the calibration choose.
    enum Mode: Equatable {
        case on, off, automatic
        init(_ text: String?) {
            switch text?.lowercased() {
            case "on", "1": self = .on
            case "off", "0": self = .off
            default: self = .automatic
            }
        }
    }

    static let mode = Mode(ProcessInfo.processInfo.environment["REPARO_WINOGRAD"])

    /// Fewest tiles of a batch Winograd takes, even when forced by `REPARO_WINOGRAD=on`: its
    /// GEMMs have one column per tile, and below 32 OpenBLAS 0.3.21 allocates on some shapes
    /// (every n = 1 product; 512 × 4 × 256) while the direct paths use the A·Bᵀ kernel there.
    static let minimumTiles = 32

    /// Layers of fewer multiply-adds per forward (≈ 0.1 ms) keep the direct conv without a
    /// calibration run: what Winograd could save there is less than the dispatches it adds.
    static let minimumCalibratedWork = 1 << 22

    /// Whether an inference workspace of `batch` images computes `conv` by Winograd: forced by
    /// `mode`, else the faster path measured on this shape and batch (`KernelCalibration`, once
    /// per machine). Tests force a workspace directly (`Conv2D.makeCache(…, winograd:)`).
    static func chosen(for conv: Conv2D, batch: Int) -> Bool {
        guard applies(to: conv) else { return false }
        guard batch &* WinogradConvolution(conv: conv).tilesPerImage >= minimumTiles else { return false }
        switch mode {
        case .on: return true
        case .off: return false
        case .automatic: break
        }
        guard batch &* conv.multiplyAdds >= minimumCalibratedWork else { return false }
        let plan = WinogradConvolution(conv: conv)
        let key = "winograd-f2 \(plan.inputChannels)x\(plan.height)x\(plan.width)->\(plan.outputChannels) p\(plan.padding) n\(batch)"
        let preferred = plan.pays(batch: batch) ? 1 : 0
        return KernelCalibration.choice(key, candidates: 2, defaultChoice: preferred) {
            (try? measure(conv, batch: batch, preferred: preferred)) ?? preferred
        } == 1
    }

    /// The default where nothing is measured (`REPARO_CALIBRATION=off`) and the choice a
    /// measurement must beat by 10 %: Winograd from 8 input channels when the batch has at
    /// least 64 tiles and at least Cin·Cout/1024 (each pass reads U, 16·Cin·Cout floats, so
    /// few tiles do not repay it). Measured on VGG-16 (CIFAR), Zen 4, 2 threads, release, one
    /// process, interleaved (WinogradConvolutionTests' opt-in timing): at batch 64 0.57–0.75× the
    /// direct conv's time from 32×32 down to 4×4 planes, 1.3× at 2×2 (against the small-plane
    /// path), 2.4–3× on the 3-channel first layer; at batch 1 0.66–0.76× on 32×32 and 16×16,
    /// 0.42–0.64× on 128→256 8×8, 0.9–1.1× on 256→256 8×8, 1.2–3× on 4×4 and 2×2.
    func pays(batch: Int) -> Bool {
        inputChannels >= 8 && batch * tilesPerImage >= max(64, inputChannels * outputChannels / 1024)
    }

    /// The faster path on `batch` images (at most `measuredImages`): 1 = Winograd, 0 = the conv's
    /// own path, `preferred` unless the other is 10 % faster (`KernelCalibration.fastest`: best of 5
    /// interleaved rounds after a warm-up).
    private static func measure(_ conv: Conv2D, batch: Int, preferred: Int) throws -> Int {
        let images = min(batch, measuredImages)
        let x = try FloatBuffer(count: images * conv.inputShape.count)
        let y = try FloatBuffer(count: images * conv.outputShape.count)
        var generator = SeededGenerator(seed: 19)
        for i in 0..<x.count { x.pointer[i] = generator.nextUniform() }
        // The direct path the whole batch would take (the small-plane one starts at 64 images).
        let direct = try conv.makeCache(batch: images, training: false, path: conv.path(batch: batch))
        let winograd = try Workspace(plan: WinogradConvolution(conv: conv), batch: images)
        let bias = conv.bias.map { UnsafePointer($0.value.pointer) }
        let weight = UnsafePointer(conv.weight.value.pointer)
        return KernelCalibration.fastest(2, preferred: preferred) { candidate in
            if candidate == 1 {
                winograd.forward(x.pointer, y.pointer, weight: weight, generation: conv.weight.generation, bias: bias,
                                 rectify: false)
            } else {
                conv.forward(x.pointer, y.pointer, cache: direct, weight: weight)
            }
        }
    }

    /// Images a calibration times (of the workspace's batch): the per-image cost of both paths
    /// is about flat beyond it, and the first large-batch inference stays short.
    static let measuredImages = 16

    /// Tiles per block: V [16, Cin, T] and M [16, Cout, T] take ≈ 1 MiB together (in cache
    /// between the transforms and the GEMMs), at least 32 tiles, and at least 4·Cin·Cout/(Cin + Cout):
    /// every block's GEMMs read (and OpenBLAS packs) all of U, 16·Cin·Cout floats, which must
    /// stay small beside the block's 16·(Cin + Cout)·T (on the 512-channel layers U is 16 MiB:
    /// with 32-tile blocks its packing took more time than the products). At most the whole
    /// batch; for several blocks a multiple of the groups, so the groups get equal work.
    func blockTiles(batch: Int) -> Int {
        let tiles = batch * tilesPerImage
        let channels = inputChannels + outputChannels
        let target = max(32, (1 << 18) / (16 * channels), 4 * inputChannels * outputChannels / channels)
        var blocks = max(1, (tiles + target - 1) / target)
        let groups = min(blocks, Parallel.reductionGroups)
        blocks = (blocks + groups - 1) / groups * groups
        return (tiles + blocks - 1) / blocks
    }

    /// An inference workspace: the transformed weight and what it was made from, and per group
    /// a block's V, M and the input transform's row scratch.
    final class Workspace {
        let plan: WinogradConvolution
        let batch: Int
        let blockTiles: Int
        let blocks: Int
        let groups: Int
        let transformedWeight: FloatBuffer   // U [16, Cout, Cin]
        /// What U was computed from: the weight's address and its `Parameter.generation`
        /// (nil: never computed, or from a weight that is not a parameter's value).
        private(set) var source: (weight: UnsafePointer<Float>, generation: Int)?
        let inputs: [FloatBuffer]            // per group: V [16, Cin, T]
        let products: [FloatBuffer]          // per group: M [16, Cout, T]
        let rows: [FloatBuffer]              // per group, or per piece of a single block: input rows
        init(plan: WinogradConvolution, batch: Int) throws {
            self.plan = plan
            self.batch = batch
            let tiles = batch * plan.tilesPerImage
            let blockTiles = plan.blockTiles(batch: batch)
            let blocks = (tiles + blockTiles - 1) / blockTiles
            let groups = min(blocks, Parallel.reductionGroups)
            (self.blockTiles, self.blocks, self.groups) = (blockTiles, blocks, groups)
            transformedWeight = try FloatBuffer(count: plan.transformedWeightCount)
            inputs = try (0..<groups).map { _ in try FloatBuffer(count: 16 * plan.inputChannels * blockTiles) }
            products = try (0..<groups).map { _ in try FloatBuffer(count: 16 * plan.outputChannels * blockTiles) }
            let scratch = winograd_f2_row_scratch(plan.tilesWide)
            rows = try (0..<Parallel.reductionGroups).map { _ in try FloatBuffer(count: scratch) }
        }

        /// U from `w` unless it already holds it: same address and, for a parameter's value
        /// (`generation` given), the same generation; a weight without one is transformed every time.
        func prepare(weight w: UnsafePointer<Float>, generation: Int?) {
            if let generation, let source, source.weight == w, source.generation == generation { return }
            let pieces = Parallel.reductionGroups, plan = self.plan
            Parallel.forEach(pieces, minimumWork: 9 * plan.inputChannels * plan.outputChannels / pieces,
                             context: (plan: plan, w: w, u: transformedWeight.pointer, pieces: pieces)) { c, piece in
                let cout = c.plan.outputChannels
                winograd_f2_weights(c.w, cout, c.plan.inputChannels, cout * piece / c.pieces, cout * (piece + 1) / c.pieces, c.u)
            }
            source = generation.map { (w, $0) }
        }

        /// y [N, Cout, Ho, Wo] = conv(x) + bias (then max(·, 0) when `rectify`), x [N, Cin, H, W].
        func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, weight w: UnsafePointer<Float>,
                     generation: Int?, bias: UnsafePointer<Float>?, rectify: Bool) {
            prepare(weight: w, generation: generation)
            let context = (workspace: self, x: x, y: y, bias: bias, rectify: rectify)
            if groups == 1 {
                for block in 0..<blocks { run(block: block, group: 0, context: context, parallel: true) }
                return
            }
            Parallel.forEach(groups, minimumWork: 1 << 20, context: context) { c, group in
                let workspace = c.workspace
                for block in (workspace.blocks * group / workspace.groups)..<(workspace.blocks * (group + 1) / workspace.groups) {
                    workspace.run(block: block, group: group, context: c, parallel: false)
                }
            }
        }

        private func run(block: Int, group: Int,
                         context c: (workspace: Workspace, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                                     bias: UnsafePointer<Float>?, rectify: Bool),
                         parallel: Bool) {
            let plan = self.plan
            let first = block * blockTiles
            let count = min(blockTiles, batch * plan.tilesPerImage - first)
            let v = inputs[group].pointer, m = products[group].pointer
            // Parallel: pieces over channels (each with its own row scratch), then the 16 GEMMs.
            let pieces = parallel ? Parallel.reductionGroups : 1
            let step = (plan: plan, x: c.x, y: c.y, v: v, m: m, u: UnsafePointer(transformedWeight.pointer),
                        first: first, count: count, pieces: pieces, bias: c.bias, rectify: c.rectify,
                        rows: rows, group: group)
            let work = 16 * count * (plan.inputChannels + plan.outputChannels) / max(pieces, 1)
            Parallel.forEach(pieces, minimumWork: work, parallel: parallel, context: step) { s, piece in
                let cin = s.plan.inputChannels
                winograd_f2_input(s.x, cin, s.plan.height, s.plan.width, s.plan.padding, s.plan.tilesHigh, s.plan.tilesWide,
                                  s.first, s.count, cin * piece / s.pieces, cin * (piece + 1) / s.pieces, s.v,
                                  s.rows[s.pieces == 1 ? s.group : piece].pointer)
            }
            Parallel.forEach(16, minimumWork: plan.inputChannels * plan.outputChannels * count / 16, parallel: parallel,
                             context: step) { s, xi in
                let cin = s.plan.inputChannels, cout = s.plan.outputChannels
                if s.count == 1 {
                    // One tile: OpenBLAS 0.3.21 mallocs on every n = 1 sgemm; Cout dot products instead.
                    let u = s.u + xi * cout * cin, v = s.v + xi * cin, m = s.m + xi * cout
                    for co in 0..<cout { m[co] = Vector.dot(u + co * cin, v, count: cin) }
                    return
                }
                BLAS.serialGemm(transposeA: false, transposeB: false, m: cout, n: s.count, k: cin,
                                a: s.u + xi * cout * cin, lda: cin, b: s.v + xi * cin * s.count, ldb: s.count,
                                beta: 0, c: s.m + xi * cout * s.count, ldc: s.count)
            }
            Parallel.forEach(pieces, minimumWork: work, parallel: parallel, context: step) { s, piece in
                let cout = s.plan.outputChannels
                winograd_f2_output(s.m, cout, s.plan.outputHeight, s.plan.outputWidth, s.plan.tilesHigh, s.plan.tilesWide,
                                   s.first, s.count, cout * piece / s.pieces, cout * (piece + 1) / s.pieces, s.bias,
                                   s.rectify ? 1 : 0, s.y)
            }
        }
    }
}
