/* mml/cpu.h: the SIMD level chosen at run time (cpuid), overridable with
 * MML_SIMD=scalar|avx2|avx512 to test every kernel path on one machine. */
#ifndef MML_CPU_H
#define MML_CPU_H

typedef enum mml_simd { MML_SIMD_SCALAR = 0, MML_SIMD_AVX2, MML_SIMD_AVX512 } mml_simd;

mml_simd mml_cpu_simd(void);
const char *mml_simd_name(mml_simd s);
void mml_cpu_force_simd(mml_simd s); /* tests: clamps to what the CPU supports */
const char *mml_build_info(void);

#endif
