"""Shape metrics of maps over input positions: radial profile, centre of mass, Gaussian width, area ratio."""

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgewise import EdgewiseError
from edgewise.maps import (
    area_ratio, center_of_mass, center_offset, gaussian_width, log_correlation, map_metrics, position_summary,
    radial_profile,
)


def gaussian(shape, mean, sigma, amplitude=1.0):
    grids = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    return amplitude * np.exp(-sum((g - m) ** 2 / (2 * s ** 2) for g, m, s in zip(grids, mean, sigma)))


# --- radial profile -------------------------------------------------------------------------------

def test_radial_profile_by_hand_2d():
    radii, means = radial_profile(np.array([[0, 1, 0], [2, 9, 3], [0, 4, 0]], dtype=float))
    assert radii.tolist() == [0, 1] and means.tolist() == [9.0, 1.25]  # corners (√2) round to ring 1
    # 2x4: centre (0.5, 1.5); the middle columns are 0.71 away (ring 1), the outer ones 1.58 (ring 2)
    radii, means = radial_profile(np.array([[1, 2, 3, 4], [5, 6, 7, 10]], dtype=float))
    assert radii.tolist() == [1, 2] and means.tolist() == [4.5, 5.0]


def test_radial_profile_1d_rounds_halves_up():
    radii, means = radial_profile(np.array([1.0, 3.0, 5.0, 11.0]))  # distances 1.5, .5, .5, 1.5
    assert radii.tolist() == [1, 2] and means.tolist() == [4.0, 6.0]
    radii, means = radial_profile(np.arange(6.0))  # distances 2.5 … 0.5: rings 3, 2, 1, 1, 2, 3
    assert radii.tolist() == [1, 2, 3] and means.tolist() == [2.5, 2.5, 2.5]
    assert radial_profile([-1.0, 2.0, -1.0])[1].tolist() == [2.0, -1.0]  # signed maps averaged as they are


# --- centre of mass -------------------------------------------------------------------------------

def test_center_of_mass_by_hand_uses_absolute_values():
    assert center_of_mass(np.array([[1.0, 0, 0], [0, 0, -3.0]])) == (0.75, 1.5)
    assert center_of_mass(np.array([0.0, 2.0, 0.0, 2.0])) == (2.0,)
    assert all(math.isnan(x) for x in center_of_mass(np.zeros((3, 4))))


def test_shifted_blob_on_a_non_square_map_is_row_col():
    m = np.zeros((9, 15))
    m[1:4, 10:13] = 1.0  # a 3x3 box centred on row 2, col 11; the geometric centre is (4, 7)
    assert center_of_mass(m) == (2.0, 11.0)
    assert center_offset(m) == (-2.0, 4.0)
    fit = gaussian_width(gaussian((9, 15), (2.0, 11.0), (1.0, 1.5)))
    assert fit.center == pytest.approx((2.0, 11.0), abs=1e-9)
    assert fit.sigma == pytest.approx((1.0, 1.5), rel=1e-6)
    assert center_offset(np.arange(4.0)) == (pytest.approx(14 / 6 - 1.5),)  # centre 1.5, mass at 14/6


# --- Gaussian width -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,mean,sigma", [
    ((21, 31), (9.3, 16.7), (2.0, 3.5)),
    ((64, 64), (31.5, 31.5), (12.0, 12.0)),  # wide: truncated at the border, the moments underestimate
    ((41,), (20.0,), (4.2,)),
])
def test_gaussian_width_recovers_a_synthetic_gaussian(shape, mean, sigma):
    g = gaussian_width(gaussian(shape, mean, sigma, amplitude=5.0))
    assert g.sigma == pytest.approx(sigma, rel=1e-3) and g.note is None
    assert g.center == pytest.approx(mean, abs=1e-6)
    assert len(g.sigma_moments) == len(shape) and all(s > 0 for s in g.sigma_moments)


def test_gaussian_width_moments_by_hand():
    g = gaussian_width(np.array([1.0, 0.0, 1.0]))  # mass at ±1 around 1: variance 1
    assert g.sigma_moments == (1.0,)
    g = gaussian_width(np.array([[0.0, 0, 0], [2.0, 0, 2.0], [0, 0, 0]]))
    assert g.sigma_moments == (0.0, 1.0)


