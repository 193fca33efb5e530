/* mml embed / mml search: an index of one modality's embeddings in an aligned
 * (retrieval) model's space, and nearest-neighbour search in it (exact, or
 * FAISS's IVF or HNSW) with a query of any of the model's modalities. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "mml/align.h"
#include "mml/alloc.h"
#include "mml/knn.h"
#include "mml/safetensors.h"
#include "mml/threads.h"

static const char *EMBED_USAGE =
    "mml embed MODEL.safetensors MANIFEST.jsonl --modality image|audio|text --out EMB.safetensors\n"
    "                 [--on-error skip|fail] [--threads N]";
static const char *SEARCH_USAGE =
    "mml search MODEL.safetensors EMB.safetensors (--text \"...\" | --audio F.wav | --image F.png) [--k N] [--json]\n"
    "                  [--index exact|ivf|hnsw] [--nprobe N] [--ef-search N]";

/* ---- embed ---- */

static char *ids_json(const mml_dataset *ds, const mml_manifest *mf, mml_modality mo, int64_t *n)
{
    cJSON *a = cJSON_CreateArray();
    *n = 0;
    for (int64_t r = 0; a && r < ds->n; r++) {
        if (!ds->present[mo][r]) continue;
        const mml_sample *s = &mf->samples[ds->source_row[r]];
        char line[32];
        snprintf(line, sizeof line, "line %d", s->line);
        cJSON_AddItemToArray(a, cJSON_CreateString(s->id ? s->id : line));
        (*n)++;
    }
    char *text = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return text;
}

static mml_status write_index(mml_align_model *m, const mml_dataset *ds, const mml_manifest *mf, mml_modality mo,
                              const float *all, const char *out)
{
    int64_t n, dim = mml_align_model_dim(m);
    char *ids = ids_json(ds, mf, mo, &n), fp[17];
    if (!ids) return MML_ERR_NOMEM;
    if (n == 0) {
        free(ids);
        return mml_error(MML_ERR_FORMAT, "%s: no sample has %s", mf->path, mml_modality_name(mo));
    }
    float *emb = mml_malloc((size_t)(n * dim) * sizeof *emb);
    mml_st_writer *w = mml_st_writer_create();
    mml_status rc = emb && w ? MML_OK : MML_ERR_NOMEM;
    for (int64_t r = 0, k = 0; rc == MML_OK && r < ds->n; r++)
        if (ds->present[mo][r]) memcpy(emb + dim * k++, all + r * dim, (size_t)dim * sizeof *emb);
    mml_align_model_fingerprint(m, fp);
    if (rc == MML_OK) rc = mml_st_writer_add_raw(w, "embeddings", MML_F32, 2, (int64_t[]){ n, dim }, emb);
    if (rc == MML_OK) rc = mml_st_writer_meta(w, "mml.format", "mml-index-1");
    if (rc == MML_OK) rc = mml_st_writer_meta(w, "mml.model", fp);
    if (rc == MML_OK) rc = mml_st_writer_meta(w, "mml.modality", mml_modality_name(mo));
    if (rc == MML_OK) rc = mml_st_writer_meta(w, "mml.ids", ids);
    if (rc == MML_OK) rc = mml_st_writer_save(w, out);
    if (rc == MML_OK) fprintf(stderr, "%lld %s embeddings (%lld-d) written to %s\n", (long long)n, mml_modality_name(mo),
                              (long long)dim, out);
    mml_st_writer_free(w);
    mml_free(emb);
    free(ids);
    return rc;
}

