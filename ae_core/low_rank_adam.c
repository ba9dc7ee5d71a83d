/* Adam on a weight matrix whose gradient is a rank-4 product, without writing the gradient out.

The seed's 7x7 layers see 2x2 positions, so the gradient of each of their weight matrices (rows x cols)
is grad = a^T b with a: 4 x rows and b: 4 x cols. torch would write that gradient (0.4 MB per model)
in one pass and read it back in Adam's; here each element is formed where Adam needs it, and the same
pass also does the backward product that reads these weights, with the weights from before the step:
    row_dots = b w^T  (4 x rows)     or     col_sums = a w  (4 x cols).
Adam is torch's formula (torch.optim.Adam without weight decay or amsgrad) in float32 with IEEE
square roots and one division; torch's second division, by the bias correction's square root, is a
multiplication here (a square root and a division per element are most of this loop's time), which
moves a weight by at most a rounding step. Every sum runs in an order fixed by this code, so a
model's result does not depend on where its rows sit in memory. The same loops without Adam's step
(low_rank_product) do the forward pass's products with these weights. native.py builds and loads
this file.
*/
#include <math.h>
#include <stddef.h>

#define WIDTH 16 /* row_dots takes columns 16 at a time: cols must be a multiple of 16 */

typedef struct {
    float step_size, beta1, beta2, grad_weight, square_weight, inverse_bias_correction2_sqrt, eps;
} AdamStep;

static AdamStep adam_step(float step, double lr, double beta1, double beta2, double eps) {
    AdamStep s;
    s.step_size = (float)(lr / (1.0 - pow(beta1, step)));
    s.inverse_bias_correction2_sqrt = (float)(1.0 / sqrt(1.0 - pow(beta2, step)));
    s.beta1 = (float)beta1;
    s.beta2 = (float)beta2;
    s.grad_weight = (float)(1.0 - beta1);
    s.square_weight = (float)(1.0 - beta2);
    s.eps = (float)eps;
    return s;
}

static inline float adam(float weight, float *exp_avg, float *exp_avg_sq, float grad,
                         AdamStep s) {
    const float m = *exp_avg * s.beta1 + grad * s.grad_weight;
    const float v = *exp_avg_sq * s.beta2 + grad * grad * s.square_weight;
    *exp_avg = m;
    *exp_avg_sq = v;
    return weight - s.step_size * m / (sqrtf(v) * s.inverse_bias_correction2_sqrt + s.eps);
}

/* Each loop is written once and compiled twice, with and without Adam's step (`s` NULL: the product
   alone, and m, v and the other factor NULL), by inlining it into the noinline functions below with
   `s` known; the test on `s` must not stay in the loop, where it stops vectorization. */
static inline __attribute__((always_inline)) void row_dots_loop(int rows, int cols, float *restrict w, float *restrict m,
                                                        float *restrict v, const float *restrict a,
                                                        const float *restrict b, float *restrict row_dots,
                                                        const AdamStep *s) {
    const float *b0 = b, *b1 = b + cols, *b2 = b + 2 * cols, *b3 = b + 3 * cols;
    for (int r = 0; r < rows; r++) {
        const long row = (long)r * cols;
        /* Partial sums by column modulo WIDTH, added up in order at the end of the row. */
        float d0[WIDTH] = {0}, d1[WIDTH] = {0}, d2[WIDTH] = {0}, d3[WIDTH] = {0};
        for (int c0 = 0; c0 < cols; c0 += WIDTH)
            for (int j = 0; j < WIDTH; j++) {
                const int c = c0 + j;
                const float old = w[row + c];
                d0[j] += b0[c] * old;
                d1[j] += b1[c] * old;
                d2[j] += b2[c] * old;
                d3[j] += b3[c] * old;
                if (s)
                    w[row + c] = adam(old, &m[row + c], &v[row + c],
                                      a[r] * b0[c] + a[rows + r] * b1[c] + a[2 * rows + r] * b2[c] +
                                          a[3 * rows + r] * b3[c],
                                      *s);
            }
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        for (int j = 0; j < WIDTH; j++) {
            s0 += d0[j];
            s1 += d1[j];
            s2 += d2[j];
            s3 += d3[j];
        }
        row_dots[r] = s0;
        row_dots[rows + r] = s1;
        row_dots[2 * rows + r] = s2;
        row_dots[3 * rows + r] = s3;
    }
}

/* Columns a tile at a time down all the rows, so that the tile's sums and its columns of b stay in L1
   while w, m and v stream past: at the 7x7 layers' 1568 columns, quarters were faster than whole
   rows (whose sums and b, 25 KB each, overflow L1) and than tiles of 16 (w, m and v then read 64
   bytes a row). */
