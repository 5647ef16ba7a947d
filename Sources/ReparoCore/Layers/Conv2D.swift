/// 2-D convolution, weight W `[Cout, Cin, kH, kW]`, optional bias `[Cout]`, square stride and
/// zero padding. Computed tile by tile as im2col + GEMM (K = Cin·kH·kW, P = Hout·Wout, T = the
/// tile's images × P):
///   forward   Yᵀ[Cout, T] = W[Cout, K] · cols[K, T]
///   backward  dW += dYᵀ · colsᵀ,  db += Σ dYᵀ,  dcols = Wᵀ · dYᵀ,  dx = col2im(dcols)
/// See `ConvolutionTiling` for how a batch is cut. Backward recomputes a tile's columns from x
/// rather than keeping the whole batch's (K × N·P floats: hundreds of MiB on early layers).
/// Stride-1 same convs on large planes skip the column matrix altogether when the AVX-512
/// kernels are present: see `PaddedWidthConvolution`; convs on planes of a few positions (2×2)
/// run as one dense map per batch: see `SmallPlaneConvolution`.
public final class Conv2D: Layer {
    public let name: String
    public let inputShape: FeatureShape
    public let outputShape: FeatureShape
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let weight: Parameter
    public let bias: Parameter?

    public convenience init(name: String, input: FeatureShape, outputChannels: Int, kernelSize: Int, stride: Int,
                            padding: Int, bias: Bool) throws {
        let biasParameter = bias ? try Parameter(name: TensorName.bias(name), shape: [outputChannels], kind: .bias) : nil
        try self.init(name: name, input: input, outputChannels: outputChannels, kernelSize: kernelSize, stride: stride,
                      padding: padding, sharedBias: biasParameter)
    }

