/* json.c - see json.h. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    json_doc *doc;
    const char *text;
    size_t len, pos;
} parser;

static int fail(parser *p, const char *expected)
{
    snprintf(p->doc->error, sizeof p->doc->error, "offset %lu: expected %s",
             (unsigned long)p->pos, expected);
    return -1;
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len && (p->text[p->pos] == ' ' || p->text[p->pos] == '\t' ||
                               p->text[p->pos] == '\n' || p->text[p->pos] == '\r'))
        p->pos++;
}

static int new_node(parser *p, json_type type)
{
    json_node *n;
    if (p->doc->used >= JSON_MAX_NODES)
        return fail(p, "at most 65536 JSON values");
    n = &p->doc->nodes[p->doc->used];
    memset(n, 0, sizeof *n);
    n->type = type;
    n->first_child = -1;
    n->next = -1;
    return p->doc->used++;
}

static void put_utf8(char *out, size_t *o, unsigned cp)
{
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xC0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xE0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*o)++] = (char)(0xF0 | (cp >> 18));
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hex4(parser *p, unsigned *out)
{
    unsigned v = 0;
    int i;
    if (p->pos + 4 > p->len)
        return fail(p, "4 hex digits after \\u");
    for (i = 0; i < 4; i++) {
        char c = p->text[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return fail(p, "a hex digit");
    }
    *out = v;
    return 0;
}

/* A string at p->pos (the opening quote): a malloc'd UTF-8 copy. */
static int read_string(parser *p, char **out)
{
    size_t start = ++p->pos, o = 0;
    char *buf;
    /* the decoded string is never longer than its source */
    size_t end = start;
    while (end < p->len && p->text[end] != '"') {
        if (p->text[end] == '\\')
            end++;
        end++;
    }
    if (end >= p->len)
        return fail(p, "a closing quote");
    buf = (char *)malloc(end - start + 4);
    if (!buf)
        return fail(p, "memory for a string");
    while (p->pos < p->len && p->text[p->pos] != '"') {
        char c = p->text[p->pos++];
        if ((unsigned char)c < 0x20) {
            free(buf);
            return fail(p, "no control characters in a string");
        }
        if (c != '\\') {
            buf[o++] = c;
            continue;
        }
        if (p->pos >= p->len) {
            free(buf);
            return fail(p, "an escape");
        }
        c = p->text[p->pos++];
        switch (c) {
        case '"': buf[o++] = '"'; break;
        case '\\': buf[o++] = '\\'; break;
        case '/': buf[o++] = '/'; break;
        case 'b': buf[o++] = '\b'; break;
        case 'f': buf[o++] = '\f'; break;
        case 'n': buf[o++] = '\n'; break;
        case 'r': buf[o++] = '\r'; break;
        case 't': buf[o++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (hex4(p, &cp)) { free(buf); return -1; }
            if (cp >= 0xD800 && cp < 0xDC00 && p->pos + 6 <= p->len &&
                p->text[p->pos] == '\\' && p->text[p->pos + 1] == 'u') {
                p->pos += 2;
                if (hex4(p, &lo)) { free(buf); return -1; }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            put_utf8(buf, &o, cp);
            break;
        }
        default:
            free(buf);
            return fail(p, "a valid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u)");
        }
    }
    p->pos++; /* closing quote */
    buf[o] = 0;
    *out = buf;
    return 0;
}

static int parse_value(parser *p, int depth);

static int parse_container(parser *p, int depth, int is_object)
{
    int self = new_node(p, is_object ? J_OBJECT : J_ARRAY), last = -1;
    if (self < 0)
        return -1;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->text[p->pos] == (is_object ? '}' : ']')) {
        p->pos++;
        return self;
    }
    for (;;) {
        char *key = NULL;
        int child;
        skip_ws(p);
        if (is_object) {
            if (p->pos >= p->len || p->text[p->pos] != '"')
                return fail(p, "a member name in quotes");
            if (read_string(p, &key))
                return -1;
            skip_ws(p);
            if (p->pos >= p->len || p->text[p->pos] != ':') {
                free(key);
                return fail(p, "':' after a member name");
            }
            p->pos++;
        }
        child = parse_value(p, depth + 1);
        if (child < 0) {
            free(key);
            return -1;
        }
        p->doc->nodes[child].key = key;
        if (last < 0)
            p->doc->nodes[self].first_child = child;
        else
            p->doc->nodes[last].next = child;
        last = child;
        p->doc->nodes[self].count++;
        skip_ws(p);
        if (p->pos < p->len && p->text[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->text[p->pos] == (is_object ? '}' : ']')) {
            p->pos++;
            return self;
        }
        return fail(p, is_object ? "',' or '}'" : "',' or ']'");
    }
}

static int parse_value(parser *p, int depth)
{
    int n;
    if (depth > JSON_MAX_DEPTH)
        return fail(p, "at most 32 levels of nesting");
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, "a value");
    switch (p->text[p->pos]) {
    case '{': return parse_container(p, depth, 1);
    case '[': return parse_container(p, depth, 0);
    case '"':
        n = new_node(p, J_STRING);
        if (n < 0 || read_string(p, &p->doc->nodes[n].string))
            return -1;
        return n;
    case 't':
    case 'f':
    case 'n': {
        const char *word = p->text[p->pos] == 't' ? "true" : p->text[p->pos] == 'f' ? "false"
                                                                                       : "null";
        size_t wl = strlen(word);
        if (p->pos + wl > p->len || memcmp(p->text + p->pos, word, wl) != 0)
            return fail(p, "true, false or null");
        n = new_node(p, word[0] == 'n' ? J_NULL : J_BOOL);
        if (n < 0)
            return -1;
        p->doc->nodes[n].boolean = word[0] == 't';
        p->pos += wl;
        return n;
    }
    default: {
        char buf[64], *end;
        size_t k = 0;
        while (p->pos + k < p->len && k < sizeof buf - 1 &&
               strchr("+-0123456789.eE", p->text[p->pos + k]))
            k++;
        if (k == 0)
            return fail(p, "a JSON value");
        memcpy(buf, p->text + p->pos, k);
        buf[k] = 0;
        n = new_node(p, J_NUMBER);
        if (n < 0)
            return -1;
        p->doc->nodes[n].number = strtod(buf, &end);
        if (*end)
            return fail(p, "a number");
        p->pos += k;
        return n;
    }
    }
}

