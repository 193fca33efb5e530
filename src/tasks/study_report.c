/* The study written up: results.json (everything), results.md (the table) and
 * report.html (one self-contained page of SVG charts, no scripts). */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "mml/alloc.h"
#include "tasks/study_report.h"

/* ---- summary ---- */

static stat2 stat_of(const variant *v, int seeds, size_t offset)
{
    double s = 0, s2 = 0;
    for (int k = 0; k < seeds; k++) {
        double x = *(const double *)((const char *)&v->runs[k] + offset);
        s += x, s2 += x * x;
    }
    double mean = s / seeds, var = seeds > 1 ? (s2 - seeds * mean * mean) / (seeds - 1) : 0;
    return (stat2){ mean, sqrt(fmax(var, 0)) };
}

/* Area under the accuracy-vs-level curve divided by the level range
 * (MultiBench's relative robustness, on a 0-1 scale). */
static double area(const double *acc, const double *lv, int n)
{
    if (n < 2) return acc[0];
    double a = 0;
    for (int i = 1; i < n; i++) a += 0.5 * (acc[i] + acc[i - 1]) * (lv[i] - lv[i - 1]);
    return a / (lv[n - 1] - lv[0]);
}

static void summarise_variant(study *s, variant *v)
{
    int S = s->seeds;
    v->accuracy = stat_of(v, S, offsetof(run_result, accuracy));
    v->macro_f1 = stat_of(v, S, offsetof(run_result, macro_f1));
    v->train_seconds = stat_of(v, S, offsetof(run_result, train_seconds));
    v->infer_ms = stat_of(v, S, offsetof(run_result, infer_ms));
    v->train_mb = stat_of(v, S, offsetof(run_result, train_mb));
    for (int t = 0; t < s->n_tasks; t++)
        v->task_accuracy[t] = stat_of(v, S, offsetof(run_result, task_accuracy) + (size_t)t * sizeof(double));
    v->epochs = v->runs[0].epochs;
    v->has_weights = v->runs[0].has_weights;
    for (int e = 0; e < v->epochs; e++) {
        v->val_curve[e] = 0;
        for (int k = 0; k < S; k++) v->val_curve[e] += v->runs[k].val_curve[e] / S;
    }
    for (int m = 0; m < MML_MOD_COUNT; m++) {
        v->weights[m] = 0;
        for (int k = 0; k < S; k++) v->weights[m] += v->runs[k].weights[m] / S;
        for (int l = 0; l < MML_STUDY_MAX_LEVELS; l++) {
            v->noise_acc[m][l] = v->missing_acc[m][l] = 0;
            for (int k = 0; k < S; k++) {
                v->noise_acc[m][l] += v->runs[k].noise_acc[m][l] / S;
                v->missing_acc[m][l] += v->runs[k].missing_acc[m][l] / S;
            }
        }
        /* robustness to noise on a modality the variant does not use is not a measure of it */
        v->relative_robustness[m] = v->mods[m] && s->noisy[m] ? area(v->noise_acc[m], s->noise, s->n_noise) : NAN;
    }
}

/* Effective robustness: accuracy above the reference curve shifted to the
 * variant's clean accuracy, averaged over the levels (MultiBench compares
 * against late fusion this way). */
static void effective(study *s)
{
    for (int i = 0; i < s->n_variants; i++)
        for (int m = 0; m < MML_MOD_COUNT; m++) {
            variant *v = &s->variants[i];
            if (s->reference < 0 || !s->noisy[m] || !v->mods[m] || !s->variants[s->reference].mods[m]) {
                v->effective_robustness[m] = NAN;
                continue;
            }
            const variant *r = &s->variants[s->reference];
            double shifted[MML_STUDY_MAX_LEVELS];
            for (int l = 0; l < s->n_noise; l++)
                shifted[l] = v->noise_acc[m][l] - (r->noise_acc[m][l] - r->noise_acc[m][0] + v->noise_acc[m][0]);
            v->effective_robustness[m] = area(shifted, s->noise, s->n_noise);
        }
}

