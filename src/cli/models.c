/* bertstudio models: the model cache from the command line (list, download
 * from the Hub with a progress bar, import a local folder, remove, info),
 * on the same data directory and store the server uses. */
#include "cli/cli.h"
#include "hub/hub.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bertstudio models <command> [options]\n\n"
            "  list                          the cached models\n"
            "  download NAME                 fetch NAME (a Hub id) from the Hub\n"
            "  import PATH NAME              copy a local model folder into the cache as NAME\n"
            "  remove NAME                   delete NAME from the cache\n"
            "  info NAME                     NAME's model_cache document\n\n"
            "options:\n"
            "  --data-dir DIR   data directory (default ./data; env BERTSTUDIO_DATA_DIR);\n"
            "                   models live in DIR/models, the store is DIR/bertstudio.db\n"
            "  --revision REV   download: branch, tag or commit (default main)\n"
            "  --task TASK      download/import: task_type (default: from config.json)\n"
            "  --priority P     download/import: cache_priority low|normal|high\n"
            "  --json           list/info: JSON output\n\n"
            "Environment: HF_ENDPOINT (Hub mirror, default https://huggingface.co),\n"
            "HF_TOKEN (bearer token for private or gated models).\n");
}

typedef struct bar {
    int tty;
    int last_files;
    const char *last_stage;
} bar;

