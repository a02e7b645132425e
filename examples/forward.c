/*
 * forward: the raw engine API (bertstudio/model.h) under the pipelines. Loads
 * a model folder, tokenizes the texts given on the command line, runs them as
 * ONE padding-free batch of sequences of different lengths through
 * bs_model_forward, and prints the shape and a few values of the last hidden
 * state (and of the pooler output when the model has a pooler). Ends by
 * showing what an error looks like: a token id outside the vocabulary.
 *
 *   build/examples/bs-forward tests/fixtures/models/tiny-bert-embeddings \
 *       "Hello world!" "Short one."
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bertstudio/model.h>
#include <bertstudio/tokenizer.h>

enum { SHOW = 6 }; /* values printed per row */

static void print_row(const char *what, const float *row, int hidden)
{
    printf("    %-16s", what);
    for (int d = 0; d < SHOW && d < hidden; d++) printf(" %10.6f", row[d]);
    printf(" ...\n");
}

static int fail(const char *prog, const bs_err *err)
{
    /* err->code is the negative BS_E* the call returned; err->msg names the
     * file, tensor, sequence or position at fault. */
    fprintf(stderr, "%s: %s (%s)\n", prog, err->msg, bs_strerror(err->code));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR TEXT [TEXT...]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int n = argc - 2, status = 1;
    bs_err err = {0};
    bs_ctx *engine = NULL;
    bs_model *model = NULL;
    bs_tokenizer *tok = NULL;
    bs_encoding **encs = NULL;
    bs_seq *seqs = NULL;
    bs_model_outputs out;
    bs_model_outputs_init(&out); /* safe to release even if never used */

    /* The compute threads belong to an engine context (one per core by
     * default), which any number of models loaded on it share, as
     * llama_context is apart from llama_model. model.safetensors is mmap'ed
     * (docs/engine.md). */
    if (bs_ctx_new(NULL, &engine, &err) != 0) {
        status = fail(argv[0], &err);
        goto done;
    }
    bs_model_opts opts;
    bs_model_opts_default(&opts);
    opts.ctx = engine;
    if (bs_model_load(dir, &opts, &model, &err) != 0) {
        status = fail(argv[0], &err);
        goto done;
    }
    printf("model: %s (%s), %d layers, hidden size %d, at most %d tokens, %d threads\n",
           bs_model_architecture(model), bs_model_type(model), bs_model_num_layers(model),
           bs_model_hidden_size(model), bs_model_max_seq_len(model), bs_model_n_threads(model));

    /* The model folder holds the tokenizer files too. */
    if (bs_tokenizer_load(dir, &tok, &err) != 0) {
        status = fail(argv[0], &err);
        goto done;
    }

    /* Tokenize, truncating each text to what the model accepts (the forward
     * pass refuses longer sequences with BS_ERANGE). No padding: the engine
     * takes each sequence at its own length. */
    bs_encode_opts eo;
    bs_encode_opts_default(&eo);
    eo.truncation.strategy = BS_TRUNC_LONGEST_FIRST;
    eo.truncation.max_length = (size_t)bs_model_max_seq_len(model);
    size_t *lens = calloc((size_t)n, sizeof *lens);
    if (!lens) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        goto done;
    }
    for (int i = 0; i < n; i++) lens[i] = strlen(argv[2 + i]);
    int rc = bs_tokenizer_encode_batch(tok, (size_t)n, (const char *const *)(argv + 2), lens, NULL,
                                       NULL, &eo, &encs, &err);
    free(lens);
    if (rc != 0) {
        status = fail(argv[0], &err);
        goto done;
    }

    /* A batch is just N (ids, token types, length) triples pointing at our
     * arrays: nothing is copied. RoBERTa and DistilBERT ignore token types,
     * and NULL means all zeros. */
    seqs = calloc((size_t)n, sizeof *seqs);
    if (!seqs) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        goto done;
    }
    int uses_types = bs_model_uses_token_type_ids(model);
    for (int i = 0; i < n; i++) {
        seqs[i].input_ids = encs[i]->ids;
        seqs[i].token_type_ids = uses_types ? encs[i]->type_ids : NULL;
        seqs[i].len = (int32_t)encs[i]->len;
    }
    bs_batch batch = {seqs, n};

    /* Ask for the encoder output, plus the pooler's where there is one
     * (asking a model without a pooler for it is BS_EINVAL). BS_OUT_LOGITS
     * would add the head's logits. */
    out.want = BS_OUT_HIDDEN;
    if (bs_model_has_pooler(model)) out.want |= BS_OUT_POOLED;
    if (bs_model_forward(model, &batch, &out, &err) != 0) {
        status = fail(argv[0], &err);
        goto done;
    }

    /* Outputs are packed, not padded: token p of sequence i is row
     * offset(i) + p, where offset(i) is the sum of the earlier lengths. */
    printf("batch: %d sequences, %d tokens in all, no padding\n", out.n_seqs, out.total_tokens);
    printf("last_hidden_state: [%d][%d]\n", out.total_tokens, out.hidden_size);
    int32_t offset = 0;
    for (int i = 0; i < n; i++) {
        int32_t len = seqs[i].len;
        printf("  sequence %d: %d tokens, rows %d..%d\n", i, len, offset, offset + len - 1);
        printf("    ids:");
        for (int32_t p = 0; p < len; p++) printf(" %d", seqs[i].input_ids[p]);
        printf("\n");
        char what[64];
        snprintf(what, sizeof what, "token 0 %s", encs[i]->tokens[0]);
        print_row(what, out.last_hidden_state + (size_t)offset * out.hidden_size, out.hidden_size);
        snprintf(what, sizeof what, "token %d %s", len - 1, encs[i]->tokens[len - 1]);
        print_row(what, out.last_hidden_state + (size_t)(offset + len - 1) * out.hidden_size,
                  out.hidden_size);
        offset += len;
    }
    if (out.pooler_output) {
        printf("pooler_output: [%d][%d]\n", out.n_seqs, out.hidden_size);
        for (int i = 0; i < n; i++) {
            char what[32];
            snprintf(what, sizeof what, "sequence %d", i);
            print_row(what, out.pooler_output + (size_t)i * out.hidden_size, out.hidden_size);
        }
    }

    /* Errors: a bad input is reported, never crashes. Here the second token
     * of a one-sequence batch is one past the vocabulary. The same `out` is
     * reused: its buffers stay allocated between calls. */
    int32_t bad_ids[] = {encs[0]->ids[0], (int32_t)bs_model_vocab_size(model)};
    bs_seq bad_seq = {bad_ids, NULL, 2};
    bs_batch bad = {&bad_seq, 1};
    bs_err bad_err = {0};
    rc = bs_model_forward(model, &bad, &out, &bad_err);
    printf("error handling: a token id outside the vocabulary -> %d (%s): %s\n", rc,
           bs_strerror(rc), bad_err.msg);
    status = rc == BS_ERANGE ? 0 : 1; /* anything else would be a bug worth a failure */

done:
    bs_model_outputs_release(&out);
    free(seqs);
    if (encs) bs_encoding_batch_free(encs, (size_t)n);
    bs_tokenizer_free(tok);
    bs_model_free(model);
    bs_ctx_free(engine); /* after every model loaded on it */
    return status;
}
