// Whether the AVX-512 kernels may run, which CPU a thread is on and how many it may use
// (see vector_kernels.h).
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

int vector_kernels_usable_cpus(void) {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;  // > 1024 CPUs or no such call
    return CPU_COUNT(&set);
#else
    return 0;
#endif
}

int vector_kernels_thread_affinity(unsigned char *mask, int bytes, int set) {
#if defined(__linux__)
    if (mask == NULL || bytes <= 0 || bytes > (int)sizeof(cpu_set_t)) return -1;
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    if (set) {
        for (int cpu = 0; cpu < bytes * 8; cpu++) {
            if (mask[cpu / 8] & (1u << (cpu % 8))) CPU_SET(cpu, &cpus);
        }
        return sched_setaffinity(0, sizeof(cpus), &cpus) == 0 ? 0 : -1;
    }
    if (sched_getaffinity(0, sizeof(cpus), &cpus) != 0) return -1;
    for (int cpu = 0; cpu < bytes * 8; cpu++) {
        if (CPU_ISSET(cpu, &cpus)) mask[cpu / 8] |= (unsigned char)(1u << (cpu % 8));
        else mask[cpu / 8] &= (unsigned char)~(1u << (cpu % 8));
    }
    return 0;
#else
    (void)mask; (void)bytes; (void)set;
    return -1;
#endif
}
