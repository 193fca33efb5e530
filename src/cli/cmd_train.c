/* mml train / mml eval: the classification slice on IDX data. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "mml/alloc.h"
#include "mml/classify.h"
#include "mml/multimodal.h"
#include "mml/safetensors.h"
#include "mml/threads.h"
#include <cjson/cJSON.h>

static const char *TRAIN_USAGE =
    "mml train CONFIG [--out MODEL.safetensors] [--epochs N] [--threads N] [--seed N] [--log FILE.jsonl]\n"
    "                 [--checkpoint CKPT] [--resume CKPT] [--json]\n"
    "                 multimodal configs: [--test-missing MODALITY=FRACTION] [--test-noise MODALITY=STD]";

typedef struct eval_report {
    double loss;
    mml_metrics m;
    mml_confusion cm;
} eval_report;

static void print_report(const eval_report *r, char **classes, int n)
{
    mml_class_metrics *pc = mml_calloc((size_t)n, sizeof *pc);
    mml_metrics_compute(&r->cm, pc);
    printf("test: accuracy %.4f, macro-F1 %.4f, loss %.4f (%lld samples)\n", r->m.accuracy, r->m.macro_f1, r->loss,
           (long long)r->cm.total);
    printf("%-14s %9s %9s %9s %8s\n", "class", "precision", "recall", "f1", "support");
    for (int c = 0; c < n && pc; c++)
        printf("%-14.14s %9.4f %9.4f %9.4f %8lld\n", classes[c], pc[c].precision, pc[c].recall, pc[c].f1,
               (long long)pc[c].support);
    printf("confusion matrix (rows: true, columns: predicted)\n");
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) printf("%6lld", (long long)r->cm.counts[i * n + j]);
        printf("\n");
    }
    mml_free(pc);
}

static mml_status evaluate(mml_model *m, const mml_tensor *x, const mml_tensor *y, int n_classes, eval_report *r)
{
    mml_status rc = mml_confusion_init(&r->cm, n_classes);
    if (rc == MML_OK) rc = mml_evaluate_classifier(m, x, y, NULL, x->shape[0], 256, &r->loss, &r->cm, NULL);
    if (rc == MML_OK) r->m = mml_metrics_compute(&r->cm, NULL);
    return rc;
}

static int parse_int(const char *s, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 0) return -1;
    *out = v;
    return 0;
}

int cmd_train(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nTrains the model a JSON config describes (docs/config.md) on its data, evaluates it on the\n"
               "test split and writes MODEL.safetensors (default model.safetensors) with the config inside.\n"
               "--log writes one JSON object per epoch (default: MODEL.jsonl); --json ends the output with one\n"
               "JSON object: accuracy, macro_f1, loss, epochs, train_seconds, samples_per_second, params.\n"
               "--checkpoint writes the whole training state after every epoch; --resume CKPT continues such a\n"
               "run exactly (same seed, threads and config) up to --epochs.\n",
               TRAIN_USAGE);
        return CLI_OK;
    }
    const char *config = NULL, *out = "model.safetensors", *log_path = NULL, *ckpt = NULL, *resume = NULL;
    int64_t epochs = -1, seed = -1, threads = 0;
    bool json = false;
    mml_mm_perturb perturb = { .seed = 1 };
    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc;
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--out") && has) out = argv[++i];
        else if (!strcmp(argv[i], "--log") && has) log_path = argv[++i];
        else if (!strcmp(argv[i], "--checkpoint") && has) ckpt = argv[++i];
        else if (!strcmp(argv[i], "--resume") && has) resume = argv[++i];
        else if (!strcmp(argv[i], "--epochs") && has) {
            if (parse_int(argv[++i], &epochs)) return cli_usage(TRAIN_USAGE, "--epochs needs a non-negative integer");
        } else if (!strcmp(argv[i], "--seed") && has) {
            if (parse_int(argv[++i], &seed)) return cli_usage(TRAIN_USAGE, "--seed needs a non-negative integer");
        } else if (!strcmp(argv[i], "--threads") && has) {
            if (parse_int(argv[++i], &threads) || threads < 1) return cli_usage(TRAIN_USAGE, "--threads needs a positive integer");
        } else if ((!strcmp(argv[i], "--test-missing") || !strcmp(argv[i], "--test-noise")) && has) {
            if (cli_parse_perturb(argv[i + 1], !strcmp(argv[i], "--test-missing"), &perturb) != 0)
                return cli_usage(TRAIN_USAGE, "--test-missing / --test-noise take MODALITY=VALUE (image, audio, text)");
            i++;
        } else if (argv[i][0] == '-' || config) return cli_usage(TRAIN_USAGE, "unexpected argument");
        else config = argv[i];
    }
    if (!config) return cli_usage(TRAIN_USAGE, "no config given");
    if (threads) mml_threads_set((int)threads);
    char log_buf[4096], summary[8192];
    if (!log_path) {
        snprintf(log_buf, sizeof log_buf, "%.*s.jsonl", (int)(strlen(out) - (strstr(out, ".safetensors") ? 12 : 0)), out);
        log_path = log_buf;
    }
    char task[32];
    cli_config_task(config, task, sizeof task);
    if ((!strcmp(task, "multimodal") || !strcmp(task, "retrieval") || !strcmp(task, "autoencoder") ||
         !strcmp(task, "captioning")) && (ckpt || resume))
        return cli_usage(TRAIN_USAGE, "--checkpoint and --resume are for classification configs");
    if (!strcmp(task, "multimodal")) return cli_train_multimodal(config, out, log_path, epochs, seed, json, &perturb);
    if (!strcmp(task, "retrieval")) return cli_train_align(config, out, log_path, epochs, seed, json);
    if (!strcmp(task, "autoencoder")) return cli_train_ae(config, out, log_path, epochs, seed, json);
    if (!strcmp(task, "captioning")) return cli_train_caption(config, out, log_path, epochs, seed, json);
    mml_classify job;
    if (mml_classify_open(config, epochs, seed, &job) != MML_OK) return cli_fail(NULL);
    mml_cfg_node root = mml_config_root(job.cfg), model_node;
    mml_model *model = NULL;
    int rc = CLI_OK;
    if (mml_cfg_object(&root, "model", true, &model_node) != MML_OK || mml_model_build(&model_node, job.opt.seed, &model) != MML_OK ||
        mml_classify_prepare_model(&job, config, model) != MML_OK) {
        rc = cli_fail(NULL);
        goto done;
    }
    /* Fail now, not after training, if the outputs cannot be written. */
    char probe[4096];
    snprintf(probe, sizeof probe, "%s.tmp", out);
    FILE *pf = fopen(probe, "wb");
    if (pf) {
        fclose(pf);
        remove(probe);
    }
    /* A resumed run appends to the log of the run it continues. */
    job.opt.log = pf ? fopen(log_path, resume ? "a" : "w") : NULL;
    job.opt.checkpoint = ckpt;
    job.opt.resume = resume;
    if (!job.opt.log) {
        fprintf(stderr, "mml: cannot write %s: %s\n", pf ? log_path : out, strerror(errno));
        rc = CLI_FAIL;
        goto done;
    }
    job.opt.progress = true;
    mml_model_summary(model, summary, sizeof summary);
    int64_t frozen = 0;
    for (int i = 0; i < mml_params_count(mml_model_params(model)); i++)
        if (mml_params_frozen(mml_model_params(model), i)) frozen += mml_params_at(mml_model_params(model), i)->numel;
    fprintf(stderr, "model: %lld parameters (%lld frozen)\n%s", (long long)mml_params_numel(mml_model_params(model)),
            (long long)frozen, summary);
    fprintf(stderr, "data: %lld training, %lld test samples, %d classes; %d threads\n", (long long)job.train_x->shape[0],
            (long long)job.test_x->shape[0], job.n_classes, mml_threads_get());
    mml_train_result res;
    if (mml_train_classifier(model, job.train_x, job.train_y, job.n_classes, &job.opt, &res) != MML_OK) {
        rc = cli_fail(NULL);
        goto done;
    }
    eval_report rep;
    if (evaluate(model, job.test_x, job.test_y, job.n_classes, &rep) != MML_OK) {
        rc = cli_fail(NULL);
        goto done;
    }
    char *cfg_json = mml_config_dump(job.cfg), *cls_json = mml_classify_classes_json(&job);
    mml_status st = mml_model_save(model, out, cfg_json, cls_json);
    mml_free(cfg_json);
    mml_free(cls_json);
    if (st != MML_OK) {
        mml_confusion_free(&rep.cm);
        rc = cli_fail(NULL);
        goto done;
    }
    print_report(&rep, job.classes, job.n_classes);
    printf("trained %d epochs in %.1f s (%.0f samples/s); model written to %s, log to %s\n", res.epochs_run,
           res.train_seconds, res.samples_per_second, out, log_path);
    if (json)
        printf("{\"accuracy\": %.6f, \"macro_f1\": %.6f, \"loss\": %.6f, \"epochs\": %d, \"train_seconds\": %.3f, "
               "\"samples_per_second\": %.1f, \"params\": %lld, \"model\": \"%s\"}\n", rep.m.accuracy, rep.m.macro_f1,
               rep.loss, res.epochs_run, res.train_seconds, res.samples_per_second,
               (long long)mml_params_numel(mml_model_params(model)), out);
    mml_confusion_free(&rep.cm);
