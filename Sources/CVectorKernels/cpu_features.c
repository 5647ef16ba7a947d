// cpuid and xgetbv, read directly (see cpu_features.h): __builtin_cpu_supports has no bit for
// AVX512-BF16 in every compiler, and a feature counts only when the OS enables its registers.
#include "cpu_features.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/// XCR0: which register states the OS saves on a context switch.
static unsigned long long xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));  // xgetbv
    return ((unsigned long long)edx << 32) | eax;
}

int cpu_features_flags(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    int flags = (ecx & bit_SSE3) ? CPU_FEATURE_SSE3 : 0;
    int osxsave = (ecx & bit_OSXSAVE) != 0;
    unsigned long long states = osxsave ? xcr0() : 0;
    int ymm = (states & 0x6) == 0x6;             // SSE and AVX state
    int zmm = ymm && (states & 0xe0) == 0xe0;    // opmask, upper ZMM0-15, ZMM16-31
    if (!ymm || !(ecx & bit_AVX)) return flags;
    flags |= CPU_FEATURE_AVX;
    if (ecx & bit_FMA) flags |= CPU_FEATURE_FMA;
    if (__get_cpuid_max(0, 0) < 7) return flags;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    unsigned int leaf7 = eax;
    if (ebx & bit_AVX2) flags |= CPU_FEATURE_AVX2;
    if (!zmm || !(ebx & bit_AVX512F)) return flags;
    flags |= CPU_FEATURE_AVX512F;
    if (ebx & bit_AVX512BW) flags |= CPU_FEATURE_AVX512BW;
    if (ebx & bit_AVX512DQ) flags |= CPU_FEATURE_AVX512DQ;
    if (ebx & bit_AVX512VL) flags |= CPU_FEATURE_AVX512VL;
    if (leaf7 >= 1) {
        __cpuid_count(7, 1, eax, ebx, ecx, edx);
        if (eax & (1u << 5)) flags |= CPU_FEATURE_AVX512_BF16;
    }
    return flags;
}

/// Copies `count` bytes of cpuid registers into `text`, without leading blanks.
static int copy_text(const char *source, int count, char *text, int capacity) {
    while (count > 0 && *source == ' ') { source++; count--; }
    int length = (int)strnlen(source, (size_t)count);
    if (text == NULL || capacity <= 0) return length;
    if (length > capacity - 1) length = capacity - 1;
    memcpy(text, source, (size_t)length);
    text[length] = '\0';
    return length;
}

int cpu_features_vendor(char *text, int capacity) {
    unsigned int eax, words[3];
    if (!__get_cpuid(0, &eax, &words[0], &words[2], &words[1])) return copy_text("", 0, text, capacity);
    char vendor[12];
    memcpy(vendor, words, sizeof vendor);  // EBX, EDX, ECX
    return copy_text(vendor, 12, text, capacity);
}

int cpu_features_brand(char *text, int capacity) {
    unsigned int registers[12];
    if (__get_cpuid_max(0x80000000, 0) < 0x80000004) return copy_text("", 0, text, capacity);
    for (unsigned int leaf = 0; leaf < 3; leaf++) {
        __get_cpuid(0x80000002 + leaf, &registers[4 * leaf], &registers[4 * leaf + 1], &registers[4 * leaf + 2],
                    &registers[4 * leaf + 3]);
    }
    char brand[48];
    memcpy(brand, registers, sizeof brand);
    return copy_text(brand, 48, text, capacity);
}

#else

int cpu_features_flags(void) { return 0; }

int cpu_features_vendor(char *text, int capacity) {
    if (text != NULL && capacity > 0) text[0] = '\0';
    return 0;
}

int cpu_features_brand(char *text, int capacity) { return cpu_features_vendor(text, capacity); }

#endif
