// Whether the AVX-512 kernels may run, and which CPU a thread is on (see vector_kernels.h).
#define _GNU_SOURCE
#include "vector_kernels.h"

#include <sched.h>

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

int vector_kernels_current_cpu(void) {
#if defined(__linux__)
    return sched_getcpu();
#else
    return -1;
#endif
}
