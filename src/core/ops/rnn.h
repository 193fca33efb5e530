/* Internal: fused GRU and LSTM layers, one autograd node per layer and
 * direction (torch semantics, batch-first). mml_nn_rnn_forward builds them.
 *
 *   x       [B, T, I]
 *   w       w_ih [G*H, I], b_ih [G*H], w_hh [G*H, H], b_hh [G*H];
 *           G = 3 (r, z, n) for GRU, 4 (i, f, g, o) for LSTM
 *   lengths I32 [B] in [0, T], or NULL (all T)
 *   returns y [B, T, H] with y_t = m_t h_t, m_t = [t < length]. The state moves
 *   only where m_t = 1, so the reverse direction starts at length - 1; the
 *   final state is y at length - 1 (forward) or 0 (reverse). The initial state
 *   is zero. */
#ifndef MML_OPS_RNN_H
#define MML_OPS_RNN_H

#include <stdbool.h>

#include "mml/autograd.h"

typedef struct mml_rnn_weights {
    mml_tensor *w_ih, *b_ih, *w_hh, *b_hh;
} mml_rnn_weights;

mml_tensor *mml_gru_layer(mml_ctx *ctx, const mml_rnn_weights *w, mml_tensor *x, const mml_tensor *lengths,
                          bool reverse);
mml_tensor *mml_lstm_layer(mml_ctx *ctx, const mml_rnn_weights *w, mml_tensor *x, const mml_tensor *lengths,
                           bool reverse);

#endif
