/// Random translation with zero padding (random crop of the padded image) and horizontal
/// flip, the standard CIFAR augmentation, applied per image from a seeded generator.
enum Augmentation {
    static func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, shape: FeatureShape,
                      padding: Int, flip: Bool, generator: inout SeededGenerator) {
        let h = shape.height, w = shape.width, plane = shape.spatial
        for n in 0..<batch {
            let dy = padding > 0 ? generator.nextInt(below: 2 * padding + 1) - padding : 0
            let dx = padding > 0 ? generator.nextInt(below: 2 * padding + 1) - padding : 0
            let mirror = flip && generator.next() & 1 == 1
            for c in 0..<shape.channels {
                let source = x + (n * shape.channels + c) * plane
                let target = y + (n * shape.channels + c) * plane
                for i in 0..<h {
                    let si = i + dy
                    for j in 0..<w {
                        let column = mirror ? w - 1 - j : j
                        let sj = column + dx
                        target[i * w + j] = (si >= 0 && si < h && sj >= 0 && sj < w) ? source[si * w + sj] : 0
                    }
                }
            }
        }
    }
}
