#include "core/ops/broadcast.h"

bool mml_bcast_init(mml_bcast *bc, const mml_tensor *a, const mml_tensor *b)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    bc->nd = nd;
    int64_t stride_a = 1, stride_b = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1) return false;
        bc->shape[i] = da == 1 ? db : da;
        bc->sa[i] = da == 1 ? 0 : stride_a;
        bc->sb[i] = db == 1 ? 0 : stride_b;
        stride_a *= da;
        stride_b *= db;
    }
    return true;
}

void mml_bcast_rows(const mml_bcast *bc, mml_bcast_row_fn row, void *arg)
{
    int nd = bc->nd;
    if (nd == 0) {
        row(arg, 0, 0, 0, 1, 0, 0);
        return;
    }
    int64_t n = bc->shape[nd - 1], outer = 1;
    for (int i = 0; i < nd - 1; i++) outer *= bc->shape[i];
    if (n == 0 || outer == 0) return;
    int64_t idx[MML_MAX_DIMS] = { 0 }, oa = 0, ob = 0;
    for (int64_t r = 0; r < outer; r++) {
        row(arg, r * n, oa, ob, n, bc->sa[nd - 1], bc->sb[nd - 1]);
        for (int d = nd - 2; d >= 0; d--) { /* odometer increment */
            idx[d]++;
            oa += bc->sa[d];
            ob += bc->sb[d];
            if (idx[d] < bc->shape[d]) break;
            oa -= bc->sa[d] * idx[d];
            ob -= bc->sb[d] * idx[d];
            idx[d] = 0;
        }
    }
}
