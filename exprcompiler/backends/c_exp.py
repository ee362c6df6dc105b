"""C backend, e^x - 1 and e^x of its own: xc_expm1 (the op table's C spelling of expm1),
xc_expm1_shared and xc_exp_shared (those of expm1_shared and exp_shared: expm1 and exp
of one value in one kernel, c_backend.c_forms), xc_sinh_shared and xc_cosh_shared (sinh
and cosh of one value, likewise), for c_special's tanh, sech2 and log1mexp,
xc_expm1_neg and xc_exp_neg, and for c_backend's tiles of points away from the edges
the same bits in fewer steps (xc_expm1_inner, xc_exp_inner: INNER; xc_expm1_neg_inner
and xc_exp_neg_inner: c_special.INNER); written so that gcc vectorizes them inline (no
libm call). By those steps too: softplus and sigmoid (xc_softplus, xc_sigmoid), sigmoid's
slope beside a sigmoid (xc_sigmoid_slope_shared), and the op sigmoid_slope with its
derivative from one exp and one division (xc_sigmoid_slope, xc_sigmoid_slope_slope).

Merged into c_special.HELPERS (and so into c_backend.HELPERS). Why: libmvec's expm1
costs 1.33 ns a point where its exp costs 0.90 (AVX2, 4 lanes, one thread), so the
stable expm1(x) cost 10-15% more than the naive exp(x) - 1 even where the latter is
accurate, and sech2, tanh's stable derivative, called both. Here one argument
reduction and one polynomial give both, and a kernel calling both computes them once.
Value and gradient kernels on 4096 points (in cache; ns a point, libmvec -> these):
expm1(x) 1.64 -> 1.18 (exp(x) - 1: 1.18), tanh with its stable derivative 2.96 -> 1.58,
tanh with 1 - tanh^2 2.03 -> 1.38, log1mexp 8.50 -> 4.93; on 2 * 10^5 points, expm1(x)
with its derivative exp(x) (libmvec's exp beside xc_expm1 -> one reduction for both,
xc_exp_reduce) 2.52 -> 1.67 (exp(x) - 1 on libmvec's exp: 1.24-1.30).

The method (as glibc's, with a table): x = k ln 2 + (j/256) ln 2 + r, with n = 256 k + j
the integer nearest 256 x / ln 2 and -128 <= j < 128, taken from the low bits of t = 256
x / ln 2 + SHIFT (xc_exp_k: the low 8 bits j + 128, the bits above k + 1023); r = x - n
ln(2)/256 with ln(2)/256 in two parts, the first of 33 bits so that n times it is exact
(|r| <= ln(2)/512); s = e^(x - k ln 2) - 1 = U + (1 + U) expm1(r), U = 2^(j/256) - 1 from
a table (gcc gathers it), expm1(r) = r + r^2 q(r) (xc_expm1_r); 2^k built in the
exponent field (xc_pow2). Then e^x - 1 = 2^k s + (2^k - 1) and e^x = 2^k s + 2^k, each
one fma of exact terms (2^k - 1 is exact for |k| <= 53): relative error at most 1.5 *
2^-52 over wide ranges against mpmath (tests/test_c_exp.py; libmvec's expm1 was up to 1.9
* 2^-52 on the same kind of points). Near 0 (k = 0) U and expm1(r) of opposite signs
cancel by at most half (j = +-1), which the rounding of U (at most half an ulp of it)
then doubles: with 256 entries the worst is 1.1 * 2^-52 (dense samples by j = +-1; a
table of 128 entries, whose U for j = 1 is off by 0.48 of its ulp, 1.6 * 2^-52). At j = 0
U is 0: s is expm1(r) itself, exactly as near 0 without a table.

q is the polynomial of degree 3 with q(0) = 1/2 fitted (least squares on Chebyshev nodes
in mpmath, reweighted to minimax, weighted by r^3 / expm1(r)) to (expm1(r) - r) / r^2 on
|r| <= ln(2)/512: relative error 0.004 * 2^-52. It was of degree 9 on |r| <= ln(2)/2
without the table. Value and gradient on 4096 points in cache, ns a point (minima of 11
runs, three rounds, load 7 on 2 cores), degree 9 -> the table: exp(x) - 1 1.08-1.11 ->
1.05-1.08 (libmvec's exp(x) - 1: 0.76-0.88), log(1 - exp(x)) 3.43-3.87 -> 3.06-3.31
(naive 2.11-2.31), log1p(-exp(x)) 3.43-3.52 -> 3.07-3.15, sinh 1.32-1.41 -> 1.23-1.26,
tanh 1.23-1.27 -> 1.22-1.31.

In a float kernel (dtypes.c_source_float makes the source single precision) the bit
layout below is wrong, so there the helpers call libm's expm1f and expf, as before:
`sizeof(double) == 4` is a constant, so gcc keeps only one of the two paths.
"""

from __future__ import annotations

