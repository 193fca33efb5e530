/* mml train on a "task": "multimodal" config: manifests in, a fused model out. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/alloc.h"
#include "mml/multimodal.h"
#include "mml/threads.h"
#include <cjson/cJSON.h>

const char *cli_config_task(const char *path, char *buf, size_t cap)
{
    mml_config *c;
    buf[0] = '\0';
    if (mml_config_load(path, &c) != MML_OK) return buf;
    mml_cfg_node root = mml_config_root(c);
    const char *task = NULL;
    if (mml_cfg_string(&root, "task", NULL, &task) == MML_OK && task) snprintf(buf, cap, "%s", task);
    mml_config_free(c);
    return buf;
}

static char *config_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
}

static char *classes_json(const mml_mm_data *d)
{
    cJSON *a = cJSON_CreateArray();
    for (int c = 0; a && c < d->n_classes; c++) cJSON_AddItemToArray(a, cJSON_CreateString(d->classes[c]));
    char *s = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return s;
}

int cli_parse_perturb(const char *arg, bool missing, mml_mm_perturb *p)
{
    const char *eq = strchr(arg, '=');
    char name[16], *end;
    if (!eq || eq - arg >= (long)sizeof name) return -1;
    snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
    int m = mml_modality_from_name(name);
    double v = strtod(eq + 1, &end);
    if (m < 0 || *end || !(v >= 0) || v > (missing ? 1.0 : 10.0)) return -1;
    if (missing) p->missing[m] = (float)v;
    else p->noise[m] = (float)v;
    return 0;
}

static bool perturbs(const mml_mm_perturb *p)
{
    for (int m = 0; m < MML_MOD_COUNT; m++)
        if (p->missing[m] > 0 || p->noise[m] > 0) return true;
    return false;
}

mml_status cli_mm_job_open(cli_mm_job *j, const char *path, int64_t epochs, int64_t seed, bool progress)
{
    bool mods[MML_MOD_COUNT];
    mml_cfg_node root;
    mml_mm_data_options dopt = { MML_ON_ERROR_FAIL, progress, NULL };
    memset(j, 0, sizeof *j);
    j->dir = config_dir(path);
    mml_status rc = mml_config_load(path, &j->cfg);
    if (rc == MML_OK) {
        root = mml_config_root(j->cfg);
        static const char *const keys[] = { "task", "data", "model", "train", NULL };
        rc = mml_cfg_check_keys(&root, keys);
    }
    if (rc == MML_OK) rc = mml_cfg_object(&root, "data", true, &j->data);
    if (rc == MML_OK) rc = mml_cfg_object(&root, "model", true, &j->model);
    if (rc == MML_OK) rc = mml_cfg_object(&root, "train", false, &j->train);
    if (rc == MML_OK) rc = mml_train_options_read(&root, epochs, seed, &j->opt);
    if (rc == MML_OK) rc = mml_mm_modalities(&j->model, mods);
    const char *task = NULL;
    if (rc == MML_OK) rc = mml_cfg_string(&root, "task", NULL, &task);
    if (rc == MML_OK && task && !strcmp(task, "captioning")) mods[MML_MOD_TEXT] = true; /* the targets */
    const char *fields[MML_MM_MAX_TASKS];
    if (rc == MML_OK && (dopt.n_task_fields = mml_mm_task_fields(&j->model, fields, 0, MML_MM_MAX_TASKS)) < 0)
        rc = mml_last_status();
    dopt.task_fields = fields;
    if (rc == MML_OK) rc = mml_mm_data_open(&j->data, j->dir, mods, &dopt, &j->d);
    return rc;
}

void cli_mm_job_close(cli_mm_job *j)
{
    mml_mm_data_close(&j->d);
    mml_config_free(j->cfg);
    free(j->dir);
}

/* Data paths made absolute, so that the model file's config finds its data
 * (and BPE file) from any directory: mml eval, embed and search use it. */
static void absolute_paths(cJSON *data, const char *dir)
{
    static const char *const keys[] = { "train", "val", "test", "cache" };
    char base[4096], path[8200];
    if (!cJSON_IsObject(data) || !realpath(dir, base)) return;
    cJSON *text = cJSON_GetObjectItemCaseSensitive(data, "text");
    for (int k = 0; k < 5; k++) {
        cJSON *parent = k < 4 ? data : text;
        const char *key = k < 4 ? keys[k] : "bpe";
        cJSON *v = cJSON_IsObject(parent) ? cJSON_GetObjectItemCaseSensitive(parent, key) : NULL;
        if (!cJSON_IsString(v) || v->valuestring[0] == '/') continue;
        snprintf(path, sizeof path, "%s/%s", base, v->valuestring);
        cJSON_ReplaceItemInObjectCaseSensitive(parent, key, cJSON_CreateString(path));
    }
}

