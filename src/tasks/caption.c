/* Image captioning: an image encoder, a GRU-with-attention or transformer
 * decoder over a vocabulary of the training texts' tokens, teacher forcing,
 * beam search, BLEU and class mentions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mml/alloc.h"
#include "mml/caption.h"
#include "mml/decode.h"
#include "mml/encoder.h"
#include "mml/loss.h"
#include "mml/model.h"
#include "mml/nn.h"
#include "mml/ops.h"
#include "mml/progress.h"
#include "mml/safetensors.h"
#include "tasks/fit.h"

#define MAX_LAYERS 8

typedef enum decoder_kind { DEC_GRU = 0, DEC_TRANSFORMER } decoder_kind;

struct mml_caption_model {
    mml_params *ps;
    mml_encoder *enc;
    decoder_kind kind;
    int64_t V, H, context;
    mml_tensor *vocab; /* buffer [V]: the CLIP id of each local id; local 0 is <unk> */
    int32_t *clip;     /* the same as integers, ids 1.. ascending */
    int32_t sot, eot;  /* local ids */
    mml_nn_embedding embed;
    mml_nn_linear memory_in, out;
    /* gru */
    mml_nn_linear image_in;
    mml_nn_rnn gru;
    mml_nn_mha attn;
    /* transformer */
    mml_tensor *pos;
    mml_nn_decoder_layer layers[MAX_LAYERS];
    int n_layers;
    mml_nn_layer_norm norm;
    int beam;
    char ***mentions; /* per class, NULL-terminated phrases; NULL without "mentions" */
    int n_classes;
    mml_rng rng;
    const mml_dataset *val; /* during mml_caption_train */
};

mml_params *mml_caption_model_params(mml_caption_model *m) { return m->ps; }
int64_t mml_caption_model_vocab(const mml_caption_model *m) { return m->V; }

void mml_caption_model_free(mml_caption_model *m)
{
    if (!m) return;
    mml_encoder_free(m->enc);
    for (int c = 0; m->mentions && c < m->n_classes; c++) {
        for (int k = 0; m->mentions[c] && m->mentions[c][k]; k++) free(m->mentions[c][k]);
        mml_free(m->mentions[c]);
    }
    mml_free(m->mentions);
    mml_free(m->clip);
    mml_params_free(m->ps);
    mml_free(m);
}

/* ---- vocabulary ---- */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The distinct CLIP ids of the training texts, ascending, into *ids. */
static int64_t training_tokens(const mml_dataset *ds, int32_t **ids)
{
    int64_t C = ds->spec[MML_MOD_TEXT].shape[0], n = 0;
    int32_t *all = mml_malloc((size_t)((ds->n + 1) * C) * sizeof *all);
    if (!all) return -1;
    for (int64_t r = 0; r < ds->n; r++) {
        if (!ds->present[MML_MOD_TEXT][r]) continue;
        mml_dataset_row(ds, MML_MOD_TEXT, r, all + n);
        n += ds->length[MML_MOD_TEXT][r];
    }
    qsort(all, (size_t)n, sizeof *all, cmp_i32);
    int64_t u = 0;
    for (int64_t k = 0; k < n; k++)
        if (u == 0 || all[u - 1] != all[k]) all[u++] = all[k];
    *ids = all;
    return u;
}

static int32_t local_id(const mml_caption_model *m, int32_t clip)
{
    const int32_t *hit = bsearch(&clip, m->clip + 1, (size_t)(m->V - 1), sizeof *hit, cmp_i32);
    return hit ? (int32_t)(hit - m->clip) : 0;
}

/* vocab: the CLIP ids of local ids 1.. (ascending), from the data or a file. */
static mml_status set_vocab(mml_caption_model *m, const int32_t *ids, int64_t n, int32_t sot, int32_t eot)
{
    m->V = n + 1;
    if (!(m->vocab = mml_params_add_buffer(m->ps, "vocab", 1, &m->V))) return mml_last_status();
    if (!(m->clip = mml_malloc((size_t)m->V * sizeof *m->clip))) return MML_ERR_NOMEM;
    m->clip[0] = -1;
    memcpy(m->clip + 1, ids, (size_t)n * sizeof *ids);
    for (int64_t k = 0; k < m->V; k++) mml_f32(m->vocab)[k] = (float)m->clip[k];
    m->sot = local_id(m, sot), m->eot = local_id(m, eot);
    if (!m->sot || !m->eot) return mml_error(MML_ERR_FORMAT, "captioning: the training texts lack start/end tokens");
    return MML_OK;
}

/* ---- building ---- */