# U[j + 128] = 2^(j/256) - 1 rounded, -128 <= j < 128 (U[128] = 0): xc_expm1_r's table
# (tests/test_c_exp_table.py checks it against mpmath)
U = (
    -0.2928932188134525, -0.2909760578397924, -0.2890536989154172, -0.28712612794725284,
    -0.285193330804015, -0.2832552933161056, -0.2813120012755088, -0.27936344043568717,
    -0.2774095965114767, -0.27545045517898253, -0.27348600207547374, -0.27151622279927806,
    -0.26954110290967653, -0.2675606279267971, -0.265574783331509, -0.2635835545653162,
    -0.2615869270302503, -0.2595848860887641, -0.25757741706362375, -0.25556450523780144,
    -0.2535461358543676, -0.2515222941163823, -0.24949296518678724, -0.24745813418829674,
    -0.24541778620328863, -0.24337190627369504, -0.24132047940089266, -0.2392634905455927,
    -0.23720092462773085, -0.23513276652635648, -0.233059001079522, -0.23097961308417153,
    -0.2288945872960296, -0.22680390842948922, -0.2247075611575, -0.2226055301114557,
    -0.2204977998810815, -0.21838435501432116, -0.21626518001722356, -0.21414025935382933,
    -0.21200957744605675, -0.20987311867358774, -0.20773086737375313, -0.20558280784141802,
    -0.20342892432886656, -0.20126920104568646, -0.19910362215865332, -0.19693217179161454,
    -0.19475483402537286, -0.19257159289756967, -0.19038243240256814, -0.1881873364913356,
    -0.1859862890713261, -0.18377927400636246, -0.18156627511651777, -0.1793472761779969,
    -0.17712226092301758, -0.17489121303969113, -0.1726541161719028, -0.17041095391919195,
    -0.16816170983663178, -0.16590636743470874, -0.1636449101792017, -0.16137732149106074,
    -0.15910358474628547, -0.15682368327580334, -0.15453760036534742, -0.15224531925533366,
    -0.14994682314073826, -0.14764209517097437, -0.1453311184497686, -0.14301387603503699,
    -0.14069035093876103, -0.13836052612686306, -0.13602438451908122, -0.13368190898884447,
    -0.13133308236314686, -0.12897788742242178, -0.12661630690041553, -0.12424832348406092,
    -0.12187391981335026, -0.11949307848120809, -0.1171057820333636, -0.11471201296822262,
    -0.11231175373673938, -0.1099049867422878, -0.1074916943405325, -0.1050718588392995,
    -0.1026454624984464, -0.10021248752973246, -0.09777291609668806, -0.09532673031448406,
    -0.09287391224980063, -0.09041444392069571, -0.08794830729647335, -0.08547548429755134,
    -0.08299595679532877, -0.08050970661205314, -0.07801671552068704, -0.07551696524477454,
    -0.07301043745830721, -0.0704971137855898, -0.06797697580110548, -0.06545000502938075,
    -0.06291618294485005, -0.06037549097171991, -0.057827910483832776, -0.055273422804530445,
    -0.05271200920651718, -0.05014365091172237, -0.047568329091162896, -0.0449860248648051,
    -0.042396719301426355, -0.039800393418476264, -0.037197028181937535, -0.03458660450618642,
    -0.03196910325385278, -0.02934450523567981, -0.026712791210383356, -0.02407394188451085,
    -0.021427937912299865, -0.018774759895536286, -0.01611438838341211, -0.013446803872382843,
    -0.010771986806024515, -0.008089917574890314, -0.005400576516366824, -0.0027039439145298736,
    0.0, 0.0027112750502024854, 0.005429901112802822, 0.008155898118417515,
    0.01088928605170046, 0.013630084951489438, 0.016378314910953037, 0.01913399607773795,
    0.02189714865411668, 0.024667792897135644, 0.027445949118763698, 0.030231637686041014,
    0.03302487902122842, 0.03582569360195712, 0.03863410196137879, 0.04145012468831614,
    0.04427378242741384, 0.04710509587928986, 0.049944085800687266, 0.052790773004626326,
    0.05564517836055716, 0.05850732279451269, 0.06137722728926208, 0.06425491288446455,
    0.06714040067682361, 0.07003371182024178, 0.07293486752597556, 0.07584388906279103,
    0.07876079775711979, 0.08168561499321521, 0.08461836221330923, 0.08755906091776966,
    0.09050773266525766, 0.09346439907288585, 0.09642908181637683, 0.09940180263022198,
    0.10238258330784095, 0.10537144570174126, 0.10836841172367864, 0.1113735033448176,
    0.11438674259589254, 0.1174081515673692, 0.12043775240960669, 0.1234755673330198,
    0.1265216186082419, 0.12957592856628813, 0.13263851959871922, 0.13570941415780552,
    0.13878863475669165, 0.14187620396956163, 0.14497214443180423, 0.148076478840179,
    0.1511892299529827, 0.15431042059021605, 0.15744007363375104, 0.16057821202749875,
    0.1637248587775775, 0.16688003695248158, 0.1700437696832502, 0.17321608016363724,
    0.17639699165028128, 0.17958652746287596, 0.18278471098434104, 0.18599156566099384,
    0.18920711500272105, 0.19243138258315123, 0.19566439203982738, 0.19890616707438047,
    0.20215673145270313, 0.20541610900512383, 0.20868432362658157, 0.2119613992768012,
    0.21524735998046887, 0.21854222982740837, 0.2218460329727575, 0.22515879363714544,
    0.22848053610687, 0.23181128473407595, 0.2351510639369333, 0.23849989819981657,
    0.24185781207348406, 0.24522483017525792, 0.24860097718920474, 0.2519862778663163,
    0.2553807570246911, 0.2587844395497164, 0.2621973503942507, 0.26561951457880634,
    0.2690509571917332, 0.27249170338940276, 0.2759417783963921, 0.2794012075056692,
    0.28287001607877826, 0.2863482295460255, 0.28983587340666583, 0.2933329732290894,
    0.29683955465100964, 0.30035564337965065, 0.3038812651919359, 0.30741644593467726,
    0.31096121152476436, 0.31451558794935464, 0.318079601266064, 0.32165327760315754,
    0.32523664315974127, 0.3288297242059544, 0.33243254708316144, 0.3360451382041458,
    0.339667524053303, 0.34329973118683527, 0.34694178623294586, 0.3505937158920344,
    0.3542555469368927, 0.35792730621290103, 0.36160902063822475, 0.3653007172040118,
    0.3690024229745906, 0.37271416508766836, 0.3764359707545301, 0.3801678672602381,
    0.38390988196383197, 0.3876620422985292, 0.3914243757719262, 0.39519690996620016,
    0.3989796725383111, 0.4027726912202047, 0.40657599381901544, 0.4103896082172707
)
# (expm1(r) - r) / r^2 ~ sum Q[j] r^j, |r| <= ln(2)/512 (see the docstring)
Q = (0.5, 0.16666666666666755, 0.04166666887920114, 0.008333333058405588)
TABLE_BITS = 8
STEP = 256.0                       # t's step from k to k + 1
# 1.5 * 2^52 + 128 + 1023 * 256: fma(x, INV_LN2, SHIFT) rounds 256 x / ln 2 to an integer
# n, and keeps n + 128 + 1023 * 256 in the low bits: the table's index j + 128 in the low
# 8, k + 1023 (2^k's exponent field) above them
SHIFT = 6755399441317760.0
INV_LN2 = 369.3299304675746        # 256 / ln 2
LN2_HI = 0.0027076061737716373     # ln(2)/256 to 33 bits: n LN2_HI is exact for |n| < 2^20
LN2_LO = 2.9064910585985925e-13    # ln(2)/256 - LN2_HI