#define TILE 392
static inline __attribute__((always_inline)) void col_sums_loop(int rows, int cols, float *restrict w, float *restrict m,
                                                        float *restrict v, const float *restrict a,
                                                        const float *restrict b, float *restrict col_sums,
                                                        const AdamStep *s) {
    for (int t0 = 0; t0 < cols; t0 += TILE) {
        const int width = cols - t0 < TILE ? cols - t0 : TILE;
        float s0[TILE] = {0}, s1[TILE] = {0}, s2[TILE] = {0}, s3[TILE] = {0};
        for (int r = 0; r < rows; r++) {
            const float a0 = a[r], a1 = a[rows + r], a2 = a[2 * rows + r], a3 = a[3 * rows + r];
            const long row = (long)r * cols + t0;
            for (int c = 0; c < width; c++) {
                const float old = w[row + c];
                s0[c] += a0 * old;
                s1[c] += a1 * old;
                s2[c] += a2 * old;
                s3[c] += a3 * old;
                if (s)
                    w[row + c] = adam(old, &m[row + c], &v[row + c],
                                      a0 * b[t0 + c] + a1 * b[cols + t0 + c] + a2 * b[2 * cols + t0 + c] +
                                          a3 * b[3 * cols + t0 + c],
                                      *s);
            }
        }
        for (int c = 0; c < width; c++) {
            col_sums[t0 + c] = s0[c];
            col_sums[cols + t0 + c] = s1[c];
            col_sums[2 * cols + t0 + c] = s2[c];
            col_sums[3 * cols + t0 + c] = s3[c];
        }
    }
}

/* The four compiled versions: each loop with Adam's step (`s` known) and without it (`s` NULL, so
   the compiler removes every Adam line and the test on `s` from the loop). ARGUMENTS is their one
   parameter list, written once so that the four cannot drift apart. They are not inlined into the
   exported functions: GCC drops `restrict` from inlined parameters, and without it cannot vectorize. */
#define ARGUMENTS int rows, int cols, float *restrict w, float *restrict m, float *restrict v, \
                  const float *restrict a, const float *restrict b, float *restrict out
__attribute__((noinline)) static void row_dots_and_adam(ARGUMENTS, AdamStep s) { row_dots_loop(rows, cols, w, m, v, a, b, out, &s); }
__attribute__((noinline)) static void col_sums_and_adam(ARGUMENTS, AdamStep s) { col_sums_loop(rows, cols, w, m, v, a, b, out, &s); }
__attribute__((noinline)) static void row_dots(ARGUMENTS) { row_dots_loop(rows, cols, w, m, v, a, b, out, NULL); }
__attribute__((noinline)) static void col_sums(ARGUMENTS) { col_sums_loop(rows, cols, w, m, v, a, b, out, NULL); }

/* One Adam step of `models` such matrices, each `stride` floats after the last in w, m and v (their
   a, b and outputs likewise by a_stride, b_stride and out_stride). `out` is row_dots when
   `row_dots_out` is non-zero, else col_sums. `step` is the step being taken, counted from 1. */
void low_rank_adam(int models, int rows, int cols, float *w, float *m, float *v, long stride,
                   const float *a, long a_stride, const float *b, long b_stride,
                   float *out, long out_stride, int row_dots_out,
                   const float *step, double lr, double beta1, double beta2, double eps) {
    const AdamStep s = adam_step(*step, lr, beta1, beta2, eps);
    for (int k = 0; k < models; k++) {
        float *wk = w + k * stride, *mk = m + k * stride, *vk = v + k * stride, *out_k = out + k * out_stride;
        const float *ak = a + k * a_stride, *bk = b + k * b_stride;
        if (row_dots_out)
            row_dots_and_adam(rows, cols, wk, mk, vk, ak, bk, out_k, s);
        else
            col_sums_and_adam(rows, cols, wk, mk, vk, ak, bk, out_k, s);
    }
}

/* The same products alone, for the forward pass: out = x w^T (4 x rows, x: 4 x cols) when
   `row_dots_out` is non-zero, else out = x w (4 x cols, x: 4 x rows). MKL's batched matmul takes
   a third longer on these rank-4 shapes, which are too thin for its blocking. */
void low_rank_product(int models, int rows, int cols, float *w, long stride, const float *x, long x_stride,
                      float *out, long out_stride, int row_dots_out) {
    for (int k = 0; k < models; k++) {
        float *wk = w + k * stride, *out_k = out + k * out_stride;
        const float *xk = x + k * x_stride;
        if (row_dots_out)
            row_dots(rows, cols, wk, NULL, NULL, NULL, xk, out_k);
        else
            col_sums(rows, cols, wk, NULL, NULL, xk, NULL, out_k);
    }
}
