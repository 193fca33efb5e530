/* mml compare: every variant of a study trained over seeds on shared data,
 * evaluated clean, under noise and with modalities missing. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/file.h"
#include "mml/align.h"
#include "mml/alloc.h"
#include "mml/multimodal.h"
#include "mml/progress.h"
#include "mml/study.h"
#include "tasks/study_report.h"

/* ---- JSON merge patch (RFC 7386) ---- */

static cJSON *merge_patch(cJSON *target, const cJSON *patch)
{
    if (!cJSON_IsObject(patch)) {
        cJSON_Delete(target);
        return cJSON_Duplicate(patch, true);
    }
    if (!cJSON_IsObject(target)) {
        cJSON_Delete(target);
        target = cJSON_CreateObject();
    }
    for (const cJSON *p = patch->child; p && target; p = p->next) {
        if (cJSON_IsNull(p)) {
            cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
            continue;
        }
        cJSON *old = cJSON_DetachItemFromObjectCaseSensitive(target, p->string);
        cJSON *merged = merge_patch(old, p);
        if (!merged) return target;
        cJSON_AddItemToObject(target, p->string, merged);
    }
    return target;
}

/* ---- the study file ---- */

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    char *d = mml_malloc(n + 2);
    if (!d) return NULL;
    if (slash) memcpy(d, path, n);
    d[n] = '\0';
    if (!slash) strcpy(d, ".");
    return d;
}

static mml_status read_levels(const mml_cfg_node *rob, const char *key, const double *def, int n_def, double *out,
                              int *n)
{
    int k = mml_cfg_present(rob) ? mml_cfg_floats(rob, key, out, MML_STUDY_MAX_LEVELS) : 0;
    if (k < 0) return mml_last_status();
    if (k == 0) {
        memcpy(out, def, (size_t)n_def * sizeof *def);
        k = n_def;
    }
    for (int i = 0; i < k; i++)
        if (out[i] < 0 || out[i] > (strcmp(key, "missing") ? 10.0 : 1.0))
            return mml_cfg_error(rob, key, "levels must be in [0, %s]", strcmp(key, "missing") ? "10" : "1");
    if (out[0] != 0) return mml_cfg_error(rob, key, "the first level must be 0 (the clean reference)");
    *n = k;
    return MML_OK;
}

/* "base": a config object, or the path of a config file (relative to the study). */
static mml_status read_base(study *s, const mml_cfg_node *root, const char *dir, mml_cfg_node *base)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(root->json, "base");
    if (!cJSON_IsString(b)) return mml_cfg_object(root, "base", true, base);
    char path[4096];
    if (b->valuestring[0] == '/') snprintf(path, sizeof path, "%s", b->valuestring);
    else snprintf(path, sizeof path, "%s/%s", dir, b->valuestring);
    mml_status rc = mml_config_load(path, &s->base_cfg);
    if (rc != MML_OK) return rc;
    *base = mml_config_root(s->base_cfg);
    return MML_OK;
}

static mml_status read_modality(const mml_cfg_node *n, const char *key, const bool *mods, int *out)
{
    const char *name;
    mml_status rc = mml_cfg_string_req(n, key, &name);
    if (rc != MML_OK) return rc;
    *out = mml_modality_from_name(name);
    if (*out < 0 || !mods[*out]) return mml_cfg_error(n, key, "'%s' is not a modality of the model's encoders", name);
    return MML_OK;
}

/* "prompts": one text per class, for zero-shot classification from text. */
static mml_status read_prompts(variant *va, const mml_cfg_node *t)
{
    mml_cfg_node list;
    mml_status rc = mml_cfg_array(t, "prompts", false, &list);
    if (rc != MML_OK || !mml_cfg_present(&list)) return rc;
    if (va->from != MML_MOD_TEXT) return mml_cfg_error(t, "prompts", "prompts are texts: \"from\" must be \"text\"");
    va->n_prompts = mml_cfg_len(&list);
    if (!(va->prompts = mml_calloc((size_t)va->n_prompts + 1, sizeof *va->prompts))) return MML_ERR_NOMEM;
    for (int c = 0; c < va->n_prompts; c++) {
        const cJSON *it = cJSON_GetArrayItem(list.json, c);
        if (!cJSON_IsString(it)) return mml_cfg_error(t, "prompts", "item %d is not a string", c);
        if (!(va->prompts[c] = strdup(it->valuestring))) return MML_ERR_NOMEM;
    }
    return MML_OK;
}

