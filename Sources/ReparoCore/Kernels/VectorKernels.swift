import CVectorKernels

/// The AVX-512 kernels of the CVectorKernels target (narrow GEMMs, stride-1 im2col/col2im).
enum VectorKernels {
    /// Whether this process uses them: the CPU supports AVX-512F and they were compiled with
    /// optimization (a debug build keeps OpenBLAS and the Swift loops; see vector_kernels.h).
    static let available = vector_kernels_available() != 0
}