_EXP_K = f"""/* 256 x / ln 2 to the nearest integer n, as SHIFT + n (exact for |x| < 2^42) */
static inline XC_ALWAYS double xc_exp_k(double x) {{ return fma(x, {INV_LN2!r}, {SHIFT!r}); }}"""

# (r r) q, not r (r q), which waits for q: 7% slower (value and gradient of expm1 in
# cache, degree 9). r r is subnormal for |r| < 1.5e-154, which costs a microcode assist
# at each operation that reads it: q by Horner's scheme reads it once, where Estrin's,
# (Q0 + Q1 r) + r^2 (Q2 + Q3 r), read it twice (as fast elsewhere; value and gradient
# of exp(x) - 1 on |x| in [1e-300, 1e-3], half below 1e-154, 3.45 against 4.35 ns a
# point; degree 9 without the table 3.66). U + (1 + U) p as fma(U, p, p) + U: the same
# speed as fma(1 + U, p, U), whose 1 + U is rounded. The table is read under the
# condition x == x (false only at NaN, where s is NaN all the same), so that gcc 12
# gathers into a zeroed register: unconditional, its gather merged into whatever
# register it was given, and waited for that register's last value, in sinh's kernel
# the division of the iteration before (value and slope of sinh 1.32 -> 2.29 ns a
# point; with the condition 1.23, at 0.03-0.06 ns a point more elsewhere).
_EXPM1_R = f"""/* s = e^(x - k ln 2) - 1 for t = xc_exp_k(x), n = 256 k + j: U[j + 128] (1 + expm1(r)) +
   expm1(r), r = x - n ln(2)/256 */
static inline XC_ALWAYS double xc_expm1_r(double x, double t)
{{
    static const double table[{len(U)}] = {{{", ".join(repr(v) for v in U)}}};
    union {{ double d; unsigned long long u; }} b = {{t}};
    const double n = t - {SHIFT!r}, uj = x == x ? table[b.u & {len(U) - 1}] : 0.0;
    const double r = fma(-n, {LN2_LO!r}, fma(-n, {LN2_HI!r}, x)), r2 = r * r;
    const double p = fma(r2, fma(fma(fma({Q[3]!r}, r, {Q[2]!r}), r, {Q[1]!r}), r, {Q[0]!r}), r);
    return fma(uj, p, p) + uj;
}}"""

