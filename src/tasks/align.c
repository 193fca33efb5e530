/* Cross-modal alignment: encoders into one normalised space, trained with a
 * ranking or contrastive objective; retrieval in every direction; transfer of
 * a classifier from one modality's embeddings to another's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mml/align.h"
#include "mml/alloc.h"
#include "mml/encoder.h"
#include "mml/loss.h"
#include "mml/model.h"
#include "mml/nn.h"
#include "mml/ops.h"
#include "mml/progress.h"
#include "mml/safetensors.h"
#include "tasks/fit.h"

typedef enum objective { OBJ_INFO_NCE = 0, OBJ_HINGE, OBJ_COSINE, OBJ_SUPCON } objective;
static const char *const g_objectives[] = { "info_nce", "hinge", "cosine", "supcon", NULL };

struct mml_align_model {
    mml_params *ps;
    int n;
    mml_modality mod[MML_MOD_COUNT];
    mml_encoder *enc[MML_MOD_COUNT]; /* Siamese: one encoder, at [0] */
    mml_nn_linear proj[MML_MOD_COUNT];
    bool shared;
    int64_t dim;
    objective obj;
    float margin;
    bool hardest;
    float temperature;     /* supcon */
    mml_tensor *log_scale; /* info_nce: ln(1 / temperature), [1] */
    mml_ctx *eval_ctx;
    const mml_mm_data *train_data; /* during mml_align_train, for validation */
};

mml_params *mml_align_model_params(mml_align_model *m) { return m->ps; }
int64_t mml_align_model_dim(const mml_align_model *m) { return m->dim; }
const char *mml_align_model_objective(const mml_align_model *m) { return g_objectives[m->obj]; }

int mml_align_model_modalities(const mml_align_model *m, mml_modality *mods)
{
    memcpy(mods, m->mod, (size_t)m->n * sizeof *mods);
    return m->n;
}

void mml_align_model_free(mml_align_model *m)
{
    if (!m) return;
    for (int i = 0; i < (m->shared ? 1 : m->n); i++) mml_encoder_free(m->enc[i]);
    mml_ctx_free(m->eval_ctx);
    mml_params_free(m->ps);
    mml_free(m);
}

static bool same_spec(const mml_feature_spec *a, const mml_feature_spec *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim || a->seq_axis != b->seq_axis) return false;
    for (int k = 0; k < a->ndim; k++)
        if (a->shape[k] != b->shape[k]) return false;
    return true;
}

/* Dual encoders, one per modality; Siamese: the first modality's encoder
 * ("encoders" then names it once per modality, identically) serves all. */
static mml_status build_encoders(mml_align_model *m, const mml_cfg_node *model, const mml_mm_data *d, uint64_t seed)
{
    mml_cfg_node encs, e;
    mml_status rc = mml_cfg_object(model, "encoders", true, &encs);
    for (int mo = 0; rc == MML_OK && mo < MML_MOD_COUNT; mo++) {
        const char *name = mml_modality_name((mml_modality)mo);
        if ((rc = mml_cfg_object(&encs, name, false, &e)) != MML_OK || !mml_cfg_present(&e)) continue;
        const mml_feature_spec *spec = &d->fz.spec[mo];
        if (!spec->enabled) return mml_cfg_error(&encs, name, "the data were opened without this modality");
        int i = m->n++;
        m->mod[i] = (mml_modality)mo;
        if (m->shared && i > 0) {
            if (!same_spec(spec, &d->fz.spec[m->mod[0]]))
                return mml_cfg_error(&encs, name, "a shared (Siamese) encoder needs every modality in the same form as %s",
                                     mml_modality_name(m->mod[0]));
            m->enc[i] = m->enc[0];
            continue;
        }
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s.", m->shared ? "shared" : name);
        rc = mml_encoder_build(&e, spec, m->ps, prefix, seed + 101u * (uint64_t)(mo + 1), &m->enc[i]);
    }
    if (rc == MML_OK && m->n < 2) rc = mml_cfg_error(model, "encoders", "alignment needs at least two modalities");
    return rc;
}

static mml_status build_projections(mml_align_model *m, uint64_t seed)
{
    mml_rng r;
    mml_rng_seed(&r, seed + 17);
    mml_status rc = MML_OK;
    for (int i = 0; rc == MML_OK && i < (m->shared ? 1 : m->n); i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "proj.%s", m->shared ? "shared" : mml_modality_name(m->mod[i]));
        rc = mml_nn_linear_init(&m->proj[i], m->ps, prefix, mml_encoder_dim(m->enc[i]), m->dim, true, &r);
    }
    for (int i = 1; m->shared && i < m->n; i++) m->proj[i] = m->proj[0];
    return rc;
}