static mml_status read_mentions(mml_caption_model *m, const mml_cfg_node *model, int n_classes)
{
    mml_cfg_node list;
    mml_status rc = mml_cfg_array(model, "mentions", false, &list);
    if (rc != MML_OK || !mml_cfg_present(&list)) return rc;
    if (mml_cfg_len(&list) != n_classes)
        return mml_cfg_error(model, "mentions", "needs one list of phrases per class (%d), in class order", n_classes);
    m->n_classes = n_classes;
    if (!(m->mentions = mml_calloc((size_t)n_classes, sizeof *m->mentions))) return MML_ERR_NOMEM;
    for (int c = 0; c < n_classes; c++) {
        const cJSON *phrases = cJSON_GetArrayItem(list.json, c);
        int n = cJSON_IsArray(phrases) ? cJSON_GetArraySize(phrases) : -1;
        if (n < 1) return mml_cfg_error(model, "mentions", "item %d is not a non-empty list of phrases", c);
        if (!(m->mentions[c] = mml_calloc((size_t)n + 1, sizeof **m->mentions))) return MML_ERR_NOMEM;
        for (int k = 0; k < n; k++) {
            const cJSON *p = cJSON_GetArrayItem(phrases, k);
            if (!cJSON_IsString(p)) return mml_cfg_error(model, "mentions", "item %d holds a non-string", c);
            if (!(m->mentions[c][k] = strdup(p->valuestring))) return MML_ERR_NOMEM;
        }
    }
    return MML_OK;
}

static mml_status build_gru(mml_caption_model *m, const mml_cfg_node *dec, mml_rng *r)
{
    int64_t E, H;
    mml_status rc = mml_cfg_int(dec, "embed", 64, &E);
    if (rc == MML_OK) rc = mml_cfg_int(dec, "hidden", 128, &H);
    if (rc == MML_OK && (E < 1 || H < 1 || E > 4096 || H > 4096)) rc = mml_cfg_error(dec, "hidden", "embed and hidden in [1, 4096]");
    if (rc != MML_OK) return rc;
    m->H = H;
    rc = mml_nn_embedding_init(&m->embed, m->ps, "decoder.embed", m->V, E, r);
    if (rc == MML_OK) rc = mml_nn_linear_init(&m->image_in, m->ps, "decoder.image_in", mml_encoder_dim(m->enc), E, true, r);
    if (rc == MML_OK) rc = mml_nn_rnn_init(&m->gru, m->ps, "decoder.gru", MML_RNN_GRU, E, H, 1, false, r);
    if (rc == MML_OK) rc = mml_nn_linear_init(&m->memory_in, m->ps, "decoder.memory_in", mml_encoder_seq_dim(m->enc), H, true, r);
    if (rc == MML_OK) rc = mml_nn_mha_init(&m->attn, m->ps, "decoder.attn", H, 1, 0.0f, r);
    if (rc == MML_OK) rc = mml_nn_linear_init(&m->out, m->ps, "decoder.out", 2 * H, m->V, true, r);
    return rc;
}

static mml_status build_transformer(mml_caption_model *m, const mml_cfg_node *dec, mml_rng *r)
{
    int64_t d, heads, layers, ff;
    mml_status rc = mml_cfg_int(dec, "d_model", 128, &d);
    if (rc == MML_OK) rc = mml_cfg_int(dec, "heads", 4, &heads);
    if (rc == MML_OK) rc = mml_cfg_int(dec, "layers", 2, &layers);
    if (rc == MML_OK) rc = mml_cfg_int(dec, "ff", 4 * d, &ff);
    if (rc == MML_OK && (d < 1 || heads < 1 || d % heads || d > 4096))
        rc = mml_cfg_error(dec, "d_model", "must be in [1, 4096] and a multiple of heads");
    if (rc == MML_OK) rc = mml_cfg_check_range(dec, "layers", (double)layers, 1, MAX_LAYERS);
    if (rc == MML_OK) rc = mml_cfg_check_range(dec, "ff", (double)ff, 1, 65536);
    if (rc != MML_OK) return rc;
    m->H = d, m->n_layers = (int)layers;
    rc = mml_nn_embedding_init(&m->embed, m->ps, "decoder.embed", m->V, d, r);
    if (rc == MML_OK && !(m->pos = mml_params_add(m->ps, "decoder.pos", 2, (int64_t[]){ m->context, d }))) rc = mml_last_status();
    for (int64_t k = 0; rc == MML_OK && k < m->context * d; k++) mml_f32(m->pos)[k] = 0.02f * mml_rng_normal(r);
    if (rc == MML_OK) rc = mml_nn_linear_init(&m->memory_in, m->ps, "decoder.memory_in", mml_encoder_seq_dim(m->enc), d, true, r);
    for (int l = 0; rc == MML_OK && l < m->n_layers; l++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "decoder.layers.%d", l);
        rc = mml_nn_decoder_layer_init(&m->layers[l], m->ps, prefix, d, heads, ff, 0.0f, MML_ACT_GELU, true, r);
    }
    if (rc == MML_OK) rc = mml_nn_layer_norm_init(&m->norm, m->ps, "decoder.norm", d, 1e-5f);
    if (rc == MML_OK) rc = mml_nn_linear_init(&m->out, m->ps, "decoder.out", d, m->V, true, r);
    return rc;
}

