"""KKT certificates of the max-margin problem for a trained homogeneous network.

For an ``L``-homogeneous network the max-margin problem (Lyu & Li 2020, ``lyu-li.md`` A10) is

    (P)  min 1/2 ||theta||^2  s.t.  s_nj(theta) >= 1  for every constraint (n, j),

with the pairwise margins ``s_nj = f_{y_n}(x_n) - f_j(x_n)`` (multi-class) or the sample
margins ``q_n = y_n f(x_n)`` (one output). Gradient descent on an exponentially tailed loss
converges in direction to a KKT point of (P). A trained ``theta`` with ``q_min > 0`` is
rescaled onto the boundary of the feasible set, ``theta~ = theta q_min^{-1/L}`` (so
``min s~ = 1``; ``grad s_nj(theta~) = q_min^{-(L-1)/L} grad s_nj(theta)``), and certified as
an ``(eps, delta)``-KKT point (A11): multipliers ``lambda >= 0`` with

    ||theta~ - sum lambda_nj grad s_nj(theta~)|| <= eps,   lambda_nj (s~_nj - 1) <= delta.

Two certificates are computed (``lyu-li.md`` B7):

- **loss weights** (B7.6): ``lambda = c w`` with ``w_nj = -dL/ds_nj`` taken at the trained
  ``theta`` in log space and ``c`` the best scale; ``eps / ||theta~|| = sqrt(1 - beta^2)``
  with ``beta = cos(theta, -grad L)``;
- **best**: ``min_{lambda >= 0} ||theta~ - J_A^T lambda||`` over the near-active constraints
  ``A_tau = {s~_nj <= 1 + tau}``. By Euler's identity ``J theta~ = L s~``, so this is the
  ``|A|``-variable quadratic ``1/2 lambda^T K lambda - L s~_A^T lambda`` with
  ``K = J_A J_A^T``, solved exactly by an active-set NNLS (:func:`nnls_gram`) that reads
  ``K`` one column at a time. When ``J_A`` fits in ``memory_budget`` the per-constraint
  gradients are formed (``torch.func.vmap`` of ``grad``) and ``K = J_A J_A^T``; otherwise the
  method is matrix-free: a column ``K e_j = J_A (J_A^T e_j)`` is one vector-Jacobian product
  (a single sample's backward pass) followed by one Jacobian-vector product over the active
  samples, and only the columns of constraints that enter the support are ever formed.

Whatever the solver, ``eps`` is the norm of the explicitly formed residual
``theta~ - J_A^T lambda``, so every reported ``(eps, delta)`` is attained by the reported
multipliers: an inexact solve can only make the certificate looser, never wrong.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

from marginlab.losses import Loss, get_loss
from marginlab.measure.margins import homogeneity_order, pairwise_margins

DEFAULT_TAUS: tuple[float, ...] = (1e-3, 1e-2, 0.1, 1.0)
DEFAULT_MEMORY_BUDGET = 256 * 2**20
METHODS = ("auto", "dense", "matrix_free")
# One vmap call of the dense path forms budget / (8 * _DENSE_OVERHEAD * n_params) rows, which
# leaves room in the budget for its per-sample activations and gradient buffers.
_DENSE_OVERHEAD = 4


@dataclass(frozen=True)
class Certificate:
    """One ``(eps, delta)`` KKT certificate of the rescaled point ``theta~``.

    Attributes
    ----------
    tau : float or None
        Activity tolerance (``None`` for the loss-weight certificate, which uses every
        constraint).
    eps_abs : float
        ``||theta~ - sum lambda_nj grad s_nj(theta~)||``.
    eps_rel : float
        ``eps_abs / ||theta~||`` (scale free).
    delta : float
        ``max lambda_nj (s~_nj - 1)``.
    n_active : int
        Number of constraints allowed a multiplier.
    multipliers : list of float
        ``lambda`` over the active constraints (empty for the loss-weight certificate).
    constraints : list of (int, int)
        ``(n, j)`` of each multiplier: sample index and competing class (for a one-output
        model, ``j = 1 - y_n``).
    method : str
        ``"dense"``, ``"matrix_free"`` or ``"loss_weights"``.
    iterations : int
        Outer iterations of the NNLS solver; each adds one column of ``K`` (in the
        matrix-free method, one vector-Jacobian and one Jacobian-vector product).
    converged : bool
        Whether the NNLS solver met its tolerance (the certificate is valid either way).
    """

    tau: float | None
    eps_abs: float
    eps_rel: float
    delta: float
    n_active: int
    multipliers: list[float]
    constraints: list[tuple[int, int]]
    method: str
    iterations: int = 0
    converged: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> Certificate:
        """The certificate of :meth:`to_dict` (after a JSON round trip)."""
        return cls(**{**raw, "constraints": [tuple(c) for c in raw["constraints"]]})


@dataclass(frozen=True)
class KKTResult:
    """KKT certificates of one trained model (see :func:`kkt_certificates`).

    Attributes
    ----------
    order : float
        Homogeneity order ``L``.
    q_min : float
        Smallest margin at the trained ``theta``.
    normalized_margin : float
        ``q_min / ||theta||^L`` (trainable parameters).
    theta_norm : float
        ``||theta~|| = normalized_margin^{-1/L}``.
    n_params : int
        Number of trainable parameters.
    n_constraints : int
        Number of margin constraints ``(n, j)``.
    beta : float
        ``cos(theta, -grad L)`` at the trained ``theta``.
    euler_error : float
        ``||J_A theta~ - L s~_A|| / ||L s~_A||`` on the largest active set: large values mean
        the declared order is wrong and the certificates are meaningless.
    loss_weights : Certificate
        The certificate with multipliers proportional to the loss weights.
    certificates : tuple of Certificate
        The best certificate for each ``tau``.
    """

    order: float
    q_min: float
    normalized_margin: float
    theta_norm: float
    n_params: int
    n_constraints: int
    beta: float
    euler_error: float
    loss_weights: Certificate
    certificates: tuple[Certificate, ...]

    def certificate(self, tau: float) -> Certificate:
        """Return the best certificate computed at activity tolerance ``tau``."""
        for cert in self.certificates:
            if math.isclose(cert.tau, tau, rel_tol=1e-12):
                return cert
        taus = [c.tau for c in self.certificates]
        raise KeyError(f"tau: no certificate at tau={tau:g}; computed at {taus}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["certificates"] = [c.to_dict() for c in self.certificates]
        out["loss_weights"] = self.loss_weights.to_dict()
        return out

    @classmethod
    def from_dict(cls, raw: dict) -> KKTResult:
        """The result of :meth:`to_dict` (after a JSON round trip); other keys are ignored.

        Examples
        --------
        >>> import torch
        >>> model = torch.nn.Linear(2, 1, bias=False).double()
        >>> _ = model.weight.data.copy_(torch.tensor([[1.0, 0.0]]))
        >>> x = torch.tensor([[1.0, 0.0], [-1.0, 0.5]], dtype=torch.float64)
        >>> result = kkt_certificates(model, x, torch.tensor([1, 0]), "logistic", order=1.0)
        >>> KKTResult.from_dict(result.to_dict()) == result
        True
        """
        fields = {name: raw[name] for name in cls.__dataclass_fields__}
        fields["loss_weights"] = Certificate.from_dict(raw["loss_weights"])
        fields["certificates"] = tuple(Certificate.from_dict(c) for c in raw["certificates"])
        return cls(**fields)


def _constraint_margin(out: torch.Tensor, y: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    """``s_nj`` of one sample from its outputs ``(C,)``; ``col`` indexes ``pairwise_margins``.

    Written with ``gather`` (no boolean masks) so that it runs under ``vmap``.
    """
    out = out.double()
    if out.shape[0] == 1:
        return (2.0 * y.double() - 1.0) * out[0]
    other = col + (col >= y).long()  # column k of pairwise_margins skips the true class
    pair = out.gather(0, torch.stack([y, other]))
    return pair[0] - pair[1]


class _RescaledProblem:
    """The trained model moved to ``theta~`` (float64 copy) with its margins and loss weights.

    Constraints are the entries ``(n, k)`` of :func:`pairwise_margins`; ``rows``/``cols``
    tensors select a set of them.
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        loss: Loss,
        order: float,
        chunk_size: int,
    ) -> None:
        self.model = copy.deepcopy(model).double()
        device = next(self.model.parameters()).device
        self.x, self.y = x.to(device=device, dtype=torch.float64), y.to(device)
        self.order, self.chunk_size = order, chunk_size
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.n_params = sum(p.numel() for p in self.params)
        margins, log_losses, dlog = [], [], []
        for start in range(0, len(self.x), chunk_size):
            xb, yb = self.x[start : start + chunk_size], self.y[start : start + chunk_size]
            with torch.no_grad():
                s = pairwise_margins(self.model(xb), yb)
            s.requires_grad_(True)
            log_l = loss.log_per_sample(s)
            # Each log l_n depends on its own row only, so one backward gives d log l_n/ds_nj.
            (d,) = torch.autograd.grad(log_l.sum(), s)
            margins.append(s.detach())
            log_losses.append(log_l.detach())
            dlog.append(d)
        s = torch.cat(margins)
        log_l = torch.cat(log_losses)
        self.log_loss_sum = float(torch.logsumexp(log_l, 0))
        # w_nj / L_sum = -(l_n / L_sum) d log l_n / ds_nj: O(1) however small L is.
        self.weights = -torch.exp(log_l - self.log_loss_sum)[:, None] * torch.cat(dlog)
        self.q_min = float(s.min())
        if not self.q_min > 0:
            raise ValueError(
                f"model: the smallest margin is q_min={self.q_min:.3g} <= 0 (some training "
                "point is misclassified or on the boundary); KKT certificates of the max-margin "
                "problem need q_min > 0, so train further or pass the training set it fits"
            )
        log_rho = 0.5 * math.log(sum(float(p.detach().pow(2).sum()) for p in self.params))
        self.normalized_margin = math.exp(math.log(self.q_min) - order * log_rho)
        with torch.no_grad():
            scale = math.exp(-math.log(self.q_min) / order)
            torch._foreach_mul_(self.params, scale)
        # Exact by homogeneity; dividing keeps min s~ = 1 to the last bit.
        self.s = s / self.q_min
        self.theta = torch.cat([p.detach().reshape(-1) for p in self.params])

    # products with J_A ------------------------------------------------------------------
    def _chunks(self, rows: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Split the distinct samples of ``rows`` into chunks; return (samples, where)."""
        samples, where = torch.unique(rows, return_inverse=True)
        return [
            (
                samples[start : start + self.chunk_size],
                (where >= start) & (where < start + self.chunk_size),
            )
            for start in range(0, len(samples), self.chunk_size)
        ]

    def vjp(self, rows: torch.Tensor, cols: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """``J_A^T lambda = grad_theta sum lambda_nj s_nj(theta~)``, flat ``(n_params,)``."""
        total = torch.zeros_like(self.theta)
        for samples, mask in self._chunks(rows):
            local = torch.searchsorted(samples, rows[mask])
            s = pairwise_margins(self.model(self.x[samples]), self.y[samples])
            weights = torch.zeros_like(s)
            weights.index_put_((local, cols[mask]), lam[mask].to(s.dtype), accumulate=True)
            grads = torch.autograd.grad((s * weights).sum(), self.params)
            total += torch.cat([g.reshape(-1) for g in grads])
        return total

    def jvp(self, rows: torch.Tensor, cols: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``J_A v``: the directional derivatives of the selected margins along ``v``."""
        tangents = self._unflatten(v)
        primals = tuple(p.detach() for p in self.params)
        out = torch.empty(len(rows), dtype=torch.float64, device=v.device)
        for samples, mask in self._chunks(rows):
            xb, yb = self.x[samples], self.y[samples]

            def margins(*params: torch.Tensor, xb=xb, yb=yb) -> torch.Tensor:
                return pairwise_margins(
                    functional_call(self.model, dict(zip(self.names, params, strict=True)), (xb,)),
                    yb,
                )

            _, ds = jvp(margins, primals, tangents)
            out[mask] = ds[torch.searchsorted(samples, rows[mask]), cols[mask]]
        return out

    def jacobian(self, rows: torch.Tensor, cols: torch.Tensor, memory_budget: int) -> torch.Tensor:
        """Dense ``J_A``, shape ``(|A|, n_params)``: one per-constraint gradient per row."""
        params = {n: p.detach() for n, p in zip(self.names, self.params, strict=True)}

        def margin(params: dict, x1: torch.Tensor, y1: torch.Tensor, col: torch.Tensor):
            out = functional_call(self.model, params, (x1.unsqueeze(0),))
            return _constraint_margin(out[0], y1, col)

        per_row = vmap(grad(margin), in_dims=(None, 0, 0, 0))
        step = max(1, memory_budget // (8 * _DENSE_OVERHEAD * self.n_params))
        blocks = [self.theta.new_zeros((0, self.n_params))]
        for start in range(0, len(rows), step):
            r, c = rows[start : start + step], cols[start : start + step]
            g = per_row(params, self.x[r], self.y[r], c)
            blocks.append(torch.cat([g[n].reshape(len(r), -1) for n in self.names], dim=1))
        return torch.cat(blocks)

    def gram_column(self, rows: torch.Tensor, cols: torch.Tensor, j: int) -> torch.Tensor:
        """``K e_j = J_A (J_A^T e_j)``: one constraint's gradient, then one JVP over ``A``."""
        one = torch.ones(1, dtype=torch.float64, device=self.theta.device)
        return self.jvp(rows, cols, self.vjp(rows[j : j + 1], cols[j : j + 1], one))

    def _unflatten(self, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pieces, start = [], 0
        for p in self.params:
            pieces.append(v[start : start + p.numel()].view_as(p))
            start += p.numel()
        return tuple(pieces)

    def competing_class(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Class index ``j`` of each constraint ``(n, k)``."""
        y = self.y[rows]
        if self.s.shape[1] == 1:
            return 1 - y
        return cols + (cols >= y).long()


def nnls_gram(
    column: Callable[[int], torch.Tensor],
    b: torch.Tensor,
    *,
    tol: float = 1e-12,
    max_iter: int | None = None,
) -> tuple[torch.Tensor, int, bool]:
    """Minimize ``1/2 lambda^T K lambda - b^T lambda`` over ``lambda >= 0``, reading K by column.

    The active-set method of Lawson & Hanson in its Gram form (Bro & De Jong's FNNLS): it
    terminates with the exact solution, and it only ever touches the columns ``K[:, j]``
    of the variables that enter the passive set. Columns are cached, so a caller that can
    only form products with ``K`` pays one product per support variable, not one per
    iteration. With ``K = J J^T`` and ``b = J theta`` this is
    ``min_{lambda >= 0} ||theta - J^T lambda||``.

    Parameters
    ----------
    column : callable
        ``column(j)`` returns ``K[:, j]`` (float64 tensor of length ``len(b)``).
    b : torch.Tensor
        Linear term.
    tol : float
        Stop when every free gradient component ``(b - K lambda)_j`` is at most
        ``tol * max |b|``.
    max_iter : int, optional
        Outer iterations (columns added); default ``3 len(b) + 10``.

    Returns
    -------
    lam : torch.Tensor
    iterations : int
        Outer iterations used.
    converged : bool
        Whether the optimality test passed within ``max_iter``.

    Examples
    --------
    >>> import torch
    >>> gram = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    >>> lam, _, ok = nnls_gram(lambda j: gram[:, j], torch.tensor([1.0, -4.0]).double())
    >>> lam.round(decimals=12).tolist(), ok
    ([0.5, 0.0], True)
    """
    n = len(b)
    max_iter = 3 * n + 10 if max_iter is None else max_iter
    cache: dict[int, torch.Tensor] = {}

    def columns(index: list[int]) -> torch.Tensor:
        for j in index:
            if j not in cache:
                cache[j] = column(j).to(b)
        return torch.stack([cache[j] for j in index], dim=1) if index else b.new_zeros((n, 0))

    def solve(passive: list[int]) -> torch.Tensor:
        k_pp, rhs = columns(passive)[passive], b[passive].unsqueeze(1)
        factor, info = torch.linalg.cholesky_ex(k_pp)
        if int(info) == 0:
            z = torch.cholesky_solve(rhs, factor)
            if float((k_pp @ z - rhs).norm()) <= 1e-10 * float(rhs.norm()):
                return z.squeeze(1)
        # Dependent constraint gradients make K_PP singular: pivoted-QR least squares.
        return torch.linalg.lstsq(k_pp, rhs, driver="gelsy").solution.squeeze(1)

    lam = torch.zeros_like(b)
    passive: list[int] = []
    # Variables whose entry rounding undid at once (the Lawson-Hanson anti-cycling rule):
    # skipped until the solution next changes.
    rejected: list[int] = []
    threshold = tol * float(b.abs().max())
    gradient = b.clone()
    for iteration in range(1, max_iter + 1):
        free = torch.ones(n, dtype=torch.bool, device=b.device)
        free[passive] = False
        optimal = not bool(free.any()) or float(gradient[free].max()) <= threshold
        free[rejected] = False
        if optimal or not bool(free.any()) or float(gradient[free].max()) <= threshold:
            return lam, iteration - 1, optimal
        candidate = int(torch.where(free, gradient, -torch.inf).argmax())
        before = list(passive)
        passive.append(candidate)
        z = solve(passive)
        while bool((z <= 0).any()):
            current = lam[passive]
            blocking = torch.nonzero(z <= 0).squeeze(1)
            ratios = current[blocking] / (current[blocking] - z[blocking])
            alpha = float(ratios.min())
            lam[passive] = current + alpha * (z - current)
            lam[passive[int(blocking[ratios.argmin()])]] = 0.0  # exactly, despite rounding
            passive = [j for j in passive if float(lam[j]) > 0]
            z = solve(passive) if passive else b.new_zeros(0)
        rejected = rejected + [candidate] if passive == before else []
        lam = torch.zeros_like(b)
        lam[passive] = z
        gradient = b - columns(passive) @ z
    return lam, max_iter, False


def kkt_certificates(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss: Loss | str = "logistic",
    *,
    order: float | None = None,
    taus: Sequence[float] = DEFAULT_TAUS,
    method: str = "auto",
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    max_iter: int | None = None,
    tol: float = 1e-12,
    chunk_size: int = 4096,
) -> KKTResult:
    """Certify a trained model as an approximate KKT point of the max-margin problem.

    Parameters
    ----------
    model : torch.nn.Module
        A homogeneous network (zoo model or any module with a declared or given order);
        its trainable parameters are ``theta``. It is not modified.
    x, y : torch.Tensor
        The training set (class indices; ``0``/``1`` for a one-output model), with
        ``q_min > 0``.
    loss : Loss or str
        The training loss: it defines the loss weights ``w_nj = -dL/ds_nj``.
    order : float, optional
        Homogeneity order ``L``; defaults to ``model.homogeneity_order``.
    taus : sequence of float
        Activity tolerances: ``A_tau = {(n, j) : s~_nj <= 1 + tau}``.
    method : {"auto", "dense", "matrix_free"}
        ``"auto"`` is dense when ``|A_tau| * n_params`` doubles fit in ``memory_budget``.
    memory_budget : int
        Bytes the dense Jacobian (and the Gram matrix) may take.
    max_iter, tol : int, float
        Limits of the NNLS solver (:func:`nnls_gram`): outer iterations, and the relative
        optimality tolerance.
    chunk_size : int
        Largest number of samples forwarded at once.

    Returns
    -------
    KKTResult

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(2, 1, bias=False).double()
    >>> _ = model.weight.data.copy_(torch.tensor([[3.0, 0.0]]))
    >>> x = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    >>> result = kkt_certificates(model, x, torch.tensor([1, 0]), order=1, taus=[0.1])
    >>> result.certificate(0.1).eps_rel < 1e-12, result.certificate(0.1).constraints
    (True, [(0, 0), (1, 1)])
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    taus = sorted(float(t) for t in taus)
    if not taus or taus[0] < 0:
        raise ValueError(f"taus: give non-negative activity tolerances, got {taus}")
    resolved = homogeneity_order(model, order)
    if resolved is None or resolved <= 0:
        raise ValueError(
            "order: the model declares no positive homogeneity order; pass order=L "
            "(marginlab.models.check_homogeneity measures it)"
        )
    loss = get_loss(loss) if isinstance(loss, str) else loss
    problem = _RescaledProblem(model, x, y, loss, resolved, chunk_size)
    theta_norm = float(problem.theta.norm())

    weights_cert, beta = _loss_weight_certificate(problem, theta_norm)

    # Constraints sorted by margin, so every A_tau is a prefix of the largest one.
    flat = problem.s.reshape(-1)
    n_cols = problem.s.shape[1]
    candidates = torch.nonzero(flat <= 1.0 + taus[-1]).squeeze(1)
    candidates = candidates[torch.argsort(flat[candidates], stable=True)]
    rows_all, cols_all = candidates // n_cols, candidates % n_cols
    s_all = flat[candidates]
    dense_rows = _dense_capacity(method, len(candidates), problem.n_params, memory_budget)
    jac = problem.jacobian(rows_all[:dense_rows], cols_all[:dense_rows], memory_budget)

    certificates = []
    for tau in taus:
        size = int((s_all <= 1.0 + tau).sum())
        rows, cols, s_a = rows_all[:size], cols_all[:size], s_all[:size]
        b = problem.order * s_a
        if size <= dense_rows:
            j_a = jac[:size]
            gram = j_a @ j_a.T
            lam, iterations, converged = nnls_gram(
                lambda j, gram=gram: gram[:, j], b, tol=tol, max_iter=max_iter
            )
            residual = problem.theta - j_a.T @ lam
            kind = "dense"
        else:
            lam, iterations, converged = nnls_gram(
                lambda j, rows=rows, cols=cols: problem.gram_column(rows, cols, j),
                b,
                tol=tol,
                max_iter=max_iter,
            )
            residual = problem.theta - problem.vjp(rows, cols, lam)
            kind = "matrix_free"
        eps = float(residual.norm())
        classes = problem.competing_class(rows, cols)
        certificates.append(
            Certificate(
                tau=tau,
                eps_abs=eps,
                eps_rel=eps / theta_norm,
                delta=float((lam * (s_a - 1.0)).max()) if size else 0.0,
                n_active=size,
                multipliers=lam.tolist(),
                constraints=list(zip(rows.tolist(), classes.tolist(), strict=True)),
                method=kind,
                iterations=iterations,
                converged=converged,
            )
        )

    if dense_rows == len(candidates):
        euler = jac @ problem.theta
    else:
        euler = problem.jvp(rows_all, cols_all, problem.theta)
    target = problem.order * s_all
    euler_error = float((euler - target).norm() / target.norm())

    return KKTResult(
        order=resolved,
        q_min=problem.q_min,
        normalized_margin=problem.normalized_margin,
        theta_norm=theta_norm,
        n_params=problem.n_params,
        n_constraints=problem.s.numel(),
        beta=beta,
        euler_error=euler_error,
        loss_weights=weights_cert,
        certificates=tuple(certificates),
    )


def _dense_capacity(method: str, n_candidates: int, n_params: int, budget: int) -> int:
    """How many of the sorted candidate constraints get dense Jacobian rows."""
    if method == "matrix_free":
        return 0
    if method == "dense":
        return n_candidates
    by_jacobian = budget // (8 * n_params)
    by_gram = math.isqrt(budget // 8)
    return min(n_candidates, by_jacobian, by_gram)


def _loss_weight_certificate(
    problem: _RescaledProblem, theta_norm: float
) -> tuple[Certificate, float]:
    """Multipliers ``c w`` (B7.6) with the best scale ``c``; return it and ``beta``."""
    weights = problem.weights
    support = torch.nonzero(weights > 0)
    rows, cols = support[:, 0], support[:, 1]
    direction = problem.vjp(rows, cols, weights[rows, cols])  # prop. to -grad L at theta~
    inner = float(problem.theta @ direction)
    norm = float(direction.norm())
    beta = inner / (theta_norm * norm) if norm > 0 else 0.0
    scale = max(inner, 0.0) / norm**2 if norm > 0 else 0.0
    eps = float((problem.theta - scale * direction).norm())
    delta = float((scale * weights * (problem.s - 1.0)).max())
    cert = Certificate(
        tau=None,
        eps_abs=eps,
        eps_rel=eps / theta_norm,
        delta=delta,
        n_active=len(rows),
        multipliers=[],
        constraints=[],
        method="loss_weights",
    )
    return cert, beta


KKT_OBSERVER_KEYS = (
    "kkt_eps_rel",
    "kkt_delta",
    "kkt_active",
    "kkt_weights_eps_rel",
    "kkt_weights_delta",
    "kkt_beta",
)


def kkt_observer(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss: Loss,
    row: dict,
    tau: float = 0.1,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    chunk_size: int = 4096,
) -> dict[str, float | int | None]:
    """Observer ``kkt``: the best certificate at ``tau`` and the loss-weight certificate.

    Values are ``None`` while the model does not fit the training set (``q_min <= 0``) or
    declares no homogeneity order, so a run can switch it on from the first epoch.
    """
    if homogeneity_order(model) is None or not (row.get("q_min") or 0.0) > 0:
        return dict.fromkeys(KKT_OBSERVER_KEYS)
    result = kkt_certificates(
        model, x, y, loss, taus=[tau], memory_budget=memory_budget, chunk_size=chunk_size
    )
    best = result.certificates[0]
    values = (
        best.eps_rel,
        best.delta,
        best.n_active,
        result.loss_weights.eps_rel,
        result.loss_weights.delta,
        result.beta,
    )
    return dict(zip(KKT_OBSERVER_KEYS, values, strict=True))