static mml_status embed_manifest(const char *model_path, const char *manifest, mml_modality mo, mml_on_error on_error,
                                 const char *out)
{
    mml_mm_data_options opt = { on_error, true, NULL };
    mml_mm_data d;
    mml_align_model *m = NULL;
    mml_manifest *mf = NULL;
    mml_dataset *ds = NULL;
    float *all = NULL;
    mml_status rc = mml_align_model_load(model_path, &opt, false, &m, &d);
    if (rc == MML_OK && !d.fz.spec[mo].enabled)
        rc = mml_error(MML_ERR_ARG, "%s: the model has no %s encoder", model_path, mml_modality_name(mo));
    if (rc == MML_OK) rc = mml_manifest_load(manifest, &mf);
    if (rc == MML_OK) rc = mml_mm_data_features_of(&d, mf, &opt, &ds);
    if (rc == MML_OK && !(all = mml_malloc((size_t)(ds->n * mml_align_model_dim(m)) * sizeof *all))) rc = MML_ERR_NOMEM;
    if (rc == MML_OK) rc = mml_align_embed_dataset(m, &d, ds, mo, NULL, all);
    if (rc == MML_OK) rc = write_index(m, ds, mf, mo, all, out);
    if (rc == MML_OK && ds->n_skipped)
        fprintf(stderr, "skipped %lld unreadable samples (first: %s)\n", (long long)ds->n_skipped, ds->skipped[0]);
    mml_free(all);
    mml_dataset_free(ds);
    mml_manifest_free(mf);
    mml_align_model_free(m);
    mml_mm_data_close(&d);
    return rc;
}

int cmd_embed(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nEmbeds every sample of a manifest that has the modality with an aligned (\"task\": "
               "\"retrieval\") model, for mml search. Writes EMB.safetensors: \"embeddings\" [n, dim] with the ids and "
               "the model's fingerprint in its metadata.\n", EMBED_USAGE);
        return CLI_OK;
    }
    const char *model = NULL, *manifest = NULL, *out = NULL;
    int mo = -1;
    mml_on_error on_error = MML_ON_ERROR_FAIL;
    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc;
        if (!strcmp(argv[i], "--modality") && has) {
            if ((mo = mml_modality_from_name(argv[++i])) < 0) return cli_usage(EMBED_USAGE, "--modality: image, audio or text");
        } else if (!strcmp(argv[i], "--out") && has) out = argv[++i];
        else if (!strcmp(argv[i], "--on-error") && has) {
            const char *v = argv[++i];
            if (strcmp(v, "skip") && strcmp(v, "fail")) return cli_usage(EMBED_USAGE, "--on-error: skip or fail");
            on_error = !strcmp(v, "skip") ? MML_ON_ERROR_SKIP : MML_ON_ERROR_FAIL;
        } else if (!strcmp(argv[i], "--threads") && has) {
            int t = atoi(argv[++i]);
            if (t < 1) return cli_usage(EMBED_USAGE, "--threads needs a positive integer");
            mml_threads_set(t);
        } else if (argv[i][0] == '-') return cli_usage(EMBED_USAGE, "unexpected argument");
        else if (!model) model = argv[i];
        else if (!manifest) manifest = argv[i];
        else return cli_usage(EMBED_USAGE, "unexpected argument");
    }
    if (!model || !manifest || mo < 0 || !out) return cli_usage(EMBED_USAGE, "needs MODEL, MANIFEST, --modality and --out");
    return embed_manifest(model, manifest, (mml_modality)mo, on_error, out) == MML_OK ? CLI_OK : cli_fail(NULL);
}

/* ---- search ---- */

typedef struct index {
    mml_safetensors *st;
    mml_tensor *emb; /* [n, dim] */
    cJSON *ids;
} index_t;

static void index_free(index_t *x)
{
    mml_tensor_free(x->emb);
    cJSON_Delete(x->ids);
    mml_safetensors_free(x->st);
}