static mml_status read_objective(mml_align_model *m, const mml_cfg_node *model)
{
    mml_cfg_node n;
    static const char *const keys[] = { "type", "temperature", "learn_temperature", "margin", "hardest", NULL };
    int kind = OBJ_INFO_NCE;
    double t = 0.07, margin = 0.2;
    bool learn = true, hardest = false;
    mml_status rc = mml_cfg_object(model, "objective", false, &n);
    if (rc == MML_OK && mml_cfg_present(&n)) {
        rc = mml_cfg_check_keys(&n, keys);
        if (rc == MML_OK) rc = mml_cfg_choice(&n, "type", g_objectives, OBJ_INFO_NCE, &kind);
        if (rc == MML_OK) rc = mml_cfg_float(&n, "temperature", t, &t);
        if (rc == MML_OK) rc = mml_cfg_check_range(&n, "temperature", t, 0.01, 10.0);
        if (rc == MML_OK) rc = mml_cfg_bool(&n, "learn_temperature", learn, &learn);
        if (rc == MML_OK) rc = mml_cfg_float(&n, "margin", kind == OBJ_COSINE ? 0.0 : margin, &margin);
        if (rc == MML_OK) rc = mml_cfg_check_range(&n, "margin", margin, -1.0, 2.0);
        if (rc == MML_OK) rc = mml_cfg_bool(&n, "hardest", hardest, &hardest);
    } else if (rc == MML_OK) {
        margin = 0.0;
    }
    if (rc != MML_OK) return rc;
    m->obj = (objective)kind, m->margin = (float)margin, m->hardest = hardest, m->temperature = (float)t;
    if (m->obj != OBJ_INFO_NCE) return MML_OK;
    /* CLIP: logits scaled by exp(log_scale), learned, starting at 1 / temperature */
    if (!(m->log_scale = mml_params_add(m->ps, "logit_scale", 1, (int64_t[]){ 1 }))) return mml_last_status();
    mml_f32(m->log_scale)[0] = (float)log(1.0 / t);
    if (!learn) mml_params_freeze(m->ps, "logit_scale", true);
    return MML_OK;
}

mml_status mml_align_model_build(const mml_cfg_node *model, const mml_mm_data *d, uint64_t seed, mml_align_model **out)
{
    static const char *const keys[] = { "encoders", "embed", "shared", "objective", NULL };
    *out = NULL;
    mml_status rc = mml_cfg_check_keys(model, keys);
    if (rc != MML_OK) return rc;
    mml_align_model *m = mml_calloc(1, sizeof *m);
    if (!m || !(m->ps = mml_params_create())) {
        mml_free(m);
        return MML_ERR_NOMEM;
    }
    int64_t dim = 0;
    rc = mml_cfg_int(model, "embed", 64, &dim);
    if (rc == MML_OK) rc = mml_cfg_check_range(model, "embed", (double)dim, 1, 65536);
    m->dim = dim;
    if (rc == MML_OK) rc = mml_cfg_bool(model, "shared", false, &m->shared);
    if (rc == MML_OK) rc = build_encoders(m, model, d, seed);
    if (rc == MML_OK) rc = build_projections(m, seed);
    if (rc == MML_OK) rc = read_objective(m, model);
    if (rc == MML_OK && m->obj == OBJ_SUPCON && d->ds[MML_SPLIT_TRAIN] && !d->ds[MML_SPLIT_TRAIN]->label)
        rc = mml_cfg_error(model, "objective", "supcon draws its positives from the labels, and the data have none");
    if (rc != MML_OK) {
        mml_align_model_free(m);
        return rc;
    }
    *out = m;
    return MML_OK;
}

/* ---- forward and loss ---- */

/* The normalised embedding [B, dim] of the model's modality i. */
static mml_tensor *embed(mml_ctx *ctx, mml_align_model *m, int i, const mml_batch *b)
{
    mml_modality mo = m->mod[i];
    mml_encoding enc;
    if (mml_encoder_forward(ctx, m->enc[i], b->x[mo], b->length[mo], &enc) != MML_OK) return NULL;
    mml_tensor *z = mml_nn_linear_forward(ctx, &m->proj[i], enc.pooled);
    return z ? mml_l2_normalize(ctx, z, 1, 1e-12f) : NULL;
}