void study_summarise(study *s)
{
    for (int i = 0; i < s->n_variants; i++) summarise_variant(s, &s->variants[i]);
    effective(s);
}

/* ---- results.json ---- */

static void jnum(FILE *f, double x)
{
    if (isfinite(x)) fprintf(f, "%.6g", x);
    else fputs("null", f);
}

static void jstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

static void jarray(FILE *f, const double *x, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i) fputs(", ", f);
        jnum(f, x[i]);
    }
    fputc(']', f);
}

static void jstat(FILE *f, const char *key, stat2 s)
{
    fprintf(f, "\"%s\": {\"mean\": ", key);
    jnum(f, s.mean);
    fputs(", \"std\": ", f);
    jnum(f, s.std);
    fputs("}, ", f);
}

static void jper_mod(FILE *f, const study *s, const char *key, const double (*x)[MML_STUDY_MAX_LEVELS], int n,
                     const bool *mods)
{
    fprintf(f, "\"%s\": {", key);
    bool first = true;
    for (int m = 0; m < MML_MOD_COUNT; m++) {
        if (!mods[m]) continue;
        fprintf(f, "%s\"%s\": ", first ? "" : ", ", mml_modality_name((mml_modality)m));
        jarray(f, x[m], n);
        first = false;
    }
    fputs("}, ", f);
}

static void jmod_obj(FILE *f, const study *s, const double *x)
{
    fputc('{', f);
    bool first = true;
    for (int m = 0; m < MML_MOD_COUNT; m++) {
        if (!s->mods[m]) continue;
        fprintf(f, "%s\"%s\": ", first ? "" : ", ", mml_modality_name((mml_modality)m));
        jnum(f, x[m]);
        first = false;
    }
    fputs("}", f);
}

static void jmod_values(FILE *f, const study *s, const char *key, const double *x)
{
    fprintf(f, "\"%s\": ", key);
    jmod_obj(f, s, x);
}

static void json_variant(FILE *f, const study *s, const variant *v)
{
    fputs("    {\"name\": ", f);
    jstr(f, v->name);
    fprintf(f, ", \"fusion\": \"%s\", \"modalities\": [", v->fusion);
    bool first = true;
    for (int m = 0; m < MML_MOD_COUNT; m++)
        if (v->mods[m]) {
            fprintf(f, "%s\"%s\"", first ? "" : ", ", mml_modality_name((mml_modality)m));
            first = false;
        }
    fprintf(f, "], \"params\": %lld, \"epochs\": %d,\n     ", (long long)v->params, v->epochs);
    jstat(f, "accuracy", v->accuracy);
    jstat(f, "macro_f1", v->macro_f1);
    jstat(f, "train_seconds", v->train_seconds);
    jstat(f, "infer_ms_per_sample", v->infer_ms);
    jstat(f, "train_memory_mb", v->train_mb);
    fputs("\"task_accuracy\": {", f);
    for (int t = 0; t < s->n_tasks; t++) {
        fprintf(f, "%s", t ? ", " : "");
        jstr(f, s->task_names[t]);
        fputs(": {\"mean\": ", f);
        jnum(f, v->task_accuracy[t].mean);
        fputs(", \"std\": ", f);
        jnum(f, v->task_accuracy[t].std);
        fputc('}', f);
    }
    fputs("}, ", f);
    fputs("\n     \"val_accuracy_curve\": ", f);
    jarray(f, v->val_curve, v->epochs);
    fputs(",\n     ", f);
    jper_mod(f, s, "noise_accuracy", v->noise_acc, s->n_noise, s->noisy);
    jper_mod(f, s, "missing_accuracy", v->missing_acc, s->n_missing, s->mods);
    fputs("\n     ", f);
    jmod_values(f, s, "relative_robustness", v->relative_robustness);
    fputs(", ", f);
    jmod_values(f, s, "effective_robustness", v->effective_robustness);
    fputs(", \"modality_weights\": ", f);
    if (v->has_weights) jmod_obj(f, s, v->weights);
    else fputs("null", f);
    fputs(",\n     \"runs\": [", f);
    for (int k = 0; k < s->seeds; k++) {
        const run_result *r = &v->runs[k];
        fprintf(f, "%s{\"seed\": %d, \"accuracy\": ", k ? ", " : "", k);
        jnum(f, r->accuracy);
        fputs(", \"macro_f1\": ", f);
        jnum(f, r->macro_f1);
        fputs(", \"train_seconds\": ", f);
        jnum(f, r->train_seconds);
        fputs("}", f);
    }
    fputs("]}", f);
}

