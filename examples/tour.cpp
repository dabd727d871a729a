// logitkit tour: the classic softmax examples, worked through one at a time.
//
// Build it with the project (-DLOGITKIT_BUILD_EXAMPLES=ON, target `tour`) or directly:
//   g++ -std=c++17 -O2 -Iinclude examples/tour.cpp -o tour && ./tour
//
// Every number printed here is checked: examples/tour_expected.py recomputes the whole output
// independently in float64 with numpy and writes examples/tour.expected, and the ctest test
// `example_tour_output` compares this program's stdout to that file byte for byte.
//
// Results are printed with "%.6f". The tour computes in double so that all six printed decimals
// are exact whatever SIMD code path the kernels take: float keeps only about 7 significant
// digits, and softmax([1, 2, 3])[1] = 0.2447284710... lies less than 2 float ulps below
// 0.2447285, where "%.6f" switches to 0.244729. Float views work exactly the same way.

#include <logitkit/logitkit.hpp>

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>

namespace lk = logitkit;

namespace {

// ----------------------------------------------------------------------------------------------
// Printing helpers. Inputs are printed with "%g" (they are short, exact numbers); results with
// "%.6f". Matrices are printed row by row, the continuation rows aligned under the first.

enum class style { input, result };

void print_number(double v, style s) {
    if (s == style::input)
        std::printf("%g", v);
    else
        std::printf("%.6f", v);
}

template <class T>
void print_vector(const char* name, lk::tensor_view<const T, 1> v, style s = style::result) {
    std::printf("  %s = [", name);
    for (lk::index_type i = 0; i < v.extent(0); ++i) {
        if (i != 0) std::printf(", ");
        print_number(static_cast<double>(v(i)), s);
    }
    std::printf("]\n");
}

template <class T>
void print_matrix(const char* name, lk::tensor_view<const T, 2> m, style s = style::result) {
    const int indent = static_cast<int>(std::strlen(name)) + 5;  // width of "  NAME = "
    std::printf("  %s = [", name);
    for (lk::index_type i = 0; i < m.extent(0); ++i) {
        if (i != 0) std::printf(",\n%*s", indent + 1, "");
        std::printf("[");
        for (lk::index_type j = 0; j < m.extent(1); ++j) {
            if (j != 0) std::printf(", ");
            print_number(static_cast<double>(m(i, j)), s);
        }
        std::printf("]");
    }
    std::printf("]\n");
}

void heading(const char* title) {
    std::printf("\n%s\n", title);
    for (std::size_t i = 0; i < std::strlen(title); ++i) std::putchar('-');
    std::putchar('\n');
}

void say(const char* line) { std::printf("  %s\n", line); }

// Short-hands for views over local arrays: inputs are read-only views, outputs writable ones.
template <class T, std::size_t N>
lk::tensor_view<const T, 1> in1(const T (&a)[N]) {
    return lk::tensor_view<const T, 1>(a, {static_cast<lk::index_type>(N)});
}
template <class T, std::size_t N>
lk::tensor_view<T, 1> out1(T (&a)[N]) {
    return lk::tensor_view<T, 1>(a, {static_cast<lk::index_type>(N)});
}
template <class T, std::size_t R, std::size_t C>
lk::tensor_view<const T, 2> in2(const T (&a)[R][C]) {
    return lk::tensor_view<const T, 2>(&a[0][0], {static_cast<lk::index_type>(R), static_cast<lk::index_type>(C)});
}
template <class T, std::size_t R, std::size_t C>
lk::tensor_view<T, 2> out2(T (&a)[R][C]) {
    return lk::tensor_view<T, 2>(&a[0][0], {static_cast<lk::index_type>(R), static_cast<lk::index_type>(C)});
}

// ----------------------------------------------------------------------------------------------

void softmax_along_dim1() {
    heading("1. softmax along dim 1");
    say("softmax turns a row of scores (logits) into probabilities:");
    say("softmax(x)_i = exp(x_i) / sum_j exp(x_j), taken along one axis.");
    const double x[2][3] = {{1, 2, 3}, {1, 2, 3}};
    double y[2][3];
    lk::softmax(in2(x), out2(y), 1);
    print_matrix("x", in2(x), style::input);
    print_matrix("softmax(x, axis=1)", in2(y));
    say("Each row is normalised on its own, so equal rows give equal probabilities.");
    say("Every entry is positive and every row sums to 1:");
    double sums[2] = {0, 0};
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j) sums[i] += y[i][j];
    print_vector("row sums", in1(sums));
}