static mml_status build_decoder(mml_caption_model *m, const mml_cfg_node *model, uint64_t seed)
{
    static const char *const kinds[] = { "gru", "transformer", NULL };
    static const char *const keys[] = { "type", "embed", "hidden", "d_model", "heads", "layers", "ff", NULL };
    mml_cfg_node dec;
    int kind;
    mml_rng r;
    mml_rng_seed(&r, seed + 71);
    mml_status rc = mml_cfg_object(model, "decoder", true, &dec);
    if (rc == MML_OK) rc = mml_cfg_check_keys(&dec, keys);
    if (rc == MML_OK) rc = mml_cfg_choice(&dec, "type", kinds, DEC_GRU, &kind);
    if (rc != MML_OK) return rc;
    m->kind = (decoder_kind)kind;
    return m->kind == DEC_GRU ? build_gru(m, &dec, &r) : build_transformer(m, &dec, &r);
}

/* ids: the vocabulary's CLIP ids (from a file), or NULL to take them from the training split. */
static mml_status build(const mml_cfg_node *model, const mml_mm_data *d, uint64_t seed, const int32_t *ids, int64_t n_ids,
                        mml_caption_model **out)
{
    static const char *const keys[] = { "encoders", "decoder", "beam", "mentions", NULL };
    mml_cfg_node encs, e;
    *out = NULL;
    mml_status rc = mml_cfg_check_keys(model, keys);
    if (rc != MML_OK) return rc;
    mml_caption_model *m = mml_calloc(1, sizeof *m);
    if (!m || !(m->ps = mml_params_create())) {
        mml_free(m);
        return MML_ERR_NOMEM;
    }
    mml_rng_seed(&m->rng, seed ^ 0x63617074ULL);
    int64_t beam = 1;
    int32_t *own = NULL;
    rc = mml_cfg_object(model, "encoders", true, &encs);
    if (rc == MML_OK) rc = mml_cfg_object(&encs, "image", true, &e);
    if (rc == MML_OK && !d->fz.spec[MML_MOD_TEXT].enabled) rc = mml_error(MML_ERR_ARG, "captioning: the data have no text");
    if (rc == MML_OK) rc = mml_encoder_build(&e, &d->fz.spec[MML_MOD_IMAGE], m->ps, "image.", seed + 101, &m->enc);
    if (rc == MML_OK) rc = mml_cfg_int(model, "beam", 3, &beam);
    if (rc == MML_OK) rc = mml_cfg_check_range(model, "beam", (double)beam, 1, 64);
    m->beam = (int)beam;
    m->context = d->fz.spec[MML_MOD_TEXT].shape[0];
    if (rc == MML_OK && !ids && (n_ids = training_tokens(d->ds[MML_SPLIT_TRAIN], &own)) < 0) rc = MML_ERR_NOMEM;
    if (rc == MML_OK) rc = set_vocab(m, ids ? ids : own, n_ids, mml_bpe_sot(d->bpe), mml_bpe_eot(d->bpe));
    if (rc == MML_OK) rc = build_decoder(m, model, seed);
    if (rc == MML_OK) rc = read_mentions(m, model, d->n_classes);
    mml_free(own);
    if (rc != MML_OK) {
        mml_caption_model_free(m);
        return rc;
    }
    *out = m;
    return MML_OK;
}

mml_status mml_caption_model_build(const mml_cfg_node *model, const mml_mm_data *d, uint64_t seed, mml_caption_model **out)
{
    return build(model, d, seed, NULL, 0, out);
}

/* ---- forward ---- */