static void write_json(FILE *f, const study *s)
{
    fputs("{\"name\": ", f);
    jstr(f, s->name);
    fprintf(f, ", \"seeds\": %d, \"n_train\": %lld, \"n_test\": %lld, \"skipped_samples\": %lld,\n \"classes\": [",
            s->seeds, (long long)s->n_train, (long long)s->n_test, (long long)s->n_skipped);
    for (int c = 0; c < s->n_classes; c++) {
        if (c) fputs(", ", f);
        jstr(f, s->classes[c]);
    }
    fputs("],\n \"noise_levels\": ", f);
    jarray(f, s->noise, s->n_noise);
    fputs(", \"missing_levels\": ", f);
    jarray(f, s->missing, s->n_missing);
    fputs(", \"reference\": ", f);
    if (s->reference >= 0) jstr(f, s->variants[s->reference].name);
    else fputs("null", f);
    fputs(",\n \"variants\": [\n", f);
    for (int i = 0; i < s->n_variants; i++) {
        json_variant(f, s, &s->variants[i]);
        fputs(i + 1 < s->n_variants ? ",\n" : "\n", f);
    }
    fputs(" ]}\n", f);
}

/* ---- results.md ---- */

static int missing_index(const study *s, double level)
{
    for (int l = 0; l < s->n_missing; l++)
        if (fabs(s->missing[l] - level) < 1e-9) return l;
    return -1;
}

