"""Cost and accuracy of the PF on the reference quadratic: gdflows vs the authors' approach.

Ours: adaptive Dopri8 (diffrax) at rtol 1e-10 on the dense PF field.
Reference approach (the authors' notebooks): explicit Euler at dt = 1e-5 on the
same field (with the same t = 0+ jump at h*lambda = 1). Both measured here, side by
side, in one run; printed as a table: error max_n |PF(n h) - theta_n|, field evaluations per GD step, wall time
(compiled, second call), and the ratios.

    .venv/bin/python benchmarks/pf_quadratic_cost.py
"""

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import gdflows
from gdflows.flows import principal
from gdflows.integrate import integrate
from gdflows.problems.quadratic import reference_quadratic, reference_theta0

jax.config.update("jax_enable_x64", True)  # the benchmarks compare float64 accuracy

EULER_DT = 1e-5


@eqx.filter_jit
def euler(field, theta0, lr, steps, per_step):
    dt = lr / per_step

    def gd_step(theta, _):
        theta = jax.lax.fori_loop(0, per_step, lambda i, th: th + dt * field(th), theta)
        return theta, theta

    _, out = jax.lax.scan(gd_step, theta0.astype(jnp.complex128), None, length=steps)
    return jnp.concatenate([theta0[None].astype(jnp.complex128), out])


def timed(fn):
    fn()  # compile
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main():
    loss, theta0 = reference_quadratic(), reference_theta0()
    print(
        f"{'lr':>5} {'n':>3} | {'ours err':>9} {'evals/step':>10} {'time s':>7} | "
        f"{'Euler err':>9} {'evals/step':>10} {'time s':>7} | {'cost ratio':>10} {'time ratio':>10}"
    )
    for lr, n in [(0.5, 20), (0.9, 20), (1.0, 20), (1.05, 5)]:
        gd = np.asarray(gdflows.gd(loss, theta0, lr, n))
        field = principal(loss, lr)
        sol, t_ours = timed(lambda: integrate(field, theta0, lr, n, rtol=1e-10, atol=1e-12))  # noqa: B023 (called at once)
        per_step = int(round(lr / EULER_DT))
        start = field.jump(theta0)  # the h*lambda = 1 removal, so Euler is not penalised for it
        eul, t_eul = timed(lambda: np.array(euler(field, start, jnp.asarray(lr), n, per_step)))  # noqa: B023
        eul[0] = np.asarray(theta0)
        err_ours = np.max(np.abs(sol.thetas - gd))
        err_eul = np.max(np.abs(eul - gd))
        ours_per = sol.num_field_evals / n
        print(
            f"{lr:>5} {n:>3} | {err_ours:9.2e} {ours_per:10.1f} {t_ours:7.3f} | "
            f"{err_eul:9.2e} {per_step:10d} {t_eul:7.3f} | {per_step / ours_per:10.0f}x {t_eul / t_ours:9.0f}x"
        )


if __name__ == "__main__":
    main()
