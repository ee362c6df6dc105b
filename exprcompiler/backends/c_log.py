"""C backend, a natural log of its own: xc_log_normal, and as xc_log_plus and xc_log_fma
the log of c_special's xc_log1p (and so of log1p(x), the rewritten log(1 + x)) and
xc_log1m_shared (the rewritten log(1 - x)) with their corrections added before its
selects of 0 and +inf, written so that gcc vectorizes it inline (no libm call).

Merged into c_special.HELPERS (and so into c_backend.HELPERS). Why: a call to libmvec's
log clobbers every vector register, and gcc keeps the statements' order around it, so
what a kernel computes beside the log is stored across the call and loaded back. Value
and gradient on 4096 points in cache, ns a point (minima of 11 runs, five rounds
alternated, load 6 on 2 cores), libmvec's log -> this one: log(1 + x) 1.41-1.49 ->
1.31-1.41 (naive 1.21-1.24), log(1 - x) 1.34-1.43 -> 1.27-1.34 (naive 1.20-1.25), both
in one kernel 2.76-3.07 -> 2.64-2.83; on 10^6 points 1.67-1.80 -> 1.46-1.66 and
1.61-1.85 -> 1.44-1.52. A log alone: 1.05-1.13 -> 0.95-0.98. Where it did not pay at
gcc's 4 lanes, the stable forms keep libmvec's log (the table's two gathers cost more
there than the call's stores): logaddexp's xc_log1p_unit 2.47-2.69 -> 2.60-2.87,
arctanh 2.08 -> 2.22 (c_special's xc_log1p_libm), arccosh 2.04-2.20 -> 2.08-2.30,
arcsinh the same, the three-term logaddexp 4.46-4.85 -> 4.58-5.07. log1mexp (3.15-3.35
-> 3.64-3.91 at 4 lanes, subnormals handled: xc_log_fma_sub) and softplus (2.47-2.69 ->
2.60-2.87) take it since their kernels call no libmvec at all and run 8 lanes
(c_tiles.WIDE_LANES): log(1 - exp(x)) 2.90-2.98 -> 2.45-2.47 (the naive form 2.57-2.61),
log(1 + exp(x)) 2.93-3.06 -> 2.34-2.54 (2.54-2.67).

The method (as ARM's optimized-routines log, with a table of 128 entries): x = 2^k z
with z in [OFF, 2 OFF), OFF = 0.689453125, k and z from the bits of x by integer
operations; the next 7 bits of z - OFF pick an entry (1/c, log(c)), c near the middle
of the entry's subinterval; then r = z (1/c) - 1 by one fma (|r| <= 2^-8) and log(x) =
k ln 2 + log(c) + log1p(r), log1p(r) = r + r^2 q(r). The subinterval holding 1 spans
[1 - 2^-9, 1 + 2^-8) (OFF is 2^-44 above 0x3fe6 << 48 for that) and has c = 1
exactly: there r = x - 1 exactly and log(x) = r + r^2 q(r), with no cancellation.
Elsewhere 1/c is a double near the middle's inverse, chosen among a few thousand so
that log(c) = -log(1/c) is within 0.0012 ulps of a double (LOGC): the table adds next
to no error (tests/test_c_log.py checks it against mpmath). k ln 2 is k LN2_HI (exact:
LN2_HI has 39 bits) plus k LN2_LO, and the rounding of k LN2_HI + log(c) is kept
(Fast2Sum: |k ln 2| >= |log(c)| where k != 0; left out, the error went from 1.04 to
1.49 ulps). Within 1.04 ulps of log against mpmath, the worst next to 1 (r and
r + r^2 q each rounded where log(c) and r cancel by half); libmvec's log was within
1.51 on the same points.

q, of degree 4 with q(0) = -1/2, is fitted (weighted least squares on Chebyshev nodes
in mpmath, reweighted towards minimax) to (log1p(r) - r) / r^2 on |r| <= 2^-8,
weighted by r^2 / log1p(r): relative error 0.09 * 2^-52 in log1p(r).

0 gives -inf, +inf +inf, NaN and negative numbers NaN; a subnormal x is wrong (its
exponent field is 0), which the callers' arguments never are (1 + x and 1 - x are 0
or at least 2^-53). Scaling them (x 2^52 where x < 2^-1022, k less 52) cost 0.3 ns a
point more at 4 lanes: xc_log_fma_sub does, for log1mexp's u = 1 - e^x.
In a float kernel (dtypes.c_source_float makes the source single
precision) the bit layout is wrong, so there the helper calls libm's logf, as before:
`sizeof(double) == 4` is a constant, so gcc keeps one path.
"""

from __future__ import annotations