static void write_md(FILE *f, const study *s)
{
    fprintf(f, "# %s\n\n%d seed%s; %lld training and %lld test samples; mean +- std over seeds.\n\n", s->name, s->seeds,
            s->seeds > 1 ? "s" : "", (long long)s->n_train, (long long)s->n_test);
    fputs("| variant | fusion | accuracy | macro-F1 |", f);
    for (int t = 0; t < s->n_tasks; t++) fprintf(f, " %s accuracy |", s->task_names[t]);
    fputs(" params | train s | infer ms/sample | train MB |", f);
    for (int m = 0; m < MML_MOD_COUNT; m++)
        if (s->noisy[m]) fprintf(f, " rel. rob. %s | eff. rob. %s |", mml_modality_name((mml_modality)m), mml_modality_name((mml_modality)m));
    int half = missing_index(s, 0.5), all = missing_index(s, 1.0);
    for (int m = 0; m < MML_MOD_COUNT; m++)
        if (s->mods[m]) {
            if (half >= 0) fprintf(f, " %s 50%% missing |", mml_modality_name((mml_modality)m));
            if (all >= 0) fprintf(f, " %s 100%% missing |", mml_modality_name((mml_modality)m));
        }
    fputs("\n|---|---|---:|---:|---:|---:|---:|---:|", f);
    for (int t = 0; t < s->n_tasks; t++) fputs("---:|", f);
    for (int m = 0; m < MML_MOD_COUNT; m++)
        if (s->mods[m]) fprintf(f, "%s%s%s", s->noisy[m] ? "---:|---:|" : "", half >= 0 ? "---:|" : "", all >= 0 ? "---:|" : "");
    fputc('\n', f);
    for (int i = 0; i < s->n_variants; i++) {
        const variant *v = &s->variants[i];
        fprintf(f, "| %s | %s | %.2f +- %.2f | %.2f +- %.2f |", v->name, v->fusion, 100 * v->accuracy.mean,
                100 * v->accuracy.std, 100 * v->macro_f1.mean, 100 * v->macro_f1.std);
        for (int t = 0; t < s->n_tasks; t++)
            if (isfinite(v->task_accuracy[t].mean))
                fprintf(f, " %.2f +- %.2f |", 100 * v->task_accuracy[t].mean, 100 * v->task_accuracy[t].std);
            else fputs(" - |", f);
        fprintf(f, " %lld | %.1f | %.3f | %.1f |", (long long)v->params, v->train_seconds.mean, v->infer_ms.mean,
                v->train_mb.mean);
        for (int m = 0; m < MML_MOD_COUNT; m++)
            if (s->noisy[m]) {
                if (isfinite(v->relative_robustness[m])) fprintf(f, " %.2f |", 100 * v->relative_robustness[m]);
                else fputs(" - |", f);
                if (isfinite(v->effective_robustness[m])) fprintf(f, " %+.2f |", 100 * v->effective_robustness[m]);
                else fputs(" - |", f);
            }
        for (int m = 0; m < MML_MOD_COUNT; m++)
            if (s->mods[m]) {
                if (half >= 0) fprintf(f, " %.2f |", 100 * v->missing_acc[m][half]);
                if (all >= 0) fprintf(f, " %.2f |", 100 * v->missing_acc[m][all]);
            }
        fputc('\n', f);
    }
    fputs("\nAccuracy, F1 and robustness in percent. Relative robustness: mean test accuracy over the noise levels "
          "(area under the curve); effective robustness: that area above the reference variant's curve shifted to "
          "the same clean accuracy. Noise is Gaussian, its std in units of the modality's feature std on the "
          "training split. Train MB: weights, gradients, optimizer state and the step arena's peak.\n", f);
}

/* ---- report.html ---- */

static const char *const g_colors[] = { "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
                                        "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac" };
#define COLOR(i) g_colors[(i) % 10]

static void html_esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

typedef struct chart {
    double x0, x1, y0, y1; /* data ranges */
    int w, h, left, right, top, bottom;
} chart;

static double cx(const chart *c, double x) { return c->left + (x - c->x0) / (c->x1 - c->x0) * (c->w - c->left - c->right); }
static double cy(const chart *c, double y) { return c->h - c->bottom - (y - c->y0) / (c->y1 - c->y0) * (c->h - c->top - c->bottom); }

static void axes(FILE *f, const chart *c, const char *title, const char *xlabel, const char *ylabel, bool pct)
{
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' font-size='11'>\n",
            c->w, c->h);
    fprintf(f, "<text x='%d' y='14' font-size='13' font-weight='bold'>", c->left);
    html_esc(f, title);
    fputs("</text>\n", f);
    for (int t = 0; t <= 5; t++) {
        double y = c->y0 + (c->y1 - c->y0) * t / 5;
        fprintf(f, "<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#ddd'/>", c->left, c->w - c->right, cy(c, y), cy(c, y));
        fprintf(f, "<text x='%d' y='%.1f' text-anchor='end'>%.*f</text>\n", c->left - 4, cy(c, y) + 4, pct ? 0 : 2,
                pct ? 100 * y : y);
    }
    fprintf(f, "<line x1='%d' x2='%d' y1='%d' y2='%d' stroke='#333'/>", c->left, c->w - c->right, c->h - c->bottom,
            c->h - c->bottom);
    fprintf(f, "<text x='%d' y='%d' text-anchor='middle'>%s</text>", (c->left + c->w - c->right) / 2, c->h - 4, xlabel);
    fprintf(f, "<text transform='translate(12,%d) rotate(-90)' text-anchor='middle'>%s</text>\n",
            (c->top + c->h - c->bottom) / 2, ylabel);
}