def test_gaussian_width_on_degenerate_maps_is_nan_or_zero_with_a_reason():
    flat = gaussian_width(np.ones((6, 9)))
    assert all(math.isnan(s) for s in flat.sigma) and "flat" in flat.note
    assert flat.sigma_moments == pytest.approx((math.sqrt(35 / 12), math.sqrt(80 / 12)))
    delta = np.zeros((7, 9))
    delta[3, 4] = 1.0
    d = gaussian_width(delta)
    assert d.sigma == (0.0, 0.0) and d.sigma_moments == (0.0, 0.0) and "narrower than a pixel" in d.note
    line = np.zeros((8, 5))
    line[:, 2] = 1.0  # flat down the rows, a delta across the columns
    g = gaussian_width(line)
    assert math.isnan(g.sigma[0]) and g.sigma[1] == 0.0 and "flat along axis 0" in g.note
    zero = gaussian_width(np.zeros(5))
    assert math.isnan(zero.sigma[0]) and "zero" in zero.note
    single = gaussian_width(gaussian((1, 15), (0, 7), (1, 2.0)))
    assert math.isnan(single.sigma[0]) and single.sigma[1] == pytest.approx(2.0) and "single position" in single.note


# --- area ratio -----------------------------------------------------------------------------------

def test_area_ratio_on_a_delta_is_tiny_and_at_a_corner_is_everything():
    delta = np.zeros((11, 11))
    delta[5, 5] = 1.0
    assert area_ratio(delta) == {0.2: 1 / 121, 0.3: 1 / 121, 0.5: 1 / 121, 0.99: 1 / 121}
    even = np.zeros((4, 4))
    even[1, 2] = 1.0  # the smallest window of an even axis is its central two positions
    assert area_ratio(even, fractions=(0.5,)) == {0.5: 4 / 16}
    corner = np.zeros((5, 7))
    corner[4, 0] = 1.0
    assert area_ratio(corner, fractions=(0.01,)) == {0.01: 1.0}


def test_area_ratio_on_a_uniform_map_is_about_the_fraction():
    assert area_ratio(np.ones((10, 10)), fractions=(0.04, 0.16, 0.36, 0.64)) == {0.04: 0.04, 0.16: 0.16,
                                                                                 0.36: 0.36, 0.64: 0.64}
    for f, r in area_ratio(np.ones((101, 101))).items():
        assert f <= r < f + 0.025
    assert area_ratio(np.ones(20), fractions=(0.5,)) == {0.5: 0.5}


def test_area_ratio_clips_to_non_square_maps():
    # 3x9: windows 1x1, 3x3, then 3x5 (the rows are used up), 3x7, 3x9
    assert area_ratio(np.ones((3, 9)), fractions=(0.1, 0.5, 0.6)) == {0.1: 9 / 27, 0.5: 15 / 27, 0.6: 21 / 27}
    assert area_ratio(np.ones((4, 5)), fractions=(0.1,)) == {0.1: 2 / 20}  # 2 rows x 1 col
    assert all(math.isnan(r) for r in area_ratio(np.zeros((3, 3))).values())
    with pytest.raises(EdgewiseError, match=r"fractions must lie in \(0, 1\], got 1.5"):
        area_ratio(np.ones(3), fractions=(1.5,))


def dense_jacobian(grids, axes, p):
    """The reference: the model's Jacobian built column by column at full size (∂g/∂A, then ∂g/∂μ_k and
    ∂g/∂log σ_k per fitted axis, each from its own formula), one row per map position."""
    mesh = np.meshgrid(*grids, indexing="ij")
    g = p[0] * np.exp(-sum((mesh[k] - p[1 + 2 * j]) ** 2 / (2 * math.exp(2 * p[2 + 2 * j]))
                           for j, k in enumerate(axes)))
    cols = [g / p[0]]
    for j, k in enumerate(axes):
        d, s2 = mesh[k] - p[1 + 2 * j], math.exp(2 * p[2 + 2 * j])
        cols += [g * d / s2, g * d * d / s2]
    return g, np.stack([c.ravel() for c in cols], axis=1)