/* "task": "multimodal" (a classifier), or "retrieval" with "transfer":
 * {"from": M, "to": M2}, the cross-modal protocol its row reports. */
static mml_status read_task(variant *va, const mml_cfg_node *root)
{
    static const char *const tasks[] = { "multimodal", "retrieval", NULL };
    static const char *const keys[] = { "task", "data", "model", "train", NULL };
    static const char *const align_keys[] = { "task", "data", "model", "train", "transfer", NULL };
    static const char *const tkeys[] = { "from", "to", "prompts", NULL };
    int task;
    mml_cfg_node t;
    va->from = va->to = -1;
    mml_status rc = mml_cfg_choice(root, "task", tasks, 0, &task);
    if (rc == MML_OK) rc = mml_cfg_check_keys(root, task ? align_keys : keys);
    if (rc != MML_OK || !task) return rc;
    if ((rc = mml_cfg_object(root, "transfer", true, &t)) != MML_OK) return rc;
    if ((rc = mml_cfg_check_keys(&t, tkeys)) != MML_OK) return rc;
    if ((rc = read_modality(&t, "from", va->mods, &va->from)) != MML_OK) return rc;
    if ((rc = read_modality(&t, "to", va->mods, &va->to)) != MML_OK) return rc;
    if (va->from == va->to) return mml_cfg_error(&t, "to", "must differ from \"from\"");
    return read_prompts(va, &t);
}

static mml_status read_variants(study *s, const mml_cfg_node *root, const char *dir)
{
    mml_cfg_node vars, base;
    mml_status rc = mml_cfg_array(root, "variants", true, &vars);
    if (rc == MML_OK) rc = read_base(s, root, dir, &base);
    if (rc != MML_OK) return rc;
    s->n_variants = mml_cfg_len(&vars);
    if (s->n_variants < 1 || s->n_variants > MML_STUDY_MAX_VARIANTS)
        return mml_cfg_error(root, "variants", "must hold 1 to %d variants", MML_STUDY_MAX_VARIANTS);
    static const char *const keys[] = { "name", "patch", NULL };
    for (int i = 0; i < s->n_variants; i++) {
        mml_cfg_node v = mml_cfg_at(&vars, i), patch;
        variant *va = &s->variants[i];
        const char *name;
        if (!mml_cfg_present(&v)) return mml_cfg_error(&vars, NULL, "item %d is not an object", i);
        if ((rc = mml_cfg_check_keys(&v, keys)) != MML_OK) return rc;
        if ((rc = mml_cfg_string_req(&v, "name", &name)) != MML_OK) return rc;
        if ((rc = mml_cfg_object(&v, "patch", false, &patch)) != MML_OK) return rc;
        snprintf(va->name, sizeof va->name, "%s", name);
        for (int j = 0; j < i; j++)
            if (!strcmp(s->variants[j].name, va->name)) return mml_cfg_error(&v, "name", "'%s' is used twice", name);
        cJSON *merged = cJSON_Duplicate(base.json, true);
        if (patch.json) {
            if (cJSON_GetObjectItemCaseSensitive(patch.json, "data"))
                return mml_cfg_error(&patch, "data", "variants share the study's data; change it in base");
            merged = merge_patch(merged, patch.json);
        }
        char *text = merged ? cJSON_PrintUnformatted(merged) : NULL;
        cJSON_Delete(merged);
        if (!text) return MML_ERR_NOMEM;
        char what[512];
        snprintf(what, sizeof what, "%s: %s (base merged with the patch)", v.file, v.path);
        rc = mml_config_parse(text, what, &va->cfg);
        free(text);
        if (rc != MML_OK) return rc;
        mml_cfg_node vroot = mml_config_root(va->cfg), model;
        if ((rc = mml_cfg_object(&vroot, "model", true, &model)) != MML_OK) return rc;
        if ((rc = mml_mm_modalities(&model, va->mods)) != MML_OK) return rc;
        if ((rc = read_task(va, &vroot)) != MML_OK) return rc;
        for (int m = 0; m < MML_MOD_COUNT; m++) s->mods[m] |= va->mods[m];
    }
    return MML_OK;
}