static void legend(FILE *f, const chart *c, const study *s, const bool *shown)
{
    int k = 0;
    for (int i = 0; i < s->n_variants; i++) {
        if (!shown[i]) continue;
        double y = c->top + 12.0 * k++;
        fprintf(f, "<rect x='%d' y='%.1f' width='10' height='10' fill='%s'/><text x='%d' y='%.1f'>", c->w - c->right + 8,
                y, COLOR(i), c->w - c->right + 22, y + 9);
        html_esc(f, s->variants[i].name);
        fputs("</text>\n", f);
    }
}

static void accuracy_bars(FILE *f, const study *s)
{
    double lo = 1, hi = 0;
    for (int i = 0; i < s->n_variants; i++) {
        lo = fmin(lo, s->variants[i].accuracy.mean - s->variants[i].accuracy.std);
        hi = fmax(hi, s->variants[i].accuracy.mean + s->variants[i].accuracy.std);
    }
    chart c = { 0, s->n_variants, fmax(0, floor(lo * 10 - 1) / 10), fmin(1, ceil(hi * 10) / 10 + 0.0001), 60 + 70 * s->n_variants, 300, 50, 10, 34, 90 };
    if (c.w < 420) c.w = 420;
    axes(f, &c, "Test accuracy per variant (mean and std over seeds)", "", "accuracy %", true);
    for (int i = 0; i < s->n_variants; i++) {
        const variant *v = &s->variants[i];
        double x = cx(&c, i + 0.15), w = cx(&c, i + 0.85) - x, y = cy(&c, fmax(v->accuracy.mean, c.y0));
        fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='%s'><title>%s: %.2f%%</title></rect>\n", x, y, w,
                cy(&c, c.y0) - y, COLOR(i), v->name, 100 * v->accuracy.mean);
        double xm = cx(&c, i + 0.5);
        fprintf(f, "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f' stroke='#000'/>\n", xm, xm,
                cy(&c, fmax(c.y0, v->accuracy.mean - v->accuracy.std)), cy(&c, fmin(c.y1, v->accuracy.mean + v->accuracy.std)));
        fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='10'>%.1f</text>", xm, y - 4, 100 * v->accuracy.mean);
        fprintf(f, "<text transform='translate(%.1f,%d) rotate(35)' font-size='10'>", xm - 4, c.h - c.bottom + 12);
        html_esc(f, v->name);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
}

/* One line per variant: y[i][l] over x[l]. */
static void lines(FILE *f, const study *s, const char *title, const char *xlabel, const double *x, int n,
                  const double *(*series)(const variant *, int, const void *), const void *arg, const bool *shown)
{
    double lo = 1, hi = 0;
    for (int i = 0; i < s->n_variants; i++) {
        if (!shown[i]) continue;
        const double *y = series(&s->variants[i], i, arg);
        for (int l = 0; l < n; l++) lo = fmin(lo, y[l]), hi = fmax(hi, y[l]);
    }
    chart c = { x[0], x[n - 1] > x[0] ? x[n - 1] : x[0] + 1, fmax(0, floor(lo * 10) / 10), fmin(1, ceil(hi * 10) / 10 + 0.0001),
                560, 280, 50, 150, 34, 34 };
    axes(f, &c, title, xlabel, "accuracy %", true);
    for (int l = 0; l < n; l++)
        fprintf(f, "<text x='%.1f' y='%d' text-anchor='middle'>%g</text>", cx(&c, x[l]), c.h - c.bottom + 13, x[l]);
    for (int i = 0; i < s->n_variants; i++) {
        if (!shown[i]) continue;
        const double *y = series(&s->variants[i], i, arg);
        fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", COLOR(i));
        for (int l = 0; l < n; l++) fprintf(f, "%.1f,%.1f ", cx(&c, x[l]), cy(&c, y[l]));
        fputs("'/>\n", f);
    }
    legend(f, &c, s, shown);
    fputs("</svg>\n", f);
}

