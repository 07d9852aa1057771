"""The config system and the CLI skeleton: user errors name the key, exit codes hold."""
import dataclasses
import shutil
import subprocess
import sys
from typing import Literal, Optional

import pytest

from pipeline.cli import main
from pipeline.config import (CONFIG_DIR, KNOWN_SECTIONS, ConfigError, from_dict, load_all, load_section,
                             parse_overrides, section_class)


@dataclasses.dataclass
class Inner:
    depth: int = 2


@dataclasses.dataclass
class Sample:
    lr: float = 0.002
    size: tuple[int, int] = (64, 64)
    mode: Literal["a", "b"] = "a"
    name: Optional[str] = None
    flag: bool = False
    inner: Inner = dataclasses.field(default_factory=Inner)


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_preset_and_overrides_fill_types(tmp_path):
    p = write(tmp_path, "train_gan:\n  lr: 1\n  size: [32, 64]\n  inner: {depth: 3}\n")
    cfg = load_section(Sample, "train_gan", p, ["train_gan.mode=b", "train_gan.flag=true", "world.size=9"])
    assert cfg == Sample(lr=1.0, size=(32, 64), mode="b", flag=True, inner=Inner(3))
    assert isinstance(cfg.lr, float)
    # YAML 1.1 reads 5e-5 (no dot) as a string: a float field still takes it
    assert load_section(Sample, "train_gan", p, ["train_gan.lr=5e-5"]).lr == 5e-5


@pytest.mark.parametrize(
    "text,overrides,needle",
    [
        ("train_gan:\n  lrr: 1\n", [], "train_gan.lrr"),
        ("train_gan:\n  lr: fast\n", [], "train_gan.lr"),
        ("train_gan:\n  inner: {deep: 1}\n", [], "train_gan.inner.deep"),
        ("trian_gan:\n  lr: 1\n", [], "trian_gan"),
        ("", ["train_gan.mode=c"], "train_gan.mode"),
        ("", ["train_gan.size=[1,2,3]"], "train_gan.size"),
        ("", ["nosection.x=1"], "nosection"),
        ("", ["train_gan.flag=maybe"], "train_gan.flag"),
        ("", ["train_gan.lr=nan"], "train_gan.lr"),
    ],
)
def test_bad_keys_and_values_name_the_key(tmp_path, text, overrides, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_section(Sample, "train_gan", write(tmp_path, text), overrides)


def test_override_syntax_error():
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["novalue"])
    assert from_dict(Sample, {}) == Sample()


def test_cli_help_version_and_unknown(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--attribute" in out and "commands:" in out
    assert main(["--version"]) == 0
    assert "photoedit" in capsys.readouterr().out
    assert main(["no-such-verb"]) == 2
    assert "no-such-verb" in capsys.readouterr().err


def test_edit_without_bundle_says_where_it_looked(tmp_path, capsys, monkeypatch):
    img = tmp_path / "a.jpg"
    img.write_bytes(b"x")
    monkeypatch.setenv("PHOTOEDIT_MODELS", str(tmp_path / "envmodels"))
    code = main(["--attribute", "nosuchattr", str(img), "--models", str(tmp_path / "mine")])
    err = capsys.readouterr().err
    assert code == 2
    assert "nosuchattr" in err and str(tmp_path / "mine") in err and "envmodels" in err


def test_console_script_runs_a_verb_end_to_end(tmp_path):
    """The installed `photoedit` script (not main() in-process) parses, runs and exits like a user sees it."""
    exe = shutil.which("photoedit")
    assert exe, "the console script is not installed (pip install -e .)"
    r = subprocess.run([exe, "world", "--n", "2", "--size", "16x24", "--out", str(tmp_path / "w")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "w" / "images").iterdir()) == ["000000.png", "000001.png"]
    bad = subprocess.run([exe, "world", "--n", "2", "--out", str(tmp_path / "x"), "--set", "world.nope=1"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "world.nope" in bad.stderr


def test_every_section_has_a_dataclass_and_every_preset_resolves():
    for name in KNOWN_SECTIONS:
        assert dataclasses.is_dataclass(section_class(name)), name
    for preset in sorted(CONFIG_DIR.glob("*.yaml")):
        resolved = load_all(preset)
        assert set(resolved) == set(KNOWN_SECTIONS)


def test_load_all_rejects_a_bad_key_in_any_section(tmp_path):
    p = write(tmp_path, "rescore:\n  n: 8\n  distanse: 2\n")
    with pytest.raises(ConfigError, match=r"rescore\.distanse"):
        load_all(p)
    with pytest.raises(ConfigError, match=r"pairs\.nope"):
        load_all("quickstart", ["pairs.nope=1"])
    with pytest.raises(ConfigError, match=r"sample\.n"):
        load_all("quickstart", ["sample.n=many"])


def test_run_dry_run_checks_every_section_before_work(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(CONFIG_DIR / "quickstart.yaml"), "--out", str(out), "--set", "pairs.nope=1",
                 "--dry-run"]) == 2
    assert "pairs.nope" in capsys.readouterr().err
    assert not out.exists()  # nothing started
    assert main(["run", "quickstart", "--out", str(out), "--set", "pairs.n=7", "--dry-run"]) == 0


def test_run_dry_run_shows_the_per_attribute_settings(tmp_path, capsys):
    """The plan says what each attribute's stages will use, including a --set override, and which
    entries no stage will read."""
    out = tmp_path / "run"
    assert main(["run", "quickstart", "--out", str(out), "--dry-run",
                 "--set", "per_attribute.night.pairs.strength_range=[1.0,4.0]"]) == 0
    text = capsys.readouterr().out
    lines = text.split("per-attribute settings", 1)[1].splitlines()
    night = next(line for line in lines if line.strip().startswith("night:"))
    assert "pairs.strength_range=[1.0, 4.0]" in night and "unused" not in night
    assert any(line.strip().startswith("overcast:") and "unused" in line for line in lines)
    assert not out.exists()
