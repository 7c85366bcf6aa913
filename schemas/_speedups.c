/*
 * The worker's per-event loops, compiled: the search representation (schemas/search.py)
 * and the document builder's `_compact` (schemas/document.py); the same operations,
 * without the interpreter's cost per character, per piece and per value.
 *
 * The Python modules are the definition and keep a pure-Python copy of each function;
 * tests/unit/test_speedups.py checks that the two agree on arbitrary input. Every
 * step that decides a result calls the same Python object the Python code calls (the
 * fold function, str.split, the gram-code table with its __missing__, the piece cache's
 * `make`), so the compiled path cannot drift from the rules; what is compiled is only the
 * looping, the slicing, and the word-start scan (str.isalnum per character, which is what
 * the Python copy's regex `(?<![^\W_])[^\W_]` tests: re's \w is isalnum or "_").
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define GRAM 3

/* 0 when a function got `expected` arguments; -1 with a TypeError naming it otherwise. */
static int
check_arguments(Py_ssize_t nargs, Py_ssize_t expected, const char *signature)
{
    if (nargs == expected)
        return 0;
    PyErr_Format(PyExc_TypeError, "%s takes %zd arguments (%zd given)", signature, expected, nargs);
    return -1;
}

static int
is_plain(Py_UCS4 ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* The space-joined gram tokens of a piece of at least GRAM characters, written straight
 * into the result: a [a-z0-9]{3} gram is its own token (encode_gram keeps it as it is), any
 * other is `codes[gram]` (the table's __missing__ encodes it). */
static PyObject *
gram_string(PyObject *piece, PyObject *codes)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(piece);
    int kind = PyUnicode_KIND(piece);
    const void *data = PyUnicode_DATA(piece);
    Py_ssize_t count = n - GRAM + 1;
    PyObject *result = NULL;
    /* The token of each gram that is not plain (NULL for a plain one). */
    PyObject **tokens = PyMem_Calloc(count, sizeof(PyObject *));
    if (tokens == NULL)
        return PyErr_NoMemory();
    Py_ssize_t length = count - 1; /* the spaces */
    Py_UCS4 widest = 127;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (is_plain(PyUnicode_READ(kind, data, i)) && is_plain(PyUnicode_READ(kind, data, i + 1))
            && is_plain(PyUnicode_READ(kind, data, i + 2))) {
            length += GRAM;
            continue;
        }
        PyObject *gram = PyUnicode_Substring(piece, i, i + GRAM);
        if (gram == NULL)
            goto done;
        tokens[i] = PyObject_GetItem(codes, gram);
        Py_DECREF(gram);
        if (tokens[i] == NULL)
            goto done;
        if (!PyUnicode_Check(tokens[i])) {
            PyErr_SetString(PyExc_TypeError, "a gram's token must be a str");
            goto done;
        }
        length += PyUnicode_GET_LENGTH(tokens[i]);
        Py_UCS4 token_widest = PyUnicode_MAX_CHAR_VALUE(tokens[i]);
        if (token_widest > widest)
            widest = token_widest;
    }
    result = PyUnicode_New(length, widest);
    if (result == NULL)
        goto done;
    int out_kind = PyUnicode_KIND(result);
    void *out = PyUnicode_DATA(result);
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (i > 0)
            PyUnicode_WRITE(out_kind, out, at++, ' ');
        if (tokens[i] == NULL) {
            for (Py_ssize_t j = i; j < i + GRAM; j++)
                PyUnicode_WRITE(out_kind, out, at++, PyUnicode_READ(kind, data, j));
            continue;
        }
        Py_ssize_t token_length = PyUnicode_GET_LENGTH(tokens[i]);
        if (PyUnicode_CopyCharacters(result, at, tokens[i], 0, token_length) < 0) {
            Py_CLEAR(result);
            goto done;
        }
        at += token_length;
    }
done:
    for (Py_ssize_t i = 0; i < count; i++)
        Py_XDECREF(tokens[i]);
    PyMem_Free(tokens);
    return result;
}

static int
add_substring(PyObject *set, PyObject *piece, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(piece);
    if (end > n)
        end = n;
    if (start >= end)
        return 0; /* the empty string is never a prefix */
    PyObject *sub = PyUnicode_Substring(piece, start, end);
    if (sub == NULL)
        return -1;
    int failed = PySet_Add(set, sub);
    Py_DECREF(sub);
    return failed;
}

