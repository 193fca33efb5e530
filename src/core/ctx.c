/* The step context: a chunked bump arena, the tape, and the reverse pass.
 *
 * The arena grows by chunks during warm-up; on reset, if more than one chunk
 * was used, they are replaced by one chunk of the total size, so from the next
 * step on a step of the same shape never calls malloc.
 *
 * The reverse pass hands an intermediate's gradient back once the node that
 * produced it has run (nothing reads it after that), and later gradients of
 * the same size take those blocks: the gradients alive at once are a few
 * layers' worth, not the whole graph's, as PyTorch frees them. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/op.h"
#include "mml/alloc.h"
#include "mml/threads.h"

#define ARENA_MIN_CHUNK ((size_t)1 << 20)
#define ALIGN 64

typedef struct chunk {
    struct chunk *next;
    size_t cap, used;
    unsigned char *mem;
} chunk;

/* The ALIGN-sized header before every gradient block: its size, so a block
 * handed back can serve any later gradient that fits, and while it is free,
 * the next free block. */
typedef struct grad_block {
    size_t bytes;
    struct grad_block *next;
} grad_block;

/* Data derived from a source array (a weight's transform), kept across steps. */
typedef struct derived {
    struct derived *next;
    const float *src;
    int64_t n_src, n_out;
    int tag;
    float *copy, *out; /* src's values when out was made; out */
} derived;

struct mml_ctx {
    chunk *head;        /* current chunk; older ones follow */
    derived *derived;
    grad_block *free_grads;
    size_t peak;        /* largest total used in one step */
    size_t used_total;  /* bytes used this step */
    mml_node *tape;     /* newest node */
    int64_t tape_len;
    bool grad_enabled;
    bool training;
};

static chunk *chunk_new(size_t cap)
{
    chunk *c = mml_malloc(sizeof *c);
    if (!c) return NULL;
    c->mem = mml_pages_alloc(cap);
    if (!c->mem) {
        mml_free(c);
        return NULL;
    }
    c->cap = cap;
    c->used = 0;
    c->next = NULL;
    return c;
}

static void chunks_free(chunk *c)
{
    while (c) {
        chunk *n = c->next;
        mml_pages_free(c->mem, c->cap);
        mml_free(c);
        c = n;
    }
}

mml_ctx *mml_ctx_create(void)
{
    mml_ctx *ctx = mml_calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->grad_enabled = true;
    ctx->training = true;
    return ctx;
}

void mml_ctx_free(mml_ctx *ctx)
{
    if (!ctx) return;
    chunks_free(ctx->head);
    for (derived *d = ctx->derived, *next; d; d = next) {
        next = d->next;
        mml_free(d->copy);
        mml_free(d->out);
        mml_free(d);
    }
    mml_free(ctx);
}

void mml_ctx_reset(mml_ctx *ctx)
{
    if (ctx->used_total > ctx->peak) ctx->peak = ctx->used_total;
    if (ctx->head && (ctx->head->next || ctx->head->cap < ctx->peak)) {
        /* Consolidate: one chunk big enough for the largest step so far
         * (chunks grown and freed by a rewind count too). */
        size_t want = ctx->peak + ctx->peak / 8;
        chunks_free(ctx->head);
        ctx->head = chunk_new(want);
    }
    if (ctx->head) ctx->head->used = 0;
    ctx->used_total = 0;
    ctx->free_grads = NULL;
    ctx->tape = NULL;
    ctx->tape_len = 0;
}

void mml_ctx_trim(mml_ctx *ctx)
{
    mml_ctx_reset(ctx);
    for (chunk *c = ctx->head; c; c = c->next) mml_pages_release(c->mem, c->cap);
}

