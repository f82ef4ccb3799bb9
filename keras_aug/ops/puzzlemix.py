"""PuzzleMix (Kim, Choo & Song, ICML 2020) as pure, XLA-compilable TensorFlow.

Each image is cut into an `n x n` grid of blocks; each block takes a mixing level `m` in {0, 1/2,
1} (the share of the image itself; `1 - m` comes from its partner). The levels minimise the
paper's energy:

    E(m) = sum_b [(1 - m_b) s1_b + m_b s2_b - eta / n^2 log P(m_b)]                (unary)
         + sum_(b, b') beta' [(m_b - m_b')^2 + gamma D_bb'(m_b, m_b')]             (pairwise)

with `s1, s2` the block saliencies of both images (each summing to 1), `P` the prior of a level
for a Beta-drawn `lam` (`P(1) = lam^2, P(1/2) = 2 lam (1 - lam), P(0) = (1 - lam)^2`, as the
reference's three-label prior), `beta' = beta / (16 n)` as in the reference code, and `D` the
expected pixel discontinuity across the boundary of two adjacent blocks given their levels.

Differences from the paper's solver (documented, deliberate):
- The reference solves the labelling with an alpha-beta-swap graph cut on the CPU (pyGCO), one
  image at a time. Here the whole batch is solved in-graph by iterated conditional modes on a
  checkerboard: blocks of one colour are conditionally independent given the other colour, so
  each half-sweep sets them all to their exact conditional minimum at once. Every half-sweep
  lowers (never raises) E; it starts from the unary minimum; a few sweeps settle on a local
  minimum, where the graph cut finds a (near-)global one.
- The reference folds its boundary term into unaries and a single label-distance weight; here
  the pairwise term is the full 3 x 3 table `D(m, m') = sum_{a, c} w_a(m) w_c(m') d_ac` (the
  discontinuity between source images a and c, weighted by the levels), which reduces to the
  reference's term for binary labels. Discontinuities are measured on the boundary pixel rows
  and columns instead of neighbourhood-pooled images.
- Transport is the reference's greedy assignment (each destination block in the visible region
  takes its best source by `eps * distance - saliency`, conflicts go to the lower cost, losers
  are penalised and choose again), run for `n` rounds; a destination left without a source keeps
  its own block instead of becoming black. Conflicts are resolved with segment minima instead of
  an `n^2 x n^2` plan matrix, and from 8 x 8 blocks up only sources within 2 blocks are considered
  (`TRANSPORT_RADIUS`).
The label weight of each sample is the mean of its final mask, as in the paper.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

LEVELS = (0.0, 0.5, 1.0)  # label index -> share of the image itself in the block
_BIG = 1e4
# From 8 x 8 blocks up, transport considers sources within this many blocks only: a move of 3+
# blocks costs eps * 9 / (n - 1)^2 (0.147 at n = 8, 0.032 at n = 16 with eps 0.8), about nine
# times the mean block saliency 1 / n^2, so it rarely pays, while the full n^2 x n^2 cost matrix
# would dominate the step time.
TRANSPORT_RADIUS = 2


def block_means(x: tf.Tensor, grid: int) -> tf.Tensor:
    """Mean of `(B, H, W)` over an `grid x grid` grid of equal blocks -> `(B, grid, grid)`."""
    b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    x = tf.reshape(x, [b, grid, h // grid, grid, w // grid])
    return tf.reduce_mean(x, axis=[2, 4])


def unary_costs(s1: tf.Tensor, s2: tf.Tensor, lam: tf.Tensor, eta: float) -> tf.Tensor:
    """Unary energy `(B, n, n, 3)` of each level from block saliencies `(B, n, n)` and `lam (B,)`."""
    n = s1.shape[1]
    m = tf.constant(LEVELS, tf.float32)
    lam = tf.cast(lam, tf.float32)[:, None]
    prior = tf.stack([(1 - lam) ** 2, 2 * lam * (1 - lam), lam**2], axis=-1)  # (B, 1, 3)
    prior = -eta / n**2 * tf.math.log(prior + 1e-8)
    return (1 - m) * s1[..., None] + m * s2[..., None] + prior[:, :, None, :]


def pairwise_tables(
    x1: tf.Tensor, x2: tf.Tensor, grid: int, beta: float, gamma: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """Pairwise energy tables for vertical `(B, n-1, n, 3, 3)` and horizontal `(B, n, n-1, 3, 3)`
    neighbours; `x1, x2` are `(B, H, W, C)` images scaled to [0, 1]. Entry `[..., l, l']` is the
    cost of levels `l` (top/left block) and `l'` (bottom/right block)."""
    n = grid
    h, w = x1.shape[1], x1.shape[2]
    bh, bw = h // n, w // n
    scale = beta / (16.0 * n)
    m = tf.constant(LEVELS, tf.float32)
    weights = tf.stack([m, 1 - m])  # (source a, level) share of image a
    smooth = (m[:, None] - m[None, :]) ** 2

    def table(first, second, segment):
        # d[a, c]: |source a before the boundary - source c after it|, per boundary segment
        d = tf.stack([tf.stack([tf.reduce_mean(tf.abs(p - q), axis=-1) for q in second], -1)
                      for p in first], -2)  # (B, boundaries, length, 2, 2)
        d = segment(d)
        expected = tf.einsum("al,cm,...ac->...lm", weights, weights, d)
        return scale * (smooth + gamma * expected)

    def rows(d):  # (B, n-1, W, 2, 2) -> (B, n-1, n, 2, 2)
        s = tf.shape(d)
        return tf.reduce_mean(tf.reshape(d, [s[0], n - 1, n, bw, 2, 2]), axis=3)

    def cols(d):  # (B, n-1, H, 2, 2) -> (B, n, n-1, 2, 2)
        s = tf.shape(d)
        return tf.transpose(tf.reduce_mean(tf.reshape(d, [s[0], n - 1, n, bh, 2, 2]), axis=3),
                            [0, 2, 1, 3, 4])

    above = [x[:, bh - 1:h - 1:bh] for x in (x1, x2)]  # last row of each block row but the last
    below = [x[:, bh::bh] for x in (x1, x2)]
    left = [tf.transpose(x[:, :, bw - 1:w - 1:bw], [0, 2, 1, 3]) for x in (x1, x2)]
    right = [tf.transpose(x[:, :, bw::bw], [0, 2, 1, 3]) for x in (x1, x2)]
    return table(above, below, rows), table(left, right, cols)


def _neighbour_costs(onehot: tf.Tensor, down: tf.Tensor, right: tf.Tensor) -> tf.Tensor:
    """Pairwise cost of each level of every block given its neighbours' levels `(B, n, n, 3)`."""
    from_below = tf.einsum("bijlm,bijm->bijl", down, onehot[:, 1:])  # block (i, j) vs (i+1, j)
    from_above = tf.einsum("bijlm,bijl->bijm", down, onehot[:, :-1])  # block (i+1, j) vs (i, j)
    from_right = tf.einsum("bijlm,bijm->bijl", right, onehot[:, :, 1:])
    from_left = tf.einsum("bijlm,bijl->bijm", right, onehot[:, :, :-1])
    zero_row = tf.zeros_like(onehot[:, :1])
    zero_col = tf.zeros_like(onehot[:, :, :1])
    return (tf.concat([from_below, zero_row], 1) + tf.concat([zero_row, from_above], 1)
            + tf.concat([from_right, zero_col], 2) + tf.concat([zero_col, from_left], 2))