/* Logits [B, T, V] for input tokens in [B, T] (local ids) given the encoded images. */
static mml_tensor *decode(mml_ctx *ctx, mml_caption_model *m, const mml_encoding *img, mml_tensor *in)
{
    int64_t B = in->shape[0], T = in->shape[1];
    mml_tensor *memory = mml_nn_linear_forward(ctx, &m->memory_in, img->seq), *x = mml_embedding(ctx, m->embed.weight, in);
    if (m->kind == DEC_GRU) {
        mml_tensor *first = mml_reshape(ctx, mml_nn_linear_forward(ctx, &m->image_in, img->pooled), 3, (int64_t[]){ B, 1, -1 });
        mml_tensor *steps[2] = { first, x };
        mml_tensor *h = mml_nn_rnn_forward(ctx, &m->gru, mml_concat(ctx, steps, 2, 1), NULL, NULL);
        h = h ? mml_slice(ctx, h, 1, 1, T + 1, 1) : NULL; /* the image step predicts nothing */
        mml_tensor *att = mml_nn_mha_forward(ctx, &m->attn, h, memory, memory, NULL, NULL, &m->rng, NULL);
        mml_tensor *both[2] = { h, att };
        return h && att ? mml_nn_linear_forward(ctx, &m->out, mml_concat(ctx, both, 2, 2)) : NULL;
    }
    x = mml_add(ctx, x, mml_slice(ctx, m->pos, 0, 0, T, 1));
    mml_tensor *causal = mml_causal_mask(ctx, T);
    for (int l = 0; x && l < m->n_layers; l++) x = mml_nn_decoder_layer_forward(ctx, &m->layers[l], x, memory, causal, NULL, NULL, &m->rng);
    return x ? mml_nn_linear_forward(ctx, &m->out, mml_nn_layer_norm_forward(ctx, &m->norm, x)) : NULL;
}

/* Teacher forcing: inputs are tokens 0..C-2, targets 1..C-1 (ignored past each text's length). */
static mml_status shifted(mml_ctx *ctx, const mml_caption_model *m, const mml_batch *b, mml_tensor **in, mml_tensor **target)
{
    int64_t B = b->size, C = b->x[MML_MOD_TEXT]->shape[1], T = C - 1;
    *in = mml_new(ctx, MML_I32, 2, (int64_t[]){ B, T });
    *target = mml_new(ctx, MML_I32, 1, (int64_t[]){ B * T });
    if (!*in || !*target) return MML_ERR_NOMEM;
    const int32_t *x = mml_i32(b->x[MML_MOD_TEXT]), *len = mml_i32(b->length[MML_MOD_TEXT]);
    for (int64_t s = 0; s < B; s++)
        for (int64_t t = 0; t < T; t++) {
            mml_i32(*in)[s * T + t] = local_id(m, x[s * C + t]);
            mml_i32(*target)[s * T + t] = t + 1 < len[s] ? local_id(m, x[s * C + t + 1]) : -100;
        }
    return MML_OK;
}

static mml_tensor *batch_loss(mml_ctx *ctx, mml_caption_model *m, const mml_batch *b)
{
    mml_encoding img;
    mml_tensor *in, *target;
    if (shifted(ctx, m, b, &in, &target) != MML_OK) return NULL;
    if (mml_encoder_forward(ctx, m->enc, b->x[MML_MOD_IMAGE], NULL, &img) != MML_OK) return NULL;
    mml_tensor *logits = decode(ctx, m, &img, in);
    mml_ce_options ce = mml_ce_defaults();
    return logits ? mml_loss_cross_entropy(ctx, mml_reshape(ctx, logits, 2, (int64_t[]){ -1, m->V }), target, &ce) : NULL;
}

/* ---- training ---- */

/* Rows with both an image and a text. */
static int64_t captioned_rows(const mml_dataset *ds, int64_t *rows)
{
    int64_t n = 0;
    for (int64_t r = 0; r < ds->n; r++)
        if (ds->present[MML_MOD_IMAGE][r] && ds->present[MML_MOD_TEXT][r]) rows[n++] = r;
    return n;
}

static double split_loss(mml_caption_model *m, const mml_dataset *ds)
{
    mml_ctx *ctx = mml_ctx_create();
    int64_t *rows = mml_malloc((size_t)ds->n * sizeof *rows), n = rows ? captioned_rows(ds, rows) : 0;
    double sum = 0;
    int64_t batches = 0;
    if (ctx) mml_set_grad_enabled(ctx, false);
    for (int64_t s = 0; ctx && s < n; s += 256, batches++) {
        mml_ctx_reset(ctx);
        mml_batch b;
        mml_tensor *l = mml_dataset_batch(ctx, ds, rows + s, s + 256 <= n ? 256 : n - s, &b) == MML_OK ? batch_loss(ctx, m, &b) : NULL;
        if (!l) break;
        sum += mml_f32(l)[0];
    }
    mml_ctx_free(ctx);
    mml_free(rows);
    return batches ? sum / (double)batches : NAN;
}