int json_parse(json_doc *doc, const char *text, size_t len)
{
    parser p;
    memset(doc, 0, sizeof *doc);
    doc->nodes = (json_node *)calloc(JSON_MAX_NODES, sizeof(json_node));
    if (!doc->nodes) {
        snprintf(doc->error, sizeof doc->error, "out of memory");
        return -1;
    }
    p.doc = doc;
    p.text = text;
    p.len = len;
    p.pos = 0;
    if (parse_value(&p, 0) < 0)
        return -1;
    skip_ws(&p);
    if (p.pos != p.len)
        return fail(&p, "the end of the document");
    return 0;
}

void json_free(json_doc *doc)
{
    int i;
    if (!doc->nodes)
        return;
    for (i = 0; i < doc->used; i++) {
        free(doc->nodes[i].string);
        free(doc->nodes[i].key);
    }
    free(doc->nodes);
    doc->nodes = NULL;
}

const json_node *json_root(const json_doc *doc)
{
    return doc->used ? &doc->nodes[0] : NULL;
}

const json_node *json_get(const json_doc *doc, const json_node *obj, const char *key)
{
    int i;
    if (!obj || obj->type != J_OBJECT)
        return NULL;
    for (i = obj->first_child; i >= 0; i = doc->nodes[i].next)
        if (doc->nodes[i].key && strcmp(doc->nodes[i].key, key) == 0)
            return &doc->nodes[i];
    return NULL;
}

const json_node *json_at(const json_doc *doc, const json_node *arr, int index)
{
    int i, k = 0;
    if (!arr || arr->type != J_ARRAY)
        return NULL;
    for (i = arr->first_child; i >= 0; i = doc->nodes[i].next, k++)
        if (k == index)
            return &doc->nodes[i];
    return NULL;
}

const char *json_str(const json_doc *doc, const json_node *obj, const char *key, const char *dflt)
{
    const json_node *n = json_get(doc, obj, key);
    return n && n->type == J_STRING ? n->string : dflt;
}

double json_num(const json_doc *doc, const json_node *obj, const char *key, double dflt)
{
    const json_node *n = json_get(doc, obj, key);
    return n && n->type == J_NUMBER ? n->number : dflt;
}

int json_bool(const json_doc *doc, const json_node *obj, const char *key, int dflt)
{
    const json_node *n = json_get(doc, obj, key);
    return n && n->type == J_BOOL ? n->boolean : dflt;
}