static mml_status read_study(study *s, const char *path, const char *dir)
{
    static const char *const keys[] = { "name", "description", "base", "seeds", "robustness", "variants", NULL };
    static const double noise_def[] = { 0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9 };
    static const double missing_def[] = { 0, 0.5, 1.0 };
    mml_status rc = mml_config_load(path, &s->cfg);
    if (rc != MML_OK) return rc;
    mml_cfg_node root = mml_config_root(s->cfg), rob;
    const char *name, *ref = NULL;
    int64_t seeds;
    if ((rc = mml_cfg_check_keys(&root, keys)) != MML_OK) return rc;
    if ((rc = mml_cfg_string(&root, "name", "study", &name)) != MML_OK) return rc;
    snprintf(s->name, sizeof s->name, "%s", name);
    if ((rc = mml_cfg_int(&root, "seeds", 1, &seeds)) != MML_OK) return rc;
    if (seeds < 1 || seeds > MML_STUDY_MAX_SEEDS) return mml_cfg_error(&root, "seeds", "must be in [1, %d]", MML_STUDY_MAX_SEEDS);
    s->seeds = (int)seeds;
    if ((rc = mml_cfg_object(&root, "robustness", false, &rob)) != MML_OK) return rc;
    static const char *const rkeys[] = { "noise", "missing", "reference", NULL };
    if (mml_cfg_present(&rob) && (rc = mml_cfg_check_keys(&rob, rkeys)) != MML_OK) return rc;
    if ((rc = read_levels(&rob, "noise", noise_def, 10, s->noise, &s->n_noise)) != MML_OK) return rc;
    if ((rc = read_levels(&rob, "missing", missing_def, 3, s->missing, &s->n_missing)) != MML_OK) return rc;
    if (mml_cfg_present(&rob) && (rc = mml_cfg_string(&rob, "reference", NULL, &ref)) != MML_OK) return rc;
    if ((rc = read_variants(s, &root, dir)) != MML_OK) return rc;
    s->reference = -1;
    for (int i = 0; ref && i < s->n_variants; i++)
        if (!strcmp(s->variants[i].name, ref)) s->reference = i;
    if (ref && s->reference < 0) return mml_cfg_error(&rob, "reference", "'%s' is not the name of a variant", ref);
    return MML_OK;
}

/* ---- running ---- */

/* Test accuracy of a trained variant's model under a perturbation (NULL: clean). */
typedef mml_status (*eval_fn)(void *model, const variant *v, const mml_mm_data *d, const mml_mm_perturb *p,
                              double *acc, mml_confusion *keep);

typedef struct classifier_run {
    mml_mm_model *m;
    run_result *r;
} classifier_run;

/* The clean evaluation (keep != NULL) also gives the run its loss, fusion
 * weights and extra tasks' accuracy. */
static mml_status eval_classifier(void *model, const variant *v, const mml_mm_data *d, const mml_mm_perturb *p,
                                  double *acc, mml_confusion *keep)
{
    classifier_run *c = model;
    mml_mm_eval ev;
    (void)v;
    mml_status rc = mml_mm_evaluate(c->m, d, MML_SPLIT_TEST, p, &ev);
    if (rc != MML_OK) return rc;
    *acc = ev.metrics.accuracy;
    if (!keep) {
        mml_confusion_free(&ev.cm);
        return MML_OK;
    }
    *keep = ev.cm;
    c->r->loss = ev.loss;
    c->r->has_weights = ev.has_weights;
    memcpy(c->r->task_accuracy, ev.task_accuracy, sizeof c->r->task_accuracy);
    memcpy(c->r->weights, ev.modality_weight, sizeof c->r->weights);
    return MML_OK;
}

typedef struct transfer_model {
    mml_align_model *align;
    mml_model *probe;
} transfer_model;

static mml_status eval_transfer(void *model, const variant *v, const mml_mm_data *d, const mml_mm_perturb *p,
                                double *acc, mml_confusion *keep)
{
    transfer_model *t = model;
    mml_confusion cm;
    mml_status rc = mml_align_probe_evaluate(t->align, t->probe, d, (mml_modality)v->to, p, &cm);
    if (rc != MML_OK) return rc;
    *acc = mml_metrics_compute(&cm, NULL).accuracy;
    if (keep) *keep = cm;
    else mml_confusion_free(&cm);
    return MML_OK;
}

/* Whether the variant's test input holds modality mo (a transfer variant
 * sees only its `to` modality at test time). */
static bool tested(const variant *v, int mo) { return v->to < 0 ? v->mods[mo] : mo == v->to; }

