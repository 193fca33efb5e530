/* mml/error.h: status codes and the per-thread last-error message.
 *
 * Library functions that can fail on user input return an mml_status (or NULL)
 * and leave a one-line message naming the file, line, tensor or config key:
 *
 *     if (mml_safetensors_load(path, &st) != MML_OK)
 *         fprintf(stderr, "mml: %s\n", mml_last_error());
 *
 * Thread safety: the message is thread-local. */
#ifndef MML_ERROR_H
#define MML_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mml_status {
    MML_OK = 0,
    MML_ERR_ARG,         /* bad argument or configuration value */
    MML_ERR_IO,          /* file missing, unreadable or unwritable */
    MML_ERR_FORMAT,      /* malformed file contents */
    MML_ERR_SHAPE,       /* tensor shapes that do not fit together */
    MML_ERR_NOMEM,       /* allocation failed or a size overflowed */
    MML_ERR_UNSUPPORTED, /* valid but not supported (dtype, codec, option) */
} mml_status;

/* The message of the last failure on this thread ("" when none). */
const char *mml_last_error(void);
mml_status mml_last_status(void);

/* Records a failure and returns st, so callers can `return mml_error(...)`. */
mml_status mml_error(mml_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes the current message with context: "file.json: " + message. */
void mml_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mml_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