# Entry i covers the z whose bits minus OFF have i in bits 45..51: (INVC[i], LOGC[i]) =
# (1/c, log(c)); INVC[79] = 1, LOGC[79] = 0 (the subinterval holding 1)
INVC = (
    1.4463392251524134, 1.438213595297112, 1.430178756739523, 1.4222331962439088,
    1.4143754340176362, 1.4066040227935594, 1.3989175469374562, 1.3913146194034418,
    1.3837938918473311, 1.376354031926053, 1.368993747470961, 1.361711759504649,
    1.3545068342630957, 1.3473777519232324, 1.3403233212034524, 1.3333423738333363,
    1.3264337729454438, 1.3195963943856674, 1.312829144175837, 1.3061309488947628,
    1.299500756917199, 1.2929375393027391, 1.2864402820651952, 1.2800079972296963,
    1.2736397213578505, 1.2673344974420049, 1.2610913908879162, 1.254909500838588,
    1.2487879200547454, 1.2427257677781682, 1.236722191429116, 1.230776339424467,
    1.2248873931881763, 1.219054529787862, 1.2132769551274996, 1.2075538868028555,
    1.2018845571015728, 1.1962682126615725, 1.1907041141381132, 1.1851915358772063,
    1.17972976560197, 1.1743181041059032, 1.1689558618207516, 1.1636423741858797,
    1.1583769700504498, 1.153159002817863, 1.14798783399921, 1.1428628374827745,
    1.1377833964612447, 1.1327489036153169, 1.127758775441121, 1.1228124137736444,
    1.1179092594976543, 1.1130487365645478, 1.1082303003609586, 1.1034533986549975,
    1.0987175059291892, 1.0940220892444623, 1.0893666336200842, 1.0847506295531708,
    1.0801735840656512, 1.0756349994484404, 1.0711343951188657, 1.0666712946712467,
    1.062245234886634, 1.0578557554801615, 1.0535024061230032, 1.049184733542652,
    1.0449023111302356, 1.0406547061191007, 1.0364414940481645, 1.032262260431538,
    1.0281165953638074, 1.0240040969330932, 1.0199243659796189, 1.0158770151369714,
    1.0118616595384693, 1.0078779212828977, 1.003925428394515, 1.0,
    0.9922629689427078, 0.9846299486819519, 0.9771134728757027, 0.9697108831337945,
    0.9624196169883198, 0.9552371802905707, 0.948161154474017, 0.9411891921118325,
    0.9343190143189508, 0.9275484093399039, 0.9208752260347691, 0.9142973762420725,
    0.9078128354580846, 0.901419626805671, 0.8951158383764126, 0.8888996071480828,
    0.8827691173497824, 0.8767226112147238, 0.8707583733442921, 0.8648747360611798,
    0.8590700764612995, 0.8533428149200695, 0.8476914143467648, 0.8421143753720519,
    0.8366102418968795, 0.8311775929498638, 0.8258150449014927, 0.8205212496019448,
    0.815294893250268, 0.8101346953083186, 0.8050394074542399, 0.800007812576384,
    0.7950387238022034, 0.7901309835673798, 0.7852834627145807, 0.7804950596285007,
    0.7757647012422906, 0.7710913330249394, 0.7664739377545647, 0.7619115106956355,
    0.7574030794009129, 0.7529476913060584, 0.748544411480575, 0.7441923353192708,
    0.7398905734453559, 0.7356382573576962, 0.7314345423228666, 0.727278597022543
)
LOGC = (
    -0.36903569176443, -0.36340178463637085, -0.357799441172331, -0.35222830966858143,
    -0.346688044267402, -0.3411783048290814, -0.3356987568038493, -0.3302490695395487,
    -0.3248289240298567, -0.31943799706152437, -0.31407597907233276, -0.30874255501082365,
    -0.3034374281287302, -0.2981602975506209, -0.29291086933858973, -0.2876888528037965,
    -0.28249396718680503, -0.27732592801456085, -0.27218446055939105, -0.2670692929754227,
    -0.26198015756726367, -0.25691679181914984, -0.2518789327467597, -0.24686632574770837,
    -0.24187872387371923, -0.2369158739474204, -0.23197752928754228, -0.22706345909804504,
    -0.22217341692978262, -0.21730716693162275, -0.21246448567305967, -0.20764514054394423,
    -0.20284891584340775, -0.1980755827126309, -0.19332492634672369, -0.18859673230069401,
    -0.18389078915587317, -0.17920688846459382, -0.17454482469545554, -0.1699043951774341,
    -0.16528540004855452, -0.16068764220432014, -0.1561109245664612, -0.1515550634298511,
    -0.14701986162507416, -0.1425051353505323, -0.13801070027955636, -0.13353637540953622,
    -0.12908198055896486, -0.12464733666821032, -0.12023227864707196, -0.11583662153072487,
    -0.11146020819897043, -0.10710285980241878, -0.10276441903812766, -0.09844471533356747,
    -0.09414359590912247, -0.08986089506145346, -0.08559645728109358, -0.0813501260632169,
    -0.07712175420780486, -0.07291118434807006, -0.0687182692314776, -0.06454285988245255,
    -0.06038481413464425, -0.05624398716610475, -0.05212023819210711, -0.048013418335384424,
    -0.04392339887502038, -0.039850040199987724, -0.03579320561622319, -0.031752763099371396,
    -0.027728580216053813, -0.02372052752053629, -0.019728473546484732, -0.015752293735846284,
    -0.011791861460167809, -0.007847052476393033, -0.003917744003594383, 0.0,
    0.007767117167332177, 0.015489395015252977, 0.023152489491447287, 0.030757310537963004,
    0.03830473112508438, 0.045795613011528694, 0.053230797003582964, 0.060611105288961485,
    0.0679373419839663, 0.07521029250418583, 0.08243072852267357, 0.08959940350626801,
    0.0967170499783391, 0.1037843952709629, 0.11080214072887473, 0.1177709776874879,
    0.12469158782385129, 0.13156462944070224, 0.13839075353845856, 0.14517059633889304,
    0.15190478120851375, 0.15859391900391148, 0.16523860759322725, 0.1718394362308915,
    0.17839697776248284, 0.1849117970317685, 0.1913844471183695, 0.19781547043031603,
    0.20420539897784382, 0.21055475463628884, 0.2168640494024461, 0.22313378564141412,
    0.22936445632889746, 0.23555654528067468, 0.24171052738081583, 0.2478268687987643,
    0.2539060248280069, 0.25994845196136285, 0.2659545828731706, 0.2719248577348502,
    0.27785969777024816, 0.28375952065221854, 0.28962474290726054, 0.2954557623442718,
    0.3012529774408105, 0.307016779233375, 0.31274754670517246, 0.3184456602451075
)
# (log1p(r) - r) / r^2 ~ sum Q[j] r^j, |r| <= 2^-8 (see the docstring)
Q = (-0.5, 0.3333333333189458, -0.24999999998522485, 0.20000304113598946, -0.16666949137534542)
TABLE_BITS = 7
OFF = 0x3FE6100000000000          # z's range starts at this double's bits: 0.689453125
LN2_HI = 0.6931471805601177        # ln 2 to 39 bits: k LN2_HI is exact for |k| < 2^11
LN2_LO = -1.7239444525614835e-13   # ln 2 - LN2_HI

