#include <stdlib.h>
#include <string.h>

#include "mml/cpu.h"

#ifndef MML_BUILD_INFO
#define MML_BUILD_INFO "unknown"
#endif

static int g_forced = -1;

static mml_simd detect(void)
{
#if defined(MML_HAVE_X86_SIMD)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
        return MML_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return MML_SIMD_AVX2;
#endif
    return MML_SIMD_SCALAR;
}

static mml_simd from_env(mml_simd hw)
{
    const char *e = getenv("MML_SIMD");
    if (!e) return hw;
    mml_simd want = hw;
    if (!strcmp(e, "scalar")) want = MML_SIMD_SCALAR;
    else if (!strcmp(e, "avx2")) want = MML_SIMD_AVX2;
    else if (!strcmp(e, "avx512")) want = MML_SIMD_AVX512;
    return want < hw ? want : hw;
}

mml_simd mml_cpu_simd(void)
{
    static int cached = -1;
    if (g_forced >= 0) return (mml_simd)g_forced;
    if (cached < 0) cached = (int)from_env(detect());
    return (mml_simd)cached;
}

void mml_cpu_force_simd(mml_simd s)
{
    mml_simd hw = detect();
    g_forced = (int)(s < hw ? s : hw);
}

const char *mml_simd_name(mml_simd s)
{
    switch (s) {
    case MML_SIMD_AVX512: return "avx512";
    case MML_SIMD_AVX2: return "avx2";
    default: return "scalar";
    }
}

const char *mml_build_info(void) { return MML_BUILD_INFO; }
