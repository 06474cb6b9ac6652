import subprocess
import sys

import pytest

from scorewright.statemap.expr import ExprError, compile_expr
from scorewright.statemap.load import MapError, load

from .conftest import MAPS

HEAD = """version: 1
styles:
  calm: {prompt: "calm ambient", weight: 1}
  fight: {prompt: "battle drums"}
params:
  danger: {min: 0, max: 1, smooth_ms: 100}
states:
  area: [forest, cave]
"""


def test_demo_map_loads():
    smap = load(MAPS / "demo.yaml")
    assert {"explore", "combat"} <= set(smap.styles)
    assert [r.name for r in smap.rules][:2] == ["uneasy", "combat"]
    assert "player_died" in smap.stingers and "player_died" in smap.events


BAD_MAPS = [
    # (yaml after HEAD, expected line:col, text in message)
    ("rules:\n  - when: danger > 0.5\n    blend: {fight: 1}\n    drumz: on\n", "12:5", "unknown key 'drumz'"),
    ("rules:\n  - when: dangr > 0.5\n", "10:11", "unknown name 'dangr'"),
    ("rules:\n  - when: \"__import__('os').system('x')\"\n", "10:12", "not allowed"),
    ("rules:\n  - when: \"danger.real > 1\"\n", "10:12", "attribute access"),
    ("rules:\n  - when: \"area == 'caev'\"\n", "10:20", "'caev' is not a value of state 'area'"),
    ("rules:\n  - when: danger > \n", "10:11", "syntax error"),
    ("rules:\n  - when: danger > 0.5\n    blend: {boss: 1}\n", "11:13", "unknown style 'boss'"),
    ("rules:\n  - when: danger > 0.5\n    transition: {at: barr}\n", "11:22", 'expected one of "immediate"'),
    ("rules:\n  - when: danger > 0.5\n    notes: motifs/none.mid\n", "11:12", "file not found"),
    ("rules:\n  - when: danger > 0.5\n    notes: ../../etc/x.mid\n", "11:12", "outside the map's folder"),
    ("stingers:\n  died: {bars: 2}\n", "10:9", "one of 'prompt' or 'style'"),
    ("stingers:\n  died: {style: nope}\n", "10:17", "unknown style 'nope'"),
    ("tempo: fast\n", "9:8", "Fixed tempo in BPM"),
    ("seed: -3\n", "9:7", "bad value -3"),
    ("params2: {}\n", "9:1", "unknown key 'params2'"),
    ("rules:\n  - blend: {fight: 1}\n", "10:5", "'when' is missing"),
    ("rules:\n  - when: x\n  - when: [1\n", "12:1", "YAML syntax"),
    ("rules:\n  - when: danger > 0.5\n    blend: {fight: \"danger *\"}\n", "11:21", "syntax error"),
    ("rules:\n  - when: danger > 0.5\n    name: a\n  - when: danger > 0.6\n    name: a\n", "13:11",
     "duplicate rule name 'a'"),
    ("rules:\n  - when: \"time_in(area) > 2\"\n", "10:12", "time_in() takes the name of a state group"),
    ("rules:\n  - when: danger > 0.5\n    priority: high\n", "11:15", "bad value \"high\""),
    ("rules:\n  - when: danger > 0.5\n    transition: {bridge: {style: nope}}\n", "11:34",
     "unknown style 'nope'"),
    ("stingers:\n  died: {style: calm, then: {state: {area: moon}}}\n", "10:44", "no value 'moon'"),
    ("stingers:\n  died: {style: calm, then: restart}\n", "10:29", "'resume', or {state"),
    ("includes: [../../elsewhere.yaml]\n", "9:12", "outside the map's folder"),
    ("includes: [missing.yaml]\n", "9:12", "file not found"),
    ("styles2: {}\n", "9:1", "unknown key 'styles2'"),
    ("generation: {preset: studio}\n", "9:22", 'expected one of "engine", "apps"'),
    ("rules:\n  - when: danger > 0.5\n    blend: {fight: area}\n", "11:20",
     "a blend weight must be a number, got a string"),
]


@pytest.mark.parametrize("tail,where,text", BAD_MAPS, ids=[b[2][:30] for b in BAD_MAPS])
def test_bad_maps_point_at_the_problem(write_map, tail, where, text):
    path = write_map(HEAD + tail)
    with pytest.raises(MapError) as e:
        load(path)
    report = str(e.value)
    assert f"{path}:{where}:" in report, report
    assert text in report, report


def test_style_problems(write_map):
    cases = {
        "styles:\n  a: {blend: {b: 1}}\n  b: {blend: {a: 1}}\n": "blends itself",
        "styles:\n  a: {prompt: x, audio: y.wav}\n": "exactly one of 'prompt'",
        "styles:\n  a: {audio: nothing.wav}\n": "file not found: 'nothing.wav'",
        "styles:\n  a: {blend: {ghost: 1}}\n": "unknown style 'ghost'",
    }
    for body, text in cases.items():
        with pytest.raises(MapError, match=text):
            load(write_map("version: 1\n" + body))


def test_param_curve_points_must_increase(write_map):
    path = write_map(HEAD.replace("{min: 0, max: 1, smooth_ms: 100}", "{curve: [[0.5, 0], [0.2, 1]]}"))
    with pytest.raises(MapError, match=r"map.yaml:6:\d+: params.danger.curve: curve points need increasing"):
        load(path)