/* Mismatched pairs for the cosine objective: b shifted by one row. */
static mml_tensor *cosine_pairs(mml_ctx *ctx, mml_tensor *za, mml_tensor *zb, float margin)
{
    int64_t B = za->shape[0];
    mml_tensor *parts[2] = { mml_slice(ctx, zb, 0, 1, B, 1), mml_slice(ctx, zb, 0, 0, 1, 1) };
    mml_tensor *x1[2] = { za, za }, *x2[2] = { zb, parts[0] && parts[1] ? mml_concat(ctx, parts, 2, 0) : NULL };
    mml_tensor *y = mml_new(ctx, MML_F32, 1, (int64_t[]){ 2 * B });
    if (!x2[1] || !y) return NULL;
    for (int64_t k = 0; k < 2 * B; k++) mml_f32(y)[k] = k < B ? 1.0f : -1.0f;
    return mml_loss_cosine_embedding(ctx, mml_concat(ctx, x1, 2, 0), mml_concat(ctx, x2, 2, 0), y, margin);
}

static mml_tensor *pair_loss(mml_ctx *ctx, const mml_align_model *m, mml_tensor *za, mml_tensor *zb, mml_tensor *labels)
{
    switch (m->obj) {
    case OBJ_SUPCON: return mml_loss_supcon(ctx, za, zb, labels, m->temperature);
    case OBJ_INFO_NCE: return mml_loss_info_nce(ctx, za, zb, m->log_scale);
    case OBJ_HINGE: return mml_loss_hinge_ranking(ctx, za, zb, m->margin, m->hardest);
    case OBJ_COSINE: return cosine_pairs(ctx, za, zb, m->margin);
    }
    return NULL;
}

/* Mean of the objective over every pair of modalities. */
static mml_tensor *batch_loss(mml_ctx *ctx, mml_align_model *m, const mml_batch *b)
{
    mml_tensor *z[MML_MOD_COUNT], *loss = NULL;
    for (int i = 0; i < m->n; i++)
        if (!(z[i] = embed(ctx, m, i, b))) return NULL;
    int pairs = 0;
    for (int i = 0; i < m->n; i++)
        for (int j = i + 1; j < m->n; j++, pairs++) {
            mml_tensor *l = pair_loss(ctx, m, z[i], z[j], b->label);
            if (!l) return NULL;
            loss = loss ? mml_add(ctx, loss, l) : l;
        }
    return pairs > 1 && loss ? mml_mul_scalar(ctx, loss, 1.0f / (float)pairs) : loss;
}

/* ---- training ---- */

/* Rows of a split that have every modality of the model. */
static int64_t complete_rows(const mml_align_model *m, const mml_dataset *ds, int64_t *rows)
{
    int64_t n = 0;
    for (int64_t r = 0; r < ds->n; r++) {
        bool all = true;
        for (int i = 0; i < m->n; i++) all &= ds->present[m->mod[i]][r] != 0;
        if (all) rows[n++] = r;
    }
    return n;
}

static double val_recall1(mml_align_model *m, const mml_mm_data *d)
{
    mml_align_eval ev;
    if (!d->ds[MML_SPLIT_VAL] || mml_align_evaluate(m, d, MML_SPLIT_VAL, &ev) != MML_OK) return NAN;
    double s = 0;
    for (int k = 0; k < ev.n; k++) s += ev.dir[k].category.recall[0];
    return s / ev.n;
}

static mml_tensor *train_loss(mml_ctx *ctx, void *user, const mml_batch *b, const int64_t *rows)
{
    (void)rows;
    return batch_loss(ctx, user, b);
}

/* CLIP clamps the logit scale at 100 (and keeps it positive). */
static void clamp_scale(void *user)
{
    mml_align_model *m = user;
    if (!m->log_scale) return;
    float *v = mml_f32(m->log_scale);
    *v = fminf(fmaxf(*v, 0.0f), 4.6051702f);
}

static double validate(void *user) { return val_recall1(user, ((mml_align_model *)user)->train_data); }

