import CReparo
import Foundation
import Testing
@testable import Reparo
@testable import ReparoCore

/// The C boundary against include/reparo.h (imported as the Clang module CReparo): the version
/// macros, the status codes, the step-result layout, datasets made from caller buffers, and
/// the native fit's batch order.
@Suite("C boundary")
struct BoundaryTests {
    @Test("the version macros agree with each other, reparo_version() and the engine's version")
    func version() {
        let parts = "\(REPARO_VERSION_MAJOR).\(REPARO_VERSION_MINOR).\(REPARO_VERSION_PATCH)"
        #expect(REPARO_VERSION_STRING == parts)
        #expect(String(cString: reparo_version()) == REPARO_VERSION_STRING)
        #expect(ReparoCore.Reparo.version == REPARO_VERSION_STRING)
    }

    @Test("each error maps to the header's code, and each code to its name")
    func statusCodes() {
        let names: [(ReparoError, Int32, String)] = [
            (.invalidArgument(""), 1, "REPARO_ERR_INVALID_ARGUMENT"), (.io(""), 2, "REPARO_ERR_IO"),
            (.format(""), 3, "REPARO_ERR_FORMAT"), (.state(""), 4, "REPARO_ERR_STATE"),
            (.numeric(""), 5, "REPARO_ERR_NUMERIC"), (.outOfMemory(""), 6, "REPARO_ERR_OUT_OF_MEMORY"),
            (.internalError(""), 7, "REPARO_ERR_INTERNAL"),
        ]
        for (error, code, name) in names {
            #expect(error.status == code, "\(name)")
            #expect(String(cString: reparo_status_name(code)) == name)
        }
        #expect(String(cString: reparo_status_name(0)) == "REPARO_OK")
        #expect(String(cString: reparo_status_name(8)) == "REPARO_ERR_UNKNOWN")
        #expect(String(cString: reparo_status_name(-1)) == "REPARO_ERR_UNKNOWN")
        var model: OpaquePointer?
        #expect(reparo_model_load("/nonexistent/model.safetensors", &model) == 2)
        #expect(model == nil)
    }

    @Test("reparo_step_result has the layout the Python bindings declare: step at byte 24, 32 bytes")
    func stepResultLayout() {
        #expect(MemoryLayout<reparo_step_result>.offset(of: \.learning_rate) == 16)
        #expect(MemoryLayout<reparo_step_result>.offset(of: \.step) == 24)
        #expect(MemoryLayout<reparo_step_result>.size == 32)
    }

    static let spec = #"{"input":[2,4,4],"classes":3,"layers":[{"type":"conv","out":4,"kernel":3,"padding":1},{"type":"batchnorm"},{"type":"relu"},{"type":"flatten"},{"type":"linear","out":3}]}"#

    static func create(_ images: [Float], _ labels: [Int32], count: Int64, _ c: Int32 = 2, _ h: Int32 = 4,
                       _ w: Int32 = 4, classes: Int32 = 3, into dataset: inout OpaquePointer?) -> reparo_status {
        reparo_dataset_create(images, labels, count, c, h, w, classes, &dataset)
    }

    @Test("reparo_dataset_create rejects every bad argument and leaves the output untouched")
    func datasetCreateValidates() {
        let images = TestSupport.randomImages(3 * 32, seed: 1)
        let labels: [Int32] = [0, 2, 1]
        var nanImages = images
        nanImages[40] = .nan
        var infImages = images
        infImages[95] = -.infinity
        let cases: [(String, (inout OpaquePointer?) -> reparo_status, String)] = [
            ("NULL images", { reparo_dataset_create(nil, labels, 3, 2, 4, 4, 3, &$0) }, "images is NULL"),
            ("NULL labels", { reparo_dataset_create(images, nil, 3, 2, 4, 4, 3, &$0) }, "labels is NULL"),
            ("count 0", { Self.create(images, labels, count: 0, into: &$0) }, "count"),
            ("count -1", { Self.create(images, labels, count: -1, into: &$0) }, "count"),
            ("channels 0", { Self.create(images, labels, count: 3, 0, 4, 4, into: &$0) }, "channels"),
            ("width -2", { Self.create(images, labels, count: 3, 2, 4, -2, into: &$0) }, "width"),
            ("classes 0", { Self.create(images, labels, count: 3, classes: 0, into: &$0) }, "classes"),
            ("sample overflow", { Self.create(images, labels, count: 1, .max, .max, .max, into: &$0) }, "exceeds"),
            ("total beyond the limit", { Self.create(images, labels, count: 1 << 29, 1, 1, 4, into: &$0) }, "exceeds"),
            ("label = classes", { Self.create(images, [0, 3, 1], count: 3, into: &$0) }, "label 3 of sample 1"),
            ("label -1", { Self.create(images, [0, 1, -1], count: 3, into: &$0) }, "label -1 of sample 2"),
            ("NaN pixel", { Self.create(nanImages, labels, count: 3, into: &$0) }, "of sample 1 is not finite"),
            ("infinite pixel", { Self.create(infImages, labels, count: 3, into: &$0) }, "of sample 2 is not finite"),
        ]
        for (name, call, fragment) in cases {
            var dataset = OpaquePointer(bitPattern: 0x77)
            #expect(call(&dataset) == 1, "\(name)")
            #expect(dataset == OpaquePointer(bitPattern: 0x77), "\(name): output written")
            let message = String(cString: reparo_last_error())
            #expect(message.contains(fragment), "\(name): \(message)")
        }
        #expect(reparo_dataset_create(images, labels, 3, 2, 4, 4, 3, nil) == 1)
    }

