"""edgewise.theory: every closed form against exact `pathways` counts, laws inside their stated domains."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from edgewise import EdgewiseError, nets, pathways
from edgewise import theory as T

PADS = ["valid", "same", "full", "circular", "reflect", "replicate", "symmetric"]


def measured(spec, n, padding, to="all", dims=1):
    """Exact pathways counts of a one-channel linear spec net (a list in 1-D, an object array in 2-D)."""
    shape = (1, n) if dims == 1 else (1, n, n)
    net = nets.from_spec(spec, shape, padding=padding, width=1, activation=None)
    p = pathways(net, shape, to=to, exact=True)
    return (list(p.counts) if dims == 1 else p.counts), p.summary


def exact_ratio(summary, name="edge"):
    """Centre/edge (or corner) from the engine's own anchor means, as an exact Fraction."""
    return Fraction(summary["center"]) / Fraction(summary[name])


def buildable(k, n, L, d, padding):
    r_pad = (k - 1) * d
    if padding == "valid":
        return n >= L * r_pad + 1
    if padding == "reflect":  # PyTorch's reflection needs pad < n
        return max(r_pad // 2, r_pad - r_pad // 2) <= n - 1
    return True


# ----------------------------------------------------------------------- valid padding

@pytest.mark.parametrize("k", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("L", [1, 2, 3])
def test_multinomial_row_is_the_centre_units_field(k, L):
    W = T.theoretical_rf(k, L)
    got, _ = measured(f"{L}*conv{k}", W, "valid", to="center")  # one output unit: its whole field
    assert got == T.multinomial_row(k, L)
    assert sum(got) == k ** L and len(got) == L * (k - 1) + 1


def test_multinomial_row_small_cases():
    assert T.multinomial_row(2, 4) == [1, 4, 6, 4, 1]
    assert T.multinomial_row(3, 2) == [1, 2, 3, 2, 1]
    assert T.multinomial_row(4, 0) == [1]


@pytest.mark.parametrize("k", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("d", [1, 2])
def test_valid_counts_equal_pathways(k, d):
    for L in (1, 2, 3):
        W = T.theoretical_rf(k, L, d)
        for n in sorted({W, W + 1, W + 4, 2 * W + 3}):
            got, _ = measured(f"{L}*conv{k}/d{d}", n, "valid")
            assert got == T.valid_counts(k, n, L, d), (k, d, L, n)


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("d", [1, 2])
def test_valid_ratio_is_k_to_the_L_exactly_iff_n_reaches_the_stated_width(k, d):
    for L in (1, 2, 3):
        W = T.theoretical_rf(k, L, d)
        n_min = T.valid_min_width(k, L, d)
        assert n_min == 2 * L * d * (k - 1) + 1
        for n in range(W, n_min + 4):
            _, s = measured(f"{L}*conv{k}/d{d}", n, "valid")
            r = exact_ratio(s)
            assert r == T.valid_ratio(k, L, n, d)  # the partial-sum formula everywhere
            assert (r == k ** L) == (n >= n_min), (k, d, L, n, r)
        assert T.valid_ratio(k, L) == k ** L


# ----------------------------------------------------------------------- same padding

@pytest.mark.parametrize("k", [1, 3, 5, 7])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_same_counts_equal_pathways(k, d):
    for n in (1, 2, 5, 8, 13):
        for L in (1, 2, 4):
            got, _ = measured(f"{L}*conv{k}/d{d}", n, "same")
            assert got == T.same_counts(k, n, L, d), (k, d, n, L)


def test_same_ratio_is_one_over_half_line_survival_while_no_wall_is_in_reach():
    for k in (3, 5, 7):
        r = (k - 1) // 2
        for L in (1, 2, 3, 6):
            for n in (2 * L * r + 1, 2 * L * r + 2):
                _, s = measured(f"{L}*conv{k}", n, "same")
                assert exact_ratio(s) == 1 / T.half_line_survival(k, L)
            _, s = measured(f"{L}*conv{k}", 2 * L * r, "same")  # one short: the centre now touches a wall
            assert exact_ratio(s) != 1 / T.half_line_survival(k, L)


@pytest.mark.parametrize("k", [3, 5, 7])
def test_sparre_andersen_generating_function_exactly(k):
    """Σ_L P(τ>L) s^L = exp(Σ_m s^m P(S_m ≥ 0)/m), coefficient by coefficient, in Fractions,
    with P(τ>L) read off the engine's edge counts."""
    M, r = 10, (k - 1) // 2
    a = [Fraction(0)]
    for m in range(1, M + 1):
        row = T.multinomial_row(k, m)
        a.append(Fraction(sum(row[m * r:]), k ** m) / m)  # P(S_m ≥ 0)/m
    b = [Fraction(1)]
    for j in range(1, M + 1):  # b = exp(Σ a_m s^m):  j b_j = Σ_i i a_i b_{j−i}
        b.append(sum(i * a[i] * b[j - i] for i in range(1, j + 1)) / j)
    for L in range(1, M + 1):
        counts, _ = measured(f"{L}*conv{k}", L * r + 1, "same")
        assert Fraction(counts[0], k ** L) == b[L]


def test_survival_constant_three_ways_and_closed_forms():
    for k in (3, 5, 7, 9, 15):
        roots, integral = T.survival_constant(k), T.survival_constant(k, "integral")
        assert integral == pytest.approx(roots, rel=1e-13)
        assert T.survival_constant(k, "series") == pytest.approx(roots, rel=1e-10)
    assert T.survival_constant(3) == pytest.approx(math.sqrt(3), rel=1e-15)
    assert T.survival_constant(5) == pytest.approx((5 - math.sqrt(5)) / 2, rel=1e-15)
    assert T.survival_constant(7) == pytest.approx(1.2585295455169767, rel=1e-13)


@pytest.mark.parametrize("k", [3, 5, 7])
def test_edge_survival_approaches_c_over_sqrt_pi_L(k):
    C = T.survival_constant(k)
    errs = []
    for L in (8, 16, 32, 64, 128):
        counts, _ = measured(f"{L}*conv{k}", L * (k - 1) // 2 + 1, "same")
        errs.append(abs(Fraction(counts[0], k ** L) * math.sqrt(math.pi * L) / C - 1))
    assert all(e2 < e1 for e1, e2 in zip(errs, errs[1:]))
    assert errs[-1] < 0.005 and errs[-1] * 128 == pytest.approx(errs[-2] * 64, rel=0.1)  # O(1/L) correction


@pytest.mark.parametrize("k,lo", [(3, 11), (5, 7), (7, 5)])
def test_sqrt_law_within_5_percent_inside_its_domain(k, lo):
    n = 64
    s2 = (k * k - 1) / 12
    hi = int(0.05 * n * n / s2)
    for L in sorted({lo, (lo + hi) // 2, hi}):  # spot checks against the engine
        _, s = measured(f"{L}*conv{k}", n, "same")
        assert float(exact_ratio(s)) == pytest.approx(T.same_ratio_small_depth(k, L), rel=0.05)
    b = (np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= (k - 1) // 2) / k
    v = np.ones(n)
    for L in range(1, hi + 1):  # every depth, by a float power iteration independent of theory's code
        v = b @ v
        if L >= lo:
            assert v[(n - 1) // 2] / v[0] == pytest.approx(T.same_ratio_small_depth(k, L), rel=0.05)
    assert float(T.same_ratio(k, n, 4 * hi)) < 0.8 * T.same_ratio_small_depth(k, 4 * hi)  # outside: saturating
    for m in (32, 64, 128):
        found = T.same_law_domain(k, m, 0.05)
        assert found[0] == lo or (k == 7 and m == 32)
        assert 0.045 < found[1] * s2 / m ** 2 < 0.06


def test_same_saturates_at_the_perron_ratio():
    k, n = 3, 64
    limit = T.same_ratio_limit(k, n)
    assert limit == pytest.approx(math.sin(math.pi * 33 / 65) / math.sin(math.pi / 65), rel=1e-14)
    b = (np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= 1).astype(float)
    v = np.abs(np.linalg.eigh(b)[1][:, -1])
    assert limit == pytest.approx(v[31] / v[0], rel=1e-10)
    _, s = measured("1200*conv3", n, "same")
    assert float(exact_ratio(s)) == pytest.approx(limit, rel=0.01)
    b3, v, ratios = b / 3, np.ones(n), []
    for _ in range(1500):  # float power iteration, independent of theory's code
        v = b3 @ v
        ratios.append(v[31] / v[0])
    assert all(r2 >= r1 for r1, r2 in zip(ratios, ratios[1:])) and ratios[-1] < limit  # grows, from below
    assert float(T.same_ratio(k, n, 1500)) == pytest.approx(ratios[-1], rel=1e-12)
    mix = T.same_mixing_depth(k, n)
    assert mix == pytest.approx(3 * (n + 1) ** 2 / (8 * math.pi ** 2), rel=0.01)
    e1, e2 = (abs(float(T.same_ratio(k, n, L)) / limit - 1) for L in (1000, 1300))
    assert 300 / math.log(e1 / e2) == pytest.approx(mix, rel=0.01)


@pytest.mark.parametrize("k,n", [(5, 9), (7, 12), (5, 16)])
def test_same_limit_for_wider_kernels(k, n):
    _, s = measured(f"400*conv{k}", n, "same")
    assert float(exact_ratio(s)) == pytest.approx(T.same_ratio_limit(k, n), rel=1e-9)
    assert T.same_mixing_depth(k, n) < 40


@pytest.mark.parametrize("k", [3, 5, 7, 9])
def test_saturated_profile_is_the_edge_harmonic_function(k):
    """Near the edge the saturated counts are ∝ h(x) = x + a_k + decaying modes, h(0) = C_k σ/√2,
    and the limit is (n − 1 + 2a_k)/(π h(0)) up to O(1/n²)."""
    a, h0 = T.boundary_layer(k)
    sigma = math.sqrt((k * k - 1) / 12)
    assert h0 == pytest.approx(T.survival_constant(k, "integral") * sigma / math.sqrt(2), rel=1e-12)
    n = 120
    b = (np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= (k - 1) // 2).astype(float)
    v = np.abs(np.linalg.eigh(b)[1][:, -1])  # the Perron vector, straight from numpy
    N = n - 1 + 2 * a
    x = np.arange(2 * k, n // 2)
    assert np.allclose(v[x] / v[0], N / math.pi * np.sin(np.pi * (x + a) / N) / h0, rtol=2e-3)
    m = 24
    _, summ = measured(f"{12 * int(T.same_mixing_depth(k, m)) + 20}*conv{k}", m, "same")
    assert float(exact_ratio(summ)) == pytest.approx(T.same_ratio_limit(k, m), rel=1e-5)
    errs = [abs(T.same_ratio_limit_asymptotic(k, m) / T.same_ratio_limit(k, m) - 1) for m in (24, 48, 96)]
    assert errs[-1] < 4e-4 and errs[0] / errs[-1] > 10  # O(1/n²)


@pytest.mark.parametrize("n,d", [(10, 2), (11, 2), (12, 3), (13, 3), (9, 2)])
def test_dilated_same_splits_into_residue_classes(n, d):
    """Each class j, j+d, … is an undilated walk on ⌈(n−j)/d⌉ sites; the limit combines the
    chains of the centre and of both ends (0 or inf when the centre's chain is shorter or longer)."""
    got, _ = measured(f"3*conv3/d{d}", n, "same")
    expect = [0] * n
    for j in range(d):
        sites = list(range(j, n, d))
        for pos, v in zip(sites, T.same_counts(3, len(sites), 3)):
            expect[pos] = v
    assert got == expect
    limit = T.same_ratio_limit(3, n, d)
    deep = float(T.same_ratio(3, n, 600, d))
    if limit in (0.0, math.inf):
        shallow = float(T.same_ratio(3, n, 300, d))
        assert (deep < shallow / 10) if limit == 0 else (deep > shallow * 10)
    else:
        assert deep == pytest.approx(limit, rel=1e-9)


def test_dilation_keeps_the_sqrt_law():
    n, d = 512, 2
    for L in (16, 64, 256):
        _, s = measured(f"{L}*conv3/d{d}", n, "same")
        assert float(exact_ratio(s)) == pytest.approx(T.same_ratio_small_depth(3, L), rel=0.05)


# ----------------------------------------------------------------------- reflect padding

@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_reflect_counts_equal_pathways(k):
    for n in (2, 3, 4, 8, 13):
        if (k - 1) // 2 > n - 1:
            continue
        for L in (1, 2, 3, 5):
            got, _ = measured(f"{L}*conv{k}", n, "reflect")
            assert got == T.reflect_counts(k, n, L) == T.counts("reflect", k, n, L), (k, n, L)


def test_reflect_ratio_is_bounded_and_converges_to_two():
    for k, n in [(3, 3), (3, 8), (3, 16), (5, 4), (5, 16), (7, 5), (7, 33)]:
        ratios = [T.reflect_ratio(k, n, L) for L in range(1, 65)]
        assert max(ratios) <= Fraction(5, 2)
        if n >= 8:
            assert max(ratios) <= 2
        assert T.reflect_ratio_limit(k, n) == 2
        mix = T.reflect_mixing_depth(k, n)
        e1, e2 = (abs(float(T.reflect_ratio(k, n, L)) - 2) for L in (2 * int(mix) + 20, 2 * int(mix) + 60))
        if e2 > 1e-12:
            assert 40 / math.log(e1 / e2) == pytest.approx(mix, rel=0.02)
    _, s = measured("64*conv3", 16, "reflect")
    assert float(exact_ratio(s)) == pytest.approx(2, abs=0.02)
    assert T.reflect_mixing_depth(3, 33) == pytest.approx(32 ** 2 / (2 * math.pi ** 2 * (8 / 12)), rel=0.01)


def test_reflect_counts_approach_the_folded_stationary_shape():
    c = T.reflect_counts(5, 12, 300)
    shape = T.reflect_stationary(12)
    assert np.allclose(np.array(c, dtype=float) / float(c[0]), shape, rtol=1e-9)


def test_reflect_2d_corner_tends_to_four():
    counts, s = measured("40*conv3", 6, "reflect", dims=2)
    one = T.reflect_counts(3, 6, 40)
    assert (counts == np.outer(np.array(one, dtype=object), np.array(one, dtype=object))).all()
    assert float(exact_ratio(s, "corner")) == pytest.approx(float(T.reflect_ratio_limit(3, 6, dims=2)), rel=1e-6)
    assert T.reflect_ratio_limit(3, 6, dims=2) == 4


# ----------------------------------------------------------------------- uniform modes

@pytest.mark.parametrize("padding", PADS)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("d", [1, 2])
def test_is_uniform_matches_the_engine(padding, k, d):
    n, L = 9, 2
    if not buildable(k, n, L, d, padding):
        pytest.skip("this stack has no output / PyTorch refuses the reflection")
    got, _ = measured(f"{L}*conv{k}/d{d}", n, padding)
    assert T.is_uniform(padding, k, d) == (len(set(got)) == 1), got
    if T.is_uniform(padding, k, d):
        assert got == [k ** L] * n
        assert got == T.uniform_counts(k, n, L, padding, d)


def test_replicate_wide_kernels_favour_the_edges():
    got, s = measured("3*conv5", 12, "replicate")
    assert got == T.counts("replicate", 5, 12, 3) and exact_ratio(s) < 1
    with pytest.raises(EdgewiseError, match=r"replicate reads each end .* = 6 times per layer instead of k=5"):
        T.uniform_counts(5, 12, 3, "replicate")


# ----------------------------------------------------------------------- dispatcher, 2-D, depth laws

@pytest.mark.parametrize("padding", PADS)
def test_ratio_dispatcher_equals_pathways(padding):
    for k in (1, 2, 3, 4, 5):
        for d in (1, 2):
            for n in (6, 9):
                for L in (1, 3):
                    if not buildable(k, n, L, d, padding):
                        continue
                    got, s = measured(f"{L}*conv{k}/d{d}", n, padding)
                    if got[0] + got[-1] == 0:
                        continue
                    assert T.ratio(padding, k, n, L, d) == exact_ratio(s), (padding, k, d, n, L)
                    assert T.counts(padding, k, n, L, d) == got


@pytest.mark.parametrize("padding", ["valid", "same", "reflect", "circular"])
def test_2d_counts_are_outer_products_of_1d(padding):
    n, L = 11, 3
    grid, s = measured(f"{L}*conv3", n, padding, dims=2)
    one = np.array(T.counts(padding, 3, n, L), dtype=object)
    assert (grid == np.outer(one, one)).all()
    r = T.ratio(padding, 3, n, L)
    assert exact_ratio(s, "corner") == r * r and exact_ratio(s, "edge") == r


def test_depth_law_kinds_and_curves():
    v = T.depth_law("valid", 3, 41)
    assert v.kind == "exponential" and v.params["exact_depth"] == 10 and v.params["max_depth"] == 20
    assert v.exact([10])[0] == 3 ** 10 and v.exact([11])[0] < 3 ** 11
    assert list(v.curve([1, 2, 3])) == [3.0, 9.0, 27.0] and math.isnan(v.curve([21])[0])
    s = T.depth_law("same", 3, 64)
    assert s.kind == "sqrt-then-saturating"
    assert s.params["limit"] == pytest.approx(20.692156580609243) and s.params["C"] == pytest.approx(math.sqrt(3))
    assert s(16)[()] == pytest.approx(math.sqrt(16 * math.pi / 3)) and s(10 ** 6)[()] == pytest.approx(20.692156580609243)
    assert s.params["crossover_depth"] == pytest.approx(3 * 20.692156580609243 ** 2 / math.pi)
    measured_ratios = [float(exact_ratio(measured(f"{L}*conv3", 64, "same")[1])) for L in (16, 64)]
    assert np.allclose(s.curve([16, 64]), measured_ratios, rtol=0.05)
    assert T.depth_law("reflect", 5, 20).kind == "bounded" and list(T.depth_law("reflect", 5, 20).curve([1])) == [2.0]
    for pad in ("full", "circular", "symmetric"):
        assert T.depth_law(pad, 3, 10).kind == "uniform"
    odd = T.depth_law("same", 4, 10)
    assert odd.kind == "numeric"
    got, s4 = measured("3*conv4", 10, "same")
    assert odd.curve([3])[0] == pytest.approx(float(exact_ratio(s4)))


# ----------------------------------------------------------------------- effective receptive field

@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_erf_variance_is_exact_on_the_centre_map(k, d, padding):
    for L in (1, 2, 4):
        W = T.theoretical_rf(k, L, d)
        n = W if padding == "valid" else W + 5  # same: the centre unit's field fits inside
        got, _ = measured(f"{L}*conv{k}/d{d}", n, padding, to="center")
        nz = [i for i, v in enumerate(got) if v]
        assert nz[-1] - nz[0] + 1 == W
        assert T.map_moments(got)[1] == T.erf_variance(k, L, d) == Fraction(L * d * d * (k * k - 1), 12)


def test_erf_std_is_order_sqrt_L_against_order_L():
    k = 3
    for L in (4, 16, 64, 256):
        assert T.erf_fraction(k, L) * math.sqrt(L) == pytest.approx(
            math.sqrt((k + 1) / (12 * (k - 1))), rel=1.0 / L + 1e-12)
    assert T.erf_std(3, 64) == pytest.approx(math.sqrt(64 * 8 / 12)) and T.theoretical_rf(3, 64) == 129


def test_centre_map_tends_to_a_gaussian():
    prev = None
    for L in (4, 16, 64):
        got, _ = measured(f"{L}*conv3", 2 * L + 1, "valid", to="center")
        cdf, local = T.gaussian_distance(got)
        if prev:
            assert cdf < prev[0] / 3 and local < prev[1] / 3  # O(1/L): ×4 depth, ≈ ÷4 distance
        prev = (cdf, local)
    assert prev[0] < 5e-4 and prev[1] < 2e-3
    dil, _ = measured("8*conv3/d2", 33, "valid", to="center")
    assert T.gaussian_distance(dil, span=2)[0] == pytest.approx(T.gaussian_distance(T.multinomial_row(3, 8))[0])


# ----------------------------------------------------------------------- stride and pooling

@pytest.mark.parametrize("pool", ["maxpool2", "avgpool2"])
def test_pooling_first_keeps_the_pooled_grids_ratio(pool):
    n = 16
    got, s = measured(f"{pool}, 2*conv3", n, "same")
    assert got == T.block_upsample(T.same_counts(3, n // 2, 2), 2)
    assert exact_ratio(s) == T.same_ratio(3, n // 2, 2)
    got, _ = measured(f"conv3, {pool}, 2*conv3", n, "same")
    assert got == T.layer_adjoint("same", 3, T.block_upsample(T.same_counts(3, n // 2, 2), 2), n)
    got, _ = measured(f"{pool}, 2*conv3", 17, "same")  # the last input falls outside every window
    assert got == T.block_upsample(T.same_counts(3, 8, 2), 2, 17) and got[-1] == 0


def test_non_overlapping_stride_reads_every_input_once():
    got, _ = measured("conv4/s4, 2*conv3", 32, "valid")
    assert got == T.block_upsample(T.valid_counts(3, 8, 2), 4)
    assert T.stride_modulation(4, 4) == 1 and T.stride_pattern(4, 4) == [1, 1, 1, 1]


@pytest.mark.parametrize("spec,k,s", [("conv3/s2", 3, 2), ("conv3/s2, conv3", 3, 2), ("conv5/s2, 2*conv3", 5, 2),
                                      ("conv5/s3", 5, 3), ("conv8/s4, conv8/s4", 8, 4), ("conv2/s3", 2, 3)])
def test_overlapping_stride_modulates_the_interior_with_period_s(spec, k, s):
    n = 64
    got, _ = measured(spec, n, "same")
    interior = got[n // 4: 3 * n // 4]
    pattern = T.stride_pattern(k, s, offset=(k - 1) // 2)
    scale = interior[0] // pattern[(n // 4) % s] if pattern[(n // 4) % s] else None
    assert scale is not None or min(interior) == 0
    if scale:
        assert interior == [scale * pattern[i % s] for i in range(n // 4, 3 * n // 4)]
    mod = T.stride_modulation(k, s)
    if mod == math.inf:
        assert min(interior) == 0
    else:
        assert Fraction(max(interior), min(interior)) == mod


def test_layer_adjoint_chains_a_strided_stack():
    got, _ = measured("conv3/s2, conv3", 20, "same")
    assert got == T.layer_adjoint("same", 3, T.same_counts(3, 10, 1), 20, stride=2)


# ----------------------------------------------------------------------- fitted laws

def test_fit_law_names_the_laws():
    depths = [1, 2, 3, 4, 5, 6]
    valid = [exact_ratio(measured(f"{L}*conv3", 40, "valid")[1]) for L in depths]
    law = T.fit_law(depths, valid)
    assert law.kind == "exponential" and law.params["base"] == pytest.approx(3, rel=1e-9) and law.r2 > 0.999999

    depths = [8, 12, 16, 24, 32, 48, 64]
    same = [T.same_ratio(3, 1024, L) for L in depths]
    law = T.fit_law(depths, same)
    assert law.kind == "power" and law.params["exponent"] == pytest.approx(0.5, abs=0.05)

    circ = [exact_ratio(measured(f"{L}*conv3", 12, "circular")[1]) for L in (1, 2, 3)]
    assert T.fit_law([1, 2, 3], circ).kind == "uniform"

    depths = list(range(4, 65, 4))
    law = T.fit_law(depths, [T.reflect_ratio(3, 16, L) for L in depths])
    assert law.kind == "bounded" and law.params["limit"] == pytest.approx(2, abs=0.02)
    depths = list(range(600, 1500, 100))
    law = T.fit_law(depths, [T.same_ratio(3, 32, L) for L in depths])
    assert law.kind == "bounded" and law.params["limit"] == pytest.approx(T.same_ratio_limit(3, 32), rel=1e-6)


# ----------------------------------------------------------------------- Monte-Carlo identity

def jacobians(padding, n, L, sigma, draws, seed=0):
    """∂y_o/∂x_p of many random-weight draws of the real spec net's layers: array [draw, p, o].

    The draws run side by side (one weight vector per draw, applied to sliding windows),
    each layer padded the way the spec net's own layer pads (biases left out: the net is linear)."""
    import torch.nn.functional as F
    net = nets.from_spec(f"{L}*conv3", (1, n), padding=padding, width=1, activation=None)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv1d)]
    gen = torch.Generator().manual_seed(seed)
    x = torch.eye(n, dtype=torch.float64)[:, None, :].expand(n, draws, n)  # [p, draw, position]
    for c in convs:
        assert c.stride == (1,) and c.dilation == (1,)
        w = torch.randn((draws, c.kernel_size[0]), generator=gen, dtype=torch.float64) * sigma
        mode = "constant" if c.padding_mode == "zeros" else c.padding_mode
        x = F.pad(x, c._reversed_padding_repeated_twice, mode=mode)
        x = torch.einsum("pdok,dk->pdo", x.unfold(2, c.kernel_size[0], 1), w)  # cross-correlation, as conv1d
    return x.permute(1, 0, 2).numpy()


@pytest.mark.parametrize("padding", ["same", "reflect"])
def test_expected_squared_gradient_monte_carlo(padding):
    """Σ_o E[(∂y_o/∂x_p)²] over i.i.d. Gaussian weights = σ^{2L} · paths(p), for every padding."""
    n, L, sigma, draws = 9, 2, 0.8, 40000
    jac = jacobians(padding, n, L, sigma, draws)
    sq = (jac ** 2).sum(axis=2)
    paths, _ = measured(f"{L}*conv3", n, padding)
    expect = np.array([float(x) for x in T.expected_squared_gradient(paths, sigma, L)])
    tol = T.mc_tolerance(sq.std(axis=0, ddof=1), draws, n_tests=n)
    assert (np.abs(sq.mean(axis=0) - expect) <= tol).all()
    assert np.ptp(expect) > 5 * tol.max()  # precise enough to tell the centre from the edge
    # the square of the *summed* gradient has cross terms between outputs that share a tap
    # sequence: none with zero padding, some where reflection folds two outputs onto one input
    summed = jac.sum(axis=2) ** 2
    off = np.abs(summed.mean(axis=0) - expect) / T.mc_tolerance(summed.std(axis=0, ddof=1), draws, n_tests=n)
    assert (off.max() <= 1) if padding == "same" else (off.max() > 5)


def test_expected_squared_gradient_is_exact_arithmetic():
    assert T.expected_squared_gradient(Fraction(10), Fraction(1, 2), 2) == Fraction(10, 16)
    assert T.expected_squared_gradient([1, 3], 2, 1) == [4, 12]


def test_normal_quantile_and_tolerance():
    assert T.normal_quantile(0.975) == pytest.approx(1.959963984540054, rel=1e-14)
    assert T.normal_quantile(1 - 5e-4) == pytest.approx(3.2905267314918945, rel=1e-13)
    assert T.normal_quantile(1e-10) == pytest.approx(-6.361340902404056, rel=1e-12)
    for p in (1e-12, 1e-5, 0.01, 0.3, 0.5, 0.7, 0.99, 1 - 1e-7):
        x = T.normal_quantile(p)
        assert 0.5 * math.erfc(-x / math.sqrt(2)) == pytest.approx(p, rel=1e-12)
    z = T.normal_quantile(1 - 1e-3 / 20)
    assert T.mc_tolerance(2.0, 400, n_tests=10) == pytest.approx(z * 2.0 / 20)


# ----------------------------------------------------------------------- bad input

@pytest.mark.parametrize("call,match", [
    (lambda: T.multinomial_row(0, 2), "kernel size k must be at least 1, got 0"),
    (lambda: T.valid_counts(3, 2.5, 1), "width n must be an integer"),
    (lambda: T.valid_counts(3, 6, 3), r"n must be ≥ 7"),
    (lambda: T.same_counts(4, 10, 2), "kernel size k=4 is even"),
    (lambda: T.same_ratio_limit(2, 10), r"counts\('same', 2, n, L\)"),
    (lambda: T.counts("zero", 3, 8, 2), "unknown padding 'zero'; choose one of valid, same, full, circular, "
                                        "reflect, replicate, symmetric"),
    (lambda: T.ratio("mirror", 3, 8, 2), "choose one of valid, same"),
    (lambda: T.reflect_counts(7, 3, 1), r"reflect padding needs r ≤ n−1 = 2"),
    (lambda: T.reflect_counts(4, 8, 1), "even"),
    (lambda: T.uniform_counts(3, 8, 1, "same"), r"'same' padding does not read every position k times"),
    (lambda: T.uniform_counts(4, 8, 1, "symmetric"), r"uniform only when \(k−1\)·d is even \(here 3\)"),
    (lambda: T.same_counts(3, 8, -1), "depth L must be at least 0"),
    (lambda: T.survival_constant(1), "k=1 is the identity"),
    (lambda: T.survival_constant(3, "magic"), "choose 'roots', 'integral' or 'series'"),
    (lambda: T.fit_law([1, 2], [1, 2]), "need ≥ 3 depths"),
    (lambda: T.fit_law([1, 2, 3], [1, 0, 2]), "positive and finite"),
    (lambda: T.normal_quantile(1.0), "strictly between 0 and 1"),
    (lambda: T.mc_tolerance(1.0, 100, alpha=2), "alpha must lie in"),
    (lambda: T.layer_adjoint("same", 3, [1, 2], 5), "w has 2 entries"),
    (lambda: T.center_edge_ratio([0, 1, 0]), "no path reaches the edge"),
    (lambda: T.block_upsample([1, 2, 3], 2, 9), "do not fit width n=9"),
    (lambda: T.transfer_matrix("valid", 5, 3), r"needs n ≥ 5"),
    (lambda: T.erf_fraction(1, 3), "k=1 has a one-pixel field"),
    (lambda: T.expected_squared_gradient(4, -1.0, 2), "sigma must be a non-negative number"),
    (lambda: T.same_law_domain(3, 32, rtol=2), r"rtol must lie in \(0, 1\)"),
])
def test_bad_input_raises_with_a_helpful_message(call, match):
    with pytest.raises(EdgewiseError, match=match):
        call()


def test_theory_imports_no_torch():
    import ast
    import importlib
    import inspect
    import pkgutil
    modules = [T] + [importlib.import_module(f"{T.__name__}.{m.name}") for m in pkgutil.iter_modules(T.__path__)]
    siblings = {m.__name__.rsplit(".", 1)[-1] for m in modules[1:]}
    names, rel = set(), set()
    for module in modules:
        tree = ast.parse(inspect.getsource(module))
        names |= {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        names |= {node.module.split(".")[0] for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
        rel |= {(node.level, node.module) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}
    assert names <= {"__future__", "functools", "math", "dataclasses", "fractions", "typing", "numpy"}
    assert {m for lvl, m in rel if lvl == 2} == {"errors"}
    assert {m for lvl, m in rel if lvl == 1} <= siblings and all(lvl in (1, 2) for lvl, _ in rel)


# ----------------------------------------------------------------------- deep limits (Perron vectors)

@pytest.mark.parametrize("k, n", [(3, 32), (5, 101), (7, 64), (3, 1), (9, 40)])
def test_ratio_limit_equals_the_closed_form_where_there_is_one(k, n):
    """Odd-kernel same padding has its own Perron closed form (sin for k = 3); reflect tends to 2."""
    assert T.ratio_limit("same", k, n).limit == pytest.approx(T.same_ratio_limit(k, n), rel=1e-9)
    if n >= 3 and k <= n:
        assert T.ratio_limit("reflect", k, n).limit == pytest.approx(2.0, rel=1e-9)


@pytest.mark.parametrize("padding, k, n", [("same", 64, 256), ("same", 4, 30), ("reflect", 4, 32),
                                           ("replicate", 5, 64), ("symmetric", 6, 50), ("reflect", 64, 256),
                                           ("reflect", 4, 64), ("same", 2, 9, )])
def test_ratio_limit_is_where_the_counts_of_a_deep_stack_go(padding, k, n):
    """The ratio of L layers, counted layer by layer in float64 (scaled each time), reaches the limit by
    L = 40 mixing depths (plus 50) and gets closer from 20 mixing depths on: the mixing depth bounds the rate; the
    start vector's weight on the slower modes, about 1/limit where the limit is small (reflect with k = 4: 1e-5
    on 32 samples, 7.7e-12 on 64), adds ln(1/limit) mixing depths to both."""
    deep = T.ratio_limit(padding, k, n)
    if deep is None:  # a one-sided 2-tap window on 9 positions: its counts drift to one end
        assert (padding, k) == ("same", 2)
        ratios = [float(T.center_edge_ratio(T.counts(padding, k, n, L))) for L in (50, 100)]
        assert ratios[1] < ratios[0] / 10  # (towards 0: no positive limit to give)
        return
    a, v, errors = T.transfer_matrix(padding, k, n).T.astype(np.float64), np.ones(n), {}
    slow = max(0.0, -math.log(deep.limit))  # e-folds the slow modes' weight adds where the limit is small
    depths = (int((20 + slow) * deep.mixing_depth) + 25, int((40 + slow) * deep.mixing_depth) + 50)
    for L in range(1, depths[1] + 1):
        v = a @ v
        v /= v.max()
        if L in depths:
            errors[L] = abs(v[(n - 1) // 2] / ((v[0] + v[-1]) / 2) / deep.limit - 1)
    assert errors[depths[1]] < 1e-6 and errors[depths[1]] <= errors[depths[0]] + 1e-12, errors


def test_ratio_limit_is_none_where_the_width_changes_or_no_single_limit_exists():
    from edgewise.theory.limit import MAX_WIDTH

    assert T.ratio_limit("valid", 3, 32) is None and T.ratio_limit("full", 3, 32) is None
    assert T.ratio_limit("same", 3, 32, dilation=2) is None  # two residue classes: a reducible matrix
    assert T.ratio_limit("same", 2, 64) is None  # a window one side of each position: reducible
    assert T.ratio_limit("same", 3, MAX_WIDTH + 1) is None


def test_primitivity_by_graph_search_equals_wielandts_power():
    from edgewise.theory.limit import _primitive

    rng = np.random.default_rng(0)
    for _ in range(400):
        n = int(rng.integers(1, 7))
        a = (rng.random((n, n)) < 0.35).astype(float)
        power = np.linalg.matrix_power((a > 0).astype(np.int64), (n - 1) ** 2 + 1)
        assert _primitive(a) == bool((power > 0).all()), a


def test_numeric_depth_laws_carry_the_limit_and_their_words_say_it():
    from edgewise.facts import law_words

    law = T.depth_law("same", 64, 256)
    assert law.kind == "numeric" and law.params["limit"] == pytest.approx(6.407487421, rel=1e-8)
    assert "tending to 6.41 as L → ∞" in law_words(law)
    reducible = T.depth_law("reflect", 3, 32, dilation=2)  # two residue classes that never meet
    assert reducible.kind == "numeric" and "limit" not in reducible.params
    assert "tending to" not in law_words(reducible)