# The integer constants are cast, and the shifts are by the width's mantissa bits, so
# that a float kernel's copy (unsigned long long -> unsigned int) compiles without a
# warning: there it is never run. The index is 64 bits wide: of 32, gcc paired vectors
# (8 lanes, and libmvec's 8-lane variants elsewhere in the loop: softplus 2.5 -> 3.9 ns
# a point). The tables are read under the condition x >= 0, false at NaN and below 0,
# where the entries are NaN, and so is the result (no select for those): gcc 12 then
# gathers into a register of its own, not into one that waits for its last value (as
# c_exp's table; read unconditionally, log(1 - x) took 2.05 ns a point instead of
# 1.25). -0.0, +0.0 and +inf are selected at the end. k LN2_HI is exact, so that gcc's
# contracting a + lc or a - w into an fma changes no bit (the VM's scalar ends and a
# one-point call give the vector loops' bits).
# xc_log_fma_sub's first steps: +0.0 or a subnormal x (exponent field 0; not below 0, its
# sign bit set) as x 2^52, and k less 52 (the same bits as xc_log_fma's elsewhere: x 1.0)
_SCALED = """    union { double d; unsigned long long u; } x0 = {x};
    const int sub = (x0.u >> m) == 0;
    const double xs = x * xc_select(sub, 4503599627370496.0, 1.0);
"""
_KD = f"xc_select(sub, {2.0 ** 52 + 1023 + 52!r}, {2.0 ** 52 + 1023!r})"


