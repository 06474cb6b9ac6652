"""Schema and loader agree: generated valid maps load (and run); mutated ones fail, located."""


import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scorewright.statemap.director import Director
from scorewright.statemap.load import MapError, load_text

from .fakes import ToneBackend
from .tolerance import unit_norm_bound

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: n not in {"t", "beat", "bar", "true", "false", "on", "off", "min", "max", "clamp", "abs",
                        "time_in"})


@st.composite
def valid_maps(draw) -> dict:
    names = draw(st.lists(NAMES, min_size=3, max_size=12, unique=True))
    styles = names[:draw(st.integers(1, 3))]
    rest = names[len(styles):]
    params = rest[:draw(st.integers(0, min(2, len(rest))))]
    groups = rest[len(params):len(params) + draw(st.integers(0, 2))]
    m: dict = {"version": 1, "seed": draw(st.integers(0, 1000)),
               "styles": {s: {"prompt": f"music {s}", "weight": draw(st.sampled_from([0, 0.5, 1]))}
                          for s in styles}}
    if params:
        m["params"] = {}
        for p in params:
            spec = {"min": 0, "max": 10, "default": draw(st.integers(0, 10))}
            spec.update(draw(st.fixed_dictionaries({}, optional={
                "attack_ms": st.integers(0, 2000), "release_ms": st.integers(0, 2000),
                "slew": st.integers(1, 20), "curve": st.sampled_from(["linear", "exp", "s_curve"])})))
            m["params"][p] = spec
    if groups:
        m["states"] = {g: [f"v{i}" for i in range(draw(st.integers(1, 3)))] for g in groups}
    conditions = [f"{p} > {draw(st.integers(0, 10))}" for p in params]
    conditions += [f"{g} == 'v0'" for g in groups] + ["t > 1", "bar >= 2"]
    rules = []
    for i in range(draw(st.integers(0, 5))):
        when = " and ".join(draw(st.lists(st.sampled_from(conditions), min_size=1, max_size=2)))
        rule = {"name": f"r{i}", "when": when,
                "blend": {draw(st.sampled_from(styles)): draw(st.sampled_from(
                    [1, 0.5] + [f"{p} / 10" for p in params]))}}
        rule.update(draw(st.fixed_dictionaries({}, optional={
            "drums": st.sampled_from([True, False, "free"]), "priority": st.integers(0, 3),
            "hold_ms": st.integers(0, 1000), "tempo": st.integers(60, 180),
            "transition": st.fixed_dictionaries({"at": st.sampled_from(["immediate", "beat", "bar"]),
                                                 "fade_ms": st.integers(0, 3000)})})))
        rules.append(rule)
    if rules:
        m["rules"] = rules
    if draw(st.booleans()):
        m["stingers"] = {"hit": {"style": styles[0], "beats": draw(st.integers(1, 8))}}
    return m


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_maps())
def test_valid_maps_load_and_run(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("m") / "map.yaml"
    smap = load_text(yaml.safe_dump(data, sort_keys=False), path)
    director = Director(smap, ToneBackend())
    for k in range(60):
        if k == 10 and smap.params:
            director.set_param(next(iter(smap.params)), 7.0)
        if k == 20 and smap.stingers:
            director.trigger("hit")
        cond = director.step()
        assert abs(float(np.linalg.norm(cond.style)) - 1.0) <= unit_norm_bound(len(cond.style))


MUTATIONS = ["unknown_top_key", "unknown_rule_key", "bad_name_in_when", "string_min", "no_styles",
             "unknown_blend_style", "bad_drums"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_maps(), st.sampled_from(MUTATIONS))
def test_mutated_maps_fail_with_a_located_error(tmp_path_factory, data, mutation):
    rules = data.get("rules")
    if mutation == "unknown_top_key":
        data["colour"] = "blue"
    elif mutation in ("unknown_rule_key", "bad_name_in_when", "unknown_blend_style", "bad_drums"):
        if not rules:
            data["rules"] = rules = [{"when": "t > 1"}]
        target = rules[-1]
        if mutation == "unknown_rule_key":
            target["whn"] = "t > 1"
        elif mutation == "bad_name_in_when":
            target["when"] = "zz_undefined > 1"
        elif mutation == "unknown_blend_style":
            target["blend"] = {"zz_nostyle": 1}
        else:
            target["drums"] = "loud"
    elif mutation == "string_min":
        data["params"] = {"zz": {"min": "low"}}
    elif mutation == "no_styles":
        del data["styles"]
    text = yaml.safe_dump(data, sort_keys=False)
    path = tmp_path_factory.mktemp("m") / "map.yaml"
    try:
        load_text(text, path)
    except MapError as e:
        lines = text.count("\n") + 1
        for p in e.problems:
            assert p.file == str(path)
            assert 1 <= p.line <= lines and p.col >= 1
            assert str(p).startswith(f"{path}:{p.line}:{p.col}: ")
    else:
        raise AssertionError(f"mutation {mutation} was accepted:\n{text}")
