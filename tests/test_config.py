"""The one configuration object: profiles, YAML, key=value overrides, saving."""

import dataclasses

import pytest
import yaml

from fmcnet.config import (
    PROFILES,
    Config,
    ConfigError,
    config_from_dict,
    make_config,
    parse_overrides,
    save_config,
)


def test_profiles_resolve_and_differ():
    paper, quick, smoke = (make_config(p) for p in ("paper", "quick", "smoke"))
    assert (paper.backbone, paper.height, paper.width, paper.epochs) == ("resnet50", 288, 144, 80)
    assert (paper.num_identities, paper.num_instances) == (4, 8)
    assert quick.backbone == "resnet18" and smoke.height < quick.height < paper.height
    assert set(PROFILES) == {"paper", "quick", "smoke"}


def test_cli_yaml_and_papermill_values_resolve_to_the_same_object(tmp_path):
    f = tmp_path / "row.yaml"
    f.write_text("epochs: 3\nlr_milestones: [1, 2]\nfusion: none\nfmc: false\n")
    from_yaml = make_config("smoke", yaml_files=[f])
    from_cli = make_config("smoke", overrides=parse_overrides(
        ["epochs=3", "lr_milestones=[1, 2]", "fusion=none", "fmc=false"]))
    from_kwargs = make_config("smoke", epochs=3, lr_milestones=[1, 2], fusion="none", fmc=False)
    assert from_yaml == from_cli == from_kwargs
    assert from_cli.lr_milestones == (1, 2) and from_cli.fmc is False


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match="unknown configuration key 'epochz'.*valid keys:.*epochs"):
        make_config("smoke", overrides={"epochz": 3})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"epochs": "three"}, "epochs expects an integer"),
        ({"sfd": "maybe"}, "sfd expects true or false"),
        ({"backbone": "vgg"}, "backbone must be one of"),
        ({"sfd": False}, "fmc=true needs sfd=true"),
        ({"fmc": False}, "fusion='sff' needs sfd=true and fmc=true"),
        ({"lr": -1}, "lr must be > 0, got -1.0"),
        ({"lr": ".nan"}, "lr must be a finite number"),
        ({"lr": "fast"}, r"lr expects a number \(> 0\), got 'fast'"),
        ({"epochs": 0}, "epochs must be >= 1, got 0"),
        ({"height": 7}, "height must be >= 8"),
        ({"width": 4}, "width must be >= 8"),
        ({"checkpoint_every": 0}, "checkpoint_every must be >= 1"),
        ({"log_every": 0}, "log_every must be >= 1"),
        ({"trials": 0}, "trials must be >= 1"),
        ({"steps_per_epoch": 0}, "steps_per_epoch must be >= 1"),
        ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
        ({"momentum": 0.0}, "nesterov=true needs momentum > 0"),
        ({"flip_prob": 1.5}, r"flip_prob must be in \[0, 1\]"),
        ({"erase_area": [0.5]}, "erase_area expects 2 numbers, got \\[0.5\\]"),
        ({"erase_area": [0.5, 0.1]}, "min <= max"),
        ({"erase_area": [0.0, 0.1]}, r"erase_area must be in \(0, 1\]"),
        ({"omega_init": [1.0]}, "omega_init expects 2 numbers"),
        ({"lr_milestones": [50, 20]}, "lr_milestones must be increasing"),
        ({"grad_clip": -1}, "grad_clip must be > 0"),
        ({"device": "bogus"}, "device must be auto, cpu, cuda, cuda:N or mps, got 'bogus'"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"trial": 11}, r"trial must be in \[1, 10\]"),
        ({"trial": 3}, "trial=3 selects a RegDB split; dataset=synthetic has no trials"),
        ({"dataset": "regdb", "data_root": "/x", "validate": True},
         "validate=true holds out the SYSU-MM01 val ids; dataset=regdb has none"),
        ({"data_root": "/data/SYSU-MM01"}, "is set but dataset=synthetic"),
        ({"dataset": "regdb", "data_root": "/x", "gallery_sampler": "agw"},
         "gallery_sampler=agw selects SYSU-MM01 galleries; dataset=regdb does not use it"),
        ({"llcm_protocol": "literal"}, "llcm_protocol=literal selects the LLCM protocol"),
    ],
)
def test_bad_values_are_explained(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config("smoke", overrides=overrides)


def test_missing_yaml_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml does not exist"):
        make_config("smoke", yaml_files=[tmp_path / "nope.yaml"])


def test_saved_config_round_trips(tmp_path):
    cfg = make_config("quick", epochs=7, lr_milestones=[3, 5])
    save_config(cfg, tmp_path / "config.yaml")
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert data["epochs"] == 7 and data["profile"] == "quick"
    assert config_from_dict(data) == cfg
    assert isinstance(config_from_dict(data), Config)


def test_floats_written_with_an_exponent_are_numbers(tmp_path):
    """YAML 1.1 reads `5e-4` (no dot) as a string: the command line, YAML files and
    papermill must still give a float (it reached the optimiser as a str before)."""
    assert make_config("smoke", overrides=parse_overrides(["lr=5e-4"])).lr == 5e-4
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-3\nsynthetic_thermal_coupling: 2e-1\n")
    cfg = make_config("smoke", yaml_files=[path])
    assert cfg.lr == 1e-3 and cfg.synthetic_thermal_coupling == 0.2
    with pytest.raises(ConfigError, match=r"lr expects a number \(> 0\), got 'fast'"):
        make_config("smoke", lr="fast")
def test_every_field_has_a_range_or_choices():
    """A field added later without its range or choices fails here, not at run time."""
    from fmcnet.config import CHOICES, FREE_TEXT, RANGES

    for f in dataclasses.fields(Config):
        default = f.default
        if isinstance(default, bool):
            continue
        if isinstance(default, str) or f.name in FREE_TEXT or f.name == "device":
            assert f.name in CHOICES or f.name in FREE_TEXT or f.name == "device", f.name
        else:
            assert f.name in RANGES, f"{f.name} has no range in fmcnet.config.RANGES"
    for p in PROFILES:  # every profile passes its own checks
        make_config(p)


def test_overrides_given_as_a_string_are_read_as_yaml():
    """papermill `-p overrides '{"epochs": 3}'` passes a string, not a mapping."""
    from fmcnet.analysis import notebook_config

    assert make_config("smoke", overrides='{"epochs": 3}').epochs == 3
    assert notebook_config("smoke", overrides='{"epochs": 3}').epochs == 3
    with pytest.raises(ConfigError, match="unknown configuration key 'bogus'"):
        notebook_config("smoke", overrides='{"bogus": 1}')
    with pytest.raises(ConfigError, match="overrides must be a mapping"):
        make_config("smoke", overrides="[1, 2]")
    with pytest.raises(ConfigError, match="overrides is not valid YAML/JSON"):
        make_config("smoke", overrides='{"epochs": ')
