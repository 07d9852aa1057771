"""Per-attribute settings: the one `per_attribute:` section, checked like every other key, and
reaching only that attribute's stages (issue #12: night and sunny need different edits)."""
import json
from pathlib import Path

import pytest

from pipeline.config import (ConfigError, attribute_set_args, load_all, load_section, parse_overrides,
                             per_attribute_overrides, shadowed_overrides)
from pipeline.errors import UserError
from pipeline.semantics.pairs import PairsConfig

TINY = Path(__file__).parent / "configs" / "tiny.yaml"


def preset(tmp_path, extra: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(TINY.read_text() + extra)
    return p


SUNNY = "per_attribute:\n  sunny:\n    pairs: {strength_range: [0.5, 2.0]}\n    rescore: {edit_layers: chosen}\n"


def test_entries_apply_to_their_attribute_only(tmp_path):
    p = preset(tmp_path, SUNNY)
    base, sunny, night = load_all(p), load_all(p, attribute="sunny"), load_all(p, attribute="night")
    assert sunny["pairs"].strength_range == (0.5, 2.0) and sunny["rescore"].edit_layers == "chosen"
    assert base["pairs"] == night["pairs"] and base["rescore"] == night["rescore"]
    assert night["pairs"].strength_range != (0.5, 2.0)
    # the entry wins over a plain --set of the section; --set per_attribute... wins over the preset's entry
    assert load_all(p, ["pairs.strength_range=[0.5,5]"], attribute="sunny")["pairs"].strength_range == (0.5, 2.0)
    assert load_all(p, ["pairs.strength_range=[0.5,5]"], attribute="night")["pairs"].strength_range == (0.5, 5.0)
    over = load_all(p, ["per_attribute.sunny.pairs.strength_range=[1,4]"], attribute="sunny")
    assert over["pairs"].strength_range == (1.0, 4.0) and over["rescore"].edit_layers == "chosen"


@pytest.mark.parametrize("extra, sets, named", [
    ("per_attribute:\n  rainy:\n    pairs: {n: 3}\n", [], r"per_attribute\.rainy: unknown attribute"),
    ("per_attribute:\n  sunny:\n    pairs: {nope: 3}\n", [], r"per_attribute\.sunny\.pairs\.nope"),
    ("per_attribute:\n  sunny:\n    world: {size: [8, 8]}\n", [], r"per_attribute\.sunny\.world.*cannot differ"),
    ("per_attribute:\n  sunny:\n    run: {eval_world: 3}\n", [], r"per_attribute\.sunny\.run\.eval_world"),
    ("per_attribute:\n  sunny:\n    pairs: {strength_range: [3, 1]}\n", [], r"per_attribute\.sunny: .*strength_range"),
    ("per_attribute:\n  sunny:\n    rescore: {edit_layers: some}\n", [], r"per_attribute\.sunny: rescore\.edit_layers"),
    ("per_attribute: [sunny]\n", [], r"per_attribute: expected a mapping"),
    ("", ["per_attribute.sunny.pairs.typo=1"], r"per_attribute\.sunny\.pairs\.typo"),
    ("", ["per_attribute.sunny.strength_range=1"], r"per_attribute\.<attribute>\.<section>\.<key>"),
    ("", ["per_attribute.snowy.train_translator.steps=ten"], r"per_attribute\.snowy: .*steps"),
])
def test_a_bad_entry_is_named(tmp_path, extra, sets, named):
    with pytest.raises(ConfigError, match=named):
        load_all(preset(tmp_path, extra), sets)


def test_an_attribute_of_the_run_or_the_world_is_accepted(tmp_path):
    p = preset(tmp_path, "per_attribute:\n  smile:\n    pairs: {n: 3}\n  foggy:\n    pairs: {n: 4}\n")
    with pytest.raises(ConfigError, match="smile"):
        load_all(p)
    assert load_all(p, ["run.attributes=[smile]"], attribute="smile")["pairs"].n == 3
    foggy = load_all(p, ["run.attributes=[smile]"], attribute="foggy")  # a world attribute, not in the run's
    assert foggy["pairs"].n == 4


def test_a_run_wide_set_that_an_entry_shadows_is_named(tmp_path, capsys):
    """--set pairs.strength_range=... does not reach sunny (its entry wins): said, on the plan too."""
    from pipeline.cli import main

    p = preset(tmp_path, SUNNY)
    sets = ["pairs.strength_range=[0.5,5]", "train_translator.steps=3"]
    lines = shadowed_overrides(p, sets, ["sunny", "night"])
    assert len(lines) == 1 and "pairs.strength_range=[0.5, 5]" in lines[0] and "sunny" in lines[0]
    assert "[0.5, 2.0] wins" in lines[0]
    assert shadowed_overrides(p, sets, ["night"]) == [] and shadowed_overrides(p, [], ["sunny"]) == []
    argv = ["run", str(p), "--out", str(tmp_path / "R"), "--dry-run", "--set", sets[0]]
    assert main(argv) == 0 and "does not reach sunny" in capsys.readouterr().err


def test_set_args_carry_the_entries_to_a_verb(tmp_path):
    """What the run hands a verb for sunny (`--set ...`), read back by the verb's own load_section."""
    p = preset(tmp_path, SUNNY + "    run: {predictor: classifier, predictor_path: /x}\n")
    args = attribute_set_args(p, [], "sunny")
    assert sorted(args) == ["pairs.strength_range=[0.5, 2.0]", 'rescore.edit_layers="chosen"']  # run: stays out
    assert load_section(PairsConfig, "pairs", p, parse_overrides(args)).strength_range == (0.5, 2.0)
    assert attribute_set_args(p, [], "night") == []
    assert per_attribute_overrides(p, [])["sunny"]["run.predictor"] == "classifier"


def test_stage_keys_and_verbs_follow_the_attribute(tmp_path):
    from pipeline.run.runner import Runner
    from pipeline.run.stages import Plan

    def plan(*sets):
        return Plan(TINY, list(sets), tmp_path / "K")

    def keys(p):
        runner = Runner(p.run_dir, p.stages(), log=lambda s: None)
        return {s.name: runner.key(s)[0] for s in p.stages()}

    base = keys(plan())
    p = plan("per_attribute.sunny.pairs.strength_range=[0.5,2]")
    changed = keys(p)
    assert changed["translator-sunny"] != base["translator-sunny"]
    assert {k: v for k, v in changed.items() if k != "translator-sunny" and k != "edit"} == \
           {k: v for k, v in base.items() if k != "translator-sunny" and k != "edit"}
    assert "pairs.strength_range=[0.5, 2]" in p.cfg_args("sunny")
    assert "pairs.strength_range=[0.5, 2]" not in p.cfg_args("night") + p.cfg_args()
    # a per-attribute predictor: the samples are scored by both, only that boundary's key changes
    q = plan("per_attribute.night.run.predictor=classifier", "per_attribute.night.run.predictor_path=/pred")
    assert q.scoring_predictors() == [("photometric", None), ("classifier", "/pred")]
    assert q.predictor_arg("night") == "classifier:/pred" and q.predictor_arg("sunny") == "photometric"
    k = keys(q)
    assert k["boundary-night"] != base["boundary-night"] and k["boundary-sunny"] == base["boundary-sunny"]
    assert "predictor" not in k  # a classifier with its own weights: nothing to train
    # a classifier without a path: the run trains one on world renders, before the samples are scored
    r = plan("per_attribute.night.run.predictor=classifier")
    names = [st.name for st in r.stages()]
    assert names.index("predictor") < names.index("samples")
    assert "predictor" in next(st for st in r.stages() if st.name == "samples").needs
    assert r.predictor_arg("night") == f"classifier:{r.run_dir / 'predictor' / 'classifier'}"
    assert keys(r)["boundary-night"] != base["boundary-night"]
    # pairs filtered by the run's own classifier: trained first, needed by that translator only, in the key by role
    f = plan("per_attribute.night.pairs.filter_predictor=classifier")
    assert f.pair_filter("night") == ("classifier", str(f.run_dir / "predictor" / "classifier"))
    assert f.pair_filter("sunny") is None
    stages = {st.name: st for st in f.stages()}
    assert "predictor" in stages["translator-night"].needs and "predictor" not in stages["translator-sunny"].needs
    elsewhere = Plan(TINY, ["per_attribute.night.pairs.filter_predictor=classifier"], tmp_path / "other")
    assert keys(f) == {k: v for k, v in keys(elsewhere).items()}
    assert keys(f)["translator-night"] != base["translator-night"]
    # on photos there is no run classifier: the error names the setting to give
    photos = tmp_path / "photos"
    photos.mkdir()
    with pytest.raises(UserError, match=r"give per_attribute\.night\.pairs\.filter_predictor_path"):
        Plan(TINY, [f"run.data={photos}", "per_attribute.night.pairs.filter_predictor=classifier"], tmp_path / "P").stages()


def test_the_translator_stage_trains_with_the_attribute_settings(tmp_path):
    """End to end on toy sizes: the sunny bundle records sunny's strength range, night's the section's."""
    from pipeline.run.runner import Runner
    from pipeline.run.stages import Plan

    run = tmp_path / "R"
    sets = ["per_attribute.sunny.pairs.strength_range=[0.25,1.5]",
            "per_attribute.night.run.predictor=classifier", "predictor.n_world=24", "predictor.epochs=1",
            "per_attribute.night.pairs.filter_predictor=classifier", "per_attribute.night.pairs.margin=-1.0",
            "predictor.input_size=[16,16]", "predictor.width=4"]
    plan = Plan(TINY, sets, run)
    stages = [s for s in plan.stages() if not s.name.startswith(("eval-", "edit"))]  # what the settings reach
    Runner(plan.run_dir, stages, log=lambda m: None).run()
    sunny = json.loads((run / "translator-sunny" / "sunny" / "config.json").read_text())
    night = json.loads((run / "translator-night" / "night" / "config.json").read_text())
    assert sunny["strength_range"] == [0.25, 1.5]
    # night's pairs went through the run's own classifier, and its bundle says so; sunny's did not
    assert night["provenance"]["pair_filter"] == {"predictor": "classifier", "margin": -1.0,
                                                  "predictor_path": str(run / "predictor" / "classifier")}
    assert "pair_filter" not in sunny["provenance"]
    assert night["strength_range"] == list(PairsConfig().strength_range)
    # night's boundary was drawn from the run's own world-trained classifier, sunny's from photometric
    assert (run / "predictor" / "classifier" / "model.safetensors").is_file()
    assert json.loads((run / "boundary-night" / "night.json").read_text())["predictor"] == "classifier"
    assert json.loads((run / "boundary-sunny" / "sunny.json").read_text())["predictor"] == "photometric"