def mask_energy(labels: tf.Tensor, unary: tf.Tensor, down: tf.Tensor, right: tf.Tensor) -> tf.Tensor:
    """Total energy `(B,)` of level indices `labels` `(B, n, n)`."""
    onehot = tf.one_hot(labels, len(LEVELS), dtype=tf.float32)
    e_unary = tf.reduce_sum(unary * onehot, axis=[1, 2, 3])
    e_down = tf.einsum("bijlm,bijl,bijm->b", down, onehot[:, :-1], onehot[:, 1:])
    e_right = tf.einsum("bijlm,bijl,bijm->b", right, onehot[:, :, :-1], onehot[:, :, 1:])
    return e_unary + e_down + e_right


def solve_levels(unary: tf.Tensor, down: tf.Tensor, right: tf.Tensor, sweeps: int = 4) -> tf.Tensor:
    """Checkerboard iterated conditional modes: level indices `(B, n, n)` of low energy."""
    n = unary.shape[1]
    parity = (np.arange(n)[:, None] + np.arange(n)[None, :]) % 2
    labels = tf.argmin(unary, axis=-1, output_type=tf.int32)
    for _ in range(sweeps):
        for colour in (0, 1):
            onehot = tf.one_hot(labels, len(LEVELS), dtype=tf.float32)
            local = unary + _neighbour_costs(onehot, down, right)
            best = tf.argmin(local, axis=-1, output_type=tf.int32)
            labels = tf.where(tf.constant(parity == colour)[None], best, labels)
    return labels