@pytest.mark.parametrize("seed", range(12))
def test_the_gaussian_fits_normal_equations_from_per_axis_factors_are_the_dense_ones(seed):
    """The fit's JᵀJ and Jᵀr, from one vector per axis, equal those of the Jacobian built at full size (1-D, 2-D,
    one axis held constant), and its model equals the Gaussian."""
    from edgewise.maps import _gaussian_model, _normal_equations

    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(2, 40, size=1 + seed % 2))
    grids = [np.arange(n, dtype=np.float64) for n in shape]
    residual = rng.normal(size=shape)
    for axes in ([0], [0, 1]) if len(shape) == 2 else ([0],):
        p = np.array([rng.uniform(0.5, 3)] + [x for k in axes for x in (rng.uniform(-2, shape[k] + 2),
                                                                           math.log(rng.uniform(0.3, shape[k])))])
        g, factors = _gaussian_model(grids, axes, p)
        ref_g, J = dense_jacobian(grids, axes, p)
        jtj, jtr = _normal_equations(factors, residual)
        assert g == pytest.approx(ref_g, rel=1e-12, abs=1e-300)
        assert jtj == pytest.approx(J.T @ J, rel=1e-10, abs=1e-12 * np.abs(J.T @ J).max())
        assert jtr == pytest.approx(J.T @ residual.ravel(), rel=1e-10, abs=1e-10 * np.abs(J).sum())


def slow_area_ratio(w, fractions):
    """The reference: the centred window of each step summed out of the map itself, one step at a time."""
    w = np.abs(np.asarray(w, dtype=np.float64))
    total = w.sum()
    out = {}
    for f in fractions:
        for h in range(max(w.shape)):
            box = []
            for n in w.shape:
                c, k = (n - 1) // 2, min(h, n - 1)
                box.append((max(c - k, 0), min(c + k + 1 - n % 2, n - 1)))
            window = w[tuple(slice(lo, hi + 1) for lo, hi in box)]
            if window.sum() >= f * total * (1 - 1e-12) or h == max(w.shape) - 1:
                out[f] = window.size / w.size
                break
    return out


@settings(max_examples=60, deadline=None)
@given(st.one_of(arrays(np.float64, st.tuples(st.integers(1, 9), st.integers(1, 9)),
                        elements=st.floats(0, 10, allow_subnormal=False)),
                 arrays(np.float64, st.tuples(st.integers(1, 40)), elements=st.floats(0, 10, allow_subnormal=False))),
       st.lists(st.sampled_from([0.01, 0.2, 0.3, 0.5, 0.9, 0.99, 1.0]), min_size=1, max_size=4, unique=True))
def test_area_ratio_is_the_reference_step_by_step(m, fractions):
    """Every step's window at once (odd, even, non-square, 1-D, sparse maps) is the window grown step by step.
    (Not on subnormal maps: there the reference's f·total underflows to 0, so its first window holds "enough"
    with nothing in it; found by a random draw, [5e-324, 0, 0] at 1 %.)"""
    if not m.any():
        assert all(math.isnan(r) for r in area_ratio(m, fractions).values())
        return
    assert area_ratio(m, fractions) == pytest.approx(slow_area_ratio(m, fractions), abs=0)


def test_area_ratio_of_a_long_1d_map():
    """A 1-D map of 2**15 positions (audio): a centred box of 1 % of the length holds about 1 % of the mass."""
    m = np.ones(2 ** 15)
    assert area_ratio(m, fractions=(0.01, 0.5)) == pytest.approx(slow_area_ratio(m, (0.01, 0.5)), abs=0)


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)),
              elements=st.floats(-10, 10, allow_nan=False, width=32)))
def test_transposing_a_map_swaps_the_axes(m):
    com, com_t = center_of_mass(m), center_of_mass(m.T)
    np.testing.assert_allclose(com, com_t[::-1], equal_nan=True)
    ratios = area_ratio(m, fractions=(0.1, 0.5, 0.9, 1.0))
    assert ratios == area_ratio(m.T, fractions=(0.1, 0.5, 0.9, 1.0)) or np.abs(m).sum() == 0
    values = list(ratios.values())
    assert values == sorted(values) or np.isnan(values).all()


# --- map_metrics ----------------------------------------------------------------------------------