mml_status mml_align_train(mml_align_model *m, const mml_mm_data *d, const mml_train_options *o, mml_align_history *h)
{
    memset(h, 0, sizeof *h);
    const mml_dataset *ds = d->ds[MML_SPLIT_TRAIN];
    int64_t *rows = mml_malloc((size_t)ds->n * sizeof *rows);
    if (!rows) return MML_ERR_NOMEM;
    m->train_data = d;
    fit_task t = { .ps = m->ps, .ds = ds, .rows = rows, .n = complete_rows(m, ds, rows), .full_batches = true,
                   .loss = train_loss, .after_step = clamp_scale, .validate = validate, .val_name = "val_recall1", .user = m };
    fit_result res = { 0 };
    mml_status rc = t.n >= 2 ? fit_run(&t, o, h->train_loss, h->val_recall1, (int)(sizeof h->train_loss / sizeof h->train_loss[0]), &res)
                             : mml_error(MML_ERR_ARG, "training split: fewer than 2 samples have every modality of the model");
    h->epochs = res.epochs;
    h->train_seconds = res.seconds;
    h->samples_per_second = res.samples_per_second;
    h->train_bytes = res.train_bytes;
    m->train_data = NULL;
    mml_free(rows);
    return rc;
}

/* ---- embeddings and retrieval ---- */

static int model_index(const mml_align_model *m, mml_modality mo)
{
    for (int i = 0; i < m->n; i++)
        if (m->mod[i] == mo) return i;
    return -1;
}

mml_status mml_align_embed_dataset(mml_align_model *m, const mml_mm_data *d, const mml_dataset *ds, mml_modality mo,
                                   const mml_mm_perturb *p, float *out)
{
    int i = model_index(m, mo);
    if (i < 0) return mml_error(MML_ERR_ARG, "embed: the model has no %s encoder", mml_modality_name(mo));
    if (!m->eval_ctx && !(m->eval_ctx = mml_ctx_create())) return MML_ERR_NOMEM;
    mml_ctx *ctx = m->eval_ctx;
    mml_set_grad_enabled(ctx, false);
    mml_set_training(ctx, false);
    mml_rng r;
    mml_rng_seed(&r, p ? p->seed : 0);
    const int64_t B = 256;
    int64_t rows[256];
    mml_status rc = MML_OK;
    for (int64_t s = 0; s < ds->n && rc == MML_OK; s += B) {
        int64_t nb = s + B <= ds->n ? B : ds->n - s;
        for (int64_t k = 0; k < nb; k++) rows[k] = s + k;
        mml_ctx_reset(ctx);
        mml_batch b;
        if ((rc = mml_dataset_batch(ctx, ds, rows, nb, &b)) != MML_OK) break;
        if (p) mml_mm_perturb_batch(d, &b, &mo, 1, p, &r);
        mml_tensor *z = embed(ctx, m, i, &b);
        if (!z) rc = mml_last_status() ? mml_last_status() : MML_ERR_NOMEM;
        else memcpy(out + s * m->dim, z->data, (size_t)(nb * m->dim) * sizeof *out);
    }
    mml_ctx_trim(ctx); /* idle until the next embedding pass: training must not pay for its pages */
    return rc;
}

mml_status mml_align_embed(mml_align_model *m, const mml_mm_data *d, mml_data_split split, mml_modality mo,
                           const mml_mm_perturb *p, float *out)
{
    if (!d->ds[split]) return mml_error(MML_ERR_ARG, "embed: the data have no such split");
    return mml_align_embed_dataset(m, d, d->ds[split], mo, p, out);
}

/* Rows of ds with modality mo, their embeddings packed into emb. */
static int64_t pack_present(const mml_dataset *ds, mml_modality mo, const float *all, int64_t dim, float *emb, int64_t *rows)
{
    int64_t n = 0;
    for (int64_t r = 0; r < ds->n; r++)
        if (ds->present[mo][r]) {
            memcpy(emb + n * dim, all + r * dim, (size_t)dim * sizeof *emb);
            rows[n++] = r;
        }
    return n;
}

static void score(const float *q, int64_t nq, const float *g, int64_t ng, int64_t dim, float *s)
{
    for (int64_t i = 0; i < nq; i++)
        for (int64_t j = 0; j < ng; j++) {
            float acc = 0;
            for (int64_t k = 0; k < dim; k++) acc += q[i * dim + k] * g[j * dim + k];
            s[i * ng + j] = acc;
        }
}

typedef struct side {
    float *emb;
    int64_t *rows, n;
    int32_t *inst, *cat;
} side;