static mml_status index_open(const char *path, mml_align_model *m, index_t *x)
{
    memset(x, 0, sizeof *x);
    mml_status rc = mml_safetensors_map(path, &x->st);
    if (rc != MML_OK) return rc;
    const char *format = mml_safetensors_meta(x->st, "mml.format"), *fp = mml_safetensors_meta(x->st, "mml.model");
    const char *ids = mml_safetensors_meta(x->st, "mml.ids");
    char mine[17];
    mml_align_model_fingerprint(m, mine);
    if (!format || strcmp(format, "mml-index-1") || !fp || !ids)
        return mml_error(MML_ERR_FORMAT, "%s: not an index made by mml embed", path);
    if (!(x->emb = mml_safetensors_tensor(x->st, "embeddings", MML_F32))) return mml_last_status();
    x->ids = cJSON_Parse(ids);
    int64_t n = x->emb->ndim == 2 ? x->emb->shape[0] : 0;
    if (x->emb->ndim != 2 || !cJSON_IsArray(x->ids) || cJSON_GetArraySize(x->ids) != n)
        return mml_error(MML_ERR_FORMAT, "%s: embeddings and ids do not match", path);
    if (n == 0) return mml_error(MML_ERR_FORMAT, "%s: the index is empty", path);
    if (x->emb->shape[1] != mml_align_model_dim(m))
        return mml_error(MML_ERR_ARG, "%s: %lld-d embeddings, but the model's space is %lld-d", path,
                         (long long)x->emb->shape[1], (long long)mml_align_model_dim(m));
    if (strcmp(fp, mine))
        return mml_error(MML_ERR_ARG, "%s: made with another model (fingerprint %s; this model's is %s): run mml embed again",
                         path, fp, mine);
    return MML_OK;
}

static mml_status embed_query(mml_align_model *m, mml_mm_data *d, mml_modality mo, const char *value, float *q)
{
    mml_manifest *mf = NULL;
    mml_dataset *ds = NULL;
    mml_mm_data_options opt = { MML_ON_ERROR_FAIL, false, NULL };
    if (!d->fz.spec[mo].enabled) return mml_error(MML_ERR_ARG, "the model has no %s encoder", mml_modality_name(mo));
    if (mo != MML_MOD_TEXT && access(value, R_OK) != 0) return mml_error(MML_ERR_IO, "%s: %s", value, strerror(errno));
    mml_status rc = mml_manifest_of_values(mo, &value, 1, &mf);
    if (rc == MML_OK) rc = mml_mm_data_features_of(d, mf, &opt, &ds);
    if (rc == MML_OK) rc = mml_align_embed_dataset(m, d, ds, mo, NULL, q);
    mml_dataset_free(ds);
    mml_manifest_free(mf);
    return rc;
}

static void print_hits(const int64_t *rows, const float *scores, int n, const index_t *x, bool json)
{
    cJSON *a = json ? cJSON_CreateArray() : NULL;
    for (int i = 0; i < n; i++) {
        const char *id = cJSON_GetStringValue(cJSON_GetArrayItem(x->ids, (int)rows[i]));
        if (!json) printf("%2d  %.4f  %s\n", i + 1, scores[i], id);
        else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", id);
            cJSON_AddNumberToObject(o, "score", scores[i]);
            cJSON_AddItemToArray(a, o);
        }
    }
    char *text = a ? cJSON_PrintUnformatted(a) : NULL;
    if (text) printf("%s\n", text);
    free(text);
    cJSON_Delete(a);
}

/* The hits of query q in the index's embeddings (an approximate index is
 * built for this one query: worth it only to try its settings). */
static mml_status knn(const index_t *x, const mml_knn_options *o, const float *q, int k, int64_t *rows, float *scores,
                      int *found)
{
    mml_knn_index *ix = NULL;
    int64_t dim = x->emb->shape[1];
    mml_status rc = mml_knn_index_build(mml_f32(x->emb), x->emb->shape[0], dim, o, &ix);
    if (rc == MML_OK) rc = mml_knn_index_search(ix, q, 1, dim, k, rows, scores);
    *found = 0;
    while (rc == MML_OK && *found < k && rows[*found] >= 0) (*found)++;
    mml_knn_index_free(ix);
    return rc;
}

