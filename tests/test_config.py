"""Bad input is refused before any work, with a message naming the parameter, its value and the
allowed range."""

import dataclasses
import math

import jax
import pytest

import wow
from wow import ConfigError


def cfg(**kw):
    chain = kw.pop("chain", {})
    electron = kw.pop("electron", {})
    return wow.Config(chain=wow.Chain(**{"N": 256, **chain}), electron=wow.Electron(**electron), **kw)


@pytest.mark.parametrize("kw,words", [
    (dict(chain=dict(N=2)), ["chain.N=2", "[3"]),
    (dict(chain=dict(N=12.5)), ["chain.N", "integer"]),
    (dict(chain=dict(boundary="periodic")), ["chain.boundary='periodic'", "'open'", "'ring'"]),
    (dict(chain=dict(boundary="ring", N=255)), ["chain.N=255", "even"]),
    (dict(chain=dict(mass=0.0)), ["chain.mass=0.0", "(0"]),
    (dict(chain=dict(spring=-1.0)), ["chain.spring"]),
    (dict(temperature=-1.0), ["temperature=-1.0", "[0"]),
    (dict(temperature=math.nan), ["temperature=nan", "finite"]),
    (dict(statistics="quantun"), ["statistics='quantun'", "did you mean 'quantum'"]),
    (dict(dynamics="wave"), ["dynamics='wave'", "'wow'"]),
    (dict(dt=0.0), ["dt=0.0", "(0"]),
    (dict(dt=math.inf), ["dt=inf", "finite"]),
    (dict(dt=100.0), ["dt=100.0", "out of range"]),
    (dict(duration=-5.0), ["duration=-5.0"]),
    (dict(n_frames=0), ["n_frames=0"]),
    (dict(dtype="float16"), ["dtype='float16'", "'float32'"]),
    (dict(recoil="yes"), ["recoil='yes'", "True or False"]),
    (dict(cm_momentum=math.nan), ["cm_momentum=nan"]),
    (dict(electron=dict(sigma=0.0)), ["electron.sigma=0.0", "[0.1278"]),
    (dict(electron=dict(t0=-1.0)), ["electron.t0=-1.0"]),
    (dict(electron=dict(k0=2.0)), ["electron.k0=2.0", "1.22"]),  # π/a = 1.229 1/Å
    (dict(electron=dict(x0=-3.0)), ["electron.x0=-3.0"]),
    (dict(electron=dict(alpha=math.inf)), ["electron.alpha=inf"]),
    (dict(electron=dict(bond_defects=((300, 0.1),))), ["bond_defects[0] bond index=300", "254"]),
    (dict(electron=dict(bond_defects=(5,))), ["bond_defects[0]=5", "pair"]),
    (dict(electron=dict(onsite_defects=((256, 0.1),))), ["onsite_defects[0] site index=256", "255"]),
    (dict(electron=dict(onsite_defects=((3, "x"),))), ["onsite_defects[0] δε"]),
    (dict(dynamics="quantum"), ["dynamics='quantum'", "QuantumLattice"]),
    (dict(quantum=wow.QuantumLattice(modes=(3,))), ["quantum=", "dynamics='wow'"]),
    (dict(duration=200.0), ["packet leaves the open chain", "x0=", "check_inside=False"]),
    (dict(electron=dict(k0=-0.4)), ["electron.k0=-0.4", "towards +x", "k < 0", "0 < k0 < π/a", "mirror"]),
    (dict(electron=dict(k0=0.0)), ["electron.k0=0.0", "0 < k0"]),
    (dict(electron=dict(k0=0.4, x0=200.0)), ["moving right", "the backscattered part reaches", "left end"]),
    (dict(chain=dict(boundary="ring", N=16)), ["sigma=25", "ring"]),
])
def test_bad_input_names_parameter_and_range(kw, words):
    with pytest.raises(ConfigError) as e:
        wow.validate(cfg(**kw))
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_run_refuses_bad_input_before_work():
    good = cfg(duration=4.8)
    with pytest.raises(ConfigError, match="n_samples=0"):
        wow.run(good, 0)
    with pytest.raises(ConfigError, match="seed=-1"):
        wow.run(good, 4, seed=-1)
    with pytest.raises(ConfigError, match="chunk_size=0"):
        wow.run(good, 4, chunk_size=0)
    with pytest.raises(ConfigError, match="dt=-0.1"):
        wow.run(dataclasses.replace(good, dt=-0.1), 4)


def test_misspelt_keyword_is_an_error():
    with pytest.raises(TypeError, match="temprature"):
        wow.Config(temprature=300.0)


def test_float64_without_x64_is_refused():
    with jax.enable_x64(False):
        with pytest.raises(ConfigError, match="jax_enable_x64"):
            wow.validate(cfg(duration=4.8))
        wow.validate(cfg(duration=4.8, dtype="float32"))


def test_check_inside_can_be_turned_off_on_purpose():
    wow.validate(cfg(duration=200.0, check_inside=False))


def test_defaults_are_valid():
    wow.validate(wow.Config())
