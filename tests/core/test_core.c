#include <string.h>

#include "mml/alloc.h"
#include "mml/params.h"
#include "mml/rng.h"
#include "mml/threads.h"
#include "test.h"

TEST(core_rng_deterministic)
{
    mml_rng a, b;
    mml_rng_seed(&a, 42);
    mml_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) CHECK(mml_rng_u64(&a) == mml_rng_u64(&b));
    double sum = 0, sq = 0;
    for (int i = 0; i < 20000; i++) {
        float x = mml_rng_normal(&a);
        sum += x;
        sq += x * x;
    }
    CHECK_NEAR(sum / 20000, 0.0, 0.03);
    CHECK_NEAR(sq / 20000, 1.0, 0.05);
    for (int i = 0; i < 1000; i++) CHECK(mml_rng_below(&a, 7) < 7);
}

TEST(core_arena_steady_state_no_malloc)
{
    mml_ctx *ctx = mml_ctx_create();
    uint64_t before = 0;
    for (int step = 0; step < 5; step++) {
        mml_ctx_reset(ctx);
        if (step == 3) before = mml_alloc_count();
        for (int k = 0; k < 50; k++)
            CHECK(mml_new(ctx, MML_F32, 2, (int64_t[]){ 64, 1000 + k }) != NULL);
    }
    CHECK_MSG(mml_alloc_count() == before, "steps after warm-up allocated %llu times",
              (unsigned long long)(mml_alloc_count() - before));
    mml_ctx_free(ctx);
}

TEST(core_arena_trim_releases_pages_without_allocating)
{
    mml_ctx *ctx = mml_ctx_create();
    const size_t bytes = (size_t)2 << 20;
    unsigned char *p = mml_arena_alloc(ctx, bytes);
    CHECK(p != NULL);
    if (!p) return;
    memset(p, 0xab, bytes);
    CHECK(tst_resident_bytes(p, bytes) == bytes);
    size_t cap = mml_arena_capacity(ctx);
    uint64_t before = mml_alloc_count();
    mml_ctx_trim(ctx);
    CHECK(mml_arena_used(ctx) == 0 && mml_arena_capacity(ctx) == cap);
    CHECK_MSG(tst_resident_bytes(p, bytes) == 0, "%zu bytes still resident after trim", tst_resident_bytes(p, bytes));
    /* The same chunk serves the next step: the pages come back, zeroed, without an allocation. */
    unsigned char *q = mml_arena_alloc(ctx, bytes);
    CHECK(q == p && q[0] == 0 && q[bytes - 1] == 0);
    CHECK(mml_alloc_count() == before);
    mml_ctx_free(ctx);
}

static void fill_range(void *arg, int64_t b, int64_t e, int thread)
{
    int *v = arg;
    for (int64_t i = b; i < e; i++) v[i] += (int)i + 1;
}

TEST(core_parallel_for_covers_range_once)
{
    static int v[10007];
    memset(v, 0, sizeof v);
    for (int rep = 0; rep < 50; rep++) mml_parallel_for(10007, 100, fill_range, v);
    int bad = 0;
    for (int i = 0; i < 10007; i++) bad += v[i] != 50 * (i + 1);
    CHECK(bad == 0);
}

TEST(core_params_store)
{
    mml_params *ps = mml_params_create();
    CHECK(mml_params_add(ps, "fc.weight", 2, (int64_t[]){ 3, 4 }) != NULL);
    CHECK(mml_params_add(ps, "fc.bias", 1, (int64_t[]){ 3 }) != NULL);
    CHECK(mml_params_add_buffer(ps, "bn.running_mean", 1, (int64_t[]){ 3 }) != NULL);
    CHECK(mml_params_add(ps, "fc.bias", 1, (int64_t[]){ 3 }) == NULL);
    CHECK(strstr(mml_last_error(), "fc.bias") != NULL);
    CHECK(mml_params_numel(ps) == 15);
    CHECK(mml_params_freeze(ps, "fc.", true) == 2);
    CHECK(!mml_params_find(ps, "fc.weight")->requires_grad);
    float *m = mml_params_state(ps, 0, 0);
    CHECK(m && m[11] == 0.0f);
    mml_params_free(ps);
}
