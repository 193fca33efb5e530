/* Batches of token ids with right padding, truncation and attention masks. */
#include <string.h>

#include "mml/alloc.h"
#include "mml/text.h"

void mml_text_batch_free(mml_text_batch *b)
{
    mml_tensor_free(b->ids);
    mml_tensor_free(b->mask);
    mml_tensor_free(b->lengths);
    memset(b, 0, sizeof *b);
}

static int encode_one(const mml_vocab *vocab, const mml_bpe *bpe, const char *text, int flags, int32_t *ids, int cap)
{
    return vocab ? mml_vocab_encode(vocab, text, flags, ids, cap) : mml_bpe_encode(bpe, text, flags, ids, cap);
}

/* All ids of text (heap), or NULL with an error naming the text. */
static int32_t *encode_all(const mml_vocab *vocab, const mml_bpe *bpe, const char *text, int flags, int index, int *n)
{
    int32_t *ids = NULL;
    *n = encode_one(vocab, bpe, text, flags, NULL, 0);
    if (*n >= 0 && (ids = mml_malloc(((size_t)*n + 1) * sizeof *ids)))
        encode_one(vocab, bpe, text, flags, ids, *n);
    if (!ids) {
        if (*n >= 0) mml_error(MML_ERR_NOMEM, "out of memory");
        mml_error_prefix("texts[%d]: ", index);
    }
    return ids;
}

static void set(mml_tensor *t, int64_t i, int64_t v)
{
    if (t->dtype == MML_I64) mml_i64(t)[i] = v;
    else mml_i32(t)[i] = (int32_t)v;
}

mml_status mml_text_encode_batch(const mml_vocab *vocab, const mml_bpe *bpe, const char *const *texts, int n,
                                 const mml_text_batch_opts *o, mml_text_batch *out)
{
    memset(out, 0, sizeof *out);
    if (!vocab == !bpe) return mml_error(MML_ERR_ARG, "text batch: give exactly one of a vocabulary and a BPE");
    if (n < 1) return mml_error(MML_ERR_ARG, "text batch: no texts");
    if (o->dtype != MML_I64 && o->dtype != MML_I32) return mml_error(MML_ERR_ARG, "text batch: ids must be I64 or I32");
    if (o->max_length < 0 || (o->padding == MML_PAD_MAX_LENGTH && o->max_length < 1) ||
        (o->truncation && o->max_length < 1) || (o->bos_eos && o->max_length == 1))
        return mml_error(MML_ERR_ARG, "text batch: max_length %d does not fit the padding, truncation and BOS/EOS asked for",
                         o->max_length);
    int flags = o->bos_eos ? MML_TEXT_BOS | MML_TEXT_EOS : 0;
    int32_t eos = vocab ? MML_VOCAB_EOS : mml_bpe_eot(bpe);
    int32_t pad = o->pad_id >= 0 ? o->pad_id : vocab ? MML_VOCAB_PAD : 0;
    int32_t **rows = mml_calloc((size_t)n, sizeof *rows);
    int *lens = mml_calloc((size_t)n, sizeof *lens);
    mml_status rc = rows && lens ? MML_OK : mml_error(MML_ERR_NOMEM, "text batch: out of memory");
    int64_t L = o->padding == MML_PAD_MAX_LENGTH ? o->max_length : 1;
    for (int i = 0; i < n && rc == MML_OK; i++) {
        if (!(rows[i] = encode_all(vocab, bpe, texts[i], flags, i, &lens[i]))) rc = mml_last_status();
        else if (o->max_length && lens[i] > o->max_length) {
            if (!o->truncation)
                rc = mml_error(MML_ERR_ARG, "texts[%d]: %d tokens, more than max_length %d, and truncation is off", i,
                               lens[i], o->max_length);
            lens[i] = o->max_length;
            if (o->bos_eos) rows[i][lens[i] - 1] = eos;
        }
        if (o->padding == MML_PAD_LONGEST && lens[i] > L) L = lens[i];
    }
    int64_t shape[2] = { n, L };
    if (rc == MML_OK) {
        out->ids = mml_tensor_create(o->dtype, 2, shape, false);
        out->mask = mml_tensor_create(o->dtype, 2, shape, false);
        out->lengths = mml_tensor_create(o->dtype, 1, shape, false);
        if (!out->ids || !out->mask || !out->lengths) rc = mml_last_status();
    }
    for (int i = 0; i < n && rc == MML_OK; i++) {
        for (int64_t j = 0; j < L; j++) {
            set(out->ids, i * L + j, j < lens[i] ? rows[i][j] : pad);
            set(out->mask, i * L + j, j < lens[i]);
        }
        set(out->lengths, i, lens[i]);
    }
    for (int i = 0; rows && i < n; i++) mml_free(rows[i]);
    mml_free(rows);
    mml_free(lens);
    if (rc != MML_OK) mml_text_batch_free(out);
    return rc;
}
