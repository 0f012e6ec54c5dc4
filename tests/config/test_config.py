"""The experiment config: presets, YAML files, dicts and dotted overrides, and one readable
ConfigError for every kind of mistake."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import pytest
import yaml

from mtgan.config import (
    ExperimentConfig,
    load_config,
    parse_override,
    preset_descriptions,
    preset_names,
    save_config,
)
from mtgan.errors import ConfigError, MtganError
from mtgan.nets import MultiGAN

# ------------------------------------------------------------------ presets


def test_the_four_documented_presets_are_shipped():
    assert {"baseline", "independent", "pertask", "seed"} <= set(preset_names())
    assert preset_names() == sorted(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads_validates_and_has_a_description(name):
    cfg = load_config(name)
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.description.strip()
    assert preset_descriptions()[name] == cfg.description


def test_no_source_means_the_pertask_preset():
    assert load_config() == load_config("pertask")
    assert load_config().model.share.generator == "trunk"


def test_unknown_preset_name_suggests_the_closest_preset():
    with pytest.raises(ConfigError) as exc:
        load_config("pertsk")
    message = str(exc.value)
    assert "'pertsk'" in message
    assert "did you mean 'pertask'?" in message
    assert all(name in message for name in preset_names())


def test_unknown_preset_without_a_close_match_lists_the_presets():
    with pytest.raises(ConfigError) as exc:
        load_config("zzzzzz")
    assert "did you mean" not in str(exc.value)
    assert "pertask" in str(exc.value)


# ------------------------------------------------------------------ errors


def _error(overrides: list[str], source: str = "pertask") -> str:
    with pytest.raises(ConfigError) as exc:
        load_config(source, overrides)
    return str(exc.value)


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("train.step=5", ["train.step:", "unknown key", "did you mean 'train.steps'?"]),
        ("modle.z_dim=3", ["modle:", "unknown key", "did you mean 'model'?"]),
        ("model.share.generatr=all", ["did you mean 'model.share.generator'?"]),
        ("data.nme=mnist", ["data.nme:", "did you mean 'data.name'?", "valid keys here: name"]),
    ],
)
def test_unknown_key_names_the_key_path_and_the_nearest_valid_name(override, needles):
    message = _error([override])
    for needle in needles:
        assert needle in message


def test_unknown_key_lists_the_valid_keys_of_its_own_section():
    message = _error(["train.step=5"])
    assert "valid keys here: steps, batch_size" in message
    assert "z_dim" not in message  # a key of model, not train


def test_unknown_key_in_a_dict_source_is_reported_the_same_way():
    with pytest.raises(ConfigError, match=r"trian: unknown key; did you mean 'train'\?"):
        load_config({"trian": {"steps": 3}})


def test_wrong_type_names_the_field_and_the_value():
    message = _error(["train.batch_size=abc"])
    assert "train.batch_size:" in message
    assert "expected an integer" in message
    assert "'abc'" in message


def test_bad_enum_names_the_field_and_lists_the_allowed_values():
    message = _error(["loss.adversarial=foo"])
    assert "loss.adversarial:" in message
    assert "'foo' is not allowed" in message
    for allowed in ("minimax", "nonsaturating", "hinge", "wasserstein", "lsgan"):
        assert allowed in message


@pytest.mark.parametrize(
    ("override", "field", "bound"),
    [
        ("train.batch_size=0", "train.batch_size", ">= 1"),
        ("train.lr_g=0", "train.lr_g", "> 0"),
        ("train.ema=1.0", "train.ema", "< 1"),
        ("data.image_size=2", "data.image_size", ">= 4"),
    ],
)
def test_out_of_range_value_names_the_field_and_the_bound(override, field, bound):
    message = _error([override])
    assert f"{field}:" in message
    assert bound in message


def test_bad_share_spec_names_the_field_without_pydantic_union_branches():
    message = _error(["model.share.generator=foo"])
    assert "model.share.generator:" in message
    assert "trunk" in message and "all_but_first" in message
    assert "literal" not in message.lower()
    assert "model.share.generator.int" not in message


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("model.share.cross=[[g.1]]", "needs two layers or more"),
        ("model.share.cross=[[x.1,d.1]]", "'x.1' must look like 'g.1'"),
        ("model.share.cross=[[g.one,d.1]]", "'g.one' must look like"),
    ],
)
def test_malformed_cross_sharing_groups_are_rejected_when_loading(override, needle):
    message = _error([override])
    assert "model.share.cross:" in message
    assert needle in message


def test_per_task_and_limit_together_are_refused_naming_both():
    assert load_config("pertask", ["data.per_task=10"]).data.per_task == 10
    with pytest.raises(ConfigError, match=r"data: per_task=10 and limit=5 .*set one"):
        load_config("pertask", ["data.per_task=10", "data.limit=5"])


def test_dcgan_without_image_data_is_rejected():
    assert "needs image data" in _error(["model.arch=dcgan", "data.name=ring8"])


def test_shape_incompatible_cross_sharing_is_one_config_error_naming_both_layers():
    cfg = load_config("pertask", ["model.share.cross=[[g.0,d.0]]"])  # valid as a config
    with pytest.raises(ConfigError) as exc:
        MultiGAN(cfg.model, (1, 28, 28), 10)
    assert type(exc.value) is ConfigError
    message = str(exc.value)
    assert "\n" not in message
    assert "g.0 (linear 100 → 256" in message
    assert "d.0 (linear 784 → 512" in message
    assert "shapes differ" in message


ERRORS = [
    ["train.step=5"],
    ["modle.z_dim=3"],
    ["train.batch_size=abc"],
    ["loss.adversarial=foo"],
    ["train.batch_size=0"],
    ["model.share.generator=foo"],
    ["model.share.cross=[[g.1]]"],
]


@pytest.mark.parametrize("overrides", ERRORS, ids=[o[0] for o in ERRORS])
def test_each_error_is_one_readable_config_error_without_pydantic_text(overrides):
    with pytest.raises(MtganError) as exc:
        load_config("pertask", overrides)
    err = exc.value
    assert type(err) is ConfigError
    assert err.__cause__ is None and err.__suppress_context__  # raised `from None`
    message = str(err)
    assert message.startswith("invalid config:\n  ")
    assert "pydantic" not in message.lower()
    assert "For further information" not in message
    assert "errors.pydantic.dev" not in message
    assert "Traceback" not in message
    assert "type=" not in message


@pytest.mark.parametrize(
    "overrides", [["train.step=5"], ["train.batch_size=abc"], ["loss.adversarial=foo"]]
)
def test_a_single_mistake_gives_a_single_problem_line(overrides):
    lines = _error(overrides).splitlines()
    assert len(lines) == 2


def test_every_mistake_is_reported_at_once():
    message = _error(["train.batch_size=0", "loss.adversarial=foo"])
    assert "train.batch_size:" in message and "loss.adversarial:" in message


# ------------------------------------------------------------------ dotted overrides


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("train.steps=7", ["train", "steps"], 7),
        ("train.lr_g=0.5", ["train", "lr_g"], 0.5),
        ("model.g_hidden=[32,32]", ["model", "g_hidden"], [32, 32]),
        ("data.limit=null", ["data", "limit"], None),
        ("loss.adversarial=hinge", ["loss", "adversarial"], "hinge"),
        ("description=", ["description"], ""),
        ("balance.d_options={a: 1}", ["balance", "d_options"], {"a": 1}),
        (" seed =3", ["seed"], 3),
        ("description=[unclosed", ["description"], "[unclosed"),
        ("description=a=b", ["description"], "a=b"),
    ],
)
def test_parse_override_splits_the_dotted_key_and_parses_the_value_as_yaml(text, path, value):
    assert parse_override(text) == (path, value)


@pytest.mark.parametrize("text", ["train.steps", "=3", " =3"])
def test_override_without_key_or_equals_sign_is_a_config_error(text):
    with pytest.raises(ConfigError, match="must look like key.subkey=value"):
        parse_override(text)


def test_overrides_set_ints_floats_lists_null_and_strings():
    cfg = load_config(
        "pertask",
        [
            "train.steps=7",
            "train.lr_g=0.001",
            "train.lr_d=1e-3",  # a string to YAML 1.1; pydantic reads it as a float
            "model.g_hidden=[32,32]",
            "data.limit=5",
            "data.limit=null",  # later overrides win
            "data.path=some/dir",
            "loss.adversarial=hinge",
            "train.betas=[0.0,0.9]",
        ],
    )
    assert cfg.train.steps == 7 and isinstance(cfg.train.steps, int)
    assert cfg.train.lr_g == 0.001
    assert cfg.train.lr_d == 0.001
    assert cfg.model.g_hidden == [32, 32]
    assert cfg.data.limit is None
    assert cfg.data.path == Path("some/dir")
    assert cfg.loss.adversarial == "hinge"
    assert cfg.train.betas == (0.0, 0.9)
    assert cfg.model.d_hidden == [512, 256]  # untouched keys keep the preset's values


def test_override_creates_missing_nested_sections():
    baseline = importlib.resources.files("mtgan.presets").joinpath("baseline.yaml").read_text()
    assert "share" not in yaml.safe_load(baseline)["model"]
    cfg = load_config("baseline", ["model.share.generator=2"])
    assert cfg.model.share.generator == 2
    assert cfg.model.share.discriminator == "none"
    cfg = load_config({}, ["model.share.cross=[[g.1,d.1]]"])
    assert cfg.model.share.cross == [["g.1", "d.1"]]


def test_override_below_a_scalar_is_a_config_error():
    with pytest.raises(ConfigError, match="steps is not a section"):
        load_config("pertask", ["train.steps.x=1"])


def test_override_on_a_yaml_file(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("description: mine\nmodel:\n  z_dim: 12\ntrain:\n  steps: 5\n")
    cfg = load_config(path, ["train.steps=9", "model.share.generator=all"])
    assert cfg.description == "mine"
    assert cfg.model.z_dim == 12
    assert cfg.train.steps == 9
    assert cfg.model.share.generator == "all"
    assert cfg.train.batch_size == 64  # a schema default, not a preset's
    assert load_config(str(path)) == load_config(path)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "cannot read config file"),
        ("model: [unclosed\n", "is not valid YAML"),
        ("- 1\n- 2\n", "must hold a mapping, not list"),
    ],
    ids=["missing", "invalid", "list"],
)
def test_unreadable_yaml_file_is_a_config_error_naming_the_file(tmp_path, content, needle):
    path = tmp_path / "bad.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert needle in str(exc.value)
    assert str(path) in str(exc.value)


def test_empty_yaml_file_gives_the_schema_defaults(tmp_path):
    path = tmp_path / "empty.yml"
    path.write_text("")
    assert load_config(path) == ExperimentConfig()


def test_dict_source_with_overrides_leaves_the_dict_untouched():
    source = {"model": {"z_dim": 3, "g_hidden": [8]}, "train": {"steps": 2}}
    cfg = load_config(source, ["train.steps=4", "model.g_hidden=[16]"])
    assert cfg.model.z_dim == 3
    assert cfg.model.g_hidden == [16]
    assert cfg.train.steps == 4
    assert source == {"model": {"z_dim": 3, "g_hidden": [8]}, "train": {"steps": 2}}


def test_config_source_with_overrides_gives_a_new_validated_config():
    base = load_config("seed")
    cfg = load_config(base, ["train.steps=11"])
    assert cfg.train.steps == 11
    assert base.train.steps == 3000
    assert cfg.model == base.model


def test_save_then_load_round_trips_to_an_equal_config(tmp_path):
    cfg = load_config(
        "pertask",
        [
            "data.path=data/digits",
            "data.tasks=[[0,1],[2,3]]",
            "train.betas=[0.1,0.2]",
            "train.ema=0.999",
            "model.share.generator=[0,-1]",
            "model.share.cross=[[g.1,d.1]]",
            "balance.d_options={alpha: 0.5}",
        ],
    )
    path = tmp_path / "config.yaml"
    save_config(cfg, path)
    assert load_config(path) == cfg
    saved = yaml.safe_load(path.read_text())
    assert saved["train"]["keep_checkpoints"] == 3  # defaults are written out too
    assert saved["model"]["share"]["cross"] == [["g.1", "d.1"]]
