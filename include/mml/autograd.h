/* mml/autograd.h: the step context: arena, tape and gradient mode.
 *
 * Design (docs/design.md): every op output and every intermediate buffer of a
 * forward and backward pass lives in the context's step arena. When gradient
 * mode is on and an input requires a gradient, the op records a node on a tape
 * in the same arena; mml_backward walks the tape in reverse. mml_ctx_reset()
 * drops everything at once; after the first steps the arena has grown to the
 * step's size and further steps perform no heap allocation.
 *
 *     mml_ctx *ctx = mml_ctx_create();
 *     for (step...) {
 *         mml_ctx_reset(ctx);
 *         mml_tensor *loss = model_forward(ctx, ...);
 *         mml_backward(ctx, loss);          // grads land in parameters' ->grad
 *         optimizer_step(...);
 *     }
 *
 * Ops propagate failure: an op given a NULL input returns NULL, and one whose
 * shapes do not fit returns NULL with mml_last_error() naming op and shapes, so
 * a forward pass can be checked once at its end. A context is used by one
 * thread at a time. */
#ifndef MML_AUTOGRAD_H
#define MML_AUTOGRAD_H

#include "mml/tensor.h"

typedef struct mml_ctx mml_ctx;

mml_ctx *mml_ctx_create(void);
void mml_ctx_free(mml_ctx *ctx);
/* Frees every step tensor and the tape. Call once per step. */
void mml_ctx_reset(mml_ctx *ctx);
/* Resets and gives the arena's pages back to the system while keeping them
 * mapped: a context left idle for a while (the training one while validation
 * runs) then holds no memory, and its next steps still do not call malloc
 * (their first touch of each page costs a page fault instead). */
void mml_ctx_trim(mml_ctx *ctx);
/* Largest arena use of one step so far (bytes). */
size_t mml_ctx_peak_bytes(const mml_ctx *ctx);

/* Gradient recording (default on). Returns the previous setting. */
bool mml_set_grad_enabled(mml_ctx *ctx, bool on);
bool mml_grad_enabled(const mml_ctx *ctx);
/* Training mode (default on): dropout active, batch norm uses batch statistics. */
bool mml_set_training(mml_ctx *ctx, bool on);
bool mml_training(const mml_ctx *ctx);

/* Arena memory: 64-byte aligned, uninitialised, valid until the next reset.
 * Returns NULL (with an error) only if the system is out of memory. */
void *mml_arena_alloc(mml_ctx *ctx, size_t bytes);
size_t mml_arena_used(const mml_ctx *ctx);
size_t mml_arena_capacity(const mml_ctx *ctx);

/* A point in the arena to come back to: mml_arena_rewind frees everything
 * allocated since (tensors included), so a loop of forward passes without
 * gradients (evaluation a chunk of samples at a time) keeps one pass's
 * memory. Nothing may have been recorded on the tape in between. */
typedef struct mml_arena_mark {
    const void *chunk, *tape;
    size_t used, used_total;
} mml_arena_mark;
mml_arena_mark mml_arena_mark_now(const mml_ctx *ctx);
void mml_arena_rewind(mml_ctx *ctx, mml_arena_mark mark);

/* Step tensors. mml_new leaves data uninitialised; mml_zeros fills with 0.
 * mml_wrap views caller memory (not copied; must outlive the step). */
mml_tensor *mml_new(mml_ctx *ctx, mml_dtype dt, int ndim, const int64_t *shape);
mml_tensor *mml_zeros(mml_ctx *ctx, mml_dtype dt, int ndim, const int64_t *shape);
mml_tensor *mml_full(mml_ctx *ctx, float value, int ndim, const int64_t *shape);
mml_tensor *mml_wrap(mml_ctx *ctx, mml_dtype dt, void *data, int ndim, const int64_t *shape);
/* Step copy of src's data (no graph link). */
mml_tensor *mml_copy(mml_ctx *ctx, const mml_tensor *src);

/* Reverse pass from a scalar (numel 1) tensor: seeds d(loss)=1 and
 * accumulates into ->grad of every tensor that requires a gradient
 * (parameters' grads accumulate across calls until zeroed). */
mml_status mml_backward(mml_ctx *ctx, mml_tensor *loss);

/* Same data, cut from the graph. */
mml_tensor *mml_detach(mml_ctx *ctx, mml_tensor *x);

/* Number of nodes on the tape (for tests and diagnostics). */
int64_t mml_tape_length(const mml_ctx *ctx);

#endif