# 2^(k - down) from t's bits, not 2^k of t - down STEP: an integer subtraction after the
# shift, not a floating-point one before it, off the chain that waits for t (value and
# gradient of exp(x) - 1, the table read unconditionally: 1.19 -> 0.98 ns a point). The
# shift is written for both widths only so that a float kernel's copy compiles without a
# warning: there it is never called.
_POW2 = f"""/* 2^(k - down) for t = xc_exp_k(x), n = 256 k + j, -1022 <= k - down <= 1023: k + 1023 - down
   in the exponent field */
static inline XC_ALWAYS double xc_pow2(double t, int down)
{{
    union {{ double d; unsigned long long u; }} s = {{t}};
    s.u = ((s.u >> {TABLE_BITS}) - down) << (sizeof(double) == 8 ? 52 : 23);
    return s.d;
}}"""

# Below k - down = -1000, 2^(k - down) may be no normal double: there the scale is
# 2^(k - down + 64), and a caller scales its result by 2^-64 after the fma (one rounding
# into the subnormals), where t < SHIFT - (1000 - down) STEP as here.
_POW2_LOW = f"""/* 2^(k - down), or 2^(k - down + 64) where t < SHIFT - (1000 - down) STEP */
static inline XC_ALWAYS double xc_pow2_low(double t, int down)
{{
    return xc_pow2(t + xc_select(t < {SHIFT - 1000 * STEP!r} + down * {STEP!r}, {64 * STEP!r}, 0.0), down);
}}"""

# e^x - 1 = 2 (2^(k-1) p + 2^(k-1) - 1/2) from the steps of x, p = xc_expm1_r's s (h =
# 2^(k-1): halves, because 2^1024, k = 1024 from x = 709.44 on, is no double; exact
# doubling). At n = 0 (|x| <= ln(2)/512: k = 0, U = 0) the value is p = expm1(x)
# itself, which keeps the subnormals (2 * (p / 2) would round them), with the sign of x
# (p is +0.0 at -0.0: r^2 q + r); elsewhere at k = 0, |p| >= 0.0013, 2 * (p / 2) is p.
_EXPM1_OF = f"""/* e^x - 1 from t = xc_exp_k(a), p = e^(a - k ln 2) - 1 and h = 2^(k-1) of x */
static inline XC_ALWAYS double xc_expm1_of(double x, double t, double p, double h)
{{
    return xc_select(t == {SHIFT!r}, copysign(p, x), 2.0 * fma(h, p, h - 0.5));
}}"""

# expm1(x) alone: x within [-40, 710] (beyond, the value is -1 or +inf already: e^-40
# is below 2^-54), so 2^(k-1) is a normal double.
_EXPM1 = """/* e^x - 1 without cancellation, from one fma of exact terms */
static inline XC_ALWAYS double xc_expm1(double x)
{
    if (sizeof(double) == 4) return expm1(x);   /* a float kernel: expm1f */
    const double a = xc_select(x < -40.0, -40.0, xc_select(x > 710.0, 710.0, x));   /* NaN stays */
    const double t = xc_exp_k(a);
    return xc_expm1_of(x, t, xc_expm1_r(a, t), xc_pow2(t, 1));
}"""

# expm1(x) and e^x of one x from the same steps (the op table's expm1_shared and
# exp_shared, which c_backend.c_forms spells where a kernel computes both: expm1 and its
# derivative), so that gcc merges the two inlined copies: x within [-746, 710] (e^-746
# rounds to 0, e^710 overflows), and h = 2^(k-1), or 2^(k+63) below k = -999
# (xc_pow2_low), where e^x is then scaled by 2^-63 after the fma and e^x - 1 is -1 all
# the same (as from x < -38 on): the values of xc_expm1, bit for bit. These steps cost
# two operations more than xc_expm1's, so an expm1 alone keeps those, and an exp alone
# keeps libmvec's (5-20% faster than xc_exp_shared).
_EXP_STEPS = """/* t = xc_exp_k(a), p = xc_expm1_r and h = 2^(k-1) (xc_pow2_low) of x within [-746, 710] */
typedef struct { double t, p, h; } xc_exp_steps;
static inline XC_ALWAYS xc_exp_steps xc_exp_reduce(double x)
{
    const double a = xc_select(x < -746.0, -746.0, xc_select(x > 710.0, 710.0, x));   /* NaN stays */
    const double t = xc_exp_k(a);
    const xc_exp_steps s = {t, xc_expm1_r(a, t), xc_pow2_low(t, 1)};
    return s;
}"""
_EXPM1_SHARED = """/* e^x - 1 by xc_exp_reduce's steps */
static inline XC_ALWAYS double xc_expm1_shared(double x)
{
    if (sizeof(double) == 4) return expm1(x);   /* a float kernel: expm1f */
    const xc_exp_steps s = xc_exp_reduce(x);
    return xc_expm1_of(x, s.t, s.p, s.h);
}"""
_EXP_SHARED = f"""/* e^x by xc_exp_reduce's steps: 2 (h p + h), or 2^-63 (h p + h) where h is 2^(k+63) */
static inline XC_ALWAYS double xc_exp_shared(double x)
{{
    if (sizeof(double) == 4) return exp(x);   /* a float kernel: expf */
    const xc_exp_steps s = xc_exp_reduce(x);
    return fma(s.h, s.p, s.h) * xc_select(s.t < {SHIFT - 999 * STEP!r}, {2.0 ** -63!r}, 2.0);
}}"""

