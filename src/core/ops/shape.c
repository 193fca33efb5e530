/* Shape ops: reshape (a view), permute/transpose, concat, split, slice, pad.
 * Along-axis ops view tensors as [outer, len, inner]. */
#include <string.h>

#include "core/op.h"
#include "mml/ops.h"

static void outer_inner(const mml_tensor *x, int axis, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= x->shape[i];
    for (int i = axis + 1; i < x->ndim; i++) *inner *= x->shape[i];
}

static void grad_add(mml_ctx *ctx, mml_tensor *x, const float *g)
{
    if (!mml_wants_grad(x)) return;
    float *gx = mml_grad_buf(ctx, x);
    for (int64_t i = 0; i < x->numel; i++) gx[i] += g[i];
}

/* ---- reshape ---- */

static mml_status reshape_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x = n->in[0];
    int nd = (int)n->iarg[0], infer_at = -1;
    if (nd < 0 || nd > MML_MAX_DIMS) return mml_op_error(n, "rank %d not supported", nd);
    int64_t shape[MML_MAX_DIMS], known = 1;
    for (int i = 0; i < nd; i++) {
        shape[i] = n->iarg[1 + i];
        if (shape[i] == -1 && infer_at < 0) infer_at = i;
        else if (shape[i] < 0) return mml_op_error(n, "bad target dim %lld", (long long)shape[i]);
        else known *= shape[i];
    }
    if (infer_at >= 0) {
        if (known == 0 || x->numel % known) return mml_op_error(n, "cannot infer the -1 dim");
        shape[infer_at] = x->numel / known;
    } else if (known != x->numel)
        return mml_op_error(n, "target has %lld elements", (long long)known);
    mml_set_shape(out, x->dtype, nd, shape);
    return MML_OK;
}

static void nop_forward(mml_ctx *ctx, mml_node *n) {}
static void reshape_backward(mml_ctx *ctx, mml_node *n) { grad_add(ctx, n->in[0], n->out->grad); }

static const mml_op_def op_reshape = { "reshape", reshape_infer, nop_forward, reshape_backward, .view = true };

mml_tensor *mml_reshape(mml_ctx *ctx, mml_tensor *x, int ndim, const int64_t *shape)
{
    mml_node n = { .op = &op_reshape, .in = { x }, .n_in = 1, .iarg = { ndim } };
    for (int i = 0; i < ndim && i < MML_MAX_DIMS; i++) n.iarg[1 + i] = shape[i];
    return mml_op_run(ctx, &n);
}

/* ---- permute ---- */

static mml_status permute_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x = n->in[0];
    int64_t shape[MML_MAX_DIMS];
    bool seen[MML_MAX_DIMS] = { false };
    for (int i = 0; i < x->ndim; i++) {
        int p = (int)n->iarg[i];
        if (p < 0 || p >= x->ndim || seen[p]) return mml_op_error(n, "not a permutation of the dims");
        seen[p] = true;
        shape[i] = x->shape[p];
    }
    mml_set_shape(out, x->dtype, x->ndim, shape);
    return MML_OK;
}

/* Walks the output in order; off is the matching input element. Forward
 * copies es-byte elements out[o] = in[off]; backward adds g[o] into gx[off]. */
static void permute_walk(const mml_tensor *x, const int64_t *perm, const void *src, void *dst,
                         bool backward)
{
    int nd = x->ndim;
    int64_t in_stride[MML_MAX_DIMS], out_shape[MML_MAX_DIMS], s[MML_MAX_DIMS], idx[MML_MAX_DIMS] = { 0 };
    int64_t acc = 1, off = 0;
    size_t es = mml_dtype_size(x->dtype);
    for (int i = nd - 1; i >= 0; i--) {
        in_stride[i] = acc;
        acc *= x->shape[i];
    }
    for (int i = 0; i < nd; i++) {
        out_shape[i] = x->shape[perm[i]];
        s[i] = in_stride[perm[i]];
    }
    for (int64_t o = 0; o < x->numel; o++) {
        if (backward) ((float *)dst)[off] += ((const float *)src)[o];
        else if (es == 4) ((uint32_t *)dst)[o] = ((const uint32_t *)src)[off];
        else memcpy((char *)dst + (size_t)o * es, (const char *)src + (size_t)off * es, es);
        for (int d = nd - 1; d >= 0; d--) {
            idx[d]++;
            off += s[d];
            if (idx[d] < out_shape[d]) break;
            off -= s[d] * idx[d];
            idx[d] = 0;
        }
    }
}

static void permute_forward(mml_ctx *ctx, mml_node *n)
{
    permute_walk(n->in[0], n->iarg, n->in[0]->data, n->out->data, false);
}

static void permute_backward(mml_ctx *ctx, mml_node *n)
{
    if (mml_wants_grad(n->in[0])) permute_walk(n->in[0], n->iarg, n->out->grad, mml_grad_buf(ctx, n->in[0]), true);
}

static const mml_op_def op_permute = { "permute", permute_infer, permute_forward, permute_backward };