static mml_status robustness(study *s, const variant *v, eval_fn eval, void *model, const mml_mm_data *d, run_result *r)
{
    mml_status rc = MML_OK;
    for (int mo = 0; mo < MML_MOD_COUNT && rc == MML_OK; mo++) {
        if (!s->mods[mo]) continue;
        for (int l = 0; l < s->n_noise && rc == MML_OK && s->noisy[mo]; l++) {
            mml_mm_perturb p = { .seed = 1000u + (uint64_t)l };
            p.noise[mo] = (float)s->noise[l];
            if (!tested(v, mo) || l == 0) r->noise_acc[mo][l] = r->accuracy;
            else rc = eval(model, v, d, &p, &r->noise_acc[mo][l], NULL);
        }
        for (int l = 0; l < s->n_missing && rc == MML_OK; l++) {
            mml_mm_perturb p = { .seed = 2000u + (uint64_t)l };
            p.missing[mo] = (float)s->missing[l];
            if (!tested(v, mo) || l == 0) r->missing_acc[mo][l] = r->accuracy;
            else rc = eval(model, v, d, &p, &r->missing_acc[mo][l], NULL);
        }
    }
    return rc;
}

/* The clean evaluation, then the robustness ones, into r. */
static mml_status evaluate_run(study *s, variant *v, eval_fn eval, void *model, const mml_mm_data *d, run_result *r)
{
    mml_confusion cm;
    double t0 = mml_now();
    mml_status rc = eval(model, v, d, NULL, &r->accuracy, &cm);
    if (rc != MML_OK) return rc;
    r->infer_ms = 1000.0 * (mml_now() - t0) / (double)d->ds[MML_SPLIT_TEST]->n;
    r->macro_f1 = mml_metrics_compute(&cm, NULL).macro_f1;
    r->cm = cm.counts; /* owned by the run from here */
    return robustness(s, v, eval, model, d, r);
}

static mml_status run_classifier(study *s, variant *v, const mml_cfg_node *root, const mml_train_options *to,
                                 const mml_mm_data *d, run_result *r)
{
    mml_cfg_node model, train;
    mml_mm_model *m = NULL;
    mml_mm_history h;
    mml_status rc = mml_cfg_object(root, "model", true, &model);
    if (rc == MML_OK) rc = mml_mm_model_build(&model, d, to->seed, &m);
    if (rc == MML_OK) rc = mml_cfg_object(root, "train", false, &train);
    if (rc == MML_OK) rc = mml_mm_model_set_augment(m, &train);
    if (rc == MML_OK) rc = mml_mm_train(m, d, to, &h);
    if (rc == MML_OK) {
        r->train_seconds = h.train_seconds;
        r->train_mb = h.train_bytes / (1 << 20);
        r->epochs = h.epochs;
        memcpy(r->val_curve, h.val_accuracy, sizeof r->val_curve);
        memcpy(r->loss_curve, h.train_loss, sizeof r->loss_curve);
        v->params = mml_params_numel(mml_mm_model_params(m));
        snprintf(v->fusion, sizeof v->fusion, "%s", mml_mm_model_fusion(m));
        classifier_run c = { m, r };
        rc = evaluate_run(s, v, eval_classifier, &c, d, r);
    }
    mml_mm_model_free(m);
    return rc;
}

/* A cross-modal row: the aligned space trained, then a classifier on the
 * `from` embeddings tested on `to`. Its learning curve is the validation
 * split's category-level Recall@1. */
static mml_status run_transfer(study *s, variant *v, const mml_cfg_node *root, const mml_train_options *to,
                               const mml_mm_data *d, run_result *r)
{
    mml_cfg_node model;
    transfer_model t = { 0 };
    mml_align_history h;
    mml_status rc = mml_cfg_object(root, "model", true, &model);
    if (rc == MML_OK) rc = mml_align_model_build(&model, d, to->seed, &t.align);
    if (rc == MML_OK) rc = mml_align_train(t.align, d, to, &h);
    if (rc == MML_OK)
        rc = v->prompts ? mml_align_prompt_classifier(t.align, d, (const char *const *)v->prompts, v->n_prompts, &t.probe)
                        : mml_align_probe_fit(t.align, d, (mml_modality)v->from, to->seed, &t.probe);
    if (rc == MML_OK) {
        r->train_seconds = h.train_seconds;
        r->train_mb = h.train_bytes / (1 << 20);
        r->epochs = h.epochs;
        r->loss = NAN;
        for (int k = 0; k < MML_MM_MAX_TASKS; k++) r->task_accuracy[k] = NAN;
        memcpy(r->val_curve, h.val_recall1, sizeof r->val_curve);
        memcpy(r->loss_curve, h.train_loss, sizeof r->loss_curve);
        v->params = mml_params_numel(mml_align_model_params(t.align));
        snprintf(v->fusion, sizeof v->fusion, "%s->%s", mml_modality_name((mml_modality)v->from),
                 mml_modality_name((mml_modality)v->to));
        rc = evaluate_run(s, v, eval_transfer, &t, d, r);
    }
    mml_model_free(t.probe);
    mml_align_model_free(t.align);
    return rc;
}

