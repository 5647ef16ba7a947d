#ifndef REPARO_CPU_FEATURES_H
#define REPARO_CPU_FEATURES_H

/// The CPU's vector instruction sets as cpuid reports them AND the OS saves their registers
/// (xgetbv): what decides which OpenBLAS core may run here (see ReparoCore's `BLASCore`).
/// Internal to the engine, not part of the C API. Every answer is 0 on non-x86 CPUs.

#define CPU_FEATURE_SSE3 0x001
#define CPU_FEATURE_AVX 0x002
#define CPU_FEATURE_AVX2 0x004
#define CPU_FEATURE_FMA 0x008
#define CPU_FEATURE_AVX512F 0x010
#define CPU_FEATURE_AVX512BW 0x020
#define CPU_FEATURE_AVX512DQ 0x040
#define CPU_FEATURE_AVX512VL 0x080
#define CPU_FEATURE_AVX512_BF16 0x100

/// The CPU_FEATURE_* bits this CPU and OS support.
int cpu_features_flags(void);

/// The cpuid vendor string ("GenuineIntel", "AuthenticAMD", ...) into `text` (NUL-terminated,
/// at most capacity - 1 bytes); "" where there is no cpuid. Returns its length.
int cpu_features_vendor(char *text, int capacity);

/// The cpuid brand string ("AMD EPYC 9R14 96-Core Processor", leading blanks removed) into
/// `text` like `cpu_features_vendor`; "" where the CPU has none.
int cpu_features_brand(char *text, int capacity);

#endif
