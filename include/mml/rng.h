/* mml/rng.h: explicit, seedable random state (never global).
 * xoshiro256** seeded through splitmix64; one generator per consumer. */
#ifndef MML_RNG_H
#define MML_RNG_H

#include <stdint.h>

typedef struct mml_rng { uint64_t s[4]; } mml_rng;

void mml_rng_seed(mml_rng *r, uint64_t seed);
uint64_t mml_rng_u64(mml_rng *r);
uint32_t mml_rng_below(mml_rng *r, uint32_t n);  /* uniform in [0, n), unbiased */
float mml_rng_uniform(mml_rng *r);               /* uniform in [0, 1) */
float mml_rng_normal(mml_rng *r);                /* standard normal */
void mml_rng_shuffle(mml_rng *r, int32_t *v, int64_t n);

#endif