static mml_tensor *train_loss(mml_ctx *ctx, void *user, const mml_batch *b, const int64_t *rows)
{
    (void)rows;
    return batch_loss(ctx, user, b);
}

static double validate(void *user)
{
    mml_caption_model *m = user;
    return m->val ? split_loss(m, m->val) : NAN;
}

mml_status mml_caption_train(mml_caption_model *m, const mml_mm_data *d, const mml_train_options *o, mml_caption_history *h)
{
    memset(h, 0, sizeof *h);
    const mml_dataset *ds = d->ds[MML_SPLIT_TRAIN];
    int64_t *rows = mml_malloc((size_t)ds->n * sizeof *rows);
    if (!rows) return MML_ERR_NOMEM;
    m->val = d->ds[MML_SPLIT_VAL];
    fit_task t = { .ps = m->ps, .ds = ds, .rows = rows, .n = captioned_rows(ds, rows), .loss = train_loss,
                   .validate = validate, .val_name = "val_loss", .user = m };
    fit_result res = { 0 };
    mml_status rc = t.n ? fit_run(&t, o, h->train_loss, h->val_loss, (int)(sizeof h->train_loss / sizeof h->train_loss[0]), &res)
                        : mml_error(MML_ERR_ARG, "captioning: no training sample has both an image and a text");
    h->epochs = res.epochs;
    h->train_seconds = res.seconds;
    m->val = NULL;
    mml_free(rows);
    return rc;
}

/* ---- generation ---- */

/* The image is encoded once per caption (encode_image); each beam step
 * repeats its encoding for every hypothesis instead of re-running the encoder. */
typedef struct step_state {
    mml_caption_model *m;
    mml_ctx *ctx;
    float *pooled, *seq, *pad; /* the image's [D], [N, Ds] and [N] (pad may be NULL), heap copies */
    int64_t D, N, Ds;
} step_state;

static float *heap_copy(const mml_tensor *t)
{
    float *p = mml_malloc((size_t)t->numel * sizeof(float));
    if (p) memcpy(p, mml_f32(t), (size_t)t->numel * sizeof(float));
    return p;
}

static mml_status encode_image(step_state *st, const mml_dataset *ds, int64_t row)
{
    mml_ctx_reset(st->ctx);
    mml_batch b;
    mml_encoding img;
    mml_status rc = mml_dataset_batch(st->ctx, ds, &row, 1, &b);
    if (rc == MML_OK) rc = mml_encoder_forward(st->ctx, st->m->enc, b.x[MML_MOD_IMAGE], NULL, &img);
    if (rc != MML_OK) return rc;
    st->D = img.pooled->shape[1];
    st->N = img.seq->shape[1];
    st->Ds = img.seq->shape[2];
    st->pooled = heap_copy(img.pooled);
    st->seq = heap_copy(img.seq);
    st->pad = img.pad ? heap_copy(img.pad) : NULL;
    return st->pooled && st->seq && (st->pad || !img.pad) ? MML_OK : MML_ERR_NOMEM;
}

/* A step tensor [n, shape...] holding `one` (numel values) n times. */
static mml_tensor *repeated(mml_ctx *ctx, const float *one, int n, int ndim, const int64_t *shape)
{
    int64_t full[3] = { n, shape[0], shape[1] };
    mml_tensor *t = mml_new(ctx, MML_F32, ndim + 1, full);
    int64_t numel = t ? t->numel / n : 0;
    for (int i = 0; t && i < n; i++) memcpy(mml_f32(t) + i * numel, one, (size_t)numel * sizeof(float));
    return t;
}

static mml_status step(void *user, const int32_t *const *seqs, int n, int len, float *logp)
{
    step_state *st = user;
    mml_caption_model *m = st->m;
    mml_ctx *ctx = st->ctx;
    mml_ctx_reset(ctx);
    mml_encoding img = { repeated(ctx, st->pooled, n, 1, (int64_t[]){ st->D, 0 }),
                         repeated(ctx, st->seq, n, 2, (int64_t[]){ st->N, st->Ds }),
                         st->pad ? repeated(ctx, st->pad, n, 1, (int64_t[]){ st->N, 0 }) : NULL };
    mml_tensor *in = img.pooled && img.seq ? mml_new(ctx, MML_I32, 2, (int64_t[]){ n, len }) : NULL;
    for (int i = 0; in && i < n; i++) memcpy(mml_i32(in) + i * len, seqs[i], (size_t)len * sizeof(int32_t));
    mml_tensor *logits = in ? decode(ctx, m, &img, in) : NULL;
    mml_tensor *last = logits ? mml_log_softmax(ctx, mml_slice(ctx, logits, 1, len - 1, len, 1), 2) : NULL;
    if (!last) return mml_last_status() ? mml_last_status() : MML_ERR_NOMEM;
    memcpy(logp, mml_f32(last), (size_t)(n * m->V) * sizeof *logp);
    return MML_OK;
}

