import Testing
@testable import ReparoCore

/// ReLU split over the engine's threads (`ReLU.pieces`): every element is still max(x, 0) and its
/// gradient dy·[y > 0], whatever the split; checked against a plain loop, bit for bit.
struct ReLUTests {
    @Test("ReLU forward and backward over 2 threads equal the elementwise definition (large and ragged counts)")
    func splitMatchesDefinition() throws {
        // 3 × 33 × 29 × 29 = 83,259 floats: parallel (≥ 65,536), not a multiple of 16 or of the pieces;
        // 1 × 2 × 5 × 5: below the split, on the calling thread.
        for (batch, shape) in [(3, FeatureShape(channels: 33, height: 29, width: 29)),
                               (1, FeatureShape(channels: 2, height: 5, width: 5))] {
            let layer = ReLU(name: "relu", input: shape)
            let count = batch * shape.count
            let x = try FloatBuffer(TestSupport.randomImages(count, seed: 5))
            let dy = try FloatBuffer(TestSupport.randomImages(count, seed: 6))
            let y = try FloatBuffer(count: count), dx = try FloatBuffer(count: count)
            let cache = try layer.makeCache(batch: batch, training: true)
            ExecutionContext(threads: 2).run {
                layer.forward(x.pointer, y.pointer, cache: cache, training: true)
                layer.backward(x.pointer, y.pointer, dy.pointer, dx.pointer, cache: cache)
            }
            let xs = x.array, ys = y.array, dys = dy.array, dxs = dx.array
            var wrong = 0
            for i in 0..<count {
                let expected = xs[i] > 0 ? xs[i] : 0
                let gradient = expected > 0 ? dys[i] : 0
                if ys[i].bitPattern != expected.bitPattern || dxs[i].bitPattern != gradient.bitPattern { wrong += 1 }
            }
            #expect(wrong == 0, "batch \(batch): \(wrong) of \(count) elements differ")
            #expect(ReLU.pieces(count) >= (count >= 65_536 ? 2 : 1))
        }
    }
}