/* The 1- and 2-character substrings of a piece that begin at a word start. */
static PyObject *
word_prefixes(PyObject *piece)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(piece);
    int kind = PyUnicode_KIND(piece);
    const void *data = PyUnicode_DATA(piece);
    /* Filled before anyone else sees it, which PySet_Add allows for a new frozenset. */
    PyObject *found = PyFrozenSet_New(NULL);
    if (found == NULL)
        return NULL;
    if (add_substring(found, piece, 0, 1) < 0 || add_substring(found, piece, 0, 2) < 0)
        goto error;
    int previous_alnum = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int alnum = Py_UNICODE_ISALNUM(PyUnicode_READ(kind, data, i));
        if (alnum && !previous_alnum) {
            if (add_substring(found, piece, i, i + 1) < 0 || add_substring(found, piece, i, i + 2) < 0)
                goto error;
        }
        previous_alnum = alnum;
    }
    return found;
error:
    Py_DECREF(found);
    return NULL;
}

PyDoc_STRVAR(piece_tokens_doc,
"piece_tokens(codes, piece) -> (grams or None, frozenset of word-start prefixes)\n\n"
"A folded piece's search tokens: its gram tokens space-joined (`codes[gram]` for a gram\n"
"that is not [a-z0-9]{3}; None under 3 characters), and its word-start prefixes.");

static PyObject *
piece_tokens(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_arguments(nargs, 2, "piece_tokens(codes, piece)") < 0)
        return NULL;
    PyObject *codes = args[0], *piece = args[1];
    if (!PyUnicode_Check(piece)) {
        PyErr_SetString(PyExc_TypeError, "piece must be a str");
        return NULL;
    }
    PyObject *grams;
    if (PyUnicode_GET_LENGTH(piece) >= GRAM) {
        grams = gram_string(piece, codes);
        if (grams == NULL)
            return NULL;
    } else {
        grams = Py_NewRef(Py_None);
    }
    PyObject *prefixes = word_prefixes(piece);
    if (prefixes == NULL) {
        Py_DECREF(grams);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, grams, prefixes);
    Py_DECREF(grams);
    Py_DECREF(prefixes);
    return result;
}

/* Adds one value's pieces; -1 on error. */
static int
add_value(PyObject *value, Py_ssize_t max_chars, PyObject *fold, PyObject *kept, PyObject *make,
          PyObject *seen, PyObject *grams, PyObject *prefixes)
{
    PyObject *head = PyUnicode_CheckExact(value) && PyUnicode_GET_LENGTH(value) <= max_chars
        ? Py_NewRef(value) /* value[:max_chars] is the value itself */
        : PySequence_GetSlice(value, 0, max_chars);
    if (head == NULL)
        return -1;
    PyObject *folded = PyObject_CallOneArg(fold, head);
    Py_DECREF(head);
    if (folded == NULL)
        return -1;
    if (!PyUnicode_Check(folded)) {
        PyErr_SetString(PyExc_TypeError, "fold must return a str");
        Py_DECREF(folded);
        return -1;
    }
    PyObject *pieces = PyUnicode_Split(folded, NULL, -1); /* str.split(): on white space */
    Py_DECREF(folded);
    if (pieces == NULL)
        return -1;
    PyObject *iterator = PyObject_GetIter(pieces);
    Py_DECREF(pieces);
    if (iterator == NULL)
        return -1;
    PyObject *piece;
    while ((piece = PyIter_Next(iterator)) != NULL) {
        int known = PySet_Contains(seen, piece);
        if (known > 0) { /* an earlier value had it */
            Py_DECREF(piece);
            continue;
        }
        if (known < 0 || PySet_Add(seen, piece) < 0) {
            Py_DECREF(piece);
            goto error;
        }
        PyObject *tokens = PyDict_GetItemWithError(kept, piece); /* borrowed */
        if (tokens != NULL && PyObject_IsTrue(tokens) > 0) {
            Py_INCREF(tokens);
        } else if (PyErr_Occurred()) {
            Py_DECREF(piece);
            goto error;
        } else {
            tokens = PyObject_CallOneArg(make, piece);
        }
        Py_DECREF(piece);
        if (tokens == NULL)
            goto error;
        if (!PyTuple_Check(tokens) || PyTuple_GET_SIZE(tokens) != 2) {
            Py_DECREF(tokens);
            PyErr_SetString(PyExc_TypeError, "piece tokens must be a (grams, prefixes) tuple");
            goto error;
        }
        PyObject *piece_grams = PyTuple_GET_ITEM(tokens, 0);
        int failed = piece_grams != Py_None && PyList_Append(grams, piece_grams) < 0;
        if (!failed) {
            PyObject *merged = PyNumber_InPlaceOr(prefixes, PyTuple_GET_ITEM(tokens, 1));
            failed = merged == NULL;
            Py_XDECREF(merged);
        }
        Py_DECREF(tokens);
        if (failed)
            goto error;
    }
    Py_DECREF(iterator);
    return PyErr_Occurred() ? -1 : 0;
error:
    Py_DECREF(iterator);
    return -1;
}

