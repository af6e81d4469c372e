/* Test harness for nasc-compiled networks: reads an input .npy (float32), runs the network,
 * writes the output .npy and prints the index of the exit taken.
 *
 *   cc -O2 -static harness.c model.o -lm -o run && ./run input.npy output.npy
 *
 * With --weights-external the weights are a separate file, given third:
 *
 *   ./run input.npy output.npy model.weights
 *
 * The network must be compiled with the name `model` (nasc compile --name model), whose
 * header `model.h` defines MODEL_INPUT_SIZE, MODEL_OUTPUT_SIZE and MODEL_ARENA_BYTES. */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static int fail(const char *msg, const char *path) {
    fprintf(stderr, "harness: %s: %s\n", path, msg);
    return 2;
}

static int read_npy(const char *path, float *dst, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail("cannot open", path);
    unsigned char magic[8];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "\x93NUMPY", 6) != 0) return fail("not a .npy file", path);
    size_t hlen;
    if (magic[6] == 1) {
        unsigned char l[2];
        if (fread(l, 1, 2, f) != 2) return fail("truncated header", path);
        hlen = (size_t)l[0] | ((size_t)l[1] << 8);
    } else {
        unsigned char l[4];
        if (fread(l, 1, 4, f) != 4) return fail("truncated header", path);
        hlen = (size_t)l[0] | ((size_t)l[1] << 8) | ((size_t)l[2] << 16) | ((size_t)l[3] << 24);
    }
    char *header = malloc(hlen + 1);
    if (!header || fread(header, 1, hlen, f) != hlen) return fail("truncated header", path);
    header[hlen] = 0;
    if (!strstr(header, "'<f4'") || strstr(header, "'fortran_order': True")) return fail("not a C-order float32 array", path);
    free(header);
    if (fread(dst, sizeof(float), n, f) != n) return fail("fewer values than the network's input", path);
    fclose(f);
    return 0;
}

static int write_npy(const char *path, const float *src, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return fail("cannot create", path);
    char dict[128];
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu,), }", n);
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    unsigned short hlen = (unsigned short)(len + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hlen & 0xff, f);
    fputc(hlen >> 8, f);
    fwrite(dict, 1, (size_t)len, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(src, sizeof(float), n, f);
    fclose(f);
    return 0;
}

#ifdef MODEL_WEIGHTS_EXTERNAL
static int load_weights(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail("cannot open", path);
    void *w = NULL;
    if (posix_memalign(&w, 64, MODEL_WEIGHTS_BYTES ? MODEL_WEIGHTS_BYTES : 64) != 0) return fail("out of memory", path);
    if (fread(w, 1, MODEL_WEIGHTS_BYTES, f) != MODEL_WEIGHTS_BYTES || fgetc(f) != EOF) {
        return fail("not the network's weights (wrong size)", path);
    }
    fclose(f);
    model_set_weights((const float *)w);
    return 0;
}
#define ARGS 4
#define USAGE "INPUT.npy OUTPUT.npy MODEL.weights"
#else
#define ARGS 3
#define USAGE "INPUT.npy OUTPUT.npy"
#endif

int main(int argc, char **argv) {
    if (argc != ARGS) {
        fprintf(stderr, "usage: %s " USAGE "\n", argv[0]);
        return 2;
    }
#ifdef MODEL_WEIGHTS_EXTERNAL
    int wrc = load_weights(argv[3]);
    if (wrc) return wrc;
#endif
    float *input = malloc(sizeof(float) * MODEL_INPUT_SIZE);
    float *output = malloc(sizeof(float) * MODEL_OUTPUT_SIZE);
    void *arena = malloc(MODEL_ARENA_BYTES);
    if (!input || !output || !arena) return fail("out of memory", "malloc");
    int rc = read_npy(argv[1], input, MODEL_INPUT_SIZE);
    if (rc) return rc;
    int32_t exit_taken = model_infer(input, output, arena);
    rc = write_npy(argv[2], output, MODEL_OUTPUT_SIZE);
    if (rc) return rc;
    printf("%d\n", exit_taken);
    return 0;
}
