/* Internal: the op registry contract. One mml_op_def per op, defined in the
 * op's source file beside its kernels:
 *
 *   static const mml_op_def op_add = { "add", add_infer, add_forward, add_backward };
 *   mml_tensor *mml_add(mml_ctx *ctx, mml_tensor *a, mml_tensor *b) {
 *       mml_node n = { .op = &op_add, .in = { a, b }, .n_in = 2 };
 *       return mml_op_run(ctx, &n);
 *   }
 *
 * mml_op_run checks inputs, asks `infer` for the output's dtype and shape
 * (which also validates and writes the error), allocates the output in the
 * arena, runs `forward`, and records the node on the tape when a gradient is
 * needed. out->requires_grad is set before `forward` runs: when it is false
 * the node never goes on the tape, so forward need not save anything for
 * backward. `backward` reads out->grad and accumulates into the gradient of
 * each input that requires one (mml_grad_buf). */
#ifndef MML_CORE_OP_H
#define MML_CORE_OP_H

#include "mml/autograd.h"
#include "mml/error.h"

#define MML_MAX_INPUTS 6

typedef struct mml_node mml_node;

typedef struct mml_op_def {
    const char *name;
    /* Sets out->dtype, out->ndim and out->shape; returns MML_OK or an error
     * (use mml_op_error to name the op and input shapes). */
    mml_status (*infer)(const mml_node *n, mml_tensor *out);
    void (*forward)(mml_ctx *ctx, mml_node *n);
    void (*backward)(mml_ctx *ctx, mml_node *n); /* NULL: not differentiable */
    /* The output aliases in[0]'s data (reshape); no buffer is allocated. */
    bool view;
    /* Bit i set: input slot i may be NULL (an absent bias, say). */
    unsigned optional_inputs;
} mml_op_def;

struct mml_node {
    const mml_op_def *op;
    mml_node *prev;                  /* tape link (newest first) */
    mml_tensor *out;
    mml_tensor *in[MML_MAX_INPUTS];  /* NULL entries allowed for optional inputs */
    int n_in;
    int64_t iarg[12];
    float farg[4];
    void *ptr;                       /* op-specific argument (e.g. an rng) */
    void *saved;                     /* buffers forward keeps for backward (arena) */
};

mml_tensor *mml_op_run(mml_ctx *ctx, const mml_node *n);

/* Writes "op: message (inputs [2, 3] and [4])" and returns MML_ERR_SHAPE. */
mml_status mml_op_error(const mml_node *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The gradient buffer of t, allocated zeroed in the arena on first use. */
float *mml_grad_buf(mml_ctx *ctx, mml_tensor *t);
/* The same, except that a buffer allocated by this call is not zeroed and
 * *fresh says so: the caller then writes every value (a GEMM with beta 0)
 * instead of adding. */
float *mml_grad_buf_fresh(mml_ctx *ctx, mml_tensor *t, bool *fresh);
static inline bool mml_wants_grad(const mml_tensor *t) { return t && t->requires_grad; }

/* Data an op derives from an array, src [n_src] (a weight's transform, out
 * [n_out]), kept by the context across steps: found again by (src, tag)
 * while src holds the same values (compared in full), remade otherwise.
 * *fresh says whether the caller must make it now. NULL when out of memory. */
float *mml_ctx_derived(mml_ctx *ctx, const float *src, int64_t n_src, int tag, int64_t n_out, bool *fresh);

/* Per-thread partial sums for a reduction run over the thread pool (the bias
 * or weight gradient of rows split between threads): `size` zeroed floats
 * per thread, in the arena; mml_partials_add adds them into dst in thread
 * order, so the result depends on the thread count but not on timing. */
float *mml_partials_new(mml_ctx *ctx, int64_t size);
void mml_partials_add(float *dst, const float *parts, int64_t size);

/* Reverse pass seeded with d(out) = seed (numel of out floats); used by
 * gradient checks and by callers that backpropagate a non-scalar. */
mml_status mml_backward_seeded(mml_ctx *ctx, mml_tensor *out, const float *seed);

/* Copies shape into out (helper for infer). */
void mml_set_shape(mml_tensor *out, mml_dtype dt, int ndim, const int64_t *shape);

#endif