static mml_status run_one(study *s, variant *v, int seed, const mml_mm_data *d, const mml_study_options *o)
{
    run_result *r = &v->runs[seed];
    mml_cfg_node root = mml_config_root(v->cfg);
    mml_train_options to;
    mml_status rc = mml_train_options_read(&root, o->epochs, -1, &to);
    if (rc != MML_OK) return rc;
    to.seed += (uint64_t)seed;
    to.progress = o->progress;
    rc = v->to < 0 ? run_classifier(s, v, &root, &to, d, r) : run_transfer(s, v, &root, &to, d, r);
    if (rc != MML_OK) mml_error_prefix("variant '%s', seed %d: ", v->name, seed);
    return rc;
}

/* Builds a variant's model (and drops it) to check its config before any training. */
static mml_status check_variant(const variant *v, const mml_mm_data *d)
{
    mml_cfg_node root = mml_config_root(v->cfg), model, train;
    mml_status rc = mml_cfg_object(&root, "model", true, &model);
    if (rc == MML_OK && v->to >= 0) {
        mml_align_model *a = NULL;
        rc = mml_align_model_build(&model, d, 0, &a);
        mml_align_model_free(a);
        return rc;
    }
    mml_mm_model *m = NULL;
    if (rc == MML_OK) rc = mml_mm_model_build(&model, d, 0, &m);
    if (rc == MML_OK) rc = mml_cfg_object(&root, "train", false, &train);
    if (rc == MML_OK) rc = mml_mm_model_set_augment(m, &train);
    mml_mm_model_free(m);
    return rc;
}

static mml_status open_data(study *s, const char *dir, const mml_study_options *o, mml_mm_data *d)
{
    mml_cfg_node root = mml_config_root(s->variants[0].cfg), data;
    mml_status rc = mml_cfg_object(&root, "data", true, &data);
    mml_mm_data_options dopt = { o->on_error, o->progress, o->datasets_dir, s->task_names, 0 };
    for (int i = 0; rc == MML_OK && i < s->n_variants; i++) {
        mml_cfg_node vroot = mml_config_root(s->variants[i].cfg), model;
        if ((rc = mml_cfg_object(&vroot, "model", true, &model)) != MML_OK) break;
        int n = mml_mm_task_fields(&model, s->task_names, dopt.n_task_fields, MML_MM_MAX_TASKS);
        if (n < 0) rc = mml_last_status();
        else dopt.n_task_fields = s->n_tasks = n;
    }
    if (rc == MML_OK) rc = mml_mm_data_open(&data, dir, s->mods, &dopt, d);
    return rc;
}

/* ---- output directory ---- */

static int remove_study_dir(const char *dir)
{
    static const char *const files[] = { "results.json", "results.md", "report.html", NULL };
    char p[4096];
    for (int i = 0; files[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        remove(p);
    }
    return rmdir(dir) != 0 && errno != ENOENT ? -1 : 0;
}

static mml_status remove_flat_dir(const char *dir)
{
    if (remove_study_dir(dir) != 0)
        return mml_error(MML_ERR_IO, "%s: cannot replace it (%s): it holds files other than a study's", dir, strerror(errno));
    return MML_OK;
}

static mml_status prepare_out(const char *out, bool force, char *tmp, size_t cap)
{
    struct stat st;
    if (stat(out, &st) == 0 && !force)
        return mml_error(MML_ERR_ARG, "%s exists; remove it, choose another --out or pass --force", out);
    snprintf(tmp, cap, "%s.tmp", out);
    mml_status rc = mml_file_make_parents(tmp);
    if (rc == MML_OK) rc = remove_flat_dir(tmp);
    if (rc == MML_OK && mkdir(tmp, 0777) != 0) rc = mml_error(MML_ERR_IO, "%s: %s", tmp, strerror(errno));
    return rc;
}

static void variant_free(variant *v)
{
    mml_config_free(v->cfg);
    for (int c = 0; c < v->n_prompts; c++) free(v->prompts[c]);
    mml_free(v->prompts);
    for (int k = 0; k < MML_STUDY_MAX_SEEDS; k++) mml_free(v->runs[k].cm);
}

static bool listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == '\0')) return true;
    return false;
}

