/* mml/caption.h: image captioning ("task": "captioning"): an image encoder
 * (mml/encoder.h) and a text decoder trained with teacher forcing on the
 * manifest's texts, decoded greedily or by beam search (mml/decode.h):
 *
 *   "model": {"encoders": {"image": {...}},
 *             "decoder": {"type": "gru", "embed": 64, "hidden": 128}            // Show, Attend and Tell-like
 *                     or {"type": "transformer", "d_model": 128, "heads": 4, "layers": 2, "ff": 256},
 *             "beam": 3, "mentions": [["t-shirt", "tee"], ...]}
 *
 * GRU: the image's pooled embedding is the first input step (Show and Tell),
 * then each step attends over the image encoder's positions (its feature
 * map) and predicts from [state; context] (Luong attention). Transformer:
 * pre-norm decoder layers, causal self-attention and cross-attention to the
 * image positions. Texts are CLIP BPE tokens (data.text); the decoder's
 * vocabulary is the tokens of the training texts (plus <unk>), so the output
 * layer is small. Evaluation: corpus BLEU-1..4 over words, the references of
 * a test image being every distinct training text of its class, and, with
 * "mentions" (phrases per class, in class order), the fraction of captions
 * that name the image's class. */
#ifndef MML_CAPTION_H
#define MML_CAPTION_H

#include "mml/metrics.h"
#include "mml/multimodal.h"

typedef struct mml_caption_model mml_caption_model;

mml_status mml_caption_model_build(const mml_cfg_node *model, const mml_mm_data *d, uint64_t seed,
                                   mml_caption_model **out);
void mml_caption_model_free(mml_caption_model *m);
mml_params *mml_caption_model_params(mml_caption_model *m);
int64_t mml_caption_model_vocab(const mml_caption_model *m);

typedef struct mml_caption_history {
    int epochs;
    double train_loss[256], val_loss[256]; /* per-token cross-entropy */
    double train_seconds;
} mml_caption_history;

mml_status mml_caption_train(mml_caption_model *m, const mml_mm_data *d, const mml_train_options *o,
                             mml_caption_history *h);

/* Caption of every sample of a dataset made with d's featurizer (only its
 * images are used): texts[i] (heap; mml_free each and the array). beam 0:
 * the model's. */
mml_status mml_caption_generate(mml_caption_model *m, const mml_mm_data *d, const mml_dataset *ds, int beam,
                                char ***texts);

typedef struct mml_caption_eval {
    mml_bleu bleu;
    double mention_rate; /* NAN without "mentions" */
    double loss;         /* teacher-forced cross-entropy per token */
    int64_t n;
} mml_caption_eval;

/* Captions the split's images; examples (if not NULL) gets the first
 * n_examples captions (heap strings). */
mml_status mml_caption_evaluate(mml_caption_model *m, const mml_mm_data *d, mml_data_split split, mml_caption_eval *out,
                                char **examples, int n_examples);

mml_status mml_caption_model_save(mml_caption_model *m, const char *path, const char *config_json, const char *classes_json);
/* A model written by mml_caption_model_save, with its config's featurizer in
 * d (no split read; mml_mm_data_close). */
mml_status mml_caption_model_load(const char *path, const mml_mm_data_options *opt, mml_caption_model **out,
                                  mml_mm_data *d);

#endif
