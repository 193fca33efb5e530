/* Internal: NumPy broadcasting of two operands over up to MML_MAX_DIMS dims.
 * Shapes are right-aligned; a size-1 (or absent) dim repeats with stride 0. */
#ifndef MML_OPS_BROADCAST_H
#define MML_OPS_BROADCAST_H

#include "core/op.h"

typedef struct mml_bcast {
    int nd;
    int64_t shape[MML_MAX_DIMS];
    int64_t sa[MML_MAX_DIMS], sb[MML_MAX_DIMS]; /* element strides of a and b per out dim */
} mml_bcast;

/* Fills bc for a op b; false if the shapes do not broadcast. */
bool mml_bcast_init(mml_bcast *bc, const mml_tensor *a, const mml_tensor *b);

/* Calls row(arg, out_off, a_off, b_off, n, a_step, b_step) for each run of the
 * innermost dim: out elements [out_off, out_off+n) pair with a[a_off + i*a_step]
 * and b[b_off + i*b_step]. */
typedef void (*mml_bcast_row_fn)(void *arg, int64_t out_off, int64_t a_off, int64_t b_off,
                                 int64_t n, int64_t a_step, int64_t b_step);
void mml_bcast_rows(const mml_bcast *bc, mml_bcast_row_fn row, void *arg);

#endif
