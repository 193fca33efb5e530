/* mml/progress.h: progress of long work on stderr. On a terminal: one bar
 * redrawn in place with count, rate and ETA; otherwise (logs, CI) a plain line
 * every 10% or 10 seconds, whichever comes first.
 *
 *     mml_progress p;
 *     mml_progress_start(&p, "epoch 3/10", n_batches, "batch");
 *     for (...) mml_progress_update(&p, i + 1, "loss %.4f", loss);
 *     mml_progress_finish(&p, "loss %.4f", loss);
 */
#ifndef MML_PROGRESS_H
#define MML_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct mml_progress {
    char label[96];
    const char *unit;
    int64_t total, done;
    double t0, last_draw;
    int64_t last_logged_decile;
    bool tty, quiet;
} mml_progress;

/* quiet when MML_QUIET is set in the environment. */
void mml_progress_start(mml_progress *p, const char *label, int64_t total, const char *unit);
void mml_progress_update(mml_progress *p, int64_t done, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void mml_progress_finish(mml_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
double mml_now(void); /* monotonic seconds */

#endif