static mml_status side_init(side *sd, const mml_dataset *ds, mml_modality mo, const float *all, int64_t dim)
{
    sd->emb = mml_malloc((size_t)(ds->n * dim) * sizeof *sd->emb);
    sd->rows = mml_malloc((size_t)ds->n * sizeof *sd->rows);
    sd->inst = mml_malloc((size_t)ds->n * sizeof *sd->inst);
    sd->cat = mml_malloc((size_t)ds->n * sizeof *sd->cat);
    if (!sd->emb || !sd->rows || !sd->inst || !sd->cat) return MML_ERR_NOMEM;
    sd->n = pack_present(ds, mo, all, dim, sd->emb, sd->rows);
    for (int64_t k = 0; k < sd->n; k++) {
        sd->inst[k] = (int32_t)sd->rows[k];
        sd->cat[k] = ds->label ? ds->label[sd->rows[k]] : (int32_t)sd->rows[k];
    }
    return MML_OK;
}

static void side_free(side *sd)
{
    mml_free(sd->emb);
    mml_free(sd->rows);
    mml_free(sd->inst);
    mml_free(sd->cat);
}

static mml_status direction(const side *q, const side *g, int64_t dim, mml_align_direction *out)
{
    if ((double)q->n * (double)g->n > (double)(1LL << 28))
        return mml_error(MML_ERR_ARG, "retrieval: %lld queries x %lld items is too large to score at once",
                         (long long)q->n, (long long)g->n);
    float *s = mml_malloc((size_t)(q->n * g->n) * sizeof *s);
    if (!s) return MML_ERR_NOMEM;
    score(q->emb, q->n, g->emb, g->n, dim, s);
    mml_status rc = mml_retrieval_evaluate(s, q->n, g->n, q->inst, g->inst, &out->instance);
    if (rc == MML_OK) rc = mml_retrieval_evaluate(s, q->n, g->n, q->cat, g->cat, &out->category);
    mml_free(s);
    return rc;
}

mml_status mml_align_evaluate(mml_align_model *m, const mml_mm_data *d, mml_data_split split, mml_align_eval *out)
{
    memset(out, 0, sizeof *out);
    const mml_dataset *ds = d->ds[split];
    if (!ds) return mml_error(MML_ERR_ARG, "evaluate: the data have no such split");
    double t0 = mml_now();
    float *all = mml_malloc((size_t)(ds->n * m->dim) * sizeof *all);
    side sd[MML_MOD_COUNT] = { 0 };
    mml_status rc = all ? MML_OK : MML_ERR_NOMEM;
    for (int i = 0; rc == MML_OK && i < m->n; i++) {
        rc = mml_align_embed(m, d, split, m->mod[i], NULL, all);
        if (rc == MML_OK) rc = side_init(&sd[i], ds, m->mod[i], all, m->dim);
    }
    for (int i = 0; rc == MML_OK && i < m->n; i++)
        for (int j = 0; rc == MML_OK && j < m->n; j++) {
            if (i == j) continue;
            mml_align_direction *dir = &out->dir[out->n++];
            dir->query = m->mod[i], dir->gallery = m->mod[j];
            rc = direction(&sd[i], &sd[j], m->dim, dir);
        }
    for (int i = 0; i < m->n; i++) side_free(&sd[i]);
    mml_free(all);
    out->seconds = mml_now() - t0;
    return rc;
}

/* ---- cross-modal transfer ---- */

/* Embeddings and labels of a split's samples with modality mo (or, under a
 * perturbation, every sample: one whose `mo` it removed is still a test case). */
static mml_status embed_labelled(mml_align_model *m, const mml_mm_data *d, mml_data_split split, mml_modality mo,
                                 const mml_mm_perturb *p, mml_tensor **x, mml_tensor **y)
{
    const mml_dataset *ds = d->ds[split];
    *x = *y = NULL;
    float *all = mml_malloc((size_t)(ds->n * m->dim) * sizeof *all);
    mml_status rc = all ? mml_align_embed(m, d, split, mo, p, all) : MML_ERR_NOMEM;
    int64_t n = 0;
    for (int64_t r = 0; r < ds->n; r++) n += ds->present[mo][r] != 0;
    if (rc == MML_OK && (!ds->label || n == 0))
        rc = mml_error(MML_ERR_ARG, "transfer: the %s split has no labelled %s samples", split == MML_SPLIT_TRAIN ? "training" : "test",
                       mml_modality_name(mo));
    if (rc == MML_OK && !(*x = mml_tensor_create(MML_F32, 2, (int64_t[]){ n, m->dim }, false))) rc = MML_ERR_NOMEM;
    if (rc == MML_OK && !(*y = mml_tensor_create(MML_I32, 1, (int64_t[]){ n }, false))) rc = MML_ERR_NOMEM;
    for (int64_t r = 0, k = 0; rc == MML_OK && r < ds->n; r++)
        if (ds->present[mo][r]) {
            memcpy(mml_f32(*x) + k * m->dim, all + r * m->dim, (size_t)m->dim * sizeof *all);
            mml_i32(*y)[k++] = ds->label[r];
        }
    mml_free(all);
    return rc;
}