done:
    if (job.opt.log) fclose(job.opt.log);
    mml_model_free(model);
    mml_classify_close(&job);
    return rc;
}

/* The model file's class names ("mml.classes"), else "0", "1", ... */
static char **class_names(const char *model_path, int n)
{
    char **names = mml_calloc((size_t)n, sizeof(char *));
    mml_safetensors *st = NULL;
    cJSON *arr = NULL;
    if (mml_safetensors_map(model_path, &st) == MML_OK && mml_safetensors_meta(st, "mml.classes"))
        arr = cJSON_Parse(mml_safetensors_meta(st, "mml.classes"));
    for (int c = 0; names && c < n; c++) {
        const cJSON *it = cJSON_GetArrayItem(arr, c);
        char num[16];
        snprintf(num, sizeof num, "%d", c);
        names[c] = mml_strdup(cJSON_IsString(it) ? it->valuestring : num);
    }
    cJSON_Delete(arr);
    mml_safetensors_free(st);
    return names;
}

static bool is_align_model(const char *path)
{
    mml_safetensors *st;
    if (mml_safetensors_map(path, &st) != MML_OK) return false;
    const char *format = mml_safetensors_meta(st, "mml.format");
    bool align = format && !strcmp(format, "mml-align-1");
    mml_safetensors_free(st);
    return align;
}