    /// A conv whose bias is an existing parameter (the online-collapsed chain uses the bias of
    /// its last factor, so gradients land there).
    init(name: String, input: FeatureShape, outputChannels: Int, kernelSize: Int, stride: Int,
         padding: Int, sharedBias: Parameter?) throws {
        self.name = name
        self.inputShape = input
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.outputShape = Window(kernel: kernelSize, stride: stride, padding: padding).output(input, channels: outputChannels)
        self.weight = try Parameter(name: TensorName.weight(name),
                                    shape: [outputChannels, input.channels, kernelSize, kernelSize], kind: .weight)
        self.bias = sharedBias
    }

    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }
    public var kind: LayerSpec.Kind? { .conv }
    public var patchSize: Int { inputShape.channels * kernelSize * kernelSize }
    public var multiplyAdds: Int { outputShape.count * patchSize }
    /// Multiply-adds one forward product of a batch actually computes: `multiplyAdds` per image
    /// on the im2col paths; on the small-plane path the map T's Cout·P × Cin·Q per image (no
    /// products against padding: 4 of 9 taps on a 2×2 plane with a 3×3 kernel).
    func computedMultiplyAdds(batch: Int) -> Int {
        guard path(batch: batch) == .smallPlane else { return batch * multiplyAdds }
        return batch * outputShape.count * inputShape.count
    }
    /// A 1×1, stride-1, unpadded conv: one image's input [Cin, H·W] already is its column matrix.
    var isPointwise: Bool { kernelSize == 1 && stride == 1 && padding == 0 }

    func geometry(batch: Int) -> ConvolutionGeometry {
        ConvolutionGeometry(batch: batch, inputChannels: inputShape.channels, inputHeight: inputShape.height,
                            inputWidth: inputShape.width, kernelHeight: kernelSize, kernelWidth: kernelSize,
                            stride: stride, padding: padding, outputHeight: outputShape.height,
                            outputWidth: outputShape.width)
    }

    func tiling(batch: Int, columnLimit: Int? = nil) -> ConvolutionTiling {
        ConvolutionTiling(batch: batch, positions: outputShape.spatial, patch: patchSize, columnLimit: columnLimit)
    }

    /// The three ways a workspace computes this conv.
    enum Path: Equatable {
        /// im2col + GEMM, tile by tile (`ColumnsWorkspace`).
        case columns
        /// Stride-1 same convs on wide planes, no column matrix (`PaddedWidthConvolution`).
        case paddedWidth
        /// Planes of a few positions: one dense map per batch (`SmallPlaneConvolution`).
        case smallPlane
    }

    /// The path a workspace of `batch` images takes: small plane, else padded width, each where
    /// it applies and pays (by batch size, by plane width). Tests force either on or off
    /// (`smallPlane`, `paddedWidth`; still only where it applies).
    func path(batch: Int, smallPlane: Bool? = nil, paddedWidth: Bool? = nil) -> Path {
        if SmallPlaneConvolution.applies(to: self, batch: batch, forced: smallPlane) { return .smallPlane }
        if PaddedWidthConvolution.applies(to: self, forced: paddedWidth) { return .paddedWidth }
        return .columns
    }

    /// Workspaces of the padded-width path (`PaddedWidthConvolution`), per group except the
    /// offset tables and the rotated weight, which all groups read.
    final class PaddedWidthWorkspace {
        let tiling: ConvolutionTiling
        let partials: [FloatBuffer]         // groups 1..<G: their dW [Cout·K] then db [Cout]
        let plan: PaddedWidthConvolution
        let forwardOffsets: UnsafeMutableBufferPointer<Int>   // taps (ci, u, v) in padded input planes
        let backwardOffsets: UnsafeMutableBufferPointer<Int>  // taps (co, u, v) in padded gradient planes
        let padded: [FloatBuffer]           // x̃ of a tile's images [n, Cin] planes, borders zero
        let paddedGradients: [FloatBuffer]  // dỹ of a tile's images [n, Cout] planes, borders zero
        let staging: [FloatBuffer]          // [max(Cout, Cin), columns]: a padded-width result
        let rotatedWeight: FloatBuffer      // W̃ [Cin, Cout·k·k]
        init(conv: Conv2D, tiling: ConvolutionTiling, training: Bool) throws {
            let plan = PaddedWidthConvolution(inputChannels: conv.inputShape.channels,
                                              outputChannels: conv.outputShape.channels,
                                              height: conv.outputShape.height, width: conv.outputShape.width,
                                              kernelSize: conv.kernelSize)
            let groups = tiling.groups, imagesPerTile = tiling.imagesPerTile
            self.tiling = tiling
            partials = try conv.partials(tiling: tiling, training: training)
            self.plan = plan
            // Allocated here, read by the kernels through their base pointers (tiny: K entries).
            forwardOffsets = .allocate(capacity: plan.patchSize)
            _ = forwardOffsets.initialize(from: plan.tapOffsets(channels: plan.inputChannels))
            backwardOffsets = .allocate(capacity: training ? plan.transposedPatchSize : 0)
            if training { _ = backwardOffsets.initialize(from: plan.tapOffsets(channels: plan.outputChannels)) }
            let stagingRows = training ? max(plan.outputChannels, plan.inputChannels) : plan.outputChannels
            // Inference pads one image at a time; training pads whole tiles (the weight gradient
            // sums over a tile's images in one call).
            let images = training ? imagesPerTile : 1
            padded = try (0..<groups).map { _ in
                try FloatBuffer(count: plan.paddedCount(channels: plan.inputChannels, images: images))
            }
            paddedGradients = try (0..<groups).map { _ in
                try FloatBuffer(count: training ? plan.paddedCount(channels: plan.outputChannels, images: images) : 0)
            }
            staging = try (0..<groups).map { _ in try FloatBuffer(count: stagingRows * plan.columns) }
            rotatedWeight = try FloatBuffer(count: training ? plan.inputChannels * plan.transposedPatchSize : 0)
        }
        deinit {
            forwardOffsets.deallocate()
            backwardOffsets.deallocate()
        }
    }

    /// The map T and its gradient of the small-plane path (`SmallPlaneConvolution`).
    final class SmallPlaneWorkspace {
        let plan: SmallPlaneConvolution
        let matrix: FloatBuffer          // T [Cout·P, Cin·Q]; entries no tap links stay zero
        let matrixGradient: FloatBuffer  // dT, same shape (training)
        init(plan: SmallPlaneConvolution, training: Bool) throws {
            self.plan = plan
            matrix = try FloatBuffer(count: plan.rows * plan.columns)
            matrixGradient = try FloatBuffer(count: training ? plan.rows * plan.columns : 0)
        }
    }

    /// The im2col path's per-group workspaces, sized for one tile: a group's tiles run one
    /// after another on one worker.
    final class ColumnsWorkspace {
        let tiling: ConvolutionTiling
        let partials: [FloatBuffer]         // groups 1..<G: their dW [Cout·K] then db [Cout]
        let columns: [FloatBuffer]          // [K, T]: the tile's im2col
        let staging: [FloatBuffer]          // [Cout, T]: output (forward) or output gradient (backward)
        let columnGradients: [FloatBuffer]  // [K, T]: Wᵀ · dYᵀ before col2im
        /// One-image tiles forward as Yᵀ = colsᵀ · Wᵀ (`forwardTransposed`), with per-group
        /// colsᵀ [P, K] and Yᵀ [P, Cout].
        let forwardsTransposed: Bool
        let transposedColumns: [FloatBuffer]
        let transposedOutput: [FloatBuffer]
        init(conv: Conv2D, tiling: ConvolutionTiling, training: Bool) throws {
            let groups = 0..<tiling.groups
            self.tiling = tiling
            partials = try conv.partials(tiling: tiling, training: training)
            let transposed = tiling.imagesPerTile == 1 && conv.forwardsTransposed
            forwardsTransposed = transposed
            transposedColumns = try groups.map { _ in
                try FloatBuffer(count: transposed ? conv.outputShape.spatial * conv.patchSize : 0)
            }
            transposedOutput = try groups.map { _ in try FloatBuffer(count: transposed ? conv.outputShape.count : 0) }
            let tileColumns = tiling.imagesPerTile * conv.outputShape.spatial
            // One-image tiles write straight into y / read straight from dy; a pointwise conv's
            // one-image columns are x itself.
            let needsColumns = !(conv.isPointwise && tiling.imagesPerTile == 1)
            let columnCount = needsColumns ? conv.patchSize * tileColumns : 0
            let stagingCount = tiling.imagesPerTile > 1 ? conv.outputShape.channels * tileColumns : 0
            columns = try groups.map { _ in try FloatBuffer(count: columnCount) }
            staging = try groups.map { _ in try FloatBuffer(count: stagingCount) }
            columnGradients = try groups.map { _ in try FloatBuffer(count: training ? columnCount : 0) }
        }
    }

    /// Training only: the partial weight and bias gradients of groups 1..<G (group 0 adds
    /// straight into the parameters' gradients).
    func partials(tiling: ConvolutionTiling, training: Bool) throws -> [FloatBuffer] {
        let count = weight.count + outputShape.channels
        return try (1..<max(tiling.groups, 1)).map { _ in try FloatBuffer(count: training ? count : 0) }
    }

    /// A conv's workspace: the one of the path it takes (`Path`).
    final class Cache: LayerCache {
        enum Workspace {
            case columns(ColumnsWorkspace)
            case paddedWidth(PaddedWidthWorkspace)
            case smallPlane(SmallPlaneWorkspace)
        }
        let workspace: Workspace
        /// Inference only: set when this workspace computes the conv by Winograd instead
        /// (`WinogradConvolution`), which then needs nothing of `workspace`.
        var winograd: WinogradConvolution.Workspace?

        init(conv: Conv2D, batch: Int, training: Bool, path: Path, tileColumnLimit: Int?) throws {
            switch path {
            case .smallPlane:
                workspace = .smallPlane(try SmallPlaneWorkspace(plan: SmallPlaneConvolution(conv: conv), training: training))
            case .paddedWidth:
                let tiling = conv.tiling(batch: batch, columnLimit: tileColumnLimit)
                workspace = .paddedWidth(try PaddedWidthWorkspace(conv: conv, tiling: tiling, training: training))
            case .columns:
                let tiling = conv.tiling(batch: batch, columnLimit: tileColumnLimit)
                workspace = .columns(try ColumnsWorkspace(conv: conv, tiling: tiling, training: training))
            }
            super.init(batch: batch, training: training)
        }

        var path: Path {
            switch workspace {
            case .columns: .columns
            case .paddedWidth: .paddedWidth
            case .smallPlane: .smallPlane
            }
        }
    }

    public func makeCache(batch: Int, training: Bool) throws -> LayerCache {
        try makeCache(batch: batch, training: training, path: path(batch: batch),
                      winograd: !training && WinogradConvolution.chosen(for: self, batch: batch))
    }

    /// The workspace of `path` (tests force one, see `path(batch:smallPlane:paddedWidth:)`,
    /// and may cap a tile's columns below `ConvolutionTiling.targetColumns` to run the
    /// multi-tile, multi-group code on small inputs).
    func makeCache(batch: Int, training: Bool, path: Path, tileColumnLimit: Int? = nil, winograd: Bool = false) throws -> Cache {
        let cache = try Cache(conv: self, batch: batch, training: training, path: path, tileColumnLimit: tileColumnLimit)
        if winograd && !training && WinogradConvolution.applies(to: self) {
            cache.winograd = try WinogradConvolution.Workspace(plan: WinogradConvolution(conv: self), batch: batch)
        }
        return cache
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: LayerCache, training: Bool) {
        forward(x, y, cache: unsafeDowncast(cache, to: Cache.self), weight: weight.value.pointer)
    }

    /// y = conv(x) with the given weight (the online-collapsed chain passes its collapsed kernel);
    /// `rectify`: y = max(conv(x), 0), applied to each piece of y right after it is written
    /// (still in cache), for an inference that skips the ReLU layer after this conv.
    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, cache: Cache, weight w: UnsafePointer<Float>,
                 rectify: Bool = false) {
        if let winograd = cache.winograd {
            let own = UnsafePointer(weight.value.pointer) == w
            winograd.forward(x, y, weight: w, generation: own ? weight.generation : nil,
                             bias: bias.map { UnsafePointer($0.value.pointer) }, rectify: rectify)
            return
        }
        switch cache.workspace {
        case .smallPlane(let workspace):
            workspace.plan.forward(x, y, batch: cache.batch, weight: w, bias: bias.map { UnsafePointer($0.value.pointer) },
                                   matrix: workspace.matrix.pointer)
            if rectify { Vector.relu(y, y, count: cache.batch * outputShape.count) }
        case .paddedWidth(let workspace):
            let biasPointer = bias.map { UnsafePointer($0.value.pointer) }
            let tiling = workspace.tiling
            tiling.runGroups(context: (conv: self, workspace: workspace, x: x, y: y, w: w, bias: biasPointer,
                                       rectify: rectify, inside: tiling.groups == 1)) { c, group in
                let tiling = c.workspace.tiling, input = c.conv.inputShape.count, output = c.conv.outputShape.count
                for tile in tiling.tiles(ofGroup: group) {
                    for n in tiling.images(ofTile: tile) {
                        let image = c.y + n * output
                        c.workspace.plan.forward(c.x + n * input, image, weight: c.w,
                                                 bias: c.bias, offsets: c.workspace.forwardOffsets.baseAddress,
                                                 padded: c.workspace.padded[group].pointer,
                                                 staging: c.workspace.staging[group].pointer, parallel: c.inside)
                        if c.rectify { Vector.relu(image, image, count: output) }
                    }
                }
            }
        case .columns(let workspace):
            let tiling = workspace.tiling
            tiling.runGroups(context: (conv: self, workspace: workspace, x: x, y: y, w: w, rectify: rectify,
                                       inside: tiling.groups == 1)) { c, group in
                let tiling = c.workspace.tiling, output = c.conv.outputShape.count
                for tile in tiling.tiles(ofGroup: group) {
                    let images = tiling.images(ofTile: tile)
                    c.conv.forwardTile(c.x, c.y, images: images, workspace: c.workspace, group: group, weight: c.w,
                                       parallel: c.inside)
                    if c.rectify {
                        let first = c.y + images.lowerBound * output
                        Vector.relu(first, first, count: images.count * output)
                    }
                }
            }
        }
    }

    /// The columns of `images`: x itself for a one-image pointwise conv, else im2col into the group's buffer.
    private func unfold(_ x: UnsafePointer<Float>, images: Range<Int>, workspace: ColumnsWorkspace, group: Int,
                        parallel: Bool) -> UnsafePointer<Float> {
        if isPointwise && images.count == 1 { return x + images.lowerBound * inputShape.count }
        let columns = workspace.columns[group].pointer
        im2col(x, geometry(batch: workspace.tiling.batch), images: images, columns, parallel: parallel)
        return UnsafePointer(columns)
    }

    private func forwardTile(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, images: Range<Int>,
                             workspace: ColumnsWorkspace, group: Int, weight w: UnsafePointer<Float>, parallel: Bool) {
        let cout = outputShape.channels
        let positions = outputShape.spatial
        let columns = images.count * positions
        let patches = unfold(x, images: images, workspace: workspace, group: group, parallel: parallel)
        let biasPointer = bias?.value.pointer
        if images.count == 1, workspace.forwardsTransposed {
            forwardTransposed(patches, y + images.lowerBound * outputShape.count, weight: w, bias: biasPointer,
                              columns: workspace.transposedColumns[group].pointer,
                              output: workspace.transposedOutput[group].pointer,
                              parallel: parallel)
            return
        }
        if images.count == 1 {
            // Yᵀ of one image is already its NCHW output.
            let out = y + images.lowerBound * outputShape.count
            BLAS.gemm(transposeA: false, transposeB: false, m: cout, n: positions, k: patchSize, a: w, lda: patchSize,
                      b: patches, ldb: positions, beta: 0, c: out, ldc: positions, parallel: parallel)
            if let biasPointer {
                for c in 0..<cout { Vector.copy(out + c * positions, adding: biasPointer[c], to: out + c * positions, count: positions) }
            }
            return
        }
        let staged = workspace.staging[group].pointer
        BLAS.gemm(transposeA: false, transposeB: false, m: cout, n: columns, k: patchSize, a: w, lda: patchSize,
                  b: patches, ldb: columns, beta: 0, c: staged, ldc: columns, parallel: parallel)
        // [Cout, n, P] → [n, Cout, P], adding the bias on the way.
        for (i, n) in images.enumerated() {
            for c in 0..<cout {
                let source = staged + c * columns + i * positions
                let target = y + (n * cout + c) * positions
                Vector.copy(source, adding: biasPointer?[c] ?? 0, to: target, count: positions)
            }
        }
    }

    /// Whether a one-image forward runs as Yᵀ = colsᵀ · Wᵀ: when W·cols would go to OpenBLAS
    /// with few positions (P < 32: a wide layer on a 4×4 or 2×2 plane at batch 1), OpenBLAS
    /// spends most of the call packing W, while the A·Bᵀ kernel streams W once per 4
    /// positions. Measured with W cold, single-threaded: 2.3× faster at 512 × 4 × 4608,
    /// 1.5× at 512 × 16 × 4608 (bench/README.md).
    var forwardsTransposed: Bool {
        let positions = outputShape.spatial, cout = outputShape.channels
        return positions < 32 && positions >= 1
            && BLAS.kernel(transposeA: false, transposeB: false, m: cout, n: positions, k: patchSize, alpha: 1, beta: 0) == .openBLAS
            && BLAS.kernel(transposeA: false, transposeB: true, m: positions, n: cout, k: patchSize, alpha: 1, beta: 0) == .narrowTransposedB
    }

    /// One image: Yᵀ [P, Cout] = colsᵀ · Wᵀ, then y [Cout, P] = (Yᵀ)ᵀ + b.
    private func forwardTransposed(_ patches: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                                   weight w: UnsafePointer<Float>, bias: UnsafeMutablePointer<Float>?,
                                   columns: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, parallel: Bool) {
        let cout = outputShape.channels, positions = outputShape.spatial
        Vector.transpose(patches, rows: patchSize, columns: positions, to: columns)
        BLAS.gemm(transposeA: false, transposeB: true, m: positions, n: cout, k: patchSize, a: columns, lda: patchSize,
                  b: w, ldb: patchSize, beta: 0, c: output, ldc: cout, parallel: parallel)
        Vector.transpose(output, rows: positions, columns: cout, to: out)
        if let bias {
            for c in 0..<cout { Vector.copy(out + c * positions, adding: bias[c], to: out + c * positions, count: positions) }
        }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, cache: LayerCache) {
        backward(x, dy, dx, cache: unsafeDowncast(cache, to: Cache.self), weight: weight.value.pointer,
                 weightGradient: weight.gradient?.pointer)
    }

    /// Backward given the weight used in forward; `weightGradient` receives += dW, the bias's
    /// gradient += db. Group 0 accumulates straight into the gradients, groups 1… into their
    /// partials, which are added afterwards in group order (a fixed order: deterministic).
    func backward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?,
                  cache: Cache, weight w: UnsafePointer<Float>, weightGradient: UnsafeMutablePointer<Float>?) {
        let biasGradient = bias?.gradient?.pointer
        let tiling: ConvolutionTiling, partials: [FloatBuffer]
        switch cache.workspace {
        case .smallPlane(let workspace):
            workspace.plan.backward(x, dy, dx, batch: cache.batch, matrix: workspace.matrix.pointer,
                                    matrixGradient: workspace.matrixGradient.pointer, weightGradient: weightGradient,
                                    biasGradient: biasGradient)
            return
        case .paddedWidth(let workspace):
            if dx != nil { workspace.plan.rotate(w, into: workspace.rotatedWeight.pointer) }
            (tiling, partials) = (workspace.tiling, workspace.partials)
        case .columns(let workspace):
            (tiling, partials) = (workspace.tiling, workspace.partials)
        }
        let weightCount = weight.count
        tiling.runGroups(context: (conv: self, workspace: cache.workspace, tiling: tiling, partials: partials, x: x, dy: dy,
                                   dx: dx, w: w, weightGradient: weightGradient, biasGradient: biasGradient,
                                   weightCount: weightCount, inside: tiling.groups == 1)) { c, group in
            let tiling = c.tiling
            var dW = c.weightGradient, db = c.biasGradient
            if group > 0 {
                let partial = c.partials[group - 1].pointer
                partial.update(repeating: 0, count: c.partials[group - 1].count)
                dW = c.weightGradient == nil ? nil : partial
                db = c.biasGradient == nil ? nil : partial + c.weightCount
            }
            for tile in tiling.tiles(ofGroup: group) {
                switch c.workspace {
                case .paddedWidth(let workspace):
                    c.conv.backwardPaddedWidth(c.x, c.dy, c.dx, images: tiling.images(ofTile: tile), workspace: workspace,
                                               group: group, weightGradient: dW, biasGradient: db, parallel: c.inside)
                case .columns(let workspace):
                    c.conv.backwardTile(c.x, c.dy, c.dx, images: tiling.images(ofTile: tile), workspace: workspace,
                                        group: group, weight: c.w, weightGradient: dW, biasGradient: db, parallel: c.inside)
                case .smallPlane:
                    break   // returned above
                }
            }
        }
        for partial in partials {
            if let weightGradient { Vector.add(partial.pointer, into: weightGradient, count: weightCount) }
            if let biasGradient { Vector.add(partial.pointer + weightCount, into: biasGradient, count: outputShape.channels) }
        }
    }

    /// Backward of a tile's images on the padded-width path (W̃ already rotated into the workspace).
    private func backwardPaddedWidth(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                     _ dx: UnsafeMutablePointer<Float>?, images: Range<Int>,
                                     workspace: PaddedWidthWorkspace, group: Int,
                                     weightGradient: UnsafeMutablePointer<Float>?,
                                     biasGradient: UnsafeMutablePointer<Float>?, parallel: Bool) {
        let plan = workspace.plan
        let first = images.lowerBound
        let paddedGradient = workspace.paddedGradients[group].pointer
        plan.padGradient(dy + first * outputShape.count, images: images.count, into: paddedGradient)
        if let weightGradient {
            plan.weightGradient(x + first * inputShape.count, images: images.count, paddedGradient: paddedGradient,
                                into: weightGradient, offsets: workspace.forwardOffsets.baseAddress,
                                padded: workspace.padded[group].pointer, parallel: parallel)
        }
        if let biasGradient {
            let positions = outputShape.spatial
            for n in images {
                for c in 0..<outputShape.channels {
                    biasGradient[c] += Vector.sum(dy + (n * outputShape.channels + c) * positions, count: positions)
                }
            }
        }
        guard let dx else { return }
        for (i, n) in images.enumerated() {
            plan.inputGradient(paddedGradient: paddedGradient, image: i, rotatedWeight: workspace.rotatedWeight.pointer,
                               into: dx + n * inputShape.count, offsets: workspace.backwardOffsets.baseAddress,
                               staging: workspace.staging[group].pointer, parallel: parallel)
        }
    }

    private func backwardTile(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?,
                              images: Range<Int>, workspace: ColumnsWorkspace, group: Int, weight w: UnsafePointer<Float>,
                              weightGradient: UnsafeMutablePointer<Float>?, biasGradient: UnsafeMutablePointer<Float>?,
                              parallel: Bool) {
        let cout = outputShape.channels
        let positions = outputShape.spatial
        let columns = images.count * positions
        // dYᵀ [Cout, T]: one image's dy already is; several are gathered [n, Cout, P] → [Cout, n, P].
        let gradientT: UnsafePointer<Float>
        if images.count == 1 {
            gradientT = dy + images.lowerBound * outputShape.count
        } else {
            let staged = workspace.staging[group].pointer
            for (i, n) in images.enumerated() {
                for c in 0..<cout {
                    (staged + c * columns + i * positions).update(from: dy + (n * cout + c) * positions, count: positions)
                }
            }
            gradientT = UnsafePointer(staged)
        }
        if let weightGradient {
            let patches = unfold(x, images: images, workspace: workspace, group: group, parallel: parallel)
            BLAS.gemm(transposeA: false, transposeB: true, m: cout, n: patchSize, k: columns,
                      a: gradientT, lda: columns, b: patches, ldb: columns,
                      beta: 1, c: weightGradient, ldc: patchSize, parallel: parallel)
        }
        if let biasGradient {
            for c in 0..<cout { biasGradient[c] += Vector.sum(gradientT + c * columns, count: columns) }
        }
        guard let dx else { return }
        if isPointwise && images.count == 1 {
            BLAS.gemm(transposeA: true, transposeB: false, m: patchSize, n: positions, k: cout,
                      a: w, lda: patchSize, b: gradientT, ldb: positions,
                      beta: 0, c: dx + images.lowerBound * inputShape.count, ldc: positions, parallel: parallel)
            return
        }
        let columnGradient = workspace.columnGradients[group].pointer
        BLAS.gemm(transposeA: true, transposeB: false, m: patchSize, n: columns, k: cout,
                  a: w, lda: patchSize, b: gradientT, ldb: columns, beta: 0, c: columnGradient, ldc: columns,
                  parallel: parallel)
        col2im(columnGradient, geometry(batch: workspace.tiling.batch), images: images, dx, parallel: parallel)
    }
}