static mml_status search(const char *model_path, const char *index_path, mml_modality mo, const char *value, int k,
                         const mml_knn_options *o, bool json)
{
    mml_mm_data_options opt = { MML_ON_ERROR_FAIL, false, NULL };
    mml_mm_data d;
    mml_align_model *m = NULL;
    index_t x = { 0 };
    float *q = NULL, *scores = mml_malloc((size_t)k * sizeof *scores);
    int64_t *rows = mml_malloc((size_t)k * sizeof *rows);
    mml_status rc = scores && rows ? mml_align_model_load(model_path, &opt, false, &m, &d) : MML_ERR_NOMEM;
    if (rc == MML_OK) rc = index_open(index_path, m, &x);
    if (rc == MML_OK && !(q = mml_malloc((size_t)mml_align_model_dim(m) * sizeof *q))) rc = MML_ERR_NOMEM;
    if (rc == MML_OK) rc = embed_query(m, &d, mo, value, q);
    int found = 0;
    if (rc == MML_OK) rc = knn(&x, o, q, k, rows, scores, &found);
    if (rc == MML_OK) print_hits(rows, scores, found, &x, json);
    mml_free(q);
    mml_free(rows);
    mml_free(scores);
    index_free(&x);
    mml_align_model_free(m);
    if (m) mml_mm_data_close(&d);
    return rc;
}

int cmd_search(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nThe k items of an index (mml embed) nearest to a query of any of the model's modalities, "
               "with their cosine similarity; --json prints them as one JSON array. --index ivf or hnsw searches approximately "
               "with FAISS (when built with libfaiss-dev), building the index for the query: nprobe lists (IVF, default 16) "
               "or an ef-search long candidate list (HNSW, default 64).\n", SEARCH_USAGE);
        return CLI_OK;
    }
    const char *model = NULL, *index = NULL, *value = NULL;
    int mo = -1;
    int64_t k = 5;
    mml_knn_options o = { MML_KNN_EXACT };
    bool json = false;
    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc;
        if ((!strcmp(argv[i], "--text") || !strcmp(argv[i], "--audio") || !strcmp(argv[i], "--image")) && has) {
            if (value) return cli_usage(SEARCH_USAGE, "one query: --text, --audio or --image");
            mo = mml_modality_from_name(argv[i] + 2);
            value = argv[++i];
        } else if (!strcmp(argv[i], "--k") && has) {
            char *end;
            k = strtoll(argv[++i], &end, 10);
            if (*end || k < 1 || k > 10000) return cli_usage(SEARCH_USAGE, "--k must be in [1, 10000]");
        } else if (!strcmp(argv[i], "--index") && has) {
            int kind = mml_knn_kind_from_name(argv[++i]);
            if (kind < 0) return cli_usage(SEARCH_USAGE, "--index must be exact, ivf or hnsw");
            o.kind = (mml_knn_kind)kind;
        } else if ((!strcmp(argv[i], "--nprobe") || !strcmp(argv[i], "--ef-search")) && has) {
            char *end;
            long v = strtol(argv[i + 1], &end, 10);
            if (*end || v < 1 || v > 1000000) return cli_usage(SEARCH_USAGE, "--nprobe and --ef-search must be in [1, 1000000]");
            *(!strcmp(argv[i], "--nprobe") ? &o.nprobe : &o.ef_search) = (int)v;
            i++;
        } else if (!strcmp(argv[i], "--json")) json = true;
        else if (argv[i][0] == '-') return cli_usage(SEARCH_USAGE, "unexpected argument");
        else if (!model) model = argv[i];
        else if (!index) index = argv[i];
        else return cli_usage(SEARCH_USAGE, "unexpected argument");
    }
    if (!model || !index || !value) return cli_usage(SEARCH_USAGE, "needs MODEL, EMB and a query");
    return search(model, index, (mml_modality)mo, value, (int)k, &o, json) == MML_OK ? CLI_OK : cli_fail(NULL);
}