PyDoc_STRVAR(representation_doc,
"representation(values, max_chars, fold, kept, make) -> (grams list, prefixes set)\n\n"
"The pieces of every truthy value (`fold(value[:max_chars]).split()`), each distinct piece\n"
"once in first-seen order: its tokens from `kept` (a dict) or else `make(piece)`.");

static PyObject *
representation(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_arguments(nargs, 5, "representation(values, max_chars, fold, kept, make)") < 0)
        return NULL;
    PyObject *values = args[0], *fold = args[2], *kept = args[3], *make = args[4];
    Py_ssize_t max_chars = PyLong_AsSsize_t(args[1]);
    if (max_chars == -1 && PyErr_Occurred())
        return NULL;
    if (!PyDict_Check(kept)) {
        PyErr_SetString(PyExc_TypeError, "kept must be a dict");
        return NULL;
    }
    PyObject *grams = PyList_New(0), *prefixes = PySet_New(NULL), *seen = PySet_New(NULL);
    PyObject *iterator = PyObject_GetIter(values);
    if (grams == NULL || prefixes == NULL || seen == NULL || iterator == NULL)
        goto error;
    PyObject *value;
    while ((value = PyIter_Next(iterator)) != NULL) {
        int truthy = PyObject_IsTrue(value);
        int failed = truthy < 0
            || (truthy && add_value(value, max_chars, fold, kept, make, seen, grams, prefixes) < 0);
        Py_DECREF(value);
        if (failed)
            goto error;
    }
    if (PyErr_Occurred())
        goto error;
    Py_DECREF(iterator);
    Py_DECREF(seen);
    PyObject *result = PyTuple_Pack(2, grams, prefixes);
    Py_DECREF(grams);
    Py_DECREF(prefixes);
    return result;
error:
    Py_XDECREF(grams);
    Py_XDECREF(prefixes);
    Py_XDECREF(seen);
    Py_XDECREF(iterator);
    return NULL;
}

/* The next (key, value) pair of a list of pairs (borrowed); 0 at its end. */
static int
next_item(PyObject *items, Py_ssize_t *position, PyObject **key, PyObject **value)
{
    if (*position >= PyList_GET_SIZE(items))
        return 0;
    PyObject *pair = PyList_GET_ITEM(items, *position);
    *position += 1;
    *key = PyTuple_GET_ITEM(pair, 0);
    *value = PyTuple_GET_ITEM(pair, 1);
    return 1;
}

PyDoc_STRVAR(compact_doc,
"compact(absent, mapping) -> dict\n\n"
"`{key: value for key, value in mapping.items() if value not in absent}`: the values of\n"
"JSON's types are decided here (None, an empty dict or list are absent), any other value\n"
"by `value in absent` itself.");

static PyObject *
compact(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_arguments(nargs, 2, "compact(absent, mapping)") < 0)
        return NULL;
    PyObject *absent = args[0], *mapping = args[1];
    PyObject *items = NULL; /* another mapping's items(), in its order */
    if (!PyDict_CheckExact(mapping)) {
        items = PyMapping_Items(mapping);
        if (items == NULL)
            return NULL;
    }
    PyObject *kept = PyDict_New();
    if (kept == NULL) {
        Py_XDECREF(items);
        return NULL;
    }
    Py_ssize_t position = 0;
    PyObject *key, *value;
    while (items == NULL ? PyDict_Next(mapping, &position, &key, &value)
                         : next_item(items, &position, &key, &value)) {
        int drop;
        if (value == Py_None)
            drop = 1;
        else if (PyDict_CheckExact(value))
            drop = PyDict_GET_SIZE(value) == 0;
        else if (PyList_CheckExact(value))
            drop = PyList_GET_SIZE(value) == 0;
        else if (PyUnicode_CheckExact(value) || PyLong_CheckExact(value) || PyBool_Check(value)
                 || PyFloat_CheckExact(value))
            drop = 0; /* never equal to None, {} or [] */
        else
            drop = PySequence_Contains(absent, value);
        if (drop < 0 || (!drop && PyDict_SetItem(kept, key, value) < 0)) {
            Py_DECREF(kept);
            Py_XDECREF(items);
            return NULL;
        }
    }
    Py_XDECREF(items);
    return kept;
}

static PyMethodDef methods[] = {
    {"compact", (PyCFunction)(void (*)(void))compact, METH_FASTCALL, compact_doc},
    {"piece_tokens", (PyCFunction)(void (*)(void))piece_tokens, METH_FASTCALL, piece_tokens_doc},
    {"representation", (PyCFunction)(void (*)(void))representation, METH_FASTCALL,
     representation_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "schemas._speedups",
    "The worker's per-event loops, compiled (see schemas/search.py, schemas/document.py).",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