static mml_status linear_probe(int64_t dim, int n_classes, uint64_t seed, mml_model **out)
{
    char json[160];
    snprintf(json, sizeof json, "{\"input\": [%lld], \"layers\": [{\"type\": \"linear\", \"out\": %d}]}", (long long)dim,
             n_classes);
    mml_config *c = NULL;
    mml_status rc = mml_config_parse(json, "transfer probe", &c);
    mml_cfg_node root = mml_config_root(c);
    if (rc == MML_OK) rc = mml_model_build(&root, seed, out);
    mml_config_free(c);
    return rc;
}

mml_status mml_align_probe_fit(mml_align_model *m, const mml_mm_data *d, mml_modality from, uint64_t seed,
                               mml_model **probe)
{
    mml_tensor *x, *y;
    *probe = NULL;
    mml_status rc = embed_labelled(m, d, MML_SPLIT_TRAIN, from, NULL, &x, &y);
    if (rc == MML_OK) rc = linear_probe(m->dim, d->n_classes, seed, probe);
    if (rc == MML_OK) {
        mml_train_options o = mml_train_defaults();
        o.epochs = 20;
        o.batch_size = 64;
        o.optim = mml_optim_defaults(MML_OPTIM_ADAM);
        o.optim.lr = 1e-2f;
        o.val_fraction = 0;
        o.seed = seed;
        mml_train_result res;
        rc = mml_train_classifier(*probe, x, y, d->n_classes, &o, &res);
    }
    if (rc != MML_OK) {
        mml_model_free(*probe);
        *probe = NULL;
    }
    mml_tensor_free(x);
    mml_tensor_free(y);
    return rc;
}

/* The prompts through d's featurizer. */
static mml_status prompt_features(const mml_mm_data *d, const char *const *prompts, int n, mml_manifest **mf, mml_dataset **ds)
{
    mml_mm_data_options opt = { MML_ON_ERROR_FAIL, false, NULL };
    mml_status rc = mml_manifest_of_values(MML_MOD_TEXT, prompts, n, mf);
    return rc == MML_OK ? mml_mm_data_features_of(d, *mf, &opt, ds) : rc;
}

mml_status mml_align_prompt_classifier(mml_align_model *m, const mml_mm_data *d, const char *const *prompts, int n,
                                       mml_model **probe)
{
    mml_manifest *mf = NULL;
    mml_dataset *ds = NULL;
    *probe = NULL;
    if (n != d->n_classes) return mml_error(MML_ERR_ARG, "prompts: %d given for %d classes", n, d->n_classes);
    if (model_index(m, MML_MOD_TEXT) < 0) return mml_error(MML_ERR_ARG, "prompts: the model has no text encoder");
    mml_status rc = prompt_features(d, prompts, n, &mf, &ds);
    if (rc == MML_OK) rc = linear_probe(m->dim, n, 0, probe);
    mml_tensor *w = *probe ? mml_params_find(mml_model_params(*probe), "0.weight") : NULL;
    mml_tensor *b = *probe ? mml_params_find(mml_model_params(*probe), "0.bias") : NULL;
    if (rc == MML_OK) rc = mml_align_embed_dataset(m, d, ds, MML_MOD_TEXT, NULL, mml_f32(w)); /* rows: class embeddings */
    if (rc == MML_OK) memset(b->data, 0, (size_t)n * sizeof(float));
    if (rc != MML_OK) {
        mml_model_free(*probe);
        *probe = NULL;
    }
    mml_dataset_free(ds);
    mml_manifest_free(mf);
    return rc;
}