void softmax_of_scores() {
    heading("2. softmax of a score vector");
    const double x[4] = {2.0, 1.0, 0.1, 0.5};
    double y[4];
    lk::softmax(in1(x), out1(y));
    print_vector("x", in1(x), style::input);
    print_vector("softmax(x)", in1(y));
    say("The largest score gets the largest probability and the order is kept,");
    say("but the gaps are exaggerated: a score 1 higher is e = 2.718... times as likely.");
}

void softmax_and_log_softmax() {
    heading("3. softmax and log_softmax of [2, 3]");
    const double x[2] = {2, 3};
    double p[2];
    double lp[2];
    lk::softmax(in1(x), out1(p));
    lk::log_softmax(in1(x), out1(lp));
    print_vector("x", in1(x), style::input);
    print_vector("softmax(x)", in1(p));
    print_vector("log_softmax(x)", in1(lp));
    say("With two entries, softmax is the logistic sigmoid of the difference:");
    std::printf("  1 / (1 + exp(-(3 - 2))) = %.6f\n", 1.0 / (1.0 + std::exp(-1.0)));
    say("log_softmax(x) = x - logsumexp(x) is computed directly, not as log(softmax(x)),");
    say("so it stays exact where softmax underflows. For x = [0, -800], exp(-800) is below");
    say("the smallest double, so softmax(x)[1] is 0 and its log would be -inf:");
    const double x2[2] = {0, -800};
    double p2[2];
    double lp2[2];
    lk::softmax(in1(x2), out1(p2));
    lk::log_softmax(in1(x2), out1(lp2));
    std::printf("  softmax(x)[1] = %.6f, log_softmax(x)[1] = %.6f\n", static_cast<double>(p2[1]),
                static_cast<double>(lp2[1]));
}

void axis0_versus_axis1() {
    heading("4. axis 0 versus axis 1");
    const double x[2][3] = {{1, 2, 3}, {4, 5, 6}};
    double rows[2][3];
    double cols[2][3];
    lk::softmax(in2(x), out2(rows), 1);
    lk::softmax(in2(x), out2(cols), 0);
    print_matrix("x", in2(x), style::input);
    print_matrix("softmax(x, axis=1)", in2(rows));
    print_matrix("softmax(x, axis=0)", in2(cols));
    say("axis=1 (or -1, the default) normalises each row; axis=0 normalises each column.");
    say("Softmax only sees differences: row [4, 5, 6] gives the same result as [1, 2, 3],");
    say("and every column [k, k + 3] gives the same pair of probabilities. Column sums:");
    double sums[3] = {0, 0, 0};
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j) sums[j] += cols[i][j];
    print_vector("column sums", in1(sums));
}

void temperature() {
    heading("5. temperature");
    say("softmax_options::temperature = T gives softmax(x / T). One row, three temperatures:");
    const double x[4] = {2.0, 1.0, 0.1, 0.5};
    print_vector("x", in1(x), style::input);
    const double temperatures[3] = {0.5, 1.0, 2.0};
    for (double t : temperatures) {
        double y[4];
        lk::softmax_options options;
        options.temperature = t;
        lk::softmax(in1(x), out1(y), -1, options);
        char name[32];
        std::snprintf(name, sizeof name, "softmax(x / %g)", t);
        print_vector(name, in1(y));
    }
    say("T < 1 sharpens the distribution towards the largest score, T > 1 flattens it");
    say("towards uniform (1/4 each here); T = 1 is plain softmax.");
}

