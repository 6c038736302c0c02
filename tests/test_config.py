"""The one configuration object: profiles, YAML, key=value overrides, saving."""

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
    with pytest.raises(ConfigError, match="lr expects a number, got 'fast'"):
        make_config("smoke", lr="fast")
