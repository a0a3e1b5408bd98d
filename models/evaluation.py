"""Out-of-sample metrics of a class-probability model, each beside the prior's, with block-bootstrap intervals.

Pure functions of ``y`` (int[M] class labels), ``proba`` (float[M, C] class probabilities, rows in time
order) and, where a metric needs them, the realised moves and prices. :func:`evaluate_horizon` gathers
them for one horizon into a :class:`HorizonEvaluation`; ``models.evaluation_report`` renders it.

Class indices default to the direction labels' (``models.labels``: down 0, flat 1, up 2); the
``down`` / ``up`` arguments name the two directional classes for any other labelling.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

from scalper.models.labels import DOWN, UP

EPS = 1e-15  # probabilities are clipped to [EPS, 1 - EPS] in the log-loss, as scikit-learn does
ECE_BINS = 10
BOOTSTRAP_REPLICATES = 1000
CONFIDENCE = 0.95
SMALL_ROWS = 1_000  # fewer scored rows than this: the report flags the sample as small
SMALL_MOVED_ROWS = 30  # fewer up/down rows than this: the AUC rests on too few rows and is flagged

NO_SKILL = "no skill over the prior"
SKILL = "skill over the prior"
WORSE = "worse than the prior"
NOT_JUDGED = "not judged"


def _check(y: np.ndarray, proba: np.ndarray) -> None:
    if proba.ndim != 2 or len(y) != len(proba):
        raise ValueError(f"y has shape {y.shape} and proba {proba.shape}: need y[M] and proba[M, C]")
    if len(y) and (y.min() < 0 or y.max() >= proba.shape[1]):
        raise ValueError(f"labels must lie in [0, {proba.shape[1]}), got {y.min()}..{y.max()}")


def row_log_loss(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Return float64[M]: -ln p(y_i) per row, nats, with p clipped to [EPS, 1 - EPS].

    Raises
    ------
    ValueError
        If the shapes differ or a label is not a column of ``proba``.
    """
    _check(y, proba)
    p = np.clip(proba[np.arange(len(y)), y].astype(np.float64), EPS, 1.0 - EPS)
    return -np.log(p)