# The same bits without the edge steps, for c_backend's tiles of points that need none
# (INNER): where |x| <= 690 and x is not -0.0 (xc_exp_inner_at), the bounds of x do
# nothing, k >= -996 (2^k is normal: no rescue below k = -999), and 2^k itself serves,
# s = 2^k, not h = 2^(k-1): fma(s, p, s - 1) is 2 fma(h, p, h - 0.5) bit for bit (s - 1
# is RN(2^k - 1) = 2 RN(2^(k-1) - 1/2), and the doubling commutes with the rounding away
# from the overflow and the subnormals), fma(s, p, s) likewise 2 fma(h, p, h), and at
# n = 0 (s = 1, s - 1 = +0.0) fma(1, p, +0.0) is p itself, subnormal or not, with x's
# sign but at -0.0 (p = +0.0 there, the full form's -0.0): xc_expm1_inner is xc_expm1's
# and xc_expm1_shared's value bit for bit, xc_exp_inner xc_exp_shared's. Those steps
# (the two bounds, the rescue, the select at n = 0, the halving and doubling) were a
# quarter of the time of e^x - 1 and its derivative (c_backend.INNER_UP_TO); with h and
# a test that left out the subnormals as well (5 operations a vector, against 2), value
# and gradient of exp(x) - 1 on [1, 10], 16,384 points in cache, took 1.21-1.24 ns a
# point, with these 1.05 (the naive form 0.98: 1.23-1.27x -> 1.07-1.08x, and 1 - exp(x)
# alike; medians of 21, alternated, load 5.7; with c_tiles' test of 64-bit lanes). The
# table's guard
# stays, though always true here: without it, the gather waited for a division of the
# iteration before, as in xc_expm1_r's comment (log1mexp with these steps, 16,384 points
# in cache: 5.8 ns a point against 3.4 with the guard; e^x - 1 0.91 against 0.94).
# (-0.0 as the sign bit of b.u's own width: a float kernel's b.u is an unsigned int
# (dtypes), which a 64-bit literal never equals; in double the same instructions)
_INNER_AT = """/* whether x is one of the points of xc_expm1_inner and xc_exp_inner: |x| <= 690, not -0.0 */
static inline XC_ALWAYS int xc_exp_inner_at(double x)
{
    union { double d; unsigned long long u; } b = {x};
    return (fabs(x) <= 690.0) & (b.u != ((unsigned long long)1 << (8 * sizeof b.u - 1)));
}"""
_INNER_STEPS = """/* t = xc_exp_k(x), p = xc_expm1_r and h = 2^k (not 2^(k-1)) of x where xc_exp_inner_at(x) */
static inline XC_ALWAYS xc_exp_steps xc_exp_reduce_inner(double x)
{
    const double t = xc_exp_k(x);
    const xc_exp_steps s = {t, xc_expm1_r(x, t), xc_pow2(t, 0)};
    return s;
}"""
_EXPM1_INNER = """/* xc_expm1(x) where xc_exp_inner_at(x) */
static inline XC_ALWAYS double xc_expm1_inner(double x)
{
    if (sizeof(double) == 4) return expm1(x);   /* a float kernel: expm1f */
    const xc_exp_steps s = xc_exp_reduce_inner(x);
    return fma(s.h, s.p, s.h - 1.0);
}"""
_EXP_INNER = """/* xc_exp_shared(x) where xc_exp_inner_at(x) */
static inline XC_ALWAYS double xc_exp_inner(double x)
{
    if (sizeof(double) == 4) return exp(x);   /* a float kernel: expf */
    const xc_exp_steps s = xc_exp_reduce_inner(x);
    return fma(s.h, s.p, s.h);
}"""
INNER_AT = "xc_exp_inner_at"
# helper -> (its form on the points where the test holds, the test of its argument), for
# c_backend's tiles (c_special.INNER has more)
INNER = {"xc_expm1": ("xc_expm1_inner", INNER_AT), "xc_expm1_shared": ("xc_expm1_inner", INNER_AT),
         "xc_exp_shared": ("xc_exp_inner", INNER_AT)}

# For y <= 0 (-inf and NaN too): e^y - 1 and e^y from the same steps, so that a kernel
# calling both (sech2, log1mexp) computes them once: y within [-746, 0], s = 2^k (k <= 0:
# no halving, and one bound: fewer operations than xc_exp_reduce's).
_EXPM1_NEG = """/* e^y - 1 for y <= 0 */
static inline XC_ALWAYS double xc_expm1_neg(double y)
{
    if (sizeof(double) == 4) return expm1(y);   /* a float kernel: expm1f */
    const double a = xc_select(y < -746.0, -746.0, y), t = xc_exp_k(a), s = xc_pow2_low(t, 0);
    return fma(s, xc_expm1_r(a, t), s - 1.0);
}"""
_EXP_NEG = f"""/* e^y for y <= 0 */
static inline XC_ALWAYS double xc_exp_neg(double y)
{{
    if (sizeof(double) == 4) return exp(y);   /* a float kernel: expf */
    const double a = xc_select(y < -746.0, -746.0, y), t = xc_exp_k(a), s = xc_pow2_low(t, 0);
    return fma(s, xc_expm1_r(a, t), s) * xc_select(t < {SHIFT - 1000 * STEP!r}, {2.0 ** -64!r}, 1.0);
}}"""

