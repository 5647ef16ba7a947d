// Whether the AVX-512 kernels may run (see vector_kernels.h).
#include "vector_kernels.h"

int vector_kernels_cpu_supported(void) {
    __builtin_cpu_init();  // idempotent; makes the answer valid even before constructors ran
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
}

int vector_kernels_available(void) {
#if defined(__OPTIMIZE__)
    return vector_kernels_cpu_supported();
#else
    return 0;
#endif
}
