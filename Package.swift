// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Reparo",
    products: [
        // The C ABI (include/reparo.h). SwiftPM names the file after the product
        // (libreparo-capi.so) and `reparo` is the command-line tool's name, so
        // `scripts/build.sh` links it with the SONAME libreparo.so and publishes it as
        // .build-release/release/libreparo.so, the file C programs and Python use.
        .library(name: "reparo-capi", type: .dynamic, targets: ["Reparo"]),
        .library(name: "ReparoCore", targets: ["ReparoCore"]),
        .executable(name: "reparo", targets: ["reparo-cli"]),
        .executable(name: "reparo-bench", targets: ["reparo-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // OpenBLAS through its CBLAS header (Debian: libopenblas-dev).
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS",
                       providers: [.apt(["libopenblas-dev"])]),
        // zlib's inflate, for gzip'd IDX dataset files (Debian: zlib1g-dev).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // Narrow GEMMs, stride-1 im2col/col2im, pooling and the Winograd transforms in AVX-512,
        // AVX2+FMA and portable C; the level is chosen once at run time from cpuid (or REPARO_ISA)
        // and ReparoCore routes each call between them and OpenBLAS.
        .target(name: "CVectorKernels"),
        // include/reparo.h as a Clang module (Sources/CReparo/include links to it): the C ABI's
        // Swift code uses its types and codes, ReparoCore its version macros.
        .target(name: "CReparo"),
        .target(
            name: "ReparoCore",
            dependencies: ["COpenBLAS", "CZlib", "CVectorKernels", "CReparo"]
        ),
        // ONNX export: ReparoCore stays free of the protobuf dependency (fuzz/run.sh compiles
        // its sources alone); onnx.pb.swift is generated once by scripts/generate_onnx_proto.sh.
        .target(name: "ReparoONNX", dependencies: ["ReparoCore", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .target(name: "Reparo", dependencies: ["ReparoCore", "ReparoONNX", "CReparo"]),
        .executableTarget(
            name: "reparo-cli",
            dependencies: ["ReparoCore", "ReparoONNX", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Kernel micro-benchmarks (conv vs raw sgemm efficiency, step and inference timings).
        .executableTarget(name: "reparo-bench", dependencies: ["ReparoCore", "COpenBLAS", "MallocCounter"],
                          path: "bench/Sources/reparo-bench"),
        // Counts the bench process's heap allocations (allocation-free hot paths are checked with it).
        .target(name: "MallocCounter", path: "bench/Sources/MallocCounter"),
        .testTarget(name: "ReparoCoreTests", dependencies: ["ReparoCore", "ReparoONNX", "Reparo",
                                                          .product(name: "SwiftProtobuf", package: "swift-protobuf"), "CReparo", "CVectorKernels"]),
    ],
    swiftLanguageModes: [.v5]
)
