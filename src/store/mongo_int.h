/* Private to the MongoDB engine: conversion between the store's JSON
 * documents and BSON (dates and ObjectIds become native types), and the
 * translation of the store's query form into MongoDB filters. */
#ifndef BS_STORE_MONGO_INT_H
#define BS_STORE_MONGO_INT_H

#include "store/internal.h"

#include <mongoc/mongoc.h>

/* Appends doc's members to out (initialized by the caller): top-level fields
 * typed by the collection's descriptor. Returns false when a value cannot be
 * represented (then out is incomplete). */
bool bs_mg_from_json(bs_coll c, const json_t *doc, bson_t *out);
/* Appends one value under key, typed as t (a descriptor type) or untyped
 * when t < 0. */
bool bs_mg_append(bson_t *b, const char *key, const json_t *v, int t);
/* Appends an array of activity_log entries (their timestamp and task_id as
 * date and ObjectId). */
bool bs_mg_append_activity(bson_t *b, const char *key, const json_t *arr);
/* The store's document for a BSON document of collection c: descriptor
 * fields only, dates as ISO strings, ids as hex, top-level nulls dropped. */
json_t *bs_mg_to_json(bs_coll c, const bson_t *b);
/* Builds the filter of q into out (initialized by the caller). */
int bs_mg_filter(bs_coll c, const bs_query *q, bson_t *out, bs_err *err);
/* The words of free text, separated by spaces (MongoDB's $text syntax for
 * phrases and negation is not offered to users); NULL when there are none. */
char *bs_mg_text(const char *text);

/* Maps a driver error to a BS_E* code with a sentence: duplicate keys
 * become BS_ECONFLICT naming the field, unreachable servers BS_ESTORE. */
int bs_mg_fail(const bson_error_t *e, const char *what, bs_err *err);
/* Creates or updates the collections, validators and indexes (mongo_setup.c). */
int bs_mg_setup(bs_store *s, mongoc_database_t *db, bs_err *err);

#endif