static char *caption_row(mml_caption_model *m, const mml_mm_data *d, const mml_dataset *ds, int64_t row, int beam, mml_ctx *ctx)
{
    step_state st = { .m = m, .ctx = ctx };
    mml_decode_options o = { beam, (int)m->context - 1, m->sot, m->eot, 1.0f };
    int32_t ids[4096], clip[4096];
    int n = encode_image(&st, ds, row) == MML_OK
                ? mml_decode_beam(step, &st, (int)m->V, &o, ids, (int)(sizeof ids / sizeof ids[0]), NULL)
                : -1;
    mml_free(st.pooled);
    mml_free(st.seq);
    mml_free(st.pad);
    if (n < 0) return NULL;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] > 0) clip[k++] = m->clip[ids[i]]; /* <unk> dropped */
    return mml_bpe_decode(d->bpe, clip, k);
}

mml_status mml_caption_generate(mml_caption_model *m, const mml_mm_data *d, const mml_dataset *ds, int beam, char ***texts)
{
    if (beam <= 0) beam = m->beam;
    if (beam > 64) return mml_error(MML_ERR_ARG, "captioning: beam at most 64");
    mml_ctx *ctx = mml_ctx_create();
    char **out = mml_calloc((size_t)ds->n + 1, sizeof *out);
    mml_status rc = ctx && out ? MML_OK : MML_ERR_NOMEM;
    if (ctx) {
        mml_set_grad_enabled(ctx, false);
        mml_set_training(ctx, false);
    }
    for (int64_t r = 0; rc == MML_OK && r < ds->n; r++)
        if (!(out[r] = caption_row(m, d, ds, r, beam, ctx))) rc = mml_last_status() ? mml_last_status() : MML_ERR_NOMEM;
    mml_ctx_free(ctx);
    if (rc != MML_OK) {
        for (int64_t r = 0; out && r < ds->n; r++) mml_free(out[r]);
        mml_free(out);
        out = NULL;
    }
    *texts = out;
    return rc;
}

/* ---- evaluation ---- */

/* Words as small integers, for BLEU. */
typedef struct lexicon {
    char **words;
    int n, cap;
} lexicon;

