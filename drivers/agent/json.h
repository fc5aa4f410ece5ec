/*
 * json.h - a small JSON reader for the step plan (RFC 8259 subset the plan uses:
 * objects, arrays, strings with escapes, numbers, true/false/null).
 *
 * The whole document is parsed into a node array allocated once; every count
 * is bounded (depth, nodes, string length), and an error names the byte
 * offset and what was expected.
 */
#ifndef AGENT_JSON_H
#define AGENT_JSON_H

#include <stddef.h>

#define JSON_MAX_DEPTH 32
#define JSON_MAX_NODES 65536

typedef enum { J_NULL, J_BOOL, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT } json_type;

typedef struct json_node {
    json_type type;
    int boolean;
    double number;
    char *string;          /* J_STRING value (UTF-8, NUL-terminated) */
    char *key;             /* the member name when the parent is an object */
    int first_child;       /* index of the first child, -1 none */
    int next;              /* index of the next sibling, -1 none */
    int count;             /* number of children */
} json_node;

typedef struct json_doc {
    json_node *nodes;
    int used;
    char error[160];
} json_doc;

/* Parse text (len bytes); 0 on success, -1 with doc->error set. */
int json_parse(json_doc *doc, const char *text, size_t len);
void json_free(json_doc *doc);

const json_node *json_root(const json_doc *doc);
const json_node *json_get(const json_doc *doc, const json_node *obj, const char *key);
const json_node *json_at(const json_doc *doc, const json_node *arr, int index);
const char *json_str(const json_doc *doc, const json_node *obj, const char *key, const char *dflt);
double json_num(const json_doc *doc, const json_node *obj, const char *key, double dflt);
int json_bool(const json_doc *doc, const json_node *obj, const char *key, int dflt);

#endif