def transport_sources(
    visible: tf.Tensor, saliency: tf.Tensor, eps: float, rounds: int, radius: int | None = None
) -> tf.Tensor:
    """Greedy transport of salient blocks into the visible region.

    Each round, every destination block picks its cheapest source (`eps * squared distance /
    (n - 1)^2 - saliency of the source` where the image is visible, `eps * distance` elsewhere);
    a source wanted by several destinations goes to the cheapest one (ties: the lowest index),
    and the losers' pick is penalised so they choose again next round.

    Args:
        visible: `(B, n*n)` bool, True where the image is (partly) visible in the mix.
        saliency: `(B, n*n)` block saliency of the image (sums to 1).
        eps: weight of the squared move distance.
        rounds: rounds of choose / resolve / penalise.
        radius: consider only sources within this many blocks (Chebyshev); None: all blocks.

    Returns:
        `(B, n*n)` int32: the source block shown at each destination block (a destination left
        without a source shows its own block).
    """
    k = saliency.shape[1]
    n = int(round(k**0.5))
    candidates, valid = _candidate_sources(n, radius)  # (k, m) source ids, bool
    ij = np.stack(np.divmod(np.arange(k), n), -1)
    distance = ((ij[:, None, :] - ij[candidates]) ** 2).sum(-1) / max(n - 1, 1) ** 2
    distance = np.where(valid, distance, _BIG).astype("float32")
    source_saliency = tf.gather(saliency, tf.constant(candidates.reshape(-1)), axis=1)
    source_saliency = tf.reshape(source_saliency, [-1, k, candidates.shape[1]])
    cost = eps * tf.constant(distance)[None] - (
        source_saliency * tf.cast(visible, tf.float32)[:, :, None]
    )  # [b, destination, candidate]
    batch = tf.shape(cost)[0]
    destination = tf.range(k, dtype=tf.int32)[None, :]
    offsets = (tf.range(batch, dtype=tf.int32) * k)[:, None]
    table = tf.constant(candidates, tf.int32)

    def one_round(cost):
        pick = tf.argmin(cost, axis=-1, output_type=tf.int32)  # (B, k) candidate position
        best = tf.reshape(tf.reduce_min(cost, axis=-1), [-1])
        dest = tf.broadcast_to(destination, tf.shape(pick))
        source = tf.gather_nd(table, tf.stack([dest, pick], -1))
        segments = tf.reshape(source + offsets, [-1])
        lowest = tf.math.unsorted_segment_min(best, segments, batch * k)
        tied = best <= tf.gather(lowest, segments)
        first = tf.math.unsorted_segment_min(tf.where(tied, tf.reshape(dest, [-1]), k),
                                             segments, batch * k)
        won = tf.reshape(tf.gather(first, segments), tf.shape(pick)) == destination
        return pick, source, won

    def body(step, cost, _):  # a while loop keeps the compiled graph small for large grids
        pick, _, won = one_round(cost)
        penalty = tf.one_hot(pick, candidates.shape[1]) * tf.cast(~won, tf.float32)[..., None]
        return step + 1, cost + _BIG * penalty, tf.reduce_all(won)

    # once a round has no loser the costs stop changing: later rounds would repeat it
    _, cost, _ = tf.while_loop(lambda step, _, settled: (step < rounds - 1) & ~settled, body,
                               (tf.constant(0), cost, tf.constant(False)))
    _, source, won = one_round(cost)
    return tf.where(won, source, destination)


