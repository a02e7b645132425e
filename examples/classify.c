/*
 * classify: text classification and named-entity recognition with the
 * pipeline API (bertstudio/pipeline.h). Loads a model folder and, depending
 * on the head its config.json names, prints every label with its score for
 * each text (*ForSequenceClassification) or the entities found in each text
 * (*ForTokenClassification, words grouped as the "simple" strategy does).
 *
 *   build/examples/bs-classify tests/fixtures/models/tiny-bert-classification "I hate Mondays."
 *   build/examples/bs-classify tests/fixtures/models/tiny-bert-ner "John Smith lives in New York."
 *
 * The fixture models have random weights: labels and scores are reproducible,
 * not meaningful. distilbert-base-uncased-finetuned-sst-2-english or
 * dslim/bert-base-NER (with model.safetensors) give real answers.
 */
#include <stdio.h>

#include <bertstudio/pipeline.h>

/* One text's ranked labels (classification), best first. */
static void print_labels(const bs_label_score *labels, size_t n)
{
    for (size_t i = 0; i < n; i++) printf("    %-14s %.6f\n", labels[i].label, labels[i].score);
}

/* One text's entities (NER, grouped as "simple" does) in text order;
 * start/end are code points into the text, half-open. */
static void print_entities(const bs_ner_entity *entities, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const bs_ner_entity *e = &entities[i];
        char span[48];
        snprintf(span, sizeof span, "[%zu, %zu)", e->start, e->end);
        printf("    %-6s %.6f  %-10s %s\n", e->label, e->score, span, e->word);
    }
    if (n == 0) printf("    (no entities)\n");
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR TEXT [TEXT...]\n", argv[0]);
        return 2;
    }
    bs_err err = {0};
    bs_pipeline_ctx *ctx = NULL;
    if (bs_pipeline_ctx_load(argv[1], NULL, &ctx, &err) != 0) {
        fprintf(stderr, "%s: %s (%s)\n", argv[0], err.msg, bs_strerror(err.code));
        return 1;
    }

    /* The model knows its head and its labels (config.json id2label). */
    const bs_model *model = bs_pipeline_ctx_model(ctx);
    printf("model: %s, labels:", bs_model_architecture(model));
    for (int i = 0; i < bs_model_num_labels(model); i++) printf(" %s", bs_model_label(model, i));
    printf("%s\n", bs_model_num_labels(model) ? "" : " (none)");

    bs_texts input = {.n = (size_t)(argc - 2), .texts = (const char *const *)(argv + 2)};
    bs_ner_result ner = {0};
    bs_classification_result cls = {0};
    int is_ner = bs_model_head(model) == BS_HEAD_TOKEN_CLS;
    int rc;
    if (is_ner) {
        /* Default ignore_labels (["O"]): tokens tagged O are left out. */
        bs_ner_req req;
        bs_ner_req_init(&req);
        req.input = input;
        req.aggregation = BS_NER_AGG_SIMPLE;
        rc = bs_pipeline_ner(ctx, &req, &ner, &err);
    } else {
        /* top_k <= 0: every label, not just the best one. The score function
         * (softmax, or sigmoid for multi-label models) follows the config. A
         * model without a classification head fails here with
         * BS_EUNPROCESSABLE and a message naming the head it needs. */
        bs_classification_req req;
        bs_classification_req_init(&req);
        req.input = input;
        req.top_k = 0;
        rc = bs_pipeline_classify(ctx, &req, &cls, &err);
    }
    if (rc != 0) {
        fprintf(stderr, "%s: %s (%s)\n", argv[0], err.msg, bs_strerror(err.code));
        bs_pipeline_ctx_free(ctx);
        return 1;
    }

    /* Typed results: for text i, its entities or its labels are the entries
     * offsets[i] .. offsets[i + 1] (the server renders the same results as
     * the `data` of /tasks/ner and /tasks/classification). */
    for (size_t i = 0; i < input.n; i++) {
        printf("[%zu] %s\n", i, input.texts[i]);
        if (is_ner)
            print_entities(ner.entities + ner.offsets[i], ner.offsets[i + 1] - ner.offsets[i]);
        else
            print_labels(cls.labels + cls.offsets[i], cls.offsets[i + 1] - cls.offsets[i]);
    }

    bs_ner_result_free(&ner);
    bs_classification_result_free(&cls);
    bs_pipeline_ctx_free(ctx);
    return 0;
}