# The same bits for y within [-690, 0] (c_special.INNER's tiles; -0.0, subnormals and
# the n = 0 case take no other path here): the bound of y does nothing, and k >= -996,
# so that xc_pow2_low is xc_pow2 (its rescue starts below k = -1000, y < -693.1) and
# e^y's rescue factor is 1.
_EXPM1_NEG_INNER = """/* xc_expm1_neg(y) for y within [-690, 0] */
static inline XC_ALWAYS double xc_expm1_neg_inner(double y)
{
    if (sizeof(double) == 4) return expm1(y);   /* a float kernel: expm1f */
    const double t = xc_exp_k(y), s = xc_pow2(t, 0);
    return fma(s, xc_expm1_r(y, t), s - 1.0);
}"""
_EXP_NEG_INNER = """/* xc_exp_neg(y) for y within [-690, 0] */
static inline XC_ALWAYS double xc_exp_neg_inner(double y)
{
    if (sizeof(double) == 4) return exp(y);   /* a float kernel: expf */
    const double t = xc_exp_k(y), s = xc_pow2(t, 0);
    return fma(s, xc_expm1_r(y, t), s);
}"""

# sinh(x) and cosh(x) of one x (the op table's sinh_shared and cosh_shared, which
# c_backend.c_forms spells where a kernel computes both: sinh and its derivative) from
# one reduction of a = |x| within [0, 710.5] (from 710.48 on both overflow), with
# q = 2^(k-2), so that e^a / 2 = 2 (q p + q) is finite wherever the result is (k = 1025
# at the top). With r = 1/e^a: cosh = e^a/2 + r/2, and sinh = (e^a - 1)/2 (1 + r), from
# e^a - 1 as in xc_expm1_of (no cancellation), at n = 0 p (1/2 + r/2), which keeps the
# subnormals. libmvec's sinh and cosh cost 2.7 ns a point where these two cost 1.2 and
# the naive (exp(x) - exp(-x))/2 with its derivative 1.6 (16,384 points in cache, load 8).
_HYP_STEPS = """/* t = xc_exp_k(b), p = xc_expm1_r and q = 2^(k-2) of b = |x| within [0, 710.5] */
static inline XC_ALWAYS xc_exp_steps xc_hyp_reduce(double x)
{
    const double a = fabs(x), b = xc_select(a > 710.5, 710.5, a);   /* NaN stays */
    const double t = xc_exp_k(b);
    const xc_exp_steps s = {t, xc_expm1_r(b, t), xc_pow2(t, 2)};
    return s;
}"""
_SINH_SHARED = f"""/* sinh by xc_hyp_reduce's steps: (e^a - 1)/2 (1 + 1/e^a), with x's sign */
static inline XC_ALWAYS double xc_sinh_shared(double x)
{{
    if (sizeof(double) == 4) return sinh(x);   /* a float kernel: sinhf */
    const xc_exp_steps s = xc_hyp_reduce(x);
    const double half = 2.0 * fma(s.h, s.p, s.h), r = 0.5 / half;
    const double mh = 2.0 * fma(s.h, s.p, s.h - 0.25);
    return copysign(xc_select(s.t == {SHIFT!r}, s.p * (0.5 + 0.5 * r), mh * (1.0 + r)), x);
}}"""
_COSH_SHARED = """/* cosh by xc_hyp_reduce's steps: e^a/2 + 1/(2 e^a) */
static inline XC_ALWAYS double xc_cosh_shared(double x)
{
    if (sizeof(double) == 4) return cosh(x);   /* a float kernel: coshf */
    const xc_exp_steps s = xc_hyp_reduce(x);
    const double half = 2.0 * fma(s.h, s.p, s.h), r = 0.5 / half;
    return half + 0.5 * r;
}"""