mml_status mml_align_probe_evaluate(mml_align_model *m, mml_model *probe, const mml_mm_data *d, mml_modality to,
                                    const mml_mm_perturb *p, mml_confusion *cm)
{
    mml_tensor *x = NULL, *y = NULL;
    double loss;
    mml_status rc = mml_confusion_init(cm, d->n_classes);
    if (rc == MML_OK) rc = embed_labelled(m, d, MML_SPLIT_TEST, to, p, &x, &y);
    if (rc == MML_OK) rc = mml_evaluate_classifier(probe, x, y, NULL, x->shape[0], 256, &loss, cm, NULL);
    if (rc != MML_OK) mml_confusion_free(cm);
    mml_tensor_free(x);
    mml_tensor_free(y);
    return rc;
}

static mml_status probe_accuracy(mml_align_model *m, mml_model *probe, const mml_mm_data *d, mml_modality to, double *acc)
{
    mml_confusion cm;
    mml_status rc = mml_align_probe_evaluate(m, probe, d, to, NULL, &cm);
    if (rc != MML_OK) return rc;
    *acc = mml_metrics_compute(&cm, NULL).accuracy;
    mml_confusion_free(&cm);
    return MML_OK;
}

mml_status mml_align_transfer(mml_align_model *m, const mml_mm_data *d, mml_modality from, mml_modality to,
                              uint64_t seed, double *acc_to, double *acc_from)
{
    mml_model *probe;
    mml_status rc = mml_align_probe_fit(m, d, from, seed, &probe);
    if (rc == MML_OK) rc = probe_accuracy(m, probe, d, to, acc_to);
    if (rc == MML_OK) rc = probe_accuracy(m, probe, d, from, acc_from);
    mml_model_free(probe);
    return rc;
}

mml_status mml_align_model_save(mml_align_model *m, const char *path, const char *config_json, const char *classes_json)
{
    return mml_params_save_model(m->ps, path, "mml-align-1", config_json, classes_json);
}

static mml_status open_saved(const mml_safetensors *st, const char *path, const mml_mm_data_options *opt, bool splits,
                             mml_config **cfg, mml_mm_data *d, mml_align_model **out)
{
    const char *format = mml_safetensors_meta(st, "mml.format"), *text = mml_safetensors_meta(st, "mml.config");
    if (!format || strcmp(format, "mml-align-1") || !text)
        return mml_error(MML_ERR_FORMAT, "%s: not an aligned (retrieval) model: its mml.format is %s", path,
                         format ? format : "missing");
    mml_cfg_node root, data, model;
    bool mods[MML_MOD_COUNT];
    mml_status rc = mml_config_parse(text, path, cfg);
    if (rc == MML_OK) root = mml_config_root(*cfg);
    if (rc == MML_OK) rc = mml_cfg_object(&root, "data", true, &data);
    if (rc == MML_OK) rc = mml_cfg_object(&root, "model", true, &model);
    if (rc == MML_OK) rc = mml_mm_modalities(&model, mods);
    if (rc == MML_OK) rc = splits ? mml_mm_data_open(&data, "", mods, opt, d) : mml_mm_data_open_features(&data, "", mods, opt, d);
    if (rc == MML_OK) rc = mml_align_model_build(&model, d, 0, out);
    if (rc == MML_OK) rc = mml_params_load((*out)->ps, st, path);
    return rc;
}

mml_status mml_align_model_load(const char *path, const mml_mm_data_options *opt, bool splits, mml_align_model **out,
                                mml_mm_data *d)
{
    mml_safetensors *st = NULL;
    mml_config *cfg = NULL;
    *out = NULL;
    memset(d, 0, sizeof *d);
    mml_status rc = mml_safetensors_map(path, &st);
    if (rc == MML_OK) rc = open_saved(st, path, opt, splits, &cfg, d, out);
    if (rc != MML_OK) {
        mml_align_model_free(*out);
        *out = NULL;
        mml_mm_data_close(d);
    }
    mml_config_free(cfg);
    mml_safetensors_free(st);
    return rc;
}

void mml_align_model_fingerprint(const mml_align_model *m, char out[17])
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the names and bytes of the weights */
    for (int i = 0; i < mml_params_count(m->ps); i++) {
        const mml_tensor *t = mml_params_at(m->ps, i);
        for (const char *c = t->name; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ULL;
        const uint8_t *b = t->data;
        for (size_t k = 0; k < (size_t)t->numel * sizeof(float); k++) h = (h ^ b[k]) * 1099511628211ULL;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}
