/* Internal: fused GRU and LSTM recurrences, one autograd node per layer and
 * direction (torch semantics, batch-first). mml_nn_rnn_forward builds them.
 *
 *   gi      [B, T, G*H]  x W_ih^T + b_ih for every step (one GEMM, the caller's)
 *   w_hh    [G*H, H], b_hh [G*H]; G = 3 (r, z, n) for GRU, 4 (i, f, g, o) for LSTM
 *   lengths I32 [B] in [0, T], or NULL (all T)
 *   returns y [B, T, H] with y_t = m_t h_t, m_t = [t < length]. The state moves
 *   only where m_t = 1, so the reverse direction starts at length - 1; the
 *   final state is y at length - 1 (forward) or 0 (reverse). The initial state
 *   is zero. */
#ifndef MML_OPS_RNN_H
#define MML_OPS_RNN_H

#include <stdbool.h>

#include "mml/autograd.h"

mml_tensor *mml_gru_seq(mml_ctx *ctx, mml_tensor *gi, mml_tensor *w_hh, mml_tensor *b_hh, const mml_tensor *lengths,
                        bool reverse);
mml_tensor *mml_lstm_seq(mml_ctx *ctx, mml_tensor *gi, mml_tensor *w_hh, mml_tensor *b_hh, const mml_tensor *lengths,
                         bool reverse);

#endif