# softplus = max(x, 0) + log1p(e) and sigmoid = (1 or e) / (1 + e), e = e^-|x| (as
# c_helpers had them, see there), with e^y of y <= 0 from here and c_log's log (log1p(e)
# as log(u), u = 1 + e, plus d (1 - e), d = e - (u - 1) the rounding's error, as
# xc_log1p_unit) inline: no libmvec call, so that their kernels' loops run
# c_tiles.WIDE_LANES lanes, and on tiles where |x| <= 690 without the exp's edge steps
# (c_special.INNER makes those forms). Value and gradient of log(1 + exp(x)) on [-5, 5],
# 16,384 points in cache, ns a point (medians of 15, alternated, load 7-14): libmvec's
# exp and log 2.93-3.06 -> 2.34-2.54 (the naive form 2.54-2.67: 1.13-1.15x ->
# 0.91-0.95x); inline at gcc's 4 lanes 3.42-3.52 (why xc_log1p_unit and logaddexp keep
# libmvec's, and why a kernel that runs no tiles, softplus(2x + 1), is 1.21x its former
# self until c_kernel's plain loop runs 8 lanes too). Against mpmath within 1.62 ulps
# (softplus) and 1.85 (sigmoid), were 3.06 and 2.98. In a float kernel expf and logf.
SOFTPLUS = """/* max(x, 0) + log1p(e^-|x|) without overflow or a libmvec call */
static inline XC_ALWAYS double xc_softplus(double x)
{
    const double e = xc_exp_neg(-fabs(x)), u = 1.0 + e;
    return xc_select(x >= 0, x, 0.0) + xc_log_fma(u, e - (u - 1.0), 1.0 - e);
}"""
SIGMOID = """/* 1 / (1 + e^-x) as (1 or e) / (1 + e), e = e^-|x|, without a libmvec call */
static inline XC_ALWAYS double xc_sigmoid(double x)
{
    const double e = xc_exp_neg(-fabs(x));
    return xc_select(x >= 0, 1.0, e) / (1.0 + e);
}"""

# sigmoid(x) sigmoid(-x) (the op sigmoid_slope_shared, c_forms) from sigmoid's own steps, without
# a second division: v = sigmoid(x) by xc_sigmoid's expression (gcc computes it once in a
# kernel with both), times s = sigmoid(-x): for x < 0 1 - v (v <= 1/2: no cancellation);
# for x >= 0 (v = 1/(1 + e), e = e^-|x|) 1 - v corrected by the residual of v, r = 1 -
# v (1 + e) (one fma, 1 - v exact: v in [1/2, 1]): 1/(1 + e) = v/(1 - r), so sigmoid(-x)
# = (a - r)/(1 - r) = a - v r - v r^2 - ..., a = 1 - v, which fixes the error both
# roundings of v (1 + e and the division) put into a (at e < 2^-53, v = 1: r = -e, s = e).
# Against mpmath (30,000 points of [-40, 40], [20, 700], [-700, -20], 0 < |x| < 1e-3): within
# 3.01 ulps, where the product v sigmoid(-x) (two divisions) was within 3.58, and e v^2
# for x >= 0 without the correction 4.15. NaN at NaN, 0 at +-inf and beyond |x| = 745,
# 1/4 at +-0. Value and gradient on 10^6 points, one thread, ratio to the naive v (1 - v)
# (the stability bench, three runs alternated, load 4.6-6.6): sigmoid(x) on [-3, 3]
# 1.32-1.37x -> 1.12-1.14x, 1 - sigmoid(x) on [-5, 0.5] 1.33-1.34x -> 1.08-1.12x; e v^2
# uncorrected (e v for the two fmas) 1.05-1.07x, e w^2 (1 + 2c), w = v or 1 - v, c = 1 -
# w (1 + e) (four operations more) 1.16-1.21x, within 2.2 ulps.
SIGMOID_SLOPE_SHARED = """/* sigmoid(x) sigmoid(-x) by xc_sigmoid's steps, without a second division */
static inline XC_ALWAYS double xc_sigmoid_slope_shared(double x)
{
    const double e = xc_exp_neg(-fabs(x)), v = xc_select(x >= 0, 1.0, e) / (1.0 + e), a = 1.0 - v;
    return v * xc_select(x >= 0, fma(-v, fma(-v, e, a), a), a);
}"""