def _log_normal(name: str, params: str, tail: str, float_tail: str, about: str, subnormal: bool = False) -> str:
    float_line = ("if (sizeof(double) == 4) return log(x);" if float_tail == "l" else
                  f"if (sizeof(double) == 4) {{ const double l = log(x); return {float_tail}; }}")
    """The C definition of xc_log_normal (tail "y") or of a variant that adds a correction
    to its y before the selects of 0 and +inf (`tail`, of y and the extra `params`;
    `float_tail`, of l = logf(x), a float kernel's). `subnormal`: x 2^52 and k less 52
    where x is a subnormal (see xc_log_fma_sub)."""
    head = f"static inline XC_ALWAYS double {name}(double x{params})"
    return f"""/* {about} */
{head}
{{{{
    {float_line}   /* a float kernel: logf */
    static const double invc[{len(INVC)}] = {{{{{", ".join(repr(v) for v in INVC)}}}}};
    static const double logc[{len(LOGC)}] = {{{{{", ".join(repr(v) for v in LOGC)}}}}};
    const int m = sizeof(double) == 8 ? 52 : 23, at = m - {TABLE_BITS};   /* 52 and 45 where this runs */
    const unsigned long long off = (unsigned long long){OFF:#x}, bias = (unsigned long long)0x3ff0000000000000;
{_SCALED if subnormal else ""}    union {{{{ double d; unsigned long long u; }}}} b = {{{{{"xs" if subnormal else "x"}}}}}, z, k;
    const unsigned long long t = b.u - off, i = (t >> at) & {len(INVC) - 1};
    z.u = (t & ((((unsigned long long)1) << m) - 1)) + off;
    k.u = ((t + bias) >> m) | (unsigned long long)0x4330000000000000;   /* 2^52 + k + 1023 */
    const double kd = k.d - {_KD if subnormal else repr(2.0 ** 52 + 1023)}, ic = x >= 0.0 ? invc[i] : NAN, lc = x >= 0.0 ? logc[i] : NAN;
    const double r = fma(z.d, ic, -1.0), r2 = r * r;
    const double q = fma(fma(fma(fma({Q[4]!r}, r, {Q[3]!r}), r, {Q[2]!r}), r, {Q[1]!r}), r, {Q[0]!r});
    const double a = kd * {LN2_HI!r}, w = a + lc, e = fma(kd, {LN2_LO!r}, (a - w) + lc);
    const double y = w + (fma(r2, q, r) + e);
    return xc_select(x == 0.0, -INFINITY, xc_select(x == INFINITY, x, {tail}));
}}}}"""


_LOG_NORMAL = _log_normal("xc_log_normal", "", "y", "l", "log(x) for x not subnormal, from a table of 1/c and "
                          "log(c) and a polynomial of\n   r = x 2^-k / c - 1").replace("{{", "{").replace("}}", "}")
# log(x) plus a correction c (c_special's log1p: c - (0.0 - log(x)), the -0.0 of c kept)
# and plus d ri (its log(1 - x): fma(d, ri, log(x))), added before the selects of x = 0
# and +inf, which give -inf and inf whatever the correction is there (NaN, at 1 + x = 0
# or inf): the very bits of the sum after the log, and no select of its own for those
# edges (t == t ? t : log(x): 0.1 ns a point of the 1.5 of value and gradient of
# log(1 + x). 16,384 points in cache, medians of 21, alternated, load 5.7, ns a point:
# log(1 + x) on [0.1, 10] 1.67-1.70 -> 1.49-1.53 (the naive form 1.40-1.45: 1.16-1.20x
# -> 1.06x), log(1 - x) on [-10, -0.1] 1.60-1.63 -> 1.49-1.50 (1.38-1.40: 1.16-1.17x ->
# 1.07-1.08x).
_LOG_PLUS = _log_normal("xc_log_plus", ", double c", "c - (0.0 - y)",
                        "xc_select(c - (0.0 - l) == c - (0.0 - l), c - (0.0 - l), l)",
                        "c - (0.0 - log(x)) for x not subnormal, -inf at 0 and inf at +inf "
                        "whatever c is").replace("{{", "{").replace("}}", "}")
_LOG_FMA = _log_normal("xc_log_fma", ", double d, double ri", "fma(d, ri, y)",
                       "xc_select(fma(d, ri, l) == fma(d, ri, l), fma(d, ri, l), l)",
                       "fma(d, ri, log(x)) for x not subnormal, -inf at 0 and inf at +inf "
                       "whatever d ri is").replace("{{", "{").replace("}}", "}")

# xc_log_fma with subnormal x too (log1mexp's u = 1 - e^x is one for |x| < 2^-1022): two
# selects and a multiplication more, for c_special's xc_log1mexp, whose kernels then run
# no libmvec call (c_tiles.WIDE_LANES).
_LOG_FMA_SUB = _log_normal("xc_log_fma_sub", ", double d, double ri", "fma(d, ri, y)",
                           "xc_select(fma(d, ri, l) == fma(d, ri, l), fma(d, ri, l), l)",
                           "fma(d, ri, log(x)), -inf at 0 and inf at +inf whatever d ri is", True
                           ).replace("{{", "{").replace("}}", "}")

# name -> (C definition, helpers it uses), as c_backend.HELPERS. XC_ALWAYS: inlined at
# every optimisation level (c_backend.math_prelude defines it).
HELPERS = {"xc_log_normal": (_LOG_NORMAL, ("xc_select",)), "xc_log_plus": (_LOG_PLUS, ("xc_select",)),
           "xc_log_fma": (_LOG_FMA, ("xc_select",)), "xc_log_fma_sub": (_LOG_FMA_SUB, ("xc_select",))}

__all__ = ["HELPERS"]
