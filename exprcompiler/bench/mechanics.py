"""The model of the `mechanics` suite: the n-link pendulum on a cart, derived with
sympy.physics.mechanics (Kane's method), as plain SymPy expressions that every
competitor of suite_mechanics.py starts from.

The system is the classic one of the PyDy examples ("n-link pendulum on a cart"): a
cart moving along the horizontal axis of the inertial frame I (coordinate q0, speed
u0), pushed by a horizontal force f; n massless links of length l_i in a chain below
it, each at the absolute angle q_i about I.z (speed u_i), with a point mass m_i at
the end of each link and m_0 on the cart; gravity g along −I.y. The states are
q0 … qn and u0 … un: 2(n + 1) of them.

The function is `kane.forcing`, the right-hand side of M(q)·u̇ = forcing(q, u) —
n + 1 outputs (the 6-link model has 7 outputs and 14 states) — not
`kane.forcing_full`, which only adds the kinematic rows q̇ = u. Its Jacobian with
respect to all 2(n + 1) states is what an implicit integrator, an extended Kalman
filter or a linearization about a trajectory needs. The forcing does not depend on
the cart's position q0: that Jacobian column is zero.

The parameters are substituted by exact rationals, as a user who simulates one given
pendulum does (and it lets SymPy fold them): the PyDy example's values, l_i = 1/n,
m_i = 1/(100 n), g = 9.81, and f = 1/2 (the force enters the forcing linearly, in
the cart's row only, so its value does not change any derivative with respect to
the states).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np

GRAVITY = "981/100"
FORCE = "1/2"


@dataclass(frozen=True)
class Pendulum:
    """The n-link model: `exprs` (n + 1 SymPy expressions, the forcing vector) in the
    plain symbols `states` (q0 … qn, u0 … un), and how long SymPy took to derive it."""
    n: int
    exprs: tuple
    states: tuple
    derive_s: float

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.states]

    @property
    def shape(self) -> tuple[int, int]:
        """(outputs, states) of the Jacobian."""
        return len(self.exprs), len(self.states)


def kane_model(n: int):
    """(KanesMethod after kanes_equations, q, u, f, m, l, g) for n links: the PyDy
    example, written as its documentation writes it."""
    import sympy
    import sympy.physics.mechanics as me

    q = me.dynamicsymbols(f"q:{n + 1}")
    u = me.dynamicsymbols(f"u:{n + 1}")
    f = me.dynamicsymbols("f")
    m = sympy.symbols(f"m:{n + 1}")
    lengths = sympy.symbols(f"l:{n}")
    g, t = sympy.symbols("g t")
    frame = me.ReferenceFrame("I")
    origin = me.Point("O")
    origin.set_vel(frame, 0)
    cart = me.Point("P0")
    cart.set_pos(origin, q[0] * frame.x)
    cart.set_vel(frame, u[0] * frame.x)
    points = [cart]
    particles = [me.Particle("Pa0", cart, m[0])]
    loads = [(cart, f * frame.x - m[0] * g * frame.y)]
    kinematics = [q[0].diff(t) - u[0]]
    for i in range(n):
        link = frame.orientnew(f"B{i}", "Axis", [q[i + 1], frame.z])
        link.set_ang_vel(frame, u[i + 1] * frame.z)
        tip = points[-1].locatenew(f"P{i + 1}", lengths[i] * link.x)
        tip.v2pt_theory(points[-1], frame, link)
        points.append(tip)
        particles.append(me.Particle(f"Pa{i + 1}", tip, m[i + 1]))
        loads.append((tip, -m[i + 1] * g * frame.y))
        kinematics.append(q[i + 1].diff(t) - u[i + 1])
    kane = me.KanesMethod(frame, q_ind=q, u_ind=u, kd_eqs=kinematics)
    kane.kanes_equations(particles, loads)
    return kane, q, u, f, m, lengths, g


@functools.lru_cache(maxsize=None)
def pendulum(n: int) -> Pendulum:
    """The forcing vector of the n-link pendulum with its parameters substituted, in
    plain symbols. Cached: deriving the 20-link model takes SymPy seconds, and every
    competitor and the reference start from the same expressions."""
    import sympy

    if n < 1:
        raise ValueError(f"the pendulum needs at least one link, got n = {n}")
    t0 = time.perf_counter()
    kane, q, u, f, m, lengths, g = kane_model(n)
    elapsed = time.perf_counter() - t0
    qs = sympy.symbols(f"q0:{n + 1}")
    us = sympy.symbols(f"u0:{n + 1}")
    # q_i(t) -> q_i: every tool here wants plain symbols; the forcing holds no q̇ or u̇
    plain = {**dict(zip(q, qs)), **dict(zip(u, us))}
    values = {g: sympy.Rational(GRAVITY), f: sympy.Rational(FORCE),
              **{mi: sympy.Rational(1, 100 * n) for mi in m},
              **{li: sympy.Rational(1, n) for li in lengths}}
    exprs = tuple(e.xreplace(plain).xreplace(values) for e in kane.forcing)
    left = set().union(*(e.free_symbols for e in exprs)) - set(qs + us)
    if left:  # a change in sympy.physics.mechanics would show here, not as wrong numbers
        raise RuntimeError(f"the forcing still holds {sorted(map(str, left))} after substitution")
    return Pendulum(n, exprs, tuple(qs) + tuple(us), elapsed)


def random_states(n: int, points: int, seed: int = 14) -> np.ndarray:
    """`points` states of the n-link model, an array (points, 2(n + 1)): angles in
    [−π, π], every speed in [−2, 2] (rad/s and m/s), the cart anywhere in [−1, 1]."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(-np.pi, np.pi, (points, n + 1))
    q[:, 0] = rng.uniform(-1.0, 1.0, points)
    return np.hstack([q, rng.uniform(-2.0, 2.0, (points, n + 1))])


@functools.lru_cache(maxsize=None)
def exact_function(n: int):
    """SymPy's own Jacobian of the forcing, `Matrix.jacobian`, with the values, as one
    function of the state floats -> [values…, J row by row…] through lambdify to the
    math module, with no common-subexpression elimination: the oracle every
    competitor is checked against (it shares only the SymPy expressions with them)."""
    import sympy

    model = pendulum(n)
    jac = sympy.Matrix(model.exprs).jacobian(model.states)
    return sympy.lambdify(model.states, [*model.exprs, *jac], "math")


def exact(n: int, states: np.ndarray) -> np.ndarray:
    """The values and Jacobian at each row of `states`, flat: (points, m + m·n)."""
    fn = exact_function(n)
    return np.array([[float(v) for v in fn(*row)] for row in np.atleast_2d(states)])