# sigmoid(x) sigmoid(-x) where the kernel has no sigmoid(x) (the op sigmoid_slope: the
# rule sigmoid_pair's, sigmoid(u) (1 - sigmoid(u)) rewritten) and its derivative (the op
# sigmoid_slope_slope) from one exp and one division: with e = e^-|x| and m = e^-|x| - 1
# (xc_exp_neg and xc_expm1_neg, one reduction: gcc does it once), w = sigmoid(-|x|) = e/(1
# + e) (the same expression in both: gcc divides once) and r = 1 - w = 1/(1 + e), exact
# (w <= 1/2), s = w r (the function is even: no cancellation anywhere, and w's error
# counts little near 0, where s' = 1 - 2w is) and s' = s (1 - 2 sigmoid(x)) = -sign(x) s
# tanh(|x|/2), tanh(|x|/2) = -m r: s copysign(m r, -x) (m <= 0). The naive v (1 - v), (1 -
# 2v) pays one exp and one division too. s' is -x/8 near 0 (m keeps |x|'s digits: -0.0
# at +0.0, +0.0 at -0.0), 0 at +-inf (-0.0 at +inf), NaN at NaN; beyond |x| = 708 s = e
# and s' = -sign(x) e, subnormal, exact (w = e, r = 1, m = -1), 0 from 745. For x < 0 s
# is xc_sigmoid_slope_shared's bits. Against mpmath (4,000 points a range), worst ulps of
# the value and of the derivative, the former form 0.25 sech2(x/2) with -0.25 sech2(x/2)
# tanh(x/2) (c_special's helpers) -> this: [-40, 40] 4.39, 7.01 -> 2.18, 3.06; |x| in
# [0.5, 3] 4.11, 7.77 -> 2.32, 3.78; |x| in [1e-300, 1e-3] 2.30, 4.01 -> 1.48, 3.15; [20,
# 745] 3.13, 4.91 -> 1.77, 2.08. Value and derivative on 10^6 points of |x| in [0.5, 3],
# one thread, ms (medians of 21, alternated, load 1.4-3.9): the naive form 0.94-1.00, the
# former form 1.08-1.13 (1.12-1.15x), this 0.92-0.95 (0.92-1.02x); e r^2, r = 1/(1 + e),
# as fast, within 4.11 and 5.62 ulps; with sigmoid's steps (xc_sigmoid_slope_shared, and
# 1/(1 + e) as v or a) 1.09 (1.16x); e r^2 with the errors of 1 + e and of the division
# corrected (1/(1 + e) = r (1 + c - d r), c = 1 - r u, d = e - (u - 1), u = 1 + e: five
# operations more) 1.05 (1.12x), within 1.75 and 3.09 ulps.
SIGMOID_SLOPE = """/* sigmoid(x) sigmoid(-x) as w (1 - w), w = sigmoid(-|x|) = e/(1 + e), e = e^-|x| */
static inline XC_ALWAYS double xc_sigmoid_slope(double x)
{
    const double e = xc_exp_neg(-fabs(x)), w = e / (1.0 + e);
    return w * (1.0 - w);
}"""
SIGMOID_SLOPE_SLOPE = """/* the derivative of sigmoid(x) sigmoid(-x): -sign(x) s tanh(|x|/2), tanh(|x|/2) = -m (1 - w) */
static inline XC_ALWAYS double xc_sigmoid_slope_slope(double x)
{
    const double e = xc_exp_neg(-fabs(x)), w = e / (1.0 + e), m = xc_expm1_neg(-fabs(x));
    return w * (1.0 - w) * copysign(m * (1.0 - w), -x);
}"""

# name -> (C definition, helpers it uses), as c_backend.HELPERS. Every helper here is
# XC_ALWAYS (c_backend.math_prelude defines it): inlined at every optimisation level.
_STEPS = ("xc_select", "xc_exp_k", "xc_expm1_r", "xc_pow2_low")
HELPERS = {
    "xc_exp_k": (_EXP_K, ()),
    "xc_expm1_r": (_EXPM1_R, ()),
    "xc_pow2": (_POW2, ()),
    "xc_pow2_low": (_POW2_LOW, ("xc_select", "xc_pow2")),
    "xc_expm1_of": (_EXPM1_OF, ("xc_select",)),
    "xc_expm1": (_EXPM1, ("xc_select", "xc_exp_k", "xc_expm1_r", "xc_pow2", "xc_expm1_of")),
    "xc_exp_reduce": (_EXP_STEPS, _STEPS),
    "xc_expm1_shared": (_EXPM1_SHARED, ("xc_exp_reduce", "xc_expm1_of")),
    "xc_exp_shared": (_EXP_SHARED, ("xc_select", "xc_exp_reduce")),
    "xc_expm1_neg": (_EXPM1_NEG, _STEPS),
    "xc_exp_neg": (_EXP_NEG, _STEPS),
    "xc_hyp_reduce": (_HYP_STEPS, ("xc_select", "xc_exp_k", "xc_expm1_r", "xc_pow2", "xc_exp_reduce")),
    "xc_sinh_shared": (_SINH_SHARED, ("xc_select", "xc_hyp_reduce")),
    "xc_cosh_shared": (_COSH_SHARED, ("xc_hyp_reduce",)),
    "xc_exp_inner_at": (_INNER_AT, ()),
    "xc_exp_reduce_inner": (_INNER_STEPS, ("xc_exp_reduce", "xc_exp_k", "xc_expm1_r", "xc_pow2")),
    "xc_expm1_inner": (_EXPM1_INNER, ("xc_exp_reduce_inner",)),
    "xc_exp_inner": (_EXP_INNER, ("xc_exp_reduce_inner",)),
    "xc_expm1_neg_inner": (_EXPM1_NEG_INNER, ("xc_exp_k", "xc_expm1_r", "xc_pow2")),
    "xc_exp_neg_inner": (_EXP_NEG_INNER, ("xc_exp_k", "xc_expm1_r", "xc_pow2")),
    "xc_softplus": (SOFTPLUS, ("xc_select", "xc_exp_neg", "xc_log_fma")),   # xc_log_fma: c_log's
    "xc_sigmoid": (SIGMOID, ("xc_select", "xc_exp_neg")),
    "xc_sigmoid_slope_shared": (SIGMOID_SLOPE_SHARED, ("xc_select", "xc_exp_neg")),
    "xc_sigmoid_slope": (SIGMOID_SLOPE, ("xc_exp_neg",)),
    "xc_sigmoid_slope_slope": (SIGMOID_SLOPE_SLOPE, ("xc_exp_neg", "xc_expm1_neg")),
}

__all__ = ["HELPERS", "INNER", "INNER_AT", "SIGMOID", "SIGMOID_SLOPE", "SIGMOID_SLOPE_SHARED", "SIGMOID_SLOPE_SLOPE",
           "SOFTPLUS"]
