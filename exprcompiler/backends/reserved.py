"""Words a generated identifier must never be, per target: the vocabulary of naming.

C: the keywords of C99 to C23, and the names the kernels' headers (<math.h>,
<stddef.h>, <stdlib.h>, with <string.h>, <stdio.h>, <stdint.h> and <omp.h> for
headroom) define as macros or types, in strict (-std=c99) and GNU mode (where
`linux` and `unix` are macros) — a local variable called NULL, HUGE_VAL or
EXIT_FAILURE does not compile or silently means something else. Names starting
with an underscore or containing a double underscore (__LINE__, _Complex_I) never
come out of the mangling, so they need no listing here. Functions are listed apart
(C_HEADER_FUNCTIONS): a local variable may shadow one the kernel does not call (the
backends add those they call), but an exported kernel's global name may not. tests/test_naming.py checks this list against the compiler's own
(`cc -dM -E`), so a new header or libc shows what it adds.

Python: keywords, soft keywords and builtins (generated code may call a builtin;
shadowing one would change it), and what the NumPy backend imports.
"""

from __future__ import annotations

import builtins
import keyword

C_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if inline
int long register restrict return short signed sizeof static struct switch typedef union unsigned
void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn
_Static_assert _Thread_local asm typeof typeof_unqual bool true false alignas alignof
static_assert thread_local nullptr constexpr""".split())

C_HEADER_NAMES = frozenset("""
BIG_ENDIAN BUFSIZ BYTE_ORDER EOF EXIT_FAILURE EXIT_SUCCESS FD_CLR FD_ISSET FD_SET FD_SETSIZE
FD_ZERO FILE FILENAME_MAX FOPEN_MAX FP_FAST_FMA FP_FAST_FMAF FP_ILOGB0 FP_ILOGBNAN
FP_INFINITE FP_NAN FP_NORMAL FP_SUBNORMAL FP_ZERO HUGE_VAL HUGE_VALF HUGE_VALL INFINITY
INT16_C INT16_MAX INT16_MIN INT32_C INT32_MAX INT32_MIN INT64_C INT64_MAX INT64_MIN INT8_C
INT8_MAX INT8_MIN INTMAX_C INTMAX_MAX INTMAX_MIN INTPTR_MAX INTPTR_MIN INT_FAST16_MAX
INT_FAST16_MIN INT_FAST32_MAX INT_FAST32_MIN INT_FAST64_MAX INT_FAST64_MIN INT_FAST8_MAX
INT_FAST8_MIN INT_LEAST16_MAX INT_LEAST16_MIN INT_LEAST32_MAX INT_LEAST32_MIN
INT_LEAST64_MAX INT_LEAST64_MIN INT_LEAST8_MAX INT_LEAST8_MIN LITTLE_ENDIAN L_ctermid
L_cuserid L_tmpnam MATH_ERREXCEPT MATH_ERRNO MB_CUR_MAX M_1_PI M_2_PI M_2_SQRTPI M_E M_LN10
M_LN2 M_LOG10E M_LOG2E M_PI M_PI_2 M_PI_4 M_SQRT1_2 M_SQRT2 NAN NFDBITS NULL PDP_ENDIAN
PTRDIFF_MAX PTRDIFF_MIN P_tmpdir RAND_MAX SEEK_CUR SEEK_END SEEK_SET SIG_ATOMIC_MAX
SIG_ATOMIC_MIN SIZE_MAX TMP_MAX UINT16_C UINT16_MAX UINT32_C UINT32_MAX UINT64_C UINT64_MAX
UINT8_C UINT8_MAX UINTMAX_C UINTMAX_MAX UINTPTR_MAX UINT_FAST16_MAX UINT_FAST32_MAX
UINT_FAST64_MAX UINT_FAST8_MAX UINT_LEAST16_MAX UINT_LEAST32_MAX UINT_LEAST64_MAX
UINT_LEAST8_MAX WCHAR_MAX WCHAR_MIN WCONTINUED WEXITED WEXITSTATUS WIFCONTINUED WIFEXITED
WIFSIGNALED WIFSTOPPED WINT_MAX WINT_MIN WNOHANG WNOWAIT WSTOPPED WSTOPSIG WTERMSIG
WUNTRACED alloca be16toh be32toh be64toh blkcnt_t blksize_t caddr_t clock_t clockid_t
complex daddr_t dev_t div_t double_t errno fd_mask float_t fpclassify fpos_t fsblkcnt_t
fsfilcnt_t fsid_t gid_t htobe16 htobe32 htobe64 htole16 htole32 htole64 i386 i686 id_t
imaginary ino_t int16_t int32_t int64_t int8_t int_fast16_t int_fast32_t int_fast64_t
int_fast8_t int_least16_t int_least32_t int_least64_t int_least8_t intmax_t intptr_t
isfinite isgreater isgreaterequal isinf isless islessequal islessgreater isnan isnormal
isunordered key key_t ldiv_t le16toh le32toh le64toh linux lldiv_t locale_t loff_t
math_errhandling max_align_t mode_t nlink_t off_t offsetof omp_allocator_handle_t
omp_alloctrait_key_t omp_alloctrait_value_t omp_event_handle_t omp_lock_hint_t
omp_memspace_handle_t omp_pause_resource_t omp_proc_bind_t omp_sched_t omp_sync_hint_t
omp_uintptr_t pid_t pthread_attr_t pthread_key_t pthread_once_t pthread_spinlock_t pthread_t
ptrdiff_t quad_t quot signbit sigset_t size_t ssize_t stderr stdin stdout suseconds_t time_t
timer_t u_char u_int u_int16_t u_int32_t u_int64_t u_int8_t u_long u_quad_t u_short uid_t
uint uint16_t uint32_t uint64_t uint8_t uint_fast16_t uint_fast32_t uint_fast64_t
uint_fast8_t uint_least16_t uint_least32_t uint_least64_t uint_least8_t uintmax_t uintptr_t
ulong unix ushort va_list wchar_t x86_64""".split())

C_RESERVED = C_KEYWORDS | C_HEADER_NAMES

# The functions <math.h>, <stddef.h> and <stdlib.h> declare, then those of the rest of
# the C library and `main`: no exported kernel may be called like one (its definition
# would conflict with a header's declaration, a compiler builtin or the program's own).
C_HEADER_FUNCTIONS = frozenset("""
a64l abort abs acos acosf acosh acoshf acoshl acosl aligned_alloc alloca arc4random
arc4random_buf arc4random_uniform asin asinf asinh asinhf asinhl asinl at_quick_exit atan
atan2 atan2f atan2l atanf atanh atanhf atanhl atanl atexit atof atoi atol atoll bsearch
calloc cbrt cbrtf cbrtl ceil ceilf ceill clearenv copysign copysignf copysignl cos cosf cosh
coshf coshl cosl div drand48 drand48_r drem dremf dreml ecvt ecvt_r erand48 erand48_r erf
erfc erfcf erfcl erff erfl exit exp exp2 exp2f exp2l expf expl expm1 expm1f expm1l fabs
fabsf fabsl fcvt fcvt_r fdim fdimf fdiml finite finitef finitel floor floorf floorl fma fmaf
fmal fmax fmaxf fmaxl fmin fminf fminl fmod fmodf fmodl free frexp frexpf frexpl gamma
gammaf gammal gcvt getenv getloadavg getsubopt hypot hypotf hypotl ilogb ilogbf ilogbl
initstate initstate_r isinf isinff isinfl isnan isnanf isnanl j0 j0f j0l j1 j1f j1l jn jnf
jnl jrand48 jrand48_r l64a labs lcong48 lcong48_r ldexp ldexpf ldexpl ldiv lgamma lgamma_r
lgammaf lgammaf_r lgammal lgammal_r llabs lldiv llrint llrintf llrintl llround llroundf
llroundl log log10 log10f log10l log1p log1pf log1pl log2 log2f log2l logb logbf logbl logf
logl lrand48 lrand48_r lrint lrintf lrintl lround lroundf lroundl malloc mblen mbstowcs
mbtowc mkdtemp mkstemp mkstemps mktemp modf modff modfl mrand48 mrand48_r nan nanf nanl
nearbyint nearbyintf nearbyintl nextafter nextafterf nextafterl nexttoward nexttowardf
nexttowardl nrand48 nrand48_r on_exit posix_memalign pow powf powl pselect putenv qecvt
qecvt_r qfcvt qfcvt_r qgcvt qsort quick_exit rand rand_r random random_r realloc
reallocarray realpath remainder remainderf remainderl remquo remquof remquol rint rintf
rintl round roundf roundl rpmatch scalb scalbf scalbl scalbln scalblnf scalblnl scalbn
scalbnf scalbnl seed48 seed48_r select setenv setstate setstate_r significand significandf
significandl sin sinf sinh sinhf sinhl sinl sqrt sqrtf sqrtl srand srand48 srand48_r srandom
srandom_r strtod strtof strtol strtold strtoll strtoq strtoul strtoull strtouq system tan
tanf tanh tanhf tanhl tanl tgamma tgammaf tgammal trunc truncf truncl unsetenv valloc
wcstombs wctomb y0 y0f y0l y1 y1f y1l yn ynf ynl
asctime asctime_r bcmp bcopy btowc bzero cabs cabsf cabsl cacos cacosf cacosh cacoshf
cacoshl cacosl carg cargf cargl casin casinf casinh casinhf casinhl casinl catan catanf
catanh catanhf catanhl catanl ccos ccosf ccosh ccoshf ccoshl ccosl cexp cexpf cexpl cimag
cimagf cimagl clearerr clearerr_unlocked clock clock_getcpuclockid clock_getres
clock_gettime clock_nanosleep clock_settime clog clogf clogl conj conjf conjl cpow cpowf
cpowl cproj cprojf cprojl creal crealf creall csin csinf csinh csinhf csinhl csinl csqrt
csqrtf csqrtl ctan ctanf ctanh ctanhf ctanhl ctanl ctermid ctime ctime_r difftime dprintf
duplocale dysize explicit_bzero fclose fdopen feclearexcept fegetenv fegetexceptflag
fegetround feholdexcept feof feof_unlocked feraiseexcept ferror ferror_unlocked fesetenv
fesetexceptflag fesetround fetestexcept feupdateenv fflush fflush_unlocked ffs ffsl ffsll
fgetc fgetc_unlocked fgetpos fgets fgetwc fgetws fileno fileno_unlocked flockfile fmemopen
fopen fprintf fputc fputc_unlocked fputs fputwc fputws fread fread_unlocked freelocale
freopen fscanf fseek fseeko fsetpos ftell ftello ftrylockfile funlockfile fwide fwprintf
fwrite fwrite_unlocked fwscanf getc getc_unlocked getchar getchar_unlocked getdelim getline
gets getw getwc getwchar gmtime gmtime_r gsignal imaxabs imaxdiv index isalnum isalnum_l
isalpha isalpha_l isascii isblank isblank_l iscntrl iscntrl_l isdigit isdigit_l isgraph
isgraph_l islower islower_l isprint isprint_l ispunct ispunct_l isspace isspace_l isupper
isupper_l isxdigit isxdigit_l kill killpg localeconv localtime localtime_r longjmp main
mbrlen mbrtowc mbsinit mbsnrtowcs mbsrtowcs memccpy memchr memcmp memcpy memmove memset
mktime nanosleep newlocale open_memstream open_wmemstream pclose perror popen printf
psiginfo psignal pthread_kill pthread_sigmask putc putc_unlocked putchar putchar_unlocked
puts putw putwc putwchar raise remove rename renameat rewind rindex scanf setbuf setbuffer
setjmp setlinebuf setlocale setvbuf sigaction sigaddset sigaltstack sigblock sigdelset
sigemptyset sigfillset siggetmask siginterrupt sigismember siglongjmp signal sigpending
sigprocmask sigqueue sigreturn sigsetmask sigstack sigsuspend sigtimedwait sigwait
sigwaitinfo snprintf sprintf sscanf ssignal stpcpy stpncpy strcasecmp strcasecmp_l strcat
strchr strcmp strcoll strcoll_l strcpy strcspn strdup strerror strerror_l strerror_r
strftime strftime_l strlen strncasecmp strncasecmp_l strncat strncmp strncpy strndup strnlen
strpbrk strrchr strsep strsignal strspn strstr strtoimax strtok strtok_r strtoumax strxfrm
strxfrm_l swprintf swscanf tempnam time timegm timelocal timer_create timer_delete
timer_getoverrun timer_gettime timer_settime timespec_get tmpfile tmpnam tmpnam_r toascii
tolower tolower_l toupper toupper_l tzset ungetc ungetwc uselocale vdprintf vfprintf vfscanf
vfwprintf vfwscanf vprintf vscanf vsnprintf vsprintf vsscanf vswprintf vswscanf vwprintf
vwscanf wcpcpy wcpncpy wcrtomb wcscasecmp wcscasecmp_l wcscat wcschr wcscmp wcscoll
wcscoll_l wcscpy wcscspn wcsdup wcsftime wcslen wcsncasecmp wcsncasecmp_l wcsncat wcsncmp
wcsncpy wcsnlen wcsnrtombs wcspbrk wcsrchr wcsrtombs wcsspn wcsstr wcstod wcstof wcstoimax
wcstok wcstol wcstold wcstoll wcstoul wcstoull wcstoumax wcsxfrm wcsxfrm_l wctob wmemchr
wmemcmp wmemcpy wmemmove wmemset wprintf wscanf""".split())

PYTHON_RESERVED = frozenset(keyword.kwlist) | frozenset(getattr(keyword, "softkwlist", ())) \
    | frozenset(dir(builtins)) | {"np", "numpy"}