def _candidate_sources(n: int, radius: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Source block ids `(n*n, m)` within `radius` of each destination, and which are real."""
    r = n - 1 if radius is None else min(radius, n - 1)
    dy, dx = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij")
    i, j = np.divmod(np.arange(n * n), n)
    si, sj = i[:, None] + dy.reshape(-1), j[:, None] + dx.reshape(-1)
    valid = (si >= 0) & (si < n) & (sj >= 0) & (sj < n)
    ids = np.where(valid, si * n + sj, np.arange(n * n)[:, None])
    return ids.astype("int32"), valid


def move_blocks(images: tf.Tensor, sources: tf.Tensor, grid: int) -> tf.Tensor:
    """Rearrange the `grid x grid` blocks of `images`: destination block d shows block `sources[d]`."""
    b, h, w, c = tf.shape(images)[0], images.shape[1], images.shape[2], tf.shape(images)[3]
    bh, bw = h // grid, w // grid
    rows, cols = np.arange(h), np.arange(w)
    block = (rows // bh)[:, None] * grid + (cols // bw)[None, :]  # (H, W) destination block
    offset = (rows % bh)[:, None] * w + (cols % bw)[None, :]  # pixel offset inside the block
    src = tf.gather(sources, tf.constant(block.reshape(-1)), axis=1)  # (B, H*W)
    start = (src // grid) * (bh * w) + (src % grid) * bw
    index = start + tf.constant(offset.reshape(-1), tf.int32)[None]
    flat = tf.reshape(images, [b, h * w, c])
    return tf.reshape(tf.gather(flat, index, batch_dims=1), [b, h, w, c])


def puzzle_mix(
    images: tf.Tensor,
    saliency: tf.Tensor,
    lam: tf.Tensor,
    partner: tf.Tensor,
    grid: int,
    *,
    value_range=(0.0, 255.0),
    beta: float = 1.2,
    gamma: float = 0.5,
    eta: float = 0.2,
    sweeps: int = 4,
    transport: bool = True,
    transport_eps: float = 0.8,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Mix each image with `images[partner]` by an optimised block mask.

    Args:
        images: `(B, H, W, C)` float in `value_range`; H and W divisible by `grid`.
        saliency: `(B, H, W)` non-negative saliency (e.g. input-gradient magnitude).
        lam: `(B,)` prior share of each image itself (Beta-drawn).
        partner: `(B,)` int32 partner indices.
        grid: blocks per side.

    Returns:
        `(mixed images, weight (B,), mask (B, grid, grid))`; `weight` = mask mean = the label
        weight of each image itself.
    """
    low, high = value_range
    s = block_means(tf.cast(saliency, tf.float32), grid)
    s = s / (tf.reduce_sum(s, axis=[1, 2], keepdims=True) + 1e-12)
    s2 = tf.gather(s, partner)
    x2 = tf.gather(images, partner)
    unit = lambda x: (x - low) / (high - low)  # noqa: E731
    down, right = pairwise_tables(unit(images), unit(x2), grid, beta, gamma)
    labels = solve_levels(unary_costs(s, s2, lam, eta), down, right, sweeps)
    mask = tf.gather(tf.constant(LEVELS, tf.float32), labels)  # (B, n, n)
    x1 = images
    if transport:
        flat_mask = tf.reshape(mask, [-1, grid * grid])
        radius = None if grid < 8 else TRANSPORT_RADIUS

        def moved(x, visible, sal):
            sources = transport_sources(visible, tf.reshape(sal, [-1, grid * grid]),
                                        transport_eps, grid, radius)
            return move_blocks(x, sources, grid)

        x1, x2 = moved(x1, flat_mask > 0, s), moved(x2, flat_mask < 1, s2)
    h, w = images.shape[1], images.shape[2]
    pixel_mask = tf.gather(tf.gather(mask, np.arange(h) // (h // grid), axis=1),
                           np.arange(w) // (w // grid), axis=2)[..., None]
    mixed = pixel_mask * x1 + (1 - pixel_mask) * x2
    return mixed, tf.reduce_mean(mask, axis=[1, 2]), mask