def row_brier(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Return float64[M]: sum over classes of (p_k - [y = k])^2 per row (Brier 1950, the multi-class form).

    Raises
    ------
    ValueError
        If the shapes differ or a label is not a column of ``proba``.
    """
    _check(y, proba)
    onehot = np.zeros(proba.shape, dtype=np.float64)
    onehot[np.arange(len(y)), y] = 1.0
    return np.sum((proba.astype(np.float64) - onehot) ** 2, axis=1)


def prior_proba(prior: np.ndarray, rows: int) -> np.ndarray:
    """Return float64[rows, C]: the prior (class frequencies of the training span) on every row.

    Raises
    ------
    ValueError
        If ``prior`` has a negative entry or does not sum to 1 (within 1e-6).
    """
    prior = np.asarray(prior, dtype=np.float64)
    if prior.ndim != 1 or (prior < 0).any() or abs(prior.sum() - 1.0) > 1e-6:
        raise ValueError(f"prior must be class frequencies summing to 1, got {prior}")
    return np.tile(prior, (rows, 1))


def skill_score(model_loss: float, prior_loss: float) -> float:
    """Return 1 - model_loss / prior_loss: 0 for the prior itself, 1 for a perfect model, < 0 when worse.

    Raises
    ------
    ValueError
        If ``prior_loss`` is not > 0 (a prior that is never wrong leaves nothing to improve on).
    """
    if not prior_loss > 0:
        raise ValueError(f"the prior's loss must be > 0 for a skill score, got {prior_loss}")
    return 1.0 - model_loss / prior_loss


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Return float64[M]: the 1-based rank of each value, ties sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    # Runs of equal values: each run gets the mean of the ranks it spans.
    starts = np.flatnonzero(np.concatenate(([True], xs[1:] != xs[:-1])))
    ends = np.concatenate((starts[1:], [len(xs)]))
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """Return the ROC AUC of ``score`` for the bool[M] ``positive``: P(score of a positive > a negative), ties 1/2.

    Mann-Whitney U / (n_pos * n_neg) (Hanley & McNeil 1982); None when either class is absent.
    """
    n_pos = int(np.count_nonzero(positive))
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(np.asarray(score, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def up_score(proba: np.ndarray, down: int = DOWN, up: int = UP) -> np.ndarray:
    """Return float64[M]: p_up / (p_up + p_down), the model's chance of up given a move (0.5 when both are 0)."""
    p_up = proba[:, up].astype(np.float64)
    total = p_up + proba[:, down]
    return np.divide(p_up, total, out=np.full(len(p_up), 0.5), where=total > 0)


def up_down_auc(y: np.ndarray, proba: np.ndarray, down: int = DOWN, up: int = UP) -> float | None:
    """Return the AUC of :func:`up_score` for up against down, on the rows labelled up or down only.

    None when the rows hold no up or no down label.
    """
    moved = (y == up) | (y == down)
    return auc(y[moved] == up, up_score(proba[moved], down, up))


def balanced_accuracy(y: np.ndarray, predicted: np.ndarray) -> float | None:
    """Return the mean over the classes present in ``y`` of the share of their rows predicted right.

    Same definition as scikit-learn's ``balanced_accuracy_score``; None on zero rows.
    """
    classes = np.unique(y)
    if classes.size == 0:
        return None
    return float(np.mean([np.mean(predicted[y == c] == c) for c in classes]))


@dataclass(frozen=True)
class ReliabilityCurve:
    """Equal-mass bins of one class's predicted probability: float64[B] mean predicted probability,
    float64[B] observed frequency of the class, int64[B] rows per bin (bins with no row are dropped)."""

    predicted: np.ndarray
    observed: np.ndarray
    count: np.ndarray

    def ece(self) -> float:
        """Return the expected calibration error: the row-weighted mean |observed - predicted| over the bins."""
        n = self.count.sum()
        return float(np.sum(self.count * np.abs(self.observed - self.predicted)) / n) if n else 0.0


def reliability_curve(p: np.ndarray, hit: np.ndarray, n_bins: int = ECE_BINS) -> ReliabilityCurve:
    """Bin float[M] probabilities ``p`` of an event into ``n_bins`` equal-mass bins, with the event's bool[M] ``hit``.

    Equal-mass bins (quantiles of ``p``; Nixon et al. 2019, "Measuring Calibration in Deep Learning")
    because a class's probabilities crowd near its prior: equal-width bins would leave most bins empty
    and one bin holding nearly every row. Equal values never straddle two bins.

    Raises
    ------
    ValueError
        If ``n_bins`` < 1 or the lengths differ.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if len(p) != len(hit):
        raise ValueError(f"p has {len(p)} rows and hit {len(hit)}")
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        empty = np.zeros(0)
        return ReliabilityCurve(empty, empty, np.zeros(0, dtype=np.int64))
    which = equal_mass_bins(p, n_bins)
    count = np.bincount(which, minlength=n_bins)
    keep = count > 0
    pred = np.bincount(which, weights=p, minlength=n_bins)[keep] / count[keep]
    obs = np.bincount(which, weights=hit.astype(np.float64), minlength=n_bins)[keep] / count[keep]
    return ReliabilityCurve(pred, obs, count[keep].astype(np.int64))


def equal_mass_bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Return int64[M]: the bin (0..n_bins-1) of each probability, the edges at the quantiles of ``p``."""
    edges = np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return np.searchsorted(edges, p, side="right")


def classwise_ece(y: np.ndarray, proba: np.ndarray, n_bins: int = ECE_BINS) -> tuple[float, list[ReliabilityCurve]]:
    """Return the class-wise ECE (mean over classes of each class's one-vs-rest ECE) and the curves.

    Class-wise rather than top-label (Kull et al. 2019, "Beyond temperature scaling"): Kelly sizes on
    the probability of the direction it trades, not on the largest probability, so every class's
    probability must be calibrated. Bins as in :func:`reliability_curve`.
    """
    _check(y, proba)
    curves = [reliability_curve(proba[:, k], y == k, n_bins) for k in range(proba.shape[1])]
    return float(np.mean([c.ece() for c in curves])), curves


def information_coefficient(signal: np.ndarray, move: np.ndarray) -> float | None:
    """Return Spearman's rank correlation of ``signal`` with the realised ``move`` (both float[M]).

    None when fewer than two rows or either series is constant (the correlation is 0 / 0).
    """
    if len(signal) < 2:
        return None
    rs, rm = average_ranks(np.asarray(signal, dtype=np.float64)), average_ranks(np.asarray(move, dtype=np.float64))
    rs -= rs.mean()
    rm -= rm.mean()
    denom = math.sqrt(float(rs @ rs) * float(rm @ rm))
    return float(rs @ rm / denom) if denom > 0 else None


def expected_move_signal(proba: np.ndarray, down: int = DOWN, up: int = UP) -> np.ndarray:
    """Return float64[M]: p_up - p_down, the model's expected move up to a positive scale.

    With the flat class centred on zero and the up and down classes' mean moves symmetric (+m, -m),
    the expected move is m * (p_up - p_down); a rank correlation does not see the scale m.
    """
    return proba[:, up].astype(np.float64) - proba[:, down]


@dataclass(frozen=True)
class RuleTrades:
    """Trades of :func:`rule_trades`: int64[K] row of each entry, int8[K] side (+1 long, -1 short),
    float64[K] net return per trade, bps of the entry price, after the taker fee on both legs."""

    row: np.ndarray
    side: np.ndarray
    net_bps: np.ndarray


def rule_trades(
    proba: np.ndarray,
    ts: np.ndarray,
    horizon_ns: int,
    mid_now: np.ndarray,
    spread_now: np.ndarray,
    mid_later: np.ndarray,
    spread_later: np.ndarray,
    threshold: float,
    taker_fee_bps: float,
    down: int = DOWN,
    up: int = UP,
) -> RuleTrades:
    """Trade the simplest rule on the model: one position at a time, held for the horizon.

    At each decision row (time order) while flat: take the likelier of up and down; if its probability
    exceeds ``threshold``, buy at the ask (short: sell at the bid), then close at the horizon at the bid
    (short: buy at the ask), paying ``taker_fee_bps`` of notional on both legs. The next entry comes
    at the first row at or after the exit.

    Parameters
    ----------
    proba : float[M, C]; ts : int64[M] decision times, ns, non-decreasing; horizon_ns : int, ns.
    mid_now, spread_now, mid_later, spread_later : float64[M], ticks, at the decision and at decision +
        horizon; a row whose later mid is NaN (past the data) never enters.
    threshold : float, probability in [0, 1); taker_fee_bps : float, bps >= 0.

    Raises
    ------
    ValueError
        If ``threshold`` is outside [0, 1), the fee is negative, or ``horizon_ns`` <= 0.
    """
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must lie in [0, 1), got {threshold}")
    if not taker_fee_bps >= 0.0:
        raise ValueError(f"taker_fee_bps must be >= 0, got {taker_fee_bps}")
    if horizon_ns <= 0:
        raise ValueError(f"horizon_ns must be > 0, got {horizon_ns}")
    p_up, p_down = proba[:, up].astype(np.float64), proba[:, down].astype(np.float64)
    side = np.where(p_up >= p_down, 1, -1).astype(np.int8)
    wants = (np.maximum(p_up, p_down) > threshold) & np.isfinite(mid_later) & np.isfinite(mid_now)
    rows = []
    free_from = np.iinfo(np.int64).min
    for i in np.flatnonzero(wants):
        if ts[i] >= free_from:
            rows.append(i)
            free_from = int(ts[i]) + horizon_ns
    r = np.asarray(rows, dtype=np.int64)
    s = side[r].astype(np.float64)
    entry = mid_now[r] + s * spread_now[r] / 2.0
    exit_ = mid_later[r] - s * spread_later[r] / 2.0
    gross = s * (exit_ - entry) / entry * 1e4
    fees = taker_fee_bps * (entry + exit_) / entry
    return RuleTrades(row=r, side=side[r], net_bps=gross - fees)


def block_bootstrap_indices(n: int, block_len: int, replicates: int, seed: int) -> Iterator[np.ndarray]:
    """Yield ``replicates`` int64[n] moving-block bootstrap resamples of rows 0..n-1 (Kunsch 1989).

    Each resample joins blocks of ``block_len`` consecutive rows starting at uniform random rows and
    cuts it to ``n``: rows closer than a block stay together, so labels that overlap in time (a label
    looks a horizon ahead) are not treated as independent draws. One array at a time: all of them at
    once would take replicates x n x 8 bytes.

    Raises
    ------
    ValueError
        If ``n`` < 1, ``block_len`` < 1 or ``replicates`` < 1.
    """
    if n < 1 or block_len < 1 or replicates < 1:
        raise ValueError(f"need n, block_len, replicates >= 1, got {n}, {block_len}, {replicates}")
    block_len = min(block_len, n)
    n_blocks = -(-n // block_len)
    rng = np.random.default_rng(seed)
    offsets = np.arange(block_len)
    for _ in range(replicates):
        starts = rng.integers(0, n - block_len + 1, size=n_blocks)
        yield (starts[:, None] + offsets[None, :]).reshape(-1)[:n]


def block_length(ts: np.ndarray, horizon_ns: int) -> int:
    """Return the bootstrap block length in rows: the horizon over the median row spacing, at least 1.

    A block at least as long as the horizon keeps every pair of overlapping labels within one block.
    """
    if len(ts) < 2:
        return 1
    step = float(np.median(np.diff(ts)))
    return max(1, math.ceil(horizon_ns / step)) if step > 0 else len(ts)


@dataclass(frozen=True)
class Interval:
    """A two-sided percentile bootstrap interval at ``level`` (e.g. 0.95), or None ends when undefined."""

    low: float | None
    high: float | None
    level: float

    def contains(self, value: float) -> bool:
        return self.low is not None and self.high is not None and self.low <= value <= self.high


def percentile_interval(values: np.ndarray, level: float = CONFIDENCE) -> Interval:
    """Return the central ``level`` percentile interval of the finite ``values`` (Efron & Tibshirani 1993)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return Interval(None, None, level)
    lo, hi = np.quantile(v, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return Interval(float(lo), float(hi), level)


def verdict(skill: Interval, moved_rows: int | None = None) -> str:
    """Return the plain verdict on a log-loss skill interval: skill, no skill, or worse than the prior.

    With fewer than ``SMALL_MOVED_ROWS`` up/down rows (``moved_rows``) there is no verdict: a test span
    of nearly all flat labels rewards a model for saying "flat" more surely than the prior, which is no
    edge to trade.
    """
    if moved_rows is not None and moved_rows < SMALL_MOVED_ROWS:
        return f"{NOT_JUDGED}: {moved_rows} up/down rows (< {SMALL_MOVED_ROWS})"
    if skill.low is not None and skill.low > 0.0:
        return SKILL
    if skill.high is not None and skill.high < 0.0:
        return WORSE
    return NO_SKILL


@dataclass(frozen=True)
class HorizonEvaluation:
    """Every metric of one horizon (and fold) beside the prior's; None where undefined (see ``undefined``).

    Log-losses in nats per row, Brier scores per row (0..2), PnL in bps of the entry price.
    """

    rows: int
    moved_rows: int
    class_counts: list[int]
    prior: list[float]
    log_loss: float
    prior_log_loss: float
    log_loss_skill: float
    log_loss_skill_interval: Interval
    brier: float
    prior_brier: float
    brier_skill: float
    brier_skill_interval: Interval
    auc_up_down: float | None
    auc_up_down_interval: Interval
    balanced_accuracy: float | None
    prior_balanced_accuracy: float | None
    ece: float
    ece_interval: Interval  # resamples keep the full sample's bins; the range runs high (|gap| adds noise)
    prior_ece: float
    ece_per_class: list[float]
    ece_bins: int
    information_coefficient: float | None
    rule_threshold: float
    rule_fee_bps: float
    rule_trades: int
    rule_mean_bps: float | None
    rule_total_bps: float
    rule_hit_rate: float | None
    bootstrap_replicates: int
    bootstrap_block_rows: int
    bootstrap_seed: int
    verdict: str
    small_sample: list[str]
    undefined: dict[str, str] = field(default_factory=dict)
    reliability: list[ReliabilityCurve] = field(default_factory=list, repr=False)

    def to_json(self) -> dict:
        """Return the fields as plain JSON types (the curves as lists), for ``evaluation.json``."""
        out = asdict(self)
        out["reliability"] = [
            {"predicted": c.predicted.tolist(), "observed": c.observed.tolist(), "count": c.count.tolist()}
            for c in self.reliability
        ]
        return out


def evaluate_horizon(
    y: np.ndarray,
    proba: np.ndarray,
    prior: np.ndarray,
    ts: np.ndarray,
    horizon_ns: int,
    move: np.ndarray,
    prices: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    threshold: float,
    taker_fee_bps: float,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = 0,
    n_bins: int = ECE_BINS,
    down: int = DOWN,
    up: int = UP,
) -> HorizonEvaluation:
    """Score one horizon's out-of-sample predictions against the prior, with block-bootstrap intervals.

    Parameters
    ----------
    y : int[M] labels (every row labelled); proba : float[M, C]; prior : float[C], the training
        span's class frequencies; ts : int64[M] decision times, ns, non-decreasing; horizon_ns : int.
    move : float64[M], realised mid change over the horizon, ticks (for the information coefficient);
        NaN where unknown (the row is left out of the coefficient only).
    prices : (mid_now, spread_now, mid_later, spread_later), float64[M] ticks, for :func:`rule_trades`.
    threshold, taker_fee_bps : the rule's entry threshold and fee (:func:`rule_trades`).
    replicates, seed : bootstrap resamples and seed; blocks of :func:`block_length` rows.
    n_bins : equal-mass bins of the ECE and reliability curves.

    Raises
    ------
    ValueError
        On zero rows, mismatched shapes, or a prior whose log-loss or Brier score is 0.
    """
    if len(y) == 0:
        raise ValueError("no labelled rows to evaluate")
    if not len(ts) == len(move) == len(y):
        raise ValueError(f"y, ts and move must have one row each, got {len(y)}, {len(ts)}, {len(move)}")
    y = np.asarray(y, dtype=np.int64)
    base = prior_proba(prior, len(y))
    ll_m, ll_p = row_log_loss(y, proba), row_log_loss(y, base)
    br_m, br_p = row_brier(y, proba), row_brier(y, base)
    moved = (y == up) | (y == down)
    score = up_score(proba, down, up)
    block = block_length(ts, horizon_ns)
    # Resamples keep the full sample's bins: one weighted bin sum per resample, no re-sorting. Key
    # k * n_bins + bin over every (row, class); the class-wise ECE is then sum |bin gap| / (rows * classes).
    n_classes = proba.shape[1]
    bin_key = np.stack(
        [k * n_bins + equal_mass_bins(proba[:, k].astype(np.float64), n_bins) for k in range(n_classes)], axis=1
    )
    gap = proba - (y[:, None] == np.arange(n_classes)[None, :])
    boot_ll, boot_br, boot_auc, boot_ece = (np.full(replicates, np.nan) for _ in range(4))
    for b, idx in enumerate(block_bootstrap_indices(len(y), block, replicates, seed)):
        boot_ll[b] = 1.0 - ll_m[idx].sum() / ll_p[idx].sum()
        boot_br[b] = 1.0 - br_m[idx].sum() / br_p[idx].sum()
        r = idx[moved[idx]]
        a = auc(y[r] == up, score[r])
        if a is not None:
            boot_auc[b] = a
        sums = np.bincount(bin_key[idx].ravel(), weights=gap[idx].ravel(), minlength=n_classes * n_bins)
        boot_ece[b] = np.abs(sums).sum() / (len(idx) * n_classes)
    ece, curves = classwise_ece(y, proba, n_bins)
    prior_ece, _ = classwise_ece(y, base, n_bins)
    prior_pred = np.full(len(y), int(np.argmax(prior)))
    trades = rule_trades(proba, ts, horizon_ns, *prices, threshold, taker_fee_bps, down, up)
    undefined = {}
    auc_value = auc(y[moved] == up, score[moved])
    if auc_value is None:
        undefined["auc_up_down"] = "the rows hold no up or no down label"
    finite = np.isfinite(move)
    ic = information_coefficient(expected_move_signal(proba[finite], down, up), move[finite])
    if ic is None:
        undefined["information_coefficient"] = "fewer than two realised moves, or a constant predicted or realised move"
    if trades.net_bps.size == 0:
        undefined["rule_mean_bps"] = undefined["rule_hit_rate"] = f"no probability of up or down above {threshold:g}"
    small = []
    if len(y) < SMALL_ROWS:
        small.append(f"{len(y)} rows (< {SMALL_ROWS})")
    if moved.sum() < SMALL_MOVED_ROWS:
        small.append(f"{int(moved.sum())} up/down rows (< {SMALL_MOVED_ROWS})")
    skill_ci = percentile_interval(boot_ll)
    n_trades = int(trades.net_bps.size)
    return HorizonEvaluation(
        rows=len(y),
        moved_rows=int(moved.sum()),
        class_counts=np.bincount(y, minlength=proba.shape[1]).tolist(),
        prior=[float(p) for p in prior],
        log_loss=float(ll_m.mean()),
        prior_log_loss=float(ll_p.mean()),
        log_loss_skill=skill_score(float(ll_m.mean()), float(ll_p.mean())),
        log_loss_skill_interval=skill_ci,
        brier=float(br_m.mean()),
        prior_brier=float(br_p.mean()),
        brier_skill=skill_score(float(br_m.mean()), float(br_p.mean())),
        brier_skill_interval=percentile_interval(boot_br),
        auc_up_down=auc_value,
        auc_up_down_interval=percentile_interval(boot_auc),
        balanced_accuracy=balanced_accuracy(y, proba.argmax(axis=1)),
        prior_balanced_accuracy=balanced_accuracy(y, prior_pred),
        ece=ece,
        ece_interval=percentile_interval(boot_ece),
        prior_ece=prior_ece,
        ece_per_class=[c.ece() for c in curves],
        ece_bins=n_bins,
        information_coefficient=ic,
        rule_threshold=threshold,
        rule_fee_bps=taker_fee_bps,
        rule_trades=n_trades,
        rule_mean_bps=float(trades.net_bps.mean()) if n_trades else None,
        rule_total_bps=float(trades.net_bps.sum()),
        rule_hit_rate=float(np.mean(trades.net_bps > 0)) if n_trades else None,
        bootstrap_replicates=replicates,
        bootstrap_block_rows=block,
        bootstrap_seed=seed,
        verdict=verdict(skill_ci, int(moved.sum())),
        small_sample=small,
        undefined=undefined,
        reliability=curves,
    )
