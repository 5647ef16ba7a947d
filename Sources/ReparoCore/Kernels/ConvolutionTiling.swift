/// How a convolution cuts a batch: tiles of whole images whose im2col columns take about
/// 1 MiB, so a tile's columns are still in cache when its GEMM reads them. Tiles are dealt to
/// `groups` contiguous runs; each group runs on one worker with single-threaded GEMMs and owns
/// a workspace (and, in backward, a partial weight gradient). A batch that fits one tile runs
/// as one group whose kernels split over the threads instead (batch-1 inference, the small
/// late layers). Whole-image tiles keep col2im's writes of different tiles disjoint.
struct ConvolutionTiling: Equatable {
    let batch: Int
    let imagesPerTile: Int
    let tiles: Int
    let groups: Int

    /// Columns (K floats each) per tile: ≈ 1 MiB, at least 256 so the GEMMs stay efficient.
    static func targetColumns(patch: Int) -> Int { max(256, (1 << 18) / max(patch, 1)) }

    init(batch: Int, positions: Int, patch: Int, columnLimit: Int? = nil) {
        let target = max(1, min(ConvolutionTiling.targetColumns(patch: patch), columnLimit ?? .max))
        let total = batch * positions
        var tiles = max(1, min(batch, (total + target - 1) / target))
        let groups = min(tiles, Parallel.reductionGroups)
        if groups > 1 { tiles = min(batch, (tiles + groups - 1) / groups * groups) }   // even groups
        imagesPerTile = max(1, (batch + tiles - 1) / tiles)
        self.tiles = max(1, (batch + imagesPerTile - 1) / imagesPerTile)
        self.groups = min(groups, self.tiles)
        self.batch = batch
    }

    func images(ofTile tile: Int) -> Range<Int> {
        (tile * imagesPerTile)..<min(batch, (tile + 1) * imagesPerTile)
    }

    func tiles(ofGroup group: Int) -> Range<Int> {
        (tiles * group / groups)..<(tiles * (group + 1) / groups)
    }

    /// Runs `body(context, group)` for every group: in parallel when there are several.
    /// `body` captures nothing (see `Parallel.forEach`).
    @inline(__always)
    func runGroups<Context>(context: Context, _ body: @escaping (Context, Int) -> Void) {
        if groups == 1 {
            body(context, 0)
        } else {
            Parallel.forEach(groups, minimumWork: 1 << 20, context: context, body)
        }
    }
}
