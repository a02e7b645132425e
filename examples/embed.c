/*
 * embed: sentence embeddings with the pipeline API (bertstudio/pipeline.h).
 * Loads a model folder, embeds the texts given on the command line (mean
 * pooling over the tokens, then L2 normalization, as sentence-transformers
 * does), prints the first dimensions of each vector and the matrix of cosine
 * similarities between the texts.
 *
 *   build/examples/bs-embed tests/fixtures/models/tiny-bert-embeddings "a text" "another"
 *
 * The fixture models have random weights: the numbers are reproducible, not
 * meaningful. A real sentence-transformers folder (e.g. all-MiniLM-L6-v2 with
 * model.safetensors) gives meaningful similarities.
 */
#include <stdio.h>
#include <stdlib.h>

#include <bertstudio/pipeline.h>

enum { SHOW_DIMS = 8 }; /* dimensions printed per vector */

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR TEXT [TEXT...]\n", argv[0]);
        return 2;
    }

    /* A pipeline context is the model, its tokenizer and the side files
     * (modules.json, 1_Pooling/config.json, ...) of one folder. NULL options:
     * one compute thread per core. */
    bs_err err = {0};
    bs_pipeline_ctx *ctx = NULL;
    if (bs_pipeline_ctx_load(argv[1], NULL, &ctx, &err) != 0) {
        fprintf(stderr, "%s: %s (%s)\n", argv[0], err.msg, bs_strerror(err.code));
        return 1;
    }
    printf("model: %s, hidden size %d\n", bs_model_architecture(bs_pipeline_ctx_model(ctx)),
           bs_model_hidden_size(bs_pipeline_ctx_model(ctx)));

    /* The request says what /tasks/embeddings would: the texts, the pooling,
     * whether to normalize. Left at their defaults (BS_POOL_DEFAULT, -1) the
     * folder's sentence-transformers files decide; here we ask explicitly. */
    bs_embeddings_req req;
    bs_embeddings_req_init(&req);
    req.input.n = (size_t)(argc - 2);
    req.input.texts = (const char *const *)(argv + 2);
    req.pooling = BS_POOL_MEAN;
    req.normalize = 1;

    /* The answer is typed: n vectors of dim float32 numbers (the server
     * renders the same result as the `data` of /tasks/embeddings). */
    bs_embeddings_result emb;
    if (bs_pipeline_embed(ctx, &req, &emb, &err) != 0) {
        fprintf(stderr, "%s: %s (%s)\n", argv[0], err.msg, bs_strerror(err.code));
        bs_pipeline_ctx_free(ctx);
        return 1;
    }
    size_t n = emb.n, dims = emb.dim;
    size_t show = dims < SHOW_DIMS ? dims : SHOW_DIMS;

    printf("texts:\n");
    for (size_t i = 0; i < n; i++) printf("  [%zu] %s\n", i, req.input.texts[i]);
    if (emb.truncated) printf("(a text was longer than the model's maximum and was truncated)\n");

    printf("embeddings (first %zu of %zu dimensions):\n", show, dims);
    for (size_t i = 0; i < n; i++) {
        const float *v = emb.vectors + i * dims;
        printf("  [%zu]", i);
        for (size_t d = 0; d < show; d++) printf(" %9.6f", v[d]);
        printf("\n");
    }

    /* The vectors have unit length (normalize = 1), so the cosine similarity
     * of two texts is the dot product of their vectors. */
    printf("cosine similarity:\n     ");
    for (size_t j = 0; j < n; j++) printf(" %9s%zu]", "[", j);
    printf("\n");
    for (size_t i = 0; i < n; i++) {
        const float *a = emb.vectors + i * dims;
        printf("  [%zu]", i);
        for (size_t j = 0; j < n; j++) {
            const float *b = emb.vectors + j * dims;
            double dot = 0;
            for (size_t d = 0; d < dims; d++) dot += (double)a[d] * b[d];
            printf(" %11.6f", dot);
        }
        printf("\n");
    }

    bs_embeddings_result_free(&emb);
    bs_pipeline_ctx_free(ctx);
    return 0;
}