static const double *noise_series(const variant *v, int i, const void *arg) { (void)i; return v->noise_acc[*(const int *)arg]; }
static const double *missing_series(const variant *v, int i, const void *arg) { (void)i; return v->missing_acc[*(const int *)arg]; }
static const double *val_series(const variant *v, int i, const void *arg) { (void)i; (void)arg; return v->val_curve; }

/* Rows carry the class names, columns their indices (names would not fit). */
static void confusion(FILE *f, const study *s, const variant *v)
{
    int n = s->n_classes, cell = n > 12 ? 12 : 18, left = 90, size = n * cell;
    const int64_t *cm = v->runs[0].cm;
    int64_t mx = 1;
    for (int i = 0; i < n * n; i++) mx = cm[i] > mx ? cm[i] : mx;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' font-size='9'>\n",
            left + size + 10, 30 + size + 6);
    fputs("<text x='0' y='11' font-size='11' font-weight='bold'>", f);
    html_esc(f, v->name);
    fputs("</text>\n", f);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double a = (double)cm[i * n + j] / (double)mx;
            fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='rgb(%d,%d,%d)'><title>true ", left + j * cell,
                    30 + i * cell, cell, cell, (int)(255 - 200 * a), (int)(255 - 140 * a), (int)(255 - 60 * a));
            html_esc(f, s->classes[i]);
            fputs(", predicted ", f);
            html_esc(f, s->classes[j]);
            fprintf(f, ": %lld</title></rect>", (long long)cm[i * n + j]);
        }
    for (int i = 0; i < n; i++) {
        fprintf(f, "<text x='%d' y='%d' text-anchor='end'>", left - 4, 30 + i * cell + cell / 2 + 3);
        html_esc(f, s->classes[i]);
        fprintf(f, "</text><text x='%d' y='27' text-anchor='middle'>%d</text>", left + i * cell + cell / 2, i);
    }
    fputs("</svg>\n", f);
}

static void weights_chart(FILE *f, const study *s)
{
    int rows = 0;
    for (int i = 0; i < s->n_variants; i++) rows += s->variants[i].has_weights;
    if (!rows) return;
    fputs("<h2>Fusion weights per modality</h2><p>Mean over the test samples of the per-sample modality weights of the "
          "fusion methods that compute them.</p>\n", f);
    int h = 40 + rows * 22;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='560' height='%d' font-family='sans-serif' font-size='11'>\n", h);
    int r = 0;
    for (int i = 0; i < s->n_variants; i++) {
        const variant *v = &s->variants[i];
        if (!v->has_weights) continue;
        double x = 150;
        fprintf(f, "<text x='145' y='%d' text-anchor='end'>", 30 + r * 22);
        html_esc(f, v->name);
        fputs("</text>", f);
        for (int m = 0; m < MML_MOD_COUNT; m++) {
            if (!v->mods[m]) continue;
            double w = 380 * v->weights[m];
            fprintf(f, "<rect x='%.1f' y='%d' width='%.1f' height='16' fill='%s'/><text x='%.1f' y='%d' fill='#fff'>%s %.2f</text>",
                    x, 18 + r * 22, w, COLOR(m + 3), x + 3, 30 + r * 22, mml_modality_name((mml_modality)m), v->weights[m]);
            x += w;
        }
        r++;
    }
    fputs("</svg>\n", f);
}