static void human(double b, char *out, size_t len)
{
    const char *u[] = {"B", "kB", "MB", "GB", "TB"};
    int i = 0;
    while (b >= 1000 && i < 4) b /= 1000, i++;
    snprintf(out, len, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static int on_progress(const bs_hub_progress *p, void *ud)
{
    bar *b = ud;
    char done[32], total[32], rate[32];
    human((double)p->done, done, sizeof done);
    human(p->total >= 0 ? (double)p->total : 0, total, sizeof total);
    human(p->rate, rate, sizeof rate);
    if (b->tty) {
        if (!strcmp(p->stage, "downloading")) {
            int pct = p->total > 0 ? (int)(100 * p->done / p->total) : 0;
            int fill = pct / 5;
            char eta[32] = "--";
            if (p->eta_s >= 0) snprintf(eta, sizeof eta, "%.0fs", p->eta_s);
            printf("\r[%-20.*s] %3d%% %s/%s %s/s eta %s (%d/%d files)\033[K", fill,
                   "####################", pct, done, total, rate, eta, p->files_done,
                   p->files_total);
        } else {
            if (!strcmp(p->stage, "done"))
                printf("\r\033[K");
            else
                printf("\r%s...\033[K", p->stage);
        }
        fflush(stdout);
    } else if (b->last_stage != p->stage || p->files_done != b->last_files) {
        /* Plain lines for logs: one per stage and per finished file. */
        if (!strcmp(p->stage, "downloading"))
            printf("downloading: %d/%d files, %s of %s\n", p->files_done, p->files_total, done,
                   p->total >= 0 ? total : "?");
        else
            printf("%s\n", p->stage);
        fflush(stdout);
        b->last_stage = p->stage;
        b->last_files = p->files_done;
    }
    return 0;
}

static void print_doc(const json_t *doc, int as_json)
{
    if (as_json) {
        char *s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (s) puts(s);
        free(s);
        return;
    }
    const char *keys[] = {"model_name",
                          "task_type",
                          "model_type",
                          "local_path",
                          "file_size",
                          "checksum",
                          "download_url",
                          "download_date",
                          "last_accessed",
                          "access_count",
                          "cache_priority",
                          "is_cached",
                          NULL};
    for (int i = 0; keys[i]; i++) {
        json_t *v = json_object_get(doc, keys[i]);
        if (!v) continue;
        char *s = json_is_string(v) ? strdup(json_string_value(v)) : json_dumps(v, JSON_ENCODE_ANY);
        printf("%-15s %s\n", keys[i], s ? s : "");
        free(s);
    }
    json_t *mc = json_object_get(doc, "model_config");
    char *s = mc ? json_dumps(mc, JSON_SORT_KEYS) : NULL;
    if (s) printf("%-15s %s\n", "model_config", s);
    free(s);
}

int bs_cli_models(int argc, char **argv)
{
    const char *data_dir = getenv("BERTSTUDIO_DATA_DIR");
    const char *revision = NULL, *task = NULL, *priority = NULL;
    int as_json = 0;
    static const struct option longopts[] = {{"data-dir", required_argument, 0, 'd'},
                                             {"revision", required_argument, 0, 'r'},
                                             {"task", required_argument, 0, 't'},
                                             {"priority", required_argument, 0, 'p'},
                                             {"json", no_argument, 0, 'j'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data_dir = optarg;
            break;
        case 'r':
            revision = optarg;
            break;
        case 't':
            task = optarg;
            break;
        case 'p':
            priority = optarg;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    char **args = argv + optind + 1;
    int nargs = argc - optind - 1;
    int want = !strcmp(cmd, "list") ? 0 : !strcmp(cmd, "import") ? 2 : 1;
    if (strcmp(cmd, "list") && strcmp(cmd, "download") && strcmp(cmd, "import") &&
        strcmp(cmd, "remove") && strcmp(cmd, "info"))
        return bs_cli_usage_error("unknown models command '%s' (see 'bertstudio models --help')",
                                  cmd);
    if (nargs != want)
        return bs_cli_usage_error("models %s takes %d argument(s) (see 'bertstudio models --help')",
                                  cmd, want);
    data_dir = bs_cli_data_dir(data_dir);

    bs_err e = {0};
    bs_store *store = NULL;
    bs_hub *hub = NULL;
    bs_hub_opts ho = {.data_dir = data_dir};
    if (mkdir(data_dir, 0700) && errno != EEXIST) {
        fprintf(stderr, "bertstudio: cannot create %s: %s\n", data_dir, strerror(errno));
        return 1;
    }
    int rc = bs_cli_store_open(data_dir, NULL, &store);
    if (rc) return rc;
    ho.store = store;
    rc = bs_hub_open(&ho, &hub, &e);
    json_t *doc = NULL;
    if (rc) {
        /* nothing more to do */
    } else if (!strcmp(cmd, "list")) {
        rc = bs_hub_list(hub, &doc, &e);
        if (!rc && as_json) {
            print_doc(doc, 1);
        } else if (!rc) {
            printf("%-40s %-15s %10s %-24s %s\n", "MODEL", "TASK", "SIZE", "LAST ACCESSED",
                   "CACHED");
            size_t i;
            json_t *m;
            json_array_foreach(doc, i, m)
            {
                char size[32];
                human((double)json_integer_value(json_object_get(m, "file_size")), size,
                      sizeof size);
                const char *la = json_string_value(json_object_get(m, "last_accessed"));
                printf("%-40s %-15s %10s %-24s %s\n",
                       json_string_value(json_object_get(m, "model_name")),
                       json_string_value(json_object_get(m, "task_type")), size, la ? la : "-",
                       json_is_true(json_object_get(m, "is_cached")) ? "yes" : "no");
            }
        }
    } else if (!strcmp(cmd, "download")) {
        bar b = {.tty = isatty(STDOUT_FILENO), .last_files = -1};
        bs_hub_download_req req = {.model_name = args[0],
                                   .revision = revision,
                                   .task_type = task,
                                   .cache_priority = priority};
        rc = bs_hub_download(hub, &req, on_progress, &b, &doc, &e);
        if (b.tty && rc) printf("\n");
        if (!rc)
            printf("downloaded %s (%s, %lld bytes, %s) into %s\n", args[0],
                   json_string_value(json_object_get(doc, "task_type")),
                   (long long)json_integer_value(json_object_get(doc, "file_size")),
                   json_string_value(json_object_get(doc, "checksum")),
                   json_string_value(json_object_get(doc, "local_path")));
    } else if (!strcmp(cmd, "import")) {
        rc = bs_hub_import(hub, args[0], args[1], task, priority, &doc, &e);
        if (!rc)
            printf("imported %s (%s, %lld bytes, %s) into %s\n", args[1],
                   json_string_value(json_object_get(doc, "task_type")),
                   (long long)json_integer_value(json_object_get(doc, "file_size")),
                   json_string_value(json_object_get(doc, "checksum")),
                   json_string_value(json_object_get(doc, "local_path")));
    } else if (!strcmp(cmd, "remove")) {
        rc = bs_hub_remove(hub, args[0], &e);
        if (!rc) printf("removed %s\n", args[0]);
    } else {
        rc = bs_hub_info(hub, args[0], task, &doc, &e);
        if (!rc) print_doc(doc, as_json);
    }
    json_decref(doc);
    bs_hub_close(hub);
    bs_store_close(store);
    return rc ? bs_cli_fail(&e) : 0;
}
