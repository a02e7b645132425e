/* bertstudio keys: API keys from the command line, for the first admin key
 * of a deployment or a lost one (create), and an overview (list). Works on
 * the store directly, so it also works while no server runs. */
#include "cli/cli.h"
#include "server/server.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: bertstudio keys create [--admin] [--name N] [--permissions P,...]\n"
        "                              [--data-dir DIR] [--store URI]\n"
        "       bertstudio keys list [--data-dir DIR] [--store URI]\n\n"
        "  create           creates a key and prints its secret (shown only once)\n"
        "    --admin        every permission, no rate limits\n"
        "    --name N       the key's name (default \"admin\" or \"cli\")\n"
        "    --permissions  comma-separated: tasks:execute, tasks:save, models:download,\n"
        "                   admin:read, admin:write (default tasks:execute)\n"
        "  list             prints id, prefix, name, active, permissions of every key\n"
        "  --data-dir DIR   the server's data directory (default ./data; env BERTSTUDIO_DATA_DIR)\n"
        "  --store URI      the store (default DATA_DIR/bertstudio.db; env BERTSTUDIO_STORE)\n");
}

static int create(bs_store *s, int admin, const char *name, const char *perms)
{
    bs_err err = {0};
    char *secret = NULL;
    int rc;
    if (admin) {
        rc = bs_server_create_admin_key(s, name ? name : "admin", &secret, &err);
    } else {
        json_t *p = json_array();
        char buf[512];
        snprintf(buf, sizeof buf, "%s", perms ? perms : "tasks:execute");
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(p, json_string(t));
        json_t *fields = json_pack("{s:s, s:o}", "name", name ? name : "cli", "permissions", p);
        rc = bs_store_keys_create(s, fields, &secret, NULL, &err);
        json_decref(fields);
    }
    if (rc) {
        fprintf(stderr, "bertstudio: %s\n", err.msg);
        return 1;
    }
    printf("API key (shown only this once, store it now): %s\n", secret);
    free(secret);
    return 0;
}

static int list(bs_store *s)
{
    json_t *keys = NULL;
    bs_err err = {0};
    if (bs_store_keys_list(s, 1000, 0, &keys, &err)) {
        fprintf(stderr, "bertstudio: %s\n", err.msg);
        return 1;
    }
    printf("%-24s  %-8s  %-6s  %-20s  %s\n", "id", "prefix", "active", "name", "permissions");
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        char *perms = json_dumps(json_object_get(k, "permissions"), JSON_COMPACT);
        printf("%-24s  %-8s  %-6s  %-20s  %s\n", json_string_value(json_object_get(k, "_id")),
               json_string_value(json_object_get(k, "key_prefix"))
                   ? json_string_value(json_object_get(k, "key_prefix"))
                   : "",
               json_is_true(json_object_get(k, "is_active")) ? "yes" : "no",
               json_string_value(json_object_get(k, "name")), perms ? perms : "[]");
        free(perms);
    }
    json_decref(keys);
    return 0;
}

int bs_cli_keys(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "create") && strcmp(cmd, "list"))
        return bs_cli_usage_error("keys: unknown action '%s' (create or list)", cmd);
    const char *data_dir = getenv("BERTSTUDIO_DATA_DIR"), *uri = getenv("BERTSTUDIO_STORE");
    const char *name = NULL, *perms = NULL;
    int admin = 0;
    static const struct option longopts[] = {{"admin", no_argument, 0, 'a'},
                                             {"name", required_argument, 0, 'n'},
                                             {"permissions", required_argument, 0, 'p'},
                                             {"data-dir", required_argument, 0, 'd'},
                                             {"store", required_argument, 0, 's'},
                                             {"help", no_argument, 0, 'H'},
                                             {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            admin = 1;
            break;
        case 'n':
            name = optarg;
            break;
        case 'p':
            perms = optarg;
            break;
        case 'd':
            data_dir = optarg;
            break;
        case 's':
            uri = optarg;
            break;
        case 'H':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc - 1)
        return bs_cli_usage_error("keys: unexpected argument '%s'", argv[optind + 1]);
    if (!strcmp(cmd, "list") && (admin || name || perms))
        return bs_cli_usage_error("keys list takes only --data-dir and --store");
    if (admin && perms)
        return bs_cli_usage_error("keys create: --admin already has every permission");
    bs_store *s;
    int rc = bs_cli_store_open(bs_cli_data_dir(data_dir), uri, &s);
    if (rc) return rc;
    rc = !strcmp(cmd, "create") ? create(s, admin, name, perms) : list(s);
    bs_store_close(s);
    return rc;
}