void *mml_arena_alloc(mml_ctx *ctx, size_t bytes)
{
    size_t need = (bytes + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (need < bytes) {
        mml_error(MML_ERR_NOMEM, "arena: allocation of %zu bytes overflows", bytes);
        return NULL;
    }
    chunk *c = ctx->head;
    if (!c || c->cap - c->used < need) {
        size_t cap = need > ARENA_MIN_CHUNK ? need : ARENA_MIN_CHUNK;
        if (c && c->cap * 2 > cap) cap = c->cap * 2 > need ? c->cap * 2 : need;
        chunk *n = chunk_new(cap);
        if (!n) return NULL;
        n->next = c;
        ctx->head = c = n;
    }
    void *p = c->mem + c->used;
    c->used += need;
    ctx->used_total += need;
    return p;
}

size_t mml_arena_used(const mml_ctx *ctx) { return ctx->used_total; }

mml_arena_mark mml_arena_mark_now(const mml_ctx *ctx)
{
    return (mml_arena_mark){ ctx->head, ctx->tape, ctx->head ? ctx->head->used : 0, ctx->used_total };
}

void mml_arena_rewind(mml_ctx *ctx, mml_arena_mark mark)
{
    assert(ctx->tape == mark.tape); /* recorded nodes would point into freed memory */
    if (ctx->used_total > ctx->peak) ctx->peak = ctx->used_total;
    while (ctx->head && ctx->head != mark.chunk) { /* chunks grown since the mark */
        chunk *c = ctx->head;
        ctx->head = c->next;
        c->next = NULL;
        chunks_free(c);
    }
    if (ctx->head) ctx->head->used = mark.used;
    ctx->used_total = mark.used_total;
}

size_t mml_arena_capacity(const mml_ctx *ctx)
{
    size_t cap = 0;
    for (chunk *c = ctx->head; c; c = c->next) cap += c->cap;
    return cap;
}

bool mml_set_grad_enabled(mml_ctx *ctx, bool on)
{
    bool old = ctx->grad_enabled;
    ctx->grad_enabled = on;
    return old;
}
bool mml_grad_enabled(const mml_ctx *ctx) { return ctx->grad_enabled; }

bool mml_set_training(mml_ctx *ctx, bool on)
{
    bool old = ctx->training;
    ctx->training = on;
    return old;
}
bool mml_training(const mml_ctx *ctx) { return ctx->training; }

int64_t mml_tape_length(const mml_ctx *ctx) { return ctx->tape_len; }

/* ---- step tensors ---- */

static mml_tensor *tensor_header(mml_ctx *ctx, mml_dtype dt, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > MML_MAX_DIMS) {
        mml_error(MML_ERR_ARG, "tensor: rank %d is not in [0, %d]", ndim, MML_MAX_DIMS);
        return NULL;
    }
    int64_t n = mml_shape_numel(ndim, shape);
    if (n < 0) {
        mml_error(MML_ERR_NOMEM, "tensor: shape is negative or too large");
        return NULL;
    }
    mml_tensor *t = mml_arena_alloc(ctx, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->numel = n;
    return t;
}

mml_tensor *mml_new(mml_ctx *ctx, mml_dtype dt, int ndim, const int64_t *shape)
{
    mml_tensor *t = tensor_header(ctx, dt, ndim, shape);
    if (!t) return NULL;
    t->data = mml_arena_alloc(ctx, (size_t)t->numel * mml_dtype_size(dt));
    return t->data ? t : NULL;
}

mml_tensor *mml_zeros(mml_ctx *ctx, mml_dtype dt, int ndim, const int64_t *shape)
{
    mml_tensor *t = mml_new(ctx, dt, ndim, shape);
    if (t) memset(t->data, 0, (size_t)t->numel * mml_dtype_size(dt));
    return t;
}

mml_tensor *mml_full(mml_ctx *ctx, float value, int ndim, const int64_t *shape)
{
    mml_tensor *t = mml_new(ctx, MML_F32, ndim, shape);
    if (t)
        for (int64_t i = 0; i < t->numel; i++) mml_f32(t)[i] = value;
    return t;
}

mml_tensor *mml_wrap(mml_ctx *ctx, mml_dtype dt, void *data, int ndim, const int64_t *shape)
{
    mml_tensor *t = tensor_header(ctx, dt, ndim, shape);
    if (t) t->data = data;
    return t;
}

mml_tensor *mml_copy(mml_ctx *ctx, const mml_tensor *src)
{
    mml_tensor *t = mml_new(ctx, src->dtype, src->ndim, src->shape);
    if (t) memcpy(t->data, src->data, (size_t)src->numel * mml_dtype_size(src->dtype));
    return t;
}

mml_tensor *mml_detach(mml_ctx *ctx, mml_tensor *x)
{
    if (!x) return NULL;
    mml_tensor *t = mml_wrap(ctx, x->dtype, x->data, x->ndim, x->shape);
    if (t) t->name = x->name;
    return t;
}

/* ---- ops and the tape ---- */

void mml_set_shape(mml_tensor *out, mml_dtype dt, int ndim, const int64_t *shape)
{
    out->dtype = dt;
    out->ndim = ndim;
    if (ndim) memmove(out->shape, shape, (size_t)ndim * sizeof *shape);
}

mml_status mml_op_error(const mml_node *n, const char *fmt, ...)
{
    char msg[512], shapes[512], buf[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t k = 0;
    shapes[0] = '\0';
    for (int i = 0; i < n->n_in && k < sizeof shapes; i++) {
        const mml_tensor *t = n->in[i];
        if (!t) continue;
        k += (size_t)snprintf(shapes + k, sizeof shapes - k, "%s%s%s%s", k ? ", " : "",
                              t->name ? t->name : "", t->name ? " " : "",
                              mml_shape_str(t, buf, sizeof buf));
    }
    return mml_error(MML_ERR_SHAPE, "%s: %s (inputs %s)", n->op->name, msg, shapes);
}

mml_tensor *mml_op_run(mml_ctx *ctx, const mml_node *proto)
{
    const mml_op_def *op = proto->op;
    bool needs_grad = false;
    for (int i = 0; i < proto->n_in; i++) {
        const mml_tensor *t = proto->in[i];
        if (!t) {
            if (op->optional_inputs & (1u << i)) continue;
            return NULL; /* an earlier op failed; its message stands */
        }
        needs_grad |= t->requires_grad;
    }
    needs_grad = needs_grad && ctx->grad_enabled && op->backward;

    mml_tensor shape_probe = { 0 };
    if (op->infer(proto, &shape_probe) != MML_OK) return NULL;
    mml_tensor *out = op->view
        ? tensor_header(ctx, shape_probe.dtype, shape_probe.ndim, shape_probe.shape)
        : mml_new(ctx, shape_probe.dtype, shape_probe.ndim, shape_probe.shape);
    if (!out) return NULL;
    if (op->view) out->data = proto->in[0]->data;

    mml_node *n = mml_arena_alloc(ctx, sizeof *n);
    if (!n) return NULL;
    *n = *proto;
    n->out = out;
    n->saved = NULL;
    /* Marked before forward, so forward can skip what only backward reads. */
    out->requires_grad = needs_grad;
    op->forward(ctx, n);
    if (needs_grad) {
        out->node = n;
        n->prev = ctx->tape;
        ctx->tape = n;
        ctx->tape_len++;
    }
    return out;
}

static grad_block *block_of(float *grad) { return (grad_block *)(void *)((unsigned char *)grad - ALIGN); }
static float *grad_of(grad_block *b) { return (float *)(void *)((unsigned char *)b + ALIGN); }

/* The smallest free block that fits and is less than twice the size. */
static float *take_free_block(mml_ctx *ctx, size_t bytes)
{
    grad_block **best = NULL;
    for (grad_block **p = &ctx->free_grads; *p; p = &(*p)->next)
        if ((*p)->bytes >= bytes && (*p)->bytes <= 2 * bytes && (!best || (*p)->bytes < (*best)->bytes)) best = p;
    if (!best) return NULL;
    grad_block *b = *best;
    *best = b->next;
    return grad_of(b);
}

static float *new_block(mml_ctx *ctx, size_t bytes)
{
    grad_block *b = mml_arena_alloc(ctx, ALIGN + bytes);
    if (!b) return NULL;
    b->bytes = bytes;
    return grad_of(b);
}

float *mml_grad_buf_fresh(mml_ctx *ctx, mml_tensor *t, bool *fresh)
{
    *fresh = !t->grad;
    if (!t->grad) {
        size_t bytes = (size_t)t->numel * sizeof(float);
        t->grad = take_free_block(ctx, bytes);
        if (!t->grad) t->grad = new_block(ctx, bytes);
    }
    return t->grad;
}

float *mml_grad_buf(mml_ctx *ctx, mml_tensor *t)
{
    bool fresh;
    float *g = mml_grad_buf_fresh(ctx, t, &fresh);
    if (g && fresh) memset(g, 0, (size_t)t->numel * sizeof(float));
    return g;
}

static void release_grad(mml_ctx *ctx, mml_tensor *t)
{
    grad_block *b = block_of(t->grad);
    b->next = ctx->free_grads;
    ctx->free_grads = b;
    t->grad = NULL;
}

float *mml_ctx_derived(mml_ctx *ctx, const float *src, int64_t n_src, int tag, int64_t n_out, bool *fresh)
{
    derived *d = ctx->derived;
    while (d && !(d->src == src && d->tag == tag && d->n_src == n_src && d->n_out == n_out)) d = d->next;
    size_t bytes = (size_t)n_src * sizeof(float);
    if (d && !memcmp(d->copy, src, bytes)) {
        *fresh = false;
        return d->out;
    }
    if (!d) {
        if (!(d = mml_malloc(sizeof *d))) return NULL;
        *d = (derived){ ctx->derived, src, n_src, n_out, tag, mml_malloc(bytes),
                        mml_malloc((size_t)n_out * sizeof(float)) };
        ctx->derived = d;
        if (!d->copy || !d->out) {
            mml_free(d->copy), mml_free(d->out);
            d->copy = d->out = NULL, d->src = NULL; /* matches nothing again */
            return NULL;
        }
    }
    memcpy(d->copy, src, bytes);
    *fresh = true;
    return d->out;
}

float *mml_partials_new(mml_ctx *ctx, int64_t size)
{
    size_t bytes = (size_t)(mml_threads_get() * size) * sizeof(float);
    float *p = mml_arena_alloc(ctx, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void mml_partials_add(float *dst, const float *parts, int64_t size)
{
    for (int t = 0; t < mml_threads_get(); t++)
        for (int64_t i = 0; i < size; i++) dst[i] += parts[t * size + i];
}

mml_status mml_backward(mml_ctx *ctx, mml_tensor *loss)
{
    if (!loss) return mml_last_status() ? mml_last_status() : MML_ERR_ARG;
    if (loss->numel != 1 || loss->dtype != MML_F32)
        return mml_error(MML_ERR_SHAPE, "backward: loss must be a float scalar, has %lld elements",
                         (long long)loss->numel);
    const float one = 1.0f;
    return mml_backward_seeded(ctx, loss, &one);
}

mml_status mml_backward_seeded(mml_ctx *ctx, mml_tensor *out, const float *seed)
{
    if (!out->requires_grad)
        return mml_error(MML_ERR_ARG, "backward: output does not depend on any tensor that "
                                      "requires a gradient");
    float *g = mml_grad_buf(ctx, out);
    if (!g) return MML_ERR_NOMEM;
    for (int64_t i = 0; i < out->numel; i++) g[i] += seed[i];
    for (mml_node *n = ctx->tape; n; n = n->prev) {
        if (!n->out->grad) continue; /* nothing flows back through this node */
        n->op->backward(ctx, n);
        release_grad(ctx, n->out);
    }
    return MML_OK;
}

size_t mml_ctx_peak_bytes(const mml_ctx *ctx)
{
    return ctx->peak > ctx->used_total ? ctx->peak : ctx->used_total;
}