mml_tensor *mml_permute(mml_ctx *ctx, mml_tensor *x, const int *perm)
{
    if (!x) return NULL;
    mml_node n = { .op = &op_permute, .in = { x }, .n_in = 1 };
    for (int i = 0; i < x->ndim; i++) n.iarg[i] = perm[i] < 0 ? perm[i] + x->ndim : perm[i];
    return mml_op_run(ctx, &n);
}

mml_tensor *mml_transpose(mml_ctx *ctx, mml_tensor *x, int axis0, int axis1)
{
    if (!x) return NULL;
    int perm[MML_MAX_DIMS], a = mml_axis(axis0, x->ndim), b = mml_axis(axis1, x->ndim);
    if (a < 0 || b < 0) {
        mml_error(MML_ERR_SHAPE, "transpose: axes %d, %d out of range for rank %d", axis0, axis1, x->ndim);
        return NULL;
    }
    for (int i = 0; i < x->ndim; i++) perm[i] = i;
    perm[a] = b;
    perm[b] = a;
    return mml_permute(ctx, x, perm);
}

/* ---- concat ---- */

static mml_status concat_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x0 = n->in[0];
    int axis = (int)n->iarg[0];
    if (axis < 0) return mml_op_error(n, "axis %d out of range", (int)n->iarg[1]);
    int64_t shape[MML_MAX_DIMS];
    memcpy(shape, x0->shape, sizeof shape);
    shape[axis] = 0;
    for (int k = 0; k < n->n_in; k++) {
        const mml_tensor *x = n->in[k];
        if (x->ndim != x0->ndim || x->dtype != x0->dtype) return mml_op_error(n, "inputs differ in rank or dtype");
        for (int i = 0; i < x->ndim; i++)
            if (i != axis && x->shape[i] != x0->shape[i])
                return mml_op_error(n, "inputs differ in dim %d", i);
        shape[axis] += x->shape[axis];
    }
    mml_set_shape(out, x0->dtype, x0->ndim, shape);
    return MML_OK;
}

static void concat_run(mml_ctx *ctx, mml_node *n, bool backward)
{
    int axis = (int)n->iarg[0];
    int64_t outer, inner, off = 0;
    outer_inner(n->out, axis, &outer, &inner);
    size_t es = mml_dtype_size(n->out->dtype);
    int64_t row = n->out->shape[axis] * inner;
    for (int k = 0; k < n->n_in; k++) {
        mml_tensor *x = n->in[k];
        int64_t chunk = x->shape[axis] * inner;
        if (backward) {
            if (mml_wants_grad(x)) {
                float *gx = mml_grad_buf(ctx, x);
                for (int64_t o = 0; o < outer; o++)
                    for (int64_t i = 0; i < chunk; i++) gx[o * chunk + i] += n->out->grad[o * row + off + i];
            }
        } else
            for (int64_t o = 0; o < outer; o++)
                memcpy((char *)n->out->data + (size_t)(o * row + off) * es,
                       (char *)x->data + (size_t)(o * chunk) * es, (size_t)chunk * es);
        off += chunk;
    }
}

static void concat_forward(mml_ctx *ctx, mml_node *n) { concat_run(ctx, n, false); }
static void concat_backward(mml_ctx *ctx, mml_node *n) { concat_run(ctx, n, true); }

static const mml_op_def op_concat = { "concat", concat_infer, concat_forward, concat_backward };

mml_tensor *mml_concat(mml_ctx *ctx, mml_tensor *const *xs, int n_xs, int axis)
{
    if (n_xs < 1) {
        mml_error(MML_ERR_ARG, "concat: no inputs");
        return NULL;
    }
    if (n_xs > MML_MAX_INPUTS) { /* concat in groups, then the groups */
        mml_tensor *groups[MML_MAX_INPUTS];
        int per = (n_xs + MML_MAX_INPUTS - 1) / MML_MAX_INPUTS, g = 0;
        for (int i = 0; i < n_xs; i += per, g++)
            groups[g] = mml_concat(ctx, xs + i, n_xs - i < per ? n_xs - i : per, axis);
        return mml_concat(ctx, groups, g, axis);
    }
    mml_node n = { .op = &op_concat, .n_in = n_xs };
    for (int i = 0; i < n_xs; i++) {
        if (!xs[i]) return NULL;
        n.in[i] = xs[i];
    }
    n.iarg[0] = mml_axis(axis, xs[0]->ndim);
    n.iarg[1] = axis;
    return mml_op_run(ctx, &n);
}

/* ---- slice (and split) ---- */

static mml_status slice_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x = n->in[0];
    int axis = (int)n->iarg[0];
    int64_t start = n->iarg[1], end = n->iarg[2], step = n->iarg[3];
    if (axis < 0) return mml_op_error(n, "axis %d out of range", (int)n->iarg[4]);
    if (step < 1) return mml_op_error(n, "step must be positive");
    if (start < 0 || end < start || end > x->shape[axis])
        return mml_op_error(n, "range [%lld, %lld) outside dim %d of size %lld", (long long)start,
                            (long long)end, axis, (long long)x->shape[axis]);
    int64_t shape[MML_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = (end - start + step - 1) / step;
    mml_set_shape(out, x->dtype, x->ndim, shape);
    return MML_OK;
}

