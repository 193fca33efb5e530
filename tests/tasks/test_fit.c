/* The shared training loop (src/tasks/fit.c): while the task validates, the
 * idle step arena holds no memory, and the epochs after the first still
 * allocate nothing. */
#include <string.h>

#include "mml/alloc.h"
#include "mml/ops.h"
#include "mml/params.h"
#include "tasks/fit.h"
#include "test.h"

enum { ROWS = 16, WIDTH = 4, SCRATCH = 1 << 20 };

typedef struct probe {
    mml_tensor *w;
    mml_ctx *ctx;           /* the loop's step context, seen by the loss */
    unsigned char *scratch; /* a megabyte of it, written by every step */
    double validations;
    uint64_t allocs_after_validation;
    bool idle_arena_empty, idle_pages_released, later_epochs_allocated;
} probe;

static mml_tensor *probe_loss(mml_ctx *ctx, void *user, const mml_batch *b, const int64_t *rows)
{
    probe *p = user;
    p->ctx = ctx;
    p->scratch = mml_arena_alloc(ctx, SCRATCH);
    if (!p->scratch) return NULL;
    memset(p->scratch, 1, SCRATCH);
    return mml_mean(ctx, mml_linear(ctx, b->x[MML_MOD_IMAGE], p->w, NULL), MML_AXIS_ALL, false);
}

static double probe_validate(void *user)
{
    probe *p = user;
    if (p->validations > 0 && mml_alloc_count() != p->allocs_after_validation) p->later_epochs_allocated = true;
    if (mml_arena_used(p->ctx) != 0) p->idle_arena_empty = false;
    if (tst_resident_bytes(p->scratch, SCRATCH) != 0) p->idle_pages_released = false;
    p->allocs_after_validation = mml_alloc_count();
    return ++p->validations;
}

TEST(fit_releases_the_step_arena_while_validating)
{
    static float feat[ROWS * WIDTH];
    static uint8_t present[ROWS];
    for (int i = 0; i < ROWS * WIDTH; i++) feat[i] = (float)(i % 7) - 3.0f;
    memset(present, 1, sizeof present);
    mml_dataset ds = { .n = ROWS };
    ds.spec[MML_MOD_IMAGE] = (mml_feature_spec){ .enabled = true, .dtype = MML_F32, .ndim = 1, .shape = { WIDTH }, .seq_axis = -1 };
    ds.row_numel[MML_MOD_IMAGE] = WIDTH;
    ds.feat[MML_MOD_IMAGE] = feat;
    ds.present[MML_MOD_IMAGE] = present;

    mml_params *ps = mml_params_create();
    probe p = { .idle_arena_empty = true, .idle_pages_released = true };
    p.w = mml_params_add(ps, "w", 2, (int64_t[]){ 1, WIDTH });
    fit_task t = { .ps = ps, .ds = &ds, .n = ROWS, .loss = probe_loss, .validate = probe_validate, .user = &p };
    mml_train_options o = mml_train_defaults();
    o.epochs = 3;
    o.batch_size = 4;
    double loss[3], val[3];
    fit_result res;
    CHECK_OK(fit_run(&t, &o, loss, val, 3, &res));
    CHECK(res.epochs == 3 && p.validations == 3);
    CHECK_MSG(p.idle_arena_empty, "the step arena was in use during validation");
    CHECK_MSG(p.idle_pages_released, "the step arena's pages stayed resident during validation");
    CHECK_MSG(!p.later_epochs_allocated, "an epoch after the first allocated from the heap");
    mml_params_free(ps);
}