void smooth_maximum() {
    heading("6. logsumexp");
    say("logsumexp(x) = log(sum_i exp(x_i)) is a smooth maximum, a little above max(x).");
    say("The result keeps x's rank with extent 1 on the reduced axis (here 2x1):");
    const double x[2][3] = {{1, 2, 3}, {4, 5, 6}};
    double out[2][1];
    lk::logsumexp(in2(x), out2(out), 1);
    print_matrix("x", in2(x), style::input);
    print_matrix("logsumexp(x, axis=1)", in2(out));
    say("log_softmax(x) is x minus this, e.g. 1 - 3.407606 = -2.407606.");
    say("The row maximum is subtracted first, so large scores do not overflow.");
    say("exp(1000) is infinite even in double, yet:");
    const double big[3] = {1000, 1001, 1002};
    double lse[1];
    double p[3];
    lk::logsumexp(in1(big), out1(lse));
    lk::softmax(in1(big), out1(p));
    print_vector("x", in1(big), style::input);
    print_vector("logsumexp(x)", in1(lse));
    print_vector("softmax(x)", in1(p));
    say("which is softmax([1, 2, 3]) again: adding a constant to every score changes nothing.");
}

void transposed_view() {
    heading("7. a transposed (strided) view");
    say("A tensor_view is a pointer, a shape and strides (in elements), so a transpose is");
    say("just another view of the same memory. Here m is stored as a 3x2 row-major matrix:");
    const double m[3][2] = {{1, 4}, {2, 5}, {3, 6}};
    print_matrix("m", in2(m), style::input);
    // t = m^T: shape 2x3; moving along a row of t steps over one row of m (2 elements).
    const lk::tensor_view<const double, 2> t(&m[0][0], {2, 3}, {1, 2});
    say("Its transpose t is the view with shape {2, 3} and strides {1, 2}:");
    print_matrix("t", t, style::input);
    // The output can be strided too: yt is the transpose of a 3x2 buffer.
    double y[3][2];
    const lk::tensor_view<double, 2> yt(&y[0][0], {2, 3}, {1, 2});
    lk::softmax(t, yt, 1);
    print_matrix("softmax(t, axis=1)", lk::tensor_view<const double, 2>(yt));
    say("No copy was made: the kernel walked the strides. The 3x2 buffer behind the output");
    say("now holds softmax(m, axis=0):");
    print_matrix("buffer", in2(y));
}

void gradients() {
    heading("8. gradients (backward)");
    say("softmax_backward(y, dy, dx) gives dx = y * (dy - sum(dy * y)), the gradient with");
    say("respect to x of a loss whose gradient with respect to y = softmax(x) is dy.");
    const double x[3] = {1, 2, 3};
    double y[3];
    lk::softmax(in1(x), out1(y));
    const double dy[3] = {0, 0, 1};  // the loss is y[2] itself
    double dx[3];
    lk::softmax_backward(in1(y), in1(dy), out1(dx));
    print_vector("x", in1(x), style::input);
    print_vector("y = softmax(x)", in1(y));
    print_vector("dy", in1(dy), style::input);
    print_vector("dx", in1(dx));
    say("Raising x[2] raises y[2] and lowers the others; dx sums to 0 because y always");
    say("sums to 1.");
    std::printf("\n");
    say("log_softmax_backward(z, dz, dx) gives dx = dz - exp(z) * sum(dz) for z = log_softmax(x).");
    say("Cross-entropy with target class 2 is loss = -z[2], so dz = [0, 0, -1]:");
    double z[3];
    lk::log_softmax(in1(x), out1(z));
    const double dz[3] = {0, 0, -1};
    double dxz[3];
    lk::log_softmax_backward(in1(z), in1(dz), out1(dxz));
    print_vector("z = log_softmax(x)", in1(z));
    std::printf("  loss = -z[2] = %.6f\n", -static_cast<double>(z[2]));
    print_vector("dx", in1(dxz));
    say("This is the familiar softmax(x) - onehot(target).");
}

}  // namespace

int main() {
    const char* title = "logitkit tour: softmax, log_softmax, logsumexp and their gradients";
    std::printf("%s\n", title);
    for (std::size_t i = 0; i < std::strlen(title); ++i) std::putchar('=');
    std::putchar('\n');
    std::printf("The examples compute in double (float views work the same way) and print 6 decimals.\n");
    // Which SIMD instruction set the kernels were compiled for depends on the compiler flags, so
    // it goes to stderr and stays out of the output that is compared with tour.expected.
    std::fprintf(stderr, "logitkit kernels compiled for: %s\n", lk::simd_arch_name());

    softmax_along_dim1();
    softmax_of_scores();
    softmax_and_log_softmax();
    axis0_versus_axis1();
    temperature();
    smooth_maximum();
    transposed_view();
    gradients();
    return 0;
}