/* --only: the listed variants, in the study's order; the reference goes if not listed. */
static mml_status keep_only(study *s, const char *list)
{
    for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        bool found = false;
        size_t n = strcspn(p, ",");
        for (int i = 0; i < s->n_variants; i++) found |= strlen(s->variants[i].name) == n && !strncmp(s->variants[i].name, p, n);
        if (!found) return mml_error(MML_ERR_ARG, "--only: no variant is named '%.*s'", (int)n, p);
    }
    int kept = 0, reference = -1;
    for (int i = 0; i < s->n_variants; i++) {
        if (!listed(list, s->variants[i].name)) {
            variant_free(&s->variants[i]);
            continue;
        }
        if (i == s->reference) reference = kept;
        if (kept != i) s->variants[kept] = s->variants[i];
        kept++;
    }
    s->n_variants = kept;
    s->reference = reference;
    return MML_OK;
}

static void study_free(study *s)
{
    for (int i = 0; i < s->n_variants; i++) variant_free(&s->variants[i]);
    mml_config_free(s->cfg);
    mml_config_free(s->base_cfg);
    mml_free(s);
}

mml_status mml_study_run(const char *path, const mml_study_options *o)
{
    study *s = mml_calloc(1, sizeof *s);
    if (!s) return MML_ERR_NOMEM;
    char tmp[4096] = "";
    char *dir = dir_of(path);
    mml_mm_data d = { 0 };
    mml_status rc = dir ? read_study(s, path, dir) : MML_ERR_NOMEM;
    if (rc == MML_OK && o->seeds > 0) {
        if (o->seeds > MML_STUDY_MAX_SEEDS) rc = mml_error(MML_ERR_ARG, "--seeds: at most %d", MML_STUDY_MAX_SEEDS);
        s->seeds = o->seeds;
    }
    if (rc == MML_OK && o->only) rc = keep_only(s, o->only);
    if (rc == MML_OK) rc = prepare_out(o->out_dir, o->force, tmp, sizeof tmp);
    if (rc == MML_OK) rc = open_data(s, dir, o, &d);
    if (rc == MML_OK) {
        s->n_classes = d.n_classes;
        s->classes = d.classes;
        s->n_test = d.ds[MML_SPLIT_TEST]->n;
        s->n_train = d.ds[MML_SPLIT_TRAIN]->n;
        s->n_skipped = d.n_skipped;
        for (int m = 0; m < MML_MOD_COUNT; m++)
            s->noisy[m] = s->mods[m] && d.ds[MML_SPLIT_TRAIN]->spec[m].dtype == MML_F32;
    }
    /* every variant's model is checked before the first one trains */
    for (int i = 0; rc == MML_OK && i < s->n_variants; i++) rc = check_variant(&s->variants[i], &d);
    double t0 = mml_now();
    int total = s->n_variants * s->seeds, done = 0;
    for (int i = 0; rc == MML_OK && i < s->n_variants; i++)
        for (int k = 0; rc == MML_OK && k < s->seeds; k++) {
            if (o->progress)
                fprintf(stderr, "compare: run %d/%d: %s, seed %d (elapsed %.0f s)\n", done + 1, total,
                        s->variants[i].name, k, mml_now() - t0);
            rc = run_one(s, &s->variants[i], k, &d, o);
            done++;
        }
    if (rc == MML_OK) {
        study_summarise(s);
        rc = study_write(s, tmp);
    }
    if (rc == MML_OK && o->force) rc = remove_flat_dir(o->out_dir);
    if (rc == MML_OK && rename(tmp, o->out_dir) != 0)
        rc = mml_error(MML_ERR_IO, "%s: cannot rename to %s: %s", tmp, o->out_dir, strerror(errno));
    if (rc != MML_OK && tmp[0]) remove_study_dir(tmp);
    mml_mm_data_close(&d);
    mml_free(dir);
    study_free(s);
    return rc;
}