static void write_html(FILE *f, const study *s)
{
    bool all[MML_STUDY_MAX_VARIANTS];
    for (int i = 0; i < s->n_variants; i++) all[i] = true;
    fputs("<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>", f);
    html_esc(f, s->name);
    fputs("</title><style>body{font-family:sans-serif;max-width:1100px;margin:20px auto;color:#222}"
          "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}"
          "td:first-child,th:first-child{text-align:left}.grid{display:flex;flex-wrap:wrap;gap:12px}</style></head><body>\n<h1>", f);
    html_esc(f, s->name);
    fprintf(f, "</h1><p>%d variants, %d seed%s each; %lld training and %lld test samples; %d classes.</p>\n", s->n_variants,
            s->seeds, s->seeds > 1 ? "s" : "", (long long)s->n_train, (long long)s->n_test, s->n_classes);
    fputs("<table><tr><th>variant</th><th>fusion</th><th>accuracy %</th><th>macro-F1 %</th><th>params</th>"
          "<th>train s</th><th>infer ms/sample</th></tr>\n", f);
    for (int i = 0; i < s->n_variants; i++) {
        const variant *v = &s->variants[i];
        fputs("<tr><td>", f);
        html_esc(f, v->name);
        fprintf(f, "</td><td>%s</td><td>%.2f &plusmn; %.2f</td><td>%.2f &plusmn; %.2f</td><td>%lld</td><td>%.1f</td><td>%.3f</td></tr>\n",
                v->fusion, 100 * v->accuracy.mean, 100 * v->accuracy.std, 100 * v->macro_f1.mean, 100 * v->macro_f1.std,
                (long long)v->params, v->train_seconds.mean, v->infer_ms.mean);
    }
    fputs("</table>\n<h2>Accuracy</h2>\n", f);
    accuracy_bars(f, s);
    fputs("<h2>Learning curves</h2><p>Validation accuracy after each epoch, mean over seeds.</p>\n", f);
    int epochs = s->variants[0].epochs;
    double ex[MML_STUDY_MAX_EPOCHS];
    for (int e = 0; e < epochs; e++) ex[e] = e + 1;
    bool curves = epochs > 0 && isfinite(s->variants[0].val_curve[0]);
    for (int i = 0; i < s->n_variants; i++) all[i] = s->variants[i].epochs == epochs;
    if (curves) lines(f, s, "Validation accuracy", "epoch", ex, epochs, val_series, NULL, all);
    else fputs("<p>(no validation split)</p>\n", f);
    for (int i = 0; i < s->n_variants; i++) all[i] = true;
    fputs("<h2>Robustness to test-time noise</h2><p>Gaussian noise added to one modality's features; its std in units "
          "of that modality's feature std on the training split.</p><div class='grid'>\n", f);
    for (int m = 0; m < MML_MOD_COUNT; m++) {
        if (!s->noisy[m]) continue;
        char t[96];
        snprintf(t, sizeof t, "Noise on %s", mml_modality_name((mml_modality)m));
        lines(f, s, t, "noise std", s->noise, s->n_noise, noise_series, &m, all);
    }
    fputs("</div><h2>Missing modalities at test time</h2><p>Fraction of test samples with the modality removed.</p><div class='grid'>\n", f);
    for (int m = 0; m < MML_MOD_COUNT; m++) {
        if (!s->mods[m]) continue;
        char t[96];
        snprintf(t, sizeof t, "%s missing", mml_modality_name((mml_modality)m));
        lines(f, s, t, "fraction missing", s->missing, s->n_missing, missing_series, &m, all);
    }
    fputs("</div>\n", f);
    weights_chart(f, s);
    fputs("<h2>Confusion matrices</h2><p>Seed 0, test split; rows: true class, columns: predicted class (by index, in the row order).</p><div class='grid'>\n", f);
    for (int i = 0; i < s->n_variants; i++) confusion(f, s, &s->variants[i]);
    fputs("</div></body></html>\n", f);
}

typedef void (*writer)(FILE *, const study *);

static mml_status write_file(const char *dir, const char *name, const study *s, writer w)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return mml_error(MML_ERR_IO, "%s: %s", path, strerror(errno));
    w(f, s);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) return mml_error(MML_ERR_IO, "%s: write failed", path);
    return MML_OK;
}

mml_status study_write(const study *s, const char *dir)
{
    mml_status rc = write_file(dir, "results.json", s, write_json);
    if (rc == MML_OK) rc = write_file(dir, "results.md", s, write_md);
    if (rc == MML_OK) rc = write_file(dir, "report.html", s, write_html);
    return rc;
}
