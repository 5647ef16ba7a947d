// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Reparo",
    products: [
        // libreparo.so: the C ABI (include/reparo.h). Build it with `scripts/build.sh`.
        .library(name: "reparo", type: .dynamic, targets: ["Reparo"]),
        .library(name: "ReparoCore", targets: ["ReparoCore"]),
        .executable(name: "reparo-cli", targets: ["reparo-cli"]),
        .executable(name: "reparo-bench", targets: ["reparo-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // OpenBLAS through its CBLAS header (Debian: libopenblas-dev).
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS",
                       providers: [.apt(["libopenblas-dev"])]),
        .target(
            name: "ReparoCore",
            dependencies: ["COpenBLAS"]
        ),
        .target(name: "Reparo", dependencies: ["ReparoCore"]),
        .executableTarget(
            name: "reparo-cli",
            dependencies: ["ReparoCore", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Kernel micro-benchmarks (conv vs raw sgemm efficiency, step and inference timings).
        .executableTarget(name: "reparo-bench", dependencies: ["ReparoCore", "COpenBLAS"], path: "bench/Sources/reparo-bench"),
        .testTarget(name: "ReparoCoreTests", dependencies: ["ReparoCore", "Reparo"]),
    ],
    swiftLanguageModes: [.v5]
)