static int32_t word_id(lexicon *lx, const char *w)
{
    for (int i = 0; i < lx->n; i++)
        if (!strcmp(lx->words[i], w)) return i;
    if (lx->n == lx->cap) {
        int cap = lx->cap ? 2 * lx->cap : 256;
        char **grown = mml_realloc(lx->words, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        lx->words = grown, lx->cap = cap;
    }
    if (!(lx->words[lx->n] = strdup(w))) return -1;
    return lx->n++;
}

/* text's words as ids (heap); *n their count, or -1 on failure. */
static int32_t *words_of(lexicon *lx, const char *text, int *n)
{
    mml_words w;
    *n = -1;
    if (mml_text_words(text, MML_WORDS_LOWER, &w) != MML_OK) return NULL;
    int32_t *ids = mml_malloc((size_t)(w.n + 1) * sizeof *ids);
    for (int i = 0; ids && i < w.n; i++)
        if ((ids[i] = word_id(lx, w.words[i])) < 0) {
            mml_free(ids);
            ids = NULL;
        }
    if (ids) *n = w.n;
    mml_words_free(&w);
    return ids;
}

typedef struct corpus {
    lexicon lx;
    int32_t **seqs;
    int *len;
    int64_t n, cap;
} corpus;

static mml_status corpus_add(corpus *c, const char *text)
{
    if (c->n == c->cap) {
        int64_t cap = c->cap ? 2 * c->cap : 1024;
        int32_t **s = mml_realloc(c->seqs, (size_t)cap * sizeof *s);
        if (s) c->seqs = s;
        int *l = mml_realloc(c->len, (size_t)cap * sizeof *l);
        if (l) c->len = l;
        if (!s || !l) return MML_ERR_NOMEM;
        c->cap = cap;
    }
    c->seqs[c->n] = words_of(&c->lx, text, &c->len[c->n]);
    return c->seqs[c->n++] ? MML_OK : mml_last_status() ? mml_last_status() : MML_ERR_NOMEM;
}

static void corpus_free(corpus *c)
{
    for (int64_t i = 0; i < c->n; i++) mml_free(c->seqs[i]);
    for (int i = 0; i < c->lx.n; i++) free(c->lx.words[i]);
    mml_free(c->lx.words);
    mml_free(c->seqs);
    mml_free(c->len);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The distinct training texts of each class, as references: refs->seqs
 * grouped by class, class c's from start[c] to start[c + 1]. */
static mml_status class_references(const mml_mm_data *d, corpus *refs, int64_t *start)
{
    const mml_manifest *mf = d->manifest[MML_SPLIT_TRAIN];
    const mml_dataset *ds = d->ds[MML_SPLIT_TRAIN];
    const char **texts = mml_malloc((size_t)ds->n * sizeof *texts);
    if (!texts) return MML_ERR_NOMEM;
    mml_status rc = MML_OK;
    for (int c = 0; c < d->n_classes && rc == MML_OK; c++) {
        int64_t n = 0;
        for (int64_t r = 0; r < ds->n; r++) {
            const mml_sample *s = &mf->samples[ds->source_row[r]];
            if (ds->label[r] == c && s->text) texts[n++] = s->text;
        }
        qsort(texts, (size_t)n, sizeof *texts, cmp_str);
        start[c] = refs->n;
        for (int64_t k = 0; k < n && rc == MML_OK; k++)
            if (k == 0 || strcmp(texts[k - 1], texts[k])) rc = corpus_add(refs, texts[k]);
    }
    start[d->n_classes] = refs->n;
    mml_free(texts);
    return rc;
}

/* Whether the words of phrase occur, in order and together, among those of
 * caption (both split as BLEU splits them, so "t-shirt" matches "t - shirt"). */
static bool says(const mml_words *caption, const char *phrase)
{
    mml_words p;
    bool found = false;
    if (mml_text_words(phrase, MML_WORDS_LOWER, &p) != MML_OK) return false;
    for (int i = 0; p.n && !found && i + p.n <= caption->n; i++) {
        int k = 0;
        while (k < p.n && !strcmp(caption->words[i + k], p.words[k])) k++;
        found = k == p.n;
    }
    mml_words_free(&p);
    return found;
}

static bool mentions_class(const mml_caption_model *m, const char *caption, int c)
{
    mml_words w;
    bool found = false;
    if (mml_text_words(caption, MML_WORDS_LOWER, &w) != MML_OK) return false;
    for (int k = 0; !found && m->mentions[c][k]; k++) found = says(&w, m->mentions[c][k]);
    mml_words_free(&w);
    return found;
}

static mml_status score(mml_caption_model *m, const mml_mm_data *d, const mml_dataset *ds, char **captions,
                        mml_caption_eval *out)
{
    corpus refs = { 0 }, hyps = { 0 };
    int64_t *start = mml_malloc((size_t)(d->n_classes + 1) * sizeof *start), *ref_start = mml_malloc((size_t)(ds->n + 1) * sizeof *ref_start);
    const int32_t **ref_seqs = NULL;
    int *ref_len = NULL;
    mml_status rc = start && ref_start ? class_references(d, &refs, start) : MML_ERR_NOMEM;
    hyps.lx = refs.lx; /* one lexicon for both */
    refs.lx = (lexicon){ 0 };
    int64_t total = 0, mentioned = 0;
    for (int64_t r = 0; rc == MML_OK && r < ds->n; r++) {
        rc = corpus_add(&hyps, captions[r]);
        total += start[ds->label[r] + 1] - start[ds->label[r]];
        if (m->mentions) mentioned += mentions_class(m, captions[r], ds->label[r]);
    }
    /* each hypothesis gets its class's references (copied pointers) */
    if (rc == MML_OK && (!(ref_seqs = mml_malloc((size_t)total * sizeof *ref_seqs)) || !(ref_len = mml_malloc((size_t)total * sizeof *ref_len))))
        rc = MML_ERR_NOMEM;
    for (int64_t r = 0, k = 0; rc == MML_OK && r < ds->n; r++) {
        ref_start[r] = k;
        for (int64_t j = start[ds->label[r]]; j < start[ds->label[r] + 1]; j++, k++) ref_seqs[k] = refs.seqs[j], ref_len[k] = refs.len[j];
        ref_start[r + 1] = k;
    }
    if (rc == MML_OK)
        rc = mml_bleu_corpus((const int32_t *const *)hyps.seqs, hyps.len, ds->n, ref_seqs, ref_len, ref_start, &out->bleu);
    out->mention_rate = m->mentions ? (double)mentioned / (double)ds->n : NAN;
    refs.lx = hyps.lx;
    hyps.lx = (lexicon){ 0 };
    corpus_free(&refs);
    corpus_free(&hyps);
    mml_free(ref_seqs);
    mml_free(ref_len);
    mml_free(start);
    mml_free(ref_start);
    return rc;
}

mml_status mml_caption_evaluate(mml_caption_model *m, const mml_mm_data *d, mml_data_split split, mml_caption_eval *out,
                                char **examples, int n_examples)
{
    const mml_dataset *ds = d->ds[split];
    memset(out, 0, sizeof *out);
    if (!ds || !ds->label) return mml_error(MML_ERR_ARG, "captioning: the split is missing or unlabelled");
    char **captions = NULL;
    mml_status rc = mml_caption_generate(m, d, ds, 0, &captions);
    if (rc == MML_OK) rc = score(m, d, ds, captions, out);
    out->loss = split_loss(m, ds);
    out->n = ds->n;
    for (int i = 0; rc == MML_OK && examples && i < n_examples; i++) examples[i] = i < ds->n ? strdup(captions[i]) : NULL;
    for (int64_t r = 0; captions && r < ds->n; r++) mml_free(captions[r]);
    mml_free(captions);
    return rc;
}

/* ---- files ---- */

mml_status mml_caption_model_save(mml_caption_model *m, const char *path, const char *config_json, const char *classes_json)
{
    return mml_params_save_model(m->ps, path, "mml-caption-1", config_json, classes_json);
}

static mml_status load_from(const mml_safetensors *st, const char *path, const mml_mm_data_options *opt,
                            mml_config **cfg, mml_mm_data *d, mml_caption_model **out)
{
    const char *format = mml_safetensors_meta(st, "mml.format"), *text = mml_safetensors_meta(st, "mml.config");
    if (!format || strcmp(format, "mml-caption-1") || !text)
        return mml_error(MML_ERR_FORMAT, "%s: not a captioning model", path);
    mml_tensor *vocab = mml_safetensors_tensor(st, "vocab", MML_F32);
    if (!vocab) return mml_last_status();
    int64_t n = vocab->numel - 1;
    int32_t *ids = mml_malloc((size_t)(n + 1) * sizeof *ids);
    mml_cfg_node root, data, model;
    bool mods[MML_MOD_COUNT] = { [MML_MOD_IMAGE] = true, [MML_MOD_TEXT] = true };
    mml_status rc = ids && n > 0 ? MML_OK : mml_error(MML_ERR_FORMAT, "%s: bad vocab", path);
    for (int64_t k = 0; rc == MML_OK && k < n; k++) ids[k] = (int32_t)mml_f32(vocab)[k + 1];
    if (rc == MML_OK) rc = mml_config_parse(text, path, cfg);
    if (rc == MML_OK) root = mml_config_root(*cfg);
    if (rc == MML_OK) rc = mml_cfg_object(&root, "data", true, &data);
    if (rc == MML_OK) rc = mml_cfg_object(&root, "model", true, &model);
    if (rc == MML_OK) rc = mml_mm_data_open_features(&data, "", mods, opt, d);
    if (rc == MML_OK) {
        cJSON *classes = cJSON_Parse(mml_safetensors_meta(st, "mml.classes") ? mml_safetensors_meta(st, "mml.classes") : "[]");
        d->n_classes = cJSON_GetArraySize(classes);
        cJSON_Delete(classes);
        rc = build(&model, d, 0, ids, n, out);
    }
    if (rc == MML_OK) rc = mml_params_load((*out)->ps, st, path);
    mml_free(ids);
    mml_tensor_free(vocab);
    return rc;
}

mml_status mml_caption_model_load(const char *path, const mml_mm_data_options *opt, mml_caption_model **out, mml_mm_data *d)
{
    mml_safetensors *st = NULL;
    mml_config *cfg = NULL;
    *out = NULL;
    memset(d, 0, sizeof *d);
    mml_status rc = mml_safetensors_map(path, &st);
    if (rc == MML_OK) rc = load_from(st, path, opt, &cfg, d, out);
    if (rc != MML_OK) {
        mml_caption_model_free(*out);
        *out = NULL;
        mml_mm_data_close(d);
    }
    mml_config_free(cfg);
    mml_safetensors_free(st);
    return rc;
}