def test_includes_merge_and_report_in_their_own_file(write_map, tmp_path):
    (tmp_path / "more.yaml").write_text("styles:\n  extra: {prompt: x}\nrules:\n  - when: danger > 2\n"
                                        "    blend: {extra: 1}\n")
    smap = load(write_map(HEAD + "includes: [more.yaml]\nrules:\n  - when: danger > 0.5\n"))
    assert "extra" in smap.styles and len(smap.rules) == 2
    assert smap.files[1] == (tmp_path / "more.yaml").resolve()
    (tmp_path / "bad.yaml").write_text("rules:\n  - when: dangr > 2\n")
    with pytest.raises(MapError) as e:
        load(write_map(HEAD + "includes: [bad.yaml]\n", "main.yaml"))
    assert f"{tmp_path / 'bad.yaml'}:2:11: rules[0].when: bad expression" in str(e.value)
    (tmp_path / "dupe.yaml").write_text("styles:\n  calm: {prompt: y}\n")
    with pytest.raises(MapError, match=r"dupe.yaml:2:3: styles.calm: duplicate style 'calm': also defined "
                       r"at .*main2.yaml:3:3"):
        load(write_map(HEAD + "includes: [dupe.yaml]\n", "main2.yaml"))


def test_include_cycle(write_map, tmp_path):
    (tmp_path / "a.yaml").write_text("includes: [b.yaml]\n")
    (tmp_path / "b.yaml").write_text("includes: [a.yaml]\n")
    with pytest.raises(MapError, match=r"b.yaml:1:12: includes\[0\]: include cycle: map.yaml -> a.yaml -> "
                       r"b.yaml -> a.yaml"):
        load(write_map(HEAD + "includes: [a.yaml]\n"))


def test_duplicate_keys_are_errors(write_map):
    path = write_map(HEAD.replace("states:", "params:\n  other: {}\nstates:"))
    with pytest.raises(MapError, match="duplicate key 'params'"):
        load(path)


def test_several_problems_are_reported_at_once(write_map):
    path = write_map(HEAD + "rules:\n  - when: foo > 1\n  - when: baz > 1\n")
    with pytest.raises(MapError) as e:
        load(path)
    assert len(e.value.problems) == 2


def test_param_range_checks(write_map):
    path = write_map(HEAD.replace("{min: 0, max: 1, smooth_ms: 100}", "{min: 1, max: 0}"))
    with pytest.raises(MapError, match="max .* must be greater than min"):
        load(path)


def test_validate_command_exit_codes(write_map):
    good = subprocess.run([sys.executable, "-m", "scorewright.cli", "validate", str(MAPS / "demo.yaml")],
                          capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    bad_path = write_map(HEAD + "rules:\n  - when: dangr > 1\n")
    bad = subprocess.run([sys.executable, "-m", "scorewright.cli", "validate", str(bad_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 1
    assert f"{bad_path}:10:11: rules[0].when: bad expression" in bad.stdout


KNOWN = {"danger": "number", "area": "state:forest|cave"}


@pytest.mark.parametrize("text,env,want", [
    ("danger > 0.5 and area == 'cave'", {"danger": 0.7, "area": "cave"}, True),
    ("not (danger > 0.5) or area != 'cave'", {"danger": 0.7, "area": "cave"}, False),
    ("clamp(danger * 2 - 0.5)", {"danger": 0.5}, 0.5),
    ("min(danger, 0.3) + max(0, -1) / 2", {"danger": 0.9}, 0.3),
    ("0.2 < danger <= 0.6", {"danger": 0.6}, True),
    ("-danger", {"danger": 0.25}, -0.25),
])
def test_expressions_evaluate(text, env, want):
    assert compile_expr(text, KNOWN)(env) == pytest.approx(want)


@pytest.mark.parametrize("text", ["__import__('os')", "open('x')", "danger.real", "[1, 2]",
                                  "danger if danger else 1", "lambda: 1", "danger ** 2",
                                  "f'{danger}'", "danger[0]", "(x := 1)"])
def test_unsafe_expressions_are_refused(text):
    with pytest.raises(ExprError):
        compile_expr(text, KNOWN)


def test_runtime_errors_are_expr_errors():
    expr = compile_expr("1 / danger", KNOWN)
    with pytest.raises(ExprError, match="division by zero"):
        expr({"danger": 0.0})
    with pytest.raises(ExprError, match="needs a number, got a string"):
        compile_expr("area + 1", KNOWN)                  # types are checked when the map loads
    with pytest.raises(ExprError, match="cannot compare a string with a number"):
        compile_expr("area == danger", KNOWN)


def test_reserved_names_are_refused(write_map):
    with pytest.raises(MapError, match=r"map.yaml:7:3: params.beat: 'beat' is a built-in name"):
        load(write_map(HEAD.replace("states:", "  beat: {}\nstates:")))


def test_yaml_boolean_names_and_keyword_calls_are_explained(write_map):
    path = write_map("version: 1\nstyles:\n  a: {prompt: x, weight: 1}\nparams:\n  on: {min: 0, max: 1}\n"
                     "rules:\n  - when: \"clamp(t, lo=0) > 0.5\"\n    blend: {a: 1}\n")
    with pytest.raises(MapError) as e:
        load(path)
    text = str(e.value)
    assert ":5:3: params: the name 'on' is a YAML boolean" in text
    assert "clamp() takes its arguments in order" in text