    @Test("reparo_dataset_create copies the caller's arrays once; info and data give them back")
    func datasetCreateCopies() throws {
        var images = TestSupport.randomImages(3 * 32, seed: 2)
        var labels: [Int32] = [2, 0, 1]
        let expectedImages = images, expectedLabels = labels
        var dataset: OpaquePointer?
        #expect(Self.create(images, labels, count: 3, into: &dataset) == 0)
        defer { reparo_dataset_free(dataset) }
        images[0] = 99
        labels[0] = 1
        var count: Int64 = 0
        var c: Int32 = 0, h: Int32 = 0, w: Int32 = 0, classes: Int32 = 0
        #expect(reparo_dataset_info(dataset, &count, &c, &h, &w, &classes) == 0)
        #expect([count, Int64(c), Int64(h), Int64(w), Int64(classes)] == [3, 2, 4, 4, 3])
        var imagePointer: UnsafePointer<Float>?
        var labelPointer: UnsafePointer<Int32>?
        #expect(reparo_dataset_data(dataset, &imagePointer, &labelPointer) == 0)
        let imageCopy = try #require(imagePointer), labelCopy = try #require(labelPointer)
        #expect(Array(UnsafeBufferPointer(start: imageCopy, count: 96)) == expectedImages)
        #expect(Array(UnsafeBufferPointer(start: labelCopy, count: 3)) == expectedLabels)
    }

    @Test("epoch 1 of reparo_fit_order is a Fisher–Yates shuffle of 0..<n by SeededGenerator(seed)")
    func fitOrderFirstEpoch() {
        // The native fit's order before FitOrder existed, written out: the oracle that its
        // order (and so every seeded run) is unchanged.
        let count = 37
        var expected = Array(0..<count)
        var generator = SeededGenerator(seed: 11)
        for i in stride(from: count - 1, to: 0, by: -1) { expected.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
        var order = [Int64](repeating: -1, count: count)
        #expect(reparo_fit_order(Int64(count), 11, 1, &order, count) == 0)
        #expect(order.map(Int.init) == expected)
        var second = [Int64](repeating: -1, count: count)
        #expect(reparo_fit_order(Int64(count), 11, 2, &second, count) == 0)
        #expect(second.sorted() == (0..<Int64(count)).map { $0 } && second != order)
        #expect(reparo_fit_order(Int64(count), 11, 1, &order, count - 1) == 1)
        #expect(reparo_fit_order(0, 11, 1, &order, count) == 1)
        #expect(reparo_fit_order(Int64(count), 11, 0, &order, count) == 1)
        #expect(reparo_fit_order(Int64(count), 11, 1, nil, count) == 1)
    }

    @Test("reparo_trainer_fit on a created dataset = reparo_trainer_step in reparo_fit_order's order, bit for bit")
    func nativeFitMatchesStepLoop() throws {
        let count = 10, batch = 4, epochs = 3, sample = 32
        let images = TestSupport.randomImages(count * sample, seed: 3)
        let labels: [Int32] = (0..<count).map { Int32($0 % 3) }
        var dataset: OpaquePointer?
        #expect(Self.create(images, labels, count: Int64(count), into: &dataset) == 0)
        defer { reparo_dataset_free(dataset) }
        let options = #"{"lr":0.1,"augment":{"crop_padding":1,"flip":true},"seed":5}"#

        func trained(_ body: (OpaquePointer?) throws -> Void) throws -> [[Float]] {
            var model: OpaquePointer?
            #expect(reparo_model_create(Self.spec, 9, &model) == 0)
            defer { reparo_model_free(model) }
            var trainer: OpaquePointer?
            #expect(reparo_trainer_create(model, nil, options, &trainer) == 0)
            try body(trainer)
            reparo_trainer_free(trainer)
            return try modelHandle(model).model.snapshot().map { $0.values.array }
        }
        let native = try trained { trainer in
            #expect(reparo_trainer_fit(trainer, dataset, Int32(epochs), Int32(batch), 21, nil, nil) == 0)
        }
        var steps = 0
        let looped = try trained { trainer in
            var order = [Int64](repeating: 0, count: count)
            for epoch in 1...epochs {
                #expect(reparo_fit_order(Int64(count), 21, Int32(epoch), &order, count) == 0)
                for lower in stride(from: 0, to: count, by: batch) {
                    let indices = order[lower..<min(lower + batch, count)].map(Int.init)
                    let batchImages = indices.flatMap { images[($0 * sample)..<(($0 + 1) * sample)] }
                    let batchLabels = indices.map { labels[$0] }
                    var result = reparo_step_result()
                    #expect(reparo_trainer_step(trainer, batchImages, batchLabels, Int32(indices.count), &result) == 0)
                    steps += 1
                    #expect(result.step == Int64(steps))
                }
            }
        }
        #expect(steps == 9)
        #expect(native == looped)
    }
}