def test_map_metrics_keys_and_json():
    m = np.array([[1.0, 2, 1], [2, 4, 2], [1, 2, 1], [0, 0, 0]])
    out = map_metrics(m)
    summary = position_summary(m)
    assert {k: out[k] for k in summary} == summary
    assert set(out) - set(summary) == {"radial_profile", "center_of_mass", "center_offset", "gaussian_sigma",
                                       "gaussian_sigma_moments", "gaussian_note", "area_ratio"}
    assert set(out["radial_profile"]) == {"radii", "means", "log10_means"}
    assert list(out["area_ratio"]) == ["20", "30", "50", "99"]
    assert out["center_of_mass"] == [1.0, 1.0] and out["center_offset"] == [-0.5, 0.0]
    back = json.loads(json.dumps(out))
    assert back["radial_profile"]["radii"] == out["radial_profile"]["radii"]
    assert isinstance(out["gaussian_sigma"], list) and isinstance(out["gaussian_sigma"][0], float)


def test_map_metrics_on_a_signed_map_with_zeros_does_not_warn():
    m = np.array([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = map_metrics(m)
    assert out["radial_profile"]["means"] == [4.0, -0.5]
    assert out["center_of_mass"] == [1.0, 1.0] and out["area_ratio"]["50"] == pytest.approx(1 / 9)


def test_map_metrics_on_exact_ints_including_huge_ones():
    small = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=object)
    out = map_metrics(small)
    assert out["center"] == 4 and out["center_corner_ratio"] == 4.0
    huge = np.array([[x * 10**500 for x in row] for row in small.tolist()], dtype=object)
    log10 = np.array([[math.log10(x) + 500 for x in row] for row in small.tolist()])
    for big in (map_metrics(huge), map_metrics(huge, log10)):
        assert big["center"] == 4 * 10**500 and big["center_corner_ratio"] == 4.0
        assert big["radial_profile"]["means"] == [math.inf, math.inf]
        assert big["radial_profile"]["log10_means"] == pytest.approx([500 + math.log10(4), 500 + math.log10(1.5)])
        for key in ("center_of_mass", "center_offset", "gaussian_sigma_moments", "area_ratio"):
            assert big[key] == pytest.approx(out[key]), key
        json.dumps(big)


def test_map_metrics_trusts_log10_for_scaled_float_counts():
    counts = np.array([1.0, 3.0, 6.0, 3.0, 1.0])  # like PathCounts.counts with scale 400
    out = map_metrics(counts, np.log10(counts) + 400)
    assert out["log10_center"] == pytest.approx(400 + math.log10(6))
    assert out["radial_profile"]["log10_means"] == pytest.approx([400 + math.log10(6), 400 + math.log10(3), 400])
    assert out["center_of_mass"] == [2.0] and out["area_ratio"]["50"] == 0.6
    mid = map_metrics(counts, np.log10(counts) + 100)["radial_profile"]["means"]
    assert mid == pytest.approx([6e100, 3e100, 1e100], rel=1e-12)


# --- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [radial_profile, center_of_mass, center_offset, gaussian_width, area_ratio, map_metrics])
def test_bad_maps_raise_helpful_errors(fn):
    with pytest.raises(EdgewiseError, match=r"shape \(L,\) or \(H, W\), got shape \(2, 3, 4\); reduce"):
        fn(np.ones((2, 3, 4)))
    with pytest.raises(EdgewiseError, match=r"empty \(shape \(0,\)\)"):
        fn(np.array([]))
    with pytest.raises(EdgewiseError, match=r"holds nan at position \(0, 1\)"):
        fn(np.array([[1.0, np.nan]]))
    with pytest.raises(EdgewiseError, match="expected numbers"):
        fn(np.array(["a", "b"]))


def test_bad_log10_is_reported():
    with pytest.raises(EdgewiseError, match=r"log10 has shape \(2,\) but the map has shape \(3,\)"):
        map_metrics(np.ones(3), np.zeros(2))
    with pytest.raises(EdgewiseError, match="object maps must hold Python ints or floats, found str"):
        map_metrics(np.array([1, "x"], dtype=object))


def test_no_log_correlation_with_a_map_that_is_the_same_everywhere():
    # a ViT's uniform path counts: np.std of 4096 copies of log10(1.8e221) is 5.7e-14, not 0, and r was noise
    rng = np.random.default_rng(0)
    flat = np.full((64, 64), 1.8358662e+221)
    assert np.std(np.log10(flat)) > 0
    assert math.isnan(log_correlation(rng.random((64, 64)) + 0.5, flat))
    assert math.isnan(log_correlation(flat, rng.random((64, 64)) + 0.5))
    assert math.isfinite(log_correlation(rng.random((64, 64)) + 0.5, flat * (1 + rng.random((64, 64)))))