static const char *EVAL_USAGE = "mml eval MODEL.safetensors [--data IMAGES.idx LABELS.idx] [--threads N] [--json]";

int cmd_eval(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: %s\nEvaluates a model written by mml train on the test split named in its config (or on\n"
               "--data): accuracy, macro-F1, loss, per-class metrics and the confusion matrix; for an aligned\n"
               "(\"task\": \"retrieval\") model, retrieval in every direction and cross-modal transfer.\n", EVAL_USAGE);
        return CLI_OK;
    }
    const char *path = NULL, *images = NULL, *labels = NULL;
    int64_t threads = 0;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--data") && i + 2 < argc) {
            images = argv[++i];
            labels = argv[++i];
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (parse_int(argv[++i], &threads) || threads < 1) return cli_usage(EVAL_USAGE, "--threads needs a positive integer");
        } else if (argv[i][0] == '-' || path) return cli_usage(EVAL_USAGE, "unexpected argument");
        else path = argv[i];
    }
    if (!path) return cli_usage(EVAL_USAGE, "no model given");
    if (threads) mml_threads_set((int)threads);
    if (is_align_model(path)) return images ? cli_usage(EVAL_USAGE, "--data is for classifiers") : cli_eval_align(path, json);
    mml_model *model;
    mml_config *cfg;
    if (mml_model_load(path, &model, &cfg) != MML_OK) return cli_fail(NULL);
    mml_cfg_node root = mml_config_root(cfg), data;
    int64_t in[4];
    int in_ndim = mml_model_input_shape(model, in), rc = CLI_OK;
    mml_tensor *x = NULL, *y = NULL;
    mml_status st = mml_cfg_object(&root, "data", true, &data);
    if (st == MML_OK && images) {
        /* --data replaces the config's test files. */
        cJSON *copy = cJSON_Duplicate((const cJSON *)data.json, 1);
        cJSON_ReplaceItemInObject(copy, "test_images", cJSON_CreateString(images));
        cJSON_ReplaceItemInObject(copy, "test_labels", cJSON_CreateString(labels));
        cJSON_DeleteItemFromObject(copy, "limit_test");
        mml_cfg_node over = data;
        over.json = copy;
        st = mml_classify_load_split(&over, NULL, "test", in_ndim, in, &x, &y);
        cJSON_Delete(copy);
    } else if (st == MML_OK) st = mml_classify_load_split(&data, NULL, "test", in_ndim, in, &x, &y);
    int n_classes = (int)mml_model_output_size(model);
    char **names = class_names(path, n_classes);
    eval_report rep = { 0 };
    if (st != MML_OK || evaluate(model, x, y, n_classes, &rep) != MML_OK) rc = cli_fail(NULL);
    else {
        print_report(&rep, names, n_classes);
        if (json)
            printf("{\"accuracy\": %.6f, \"macro_f1\": %.6f, \"loss\": %.6f, \"samples\": %lld}\n", rep.m.accuracy,
                   rep.m.macro_f1, rep.loss, (long long)rep.cm.total);
    }
    mml_confusion_free(&rep.cm);
    for (int c = 0; names && c < n_classes; c++) mml_free(names[c]);
    mml_free(names);
    mml_tensor_free(x);
    mml_tensor_free(y);
    mml_model_free(model);
    mml_config_free(cfg);
    return rc;
}
