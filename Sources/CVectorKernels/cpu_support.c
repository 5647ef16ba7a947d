// Which kernel level runs (cpuid, REPARO_ISA), which CPU a thread is on and how many it may use
// (see vector_kernels.h).
#define _GNU_SOURCE
#include "vector_kernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

int vector_kernels_cpu_supported(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();  // idempotent; makes the answer valid even before constructors ran
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

int vector_kernels_cpu_level(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return vector_kernels_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return vector_kernels_avx2;
#endif
    return vector_kernels_portable;
}

static const char *const level_names[] = {"portable", "avx2", "avx512"};

/// The level REPARO_ISA asks for (-1: unset or unknown, with a warning when unknown).
static int requested_level(void) {
    const char *value = getenv("REPARO_ISA");
    if (value == NULL || value[0] == 0 || strcmp(value, "auto") == 0) return -1;
    for (int level = vector_kernels_portable; level <= vector_kernels_avx512; level++) {
        if (strcmp(value, level_names[level]) == 0) return level;
    }
    fprintf(stderr, "reparo: REPARO_ISA=%s is not avx512, avx2, portable or auto; using auto\n", value);
    return -1;
}

/// The level in use, -1 until `choose_level` ran (once, under pthread_once).
static int active_level = -1;
static pthread_once_t level_once = PTHREAD_ONCE_INIT;

static void choose_level(void) {
    const int supported = vector_kernels_cpu_level();
    const int requested = requested_level();
    int level = requested < 0 ? supported : requested;
    if (level > supported) {
        fprintf(stderr, "reparo: REPARO_ISA=%s is not supported by this CPU; using %s\n", level_names[level],
                level_names[supported]);
        level = supported;
    }
#if !defined(__OPTIMIZE__)
    level = vector_kernels_portable;  // unoptimized kernels are slower than OpenBLAS (see the header)
#endif
    __atomic_store_n(&active_level, level, __ATOMIC_RELEASE);
}

int vector_kernels_level(void) {
    const int level = __atomic_load_n(&active_level, __ATOMIC_ACQUIRE);
    if (level >= 0) return level;
    pthread_once(&level_once, choose_level);
    return __atomic_load_n(&active_level, __ATOMIC_ACQUIRE);
}

int vector_kernels_available(void) {
    return vector_kernels_level() != vector_kernels_portable;
}

void vector_kernels_cpu_name(char *name, int capacity) {
    if (name == NULL || capacity <= 0) return;
    name[0] = 0;
#if defined(__x86_64__)
    unsigned int words[12];
    unsigned int highest = 0, b, c, d;
    __cpuid(0x80000000u, highest, b, c, d);
    if (highest < 0x80000004u) return;
    for (unsigned int leaf = 0; leaf < 3; leaf++) {
        __cpuid(0x80000002u + leaf, words[4 * leaf], words[4 * leaf + 1], words[4 * leaf + 2], words[4 * leaf + 3]);
    }
    char brand[49];
    memcpy(brand, words, 48);
    brand[48] = 0;
    const char *start = brand;
    while (*start == ' ') start++;
    snprintf(name, (size_t)capacity, "%s", start);
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