/* The config (free) and class names (free) a model file keeps. */
mml_status cli_mm_job_meta(const cli_mm_job *j, char **config_json, char **classes)
{
    char *dump = mml_config_dump(j->cfg);
    cJSON *root = dump ? cJSON_Parse(dump) : NULL;
    mml_free(dump);
    if (root) absolute_paths(cJSON_GetObjectItemCaseSensitive(root, "data"), j->dir);
    *config_json = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    *classes = classes_json(&j->d);
    return *config_json && *classes ? MML_OK : MML_ERR_NOMEM;
}

int cli_train_multimodal(const char *path, const char *out, const char *log_path, int64_t epochs, int64_t seed, bool json,
                         const mml_mm_perturb *test)
{
    cli_mm_job j;
    mml_mm_model *m = NULL;
    char *cfg_json = NULL, *cls = NULL;
    FILE *log = NULL;
    mml_status rc = cli_mm_job_open(&j, path, epochs, seed, true);
    mml_mm_data *d = &j.d;
    mml_train_options o = j.opt;
    if (rc == MML_OK) rc = mml_mm_model_build(&j.model, d, o.seed, &m);
    if (rc == MML_OK) rc = mml_mm_model_set_augment(m, &j.train);
    if (rc == MML_OK && !(log = fopen(log_path, "w"))) rc = mml_error(MML_ERR_IO, "%s: %s", log_path, strerror(errno));
    mml_mm_history h;
    mml_mm_eval ev = { 0 };
    if (rc == MML_OK) {
        fprintf(stderr, "model: %lld parameters, fusion %s; data: %lld training, %lld test samples, %d classes; %d threads\n",
                (long long)mml_params_numel(mml_mm_model_params(m)), mml_mm_model_fusion(m),
                (long long)d->ds[MML_SPLIT_TRAIN]->n, (long long)d->ds[MML_SPLIT_TEST]->n, d->n_classes, mml_threads_get());
        o.progress = true;
        o.log = log;
        rc = mml_mm_train(m, d, &o, &h);
    }
    /* test-time perturbations: a flag, not another config */
    if (rc == MML_OK) rc = mml_mm_evaluate(m, d, MML_SPLIT_TEST, perturbs(test) ? test : NULL, &ev);
    if (rc == MML_OK) rc = cli_mm_job_meta(&j, &cfg_json, &cls);
    if (rc == MML_OK) rc = mml_mm_model_save(m, out, cfg_json, cls);
    if (rc == MML_OK) {
        printf("test%s: accuracy %.4f, macro-F1 %.4f, loss %.4f (%lld samples)\n", perturbs(test) ? " (perturbed)" : "",
               ev.metrics.accuracy, ev.metrics.macro_f1, ev.loss, (long long)ev.cm.total);
        for (int mo = 0; mo < MML_MOD_COUNT; mo++)
            if (test->missing[mo] > 0 || test->noise[mo] > 0)
                printf("  %s: %.0f%% missing, noise std %.2f\n", mml_modality_name((mml_modality)mo), 100 * test->missing[mo],
                       test->noise[mo]);
        for (int t = 0; t < d->n_tasks; t++)
            printf("task %s: accuracy %.4f (%d classes)\n", d->tasks[t].field, ev.task_accuracy[t], d->tasks[t].n_classes);
        printf("trained %d epochs in %.1f s (%.0f samples/s); model written to %s, log to %s\n", h.epochs,
               h.train_seconds, h.samples_per_second, out, log_path);
        if (json)
            printf("{\"accuracy\": %.6f, \"macro_f1\": %.6f, \"loss\": %.6f, \"epochs\": %d, \"train_seconds\": %.3f, "
                   "\"samples_per_second\": %.1f, \"params\": %lld, \"fusion\": \"%s\", \"model\": \"%s\"}\n",
                   ev.metrics.accuracy, ev.metrics.macro_f1, ev.loss, h.epochs, h.train_seconds, h.samples_per_second,
                   (long long)mml_params_numel(mml_mm_model_params(m)), mml_mm_model_fusion(m), out);
        mml_confusion_free(&ev.cm);
    }
    if (log) fclose(log);
    free(cfg_json);
    free(cls);
    mml_mm_model_free(m);
    cli_mm_job_close(&j);
    return rc == MML_OK ? CLI_OK : cli_fail(NULL);
}