static void slice_run(mml_ctx *ctx, mml_node *n, bool backward)
{
    mml_tensor *x = n->in[0];
    int axis = (int)n->iarg[0];
    int64_t start = n->iarg[1], step = n->iarg[3], outer, inner, len = n->out->shape[axis];
    outer_inner(x, axis, &outer, &inner);
    size_t es = mml_dtype_size(x->dtype);
    float *gx = backward ? mml_grad_buf(ctx, x) : NULL;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < len; k++) {
            int64_t src = (o * x->shape[axis] + start + k * step) * inner, dst = (o * len + k) * inner;
            if (backward)
                for (int64_t i = 0; i < inner; i++) gx[src + i] += n->out->grad[dst + i];
            else memcpy((char *)n->out->data + (size_t)dst * es, (char *)x->data + (size_t)src * es, (size_t)inner * es);
        }
}

static void slice_forward(mml_ctx *ctx, mml_node *n) { slice_run(ctx, n, false); }
static void slice_backward(mml_ctx *ctx, mml_node *n)
{
    if (mml_wants_grad(n->in[0])) slice_run(ctx, n, true);
}

static const mml_op_def op_slice = { "slice", slice_infer, slice_forward, slice_backward };

mml_tensor *mml_slice(mml_ctx *ctx, mml_tensor *x, int axis, int64_t start, int64_t end, int64_t step)
{
    if (!x) return NULL;
    int ax = mml_axis(axis, x->ndim);
    if (ax >= 0) {
        int64_t len = x->shape[ax];
        if (start < 0) start += len;
        if (end < 0) end += len;
        if (end > len) end = len;
    }
    mml_node n = { .op = &op_slice, .in = { x }, .n_in = 1, .iarg = { ax, start, end, step, axis } };
    return mml_op_run(ctx, &n);
}

mml_status mml_split(mml_ctx *ctx, mml_tensor *x, int axis, int n, const int64_t *sizes, mml_tensor **out)
{
    if (!x) return mml_last_status() ? mml_last_status() : MML_ERR_ARG;
    int ax = mml_axis(axis, x->ndim);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += sizes[i];
    if (ax < 0 || total != x->shape[ax])
        return mml_error(MML_ERR_SHAPE, "split: sizes add up to %lld, axis %d has %lld", (long long)total,
                         axis, ax < 0 ? -1LL : (long long)x->shape[ax]);
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        out[i] = mml_slice(ctx, x, ax, at, at + sizes[i], 1);
        if (!out[i]) return mml_last_status();
        at += sizes[i];
    }
    return MML_OK;
}

/* ---- pad ---- */

static mml_status pad_infer(const mml_node *n, mml_tensor *out)
{
    const mml_tensor *x = n->in[0];
    if (x->dtype != MML_F32) return mml_op_error(n, "input must be float32");
    int64_t shape[MML_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        shape[i] = x->shape[i] + n->iarg[2 * i] + n->iarg[2 * i + 1];
        if (n->iarg[2 * i] < 0 || n->iarg[2 * i + 1] < 0) return mml_op_error(n, "negative padding");
    }
    mml_set_shape(out, MML_F32, x->ndim, shape);
    return MML_OK;
}

/* Offset in out of x's element i. */
static int64_t pad_offset(const mml_node *n, int64_t i)
{
    const mml_tensor *x = n->in[0];
    int64_t off = 0, mul = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        int64_t c = i % x->shape[d];
        i /= x->shape[d];
        off += (c + n->iarg[2 * d]) * mul;
        mul *= n->out->shape[d];
    }
    return off;
}

static void pad_forward(mml_ctx *ctx, mml_node *n)
{
    float *y = mml_f32(n->out);
    for (int64_t i = 0; i < n->out->numel; i++) y[i] = n->farg[0];
    const float *x = mml_f32(n->in[0]);
    for (int64_t i = 0; i < n->in[0]->numel; i++) y[pad_offset(n, i)] = x[i];
}

static void pad_backward(mml_ctx *ctx, mml_node *n)
{
    if (!mml_wants_grad(n->in[0])) return;
    float *gx = mml_grad_buf(ctx, n->in[0]);
    for (int64_t i = 0; i < n->in[0]->numel; i++) gx[i] += n->out->grad[pad_offset(n, i)];
}

static const mml_op_def op_pad = { "pad", pad_infer, pad_forward, pad_backward };

mml_tensor *mml_pad(mml_ctx *ctx, mml_tensor *x, const int64_t *pads, float value)
{
    if (!x) return NULL;
    mml_node n = { .op = &op_pad, .in = { x }, .n_in = 1, .farg = { value } };
    for (int i = 0; i < 2 * x->ndim; i++) n.iarg[i] = pads[i];
    return mml_op_run(ctx, &n);
}
