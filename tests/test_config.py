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
    from fmcnet.config import CHOICES  # the profile key accepts exactly the named profiles

    assert CHOICES["profile"] == tuple(PROFILES)


def test_paper_profile_spells_out_the_defaults_it_runs_with():
    """`paper` names its readings and choices; each must be what a bare Config holds, so
    a changed default cannot leave the profile's list saying something else."""
    default = Config()
    for key, value in PROFILES["paper"].items():
        assert getattr(default, key) == value, key
    assert make_config("paper") == Config(profile="paper")
    # the readings issue 24 asked to be named beside `paper`
    assert {"fc_loss_space", "generator_loss", "amp", "fmc_detach_input", "fc_detach_centers",
            "omega_weighs", "disc_optimizer"} <= set(PROFILES["paper"])


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
        ({"height": 7}, r"height must be in \[8, 1024\] \(at least 8: ResNet's stride"),
        ({"width": 4}, r"width must be in \[8, 1024\]"),
        ({"checkpoint_every": 0}, "checkpoint_every must be >= 1"),
        ({"log_every": 0}, "log_every must be >= 1"),
        ({"trials": 0}, r"trials must be in \[1, 100\]"),
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
        # the held-out renderer has no such knob: the value was recorded, never used
        ({"dataset": "heldout", "synthetic_thermal_coupling": 0.95},
         "synthetic_thermal_coupling=0.95 selects the built-in set's modality gap; "
         "dataset=heldout does not use it"),
        ({"dataset": "sysu", "data_root": "/x", "synthetic_cross_modal_predictability": 1.0},
         "dataset=sysu does not use it"),
    ],
)
def test_bad_values_are_explained(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config("smoke", overrides=overrides)


@pytest.mark.parametrize("overrides, message", [
    # these hung (height: building the image cache; trials: evaluating after training)
    ({"height": 100000}, r"height must be in \[8, 1024\] \(.*at most 1024: the paper's network "
                         r"keeps 1\.3 GB of activations per training image at 1024x512.*\), got "
                         r"100000$"),
    ({"width": 2048}, r"width must be in \[8, 1024\]"),
    ({"trials": 100000}, r"trials must be in \[1, 100\] \(each trial re-draws the galleries.*"
                         r"report the mean of 10.*\), got 100000$"),
    ({"num_instances": 100000}, r"num_instances must be in \[1, 1024\] \(a step holds P x K "
                                r"images of each modality"),
    ({"num_identities": 64, "num_instances": 32},
     r"num_identities x num_instances \(P x K\) must be at most 1024 \(.*\), got 64 x 32 = 2048$"),
    ({"synthetic_identities": 10**6}, r"synthetic_identities must be in \[3, 10000\] \(.*16 "
                                      r"minutes and 1\.1 GB"),
    ({"synthetic_images_per_camera": 1000}, r"synthetic_images_per_camera must be in \[1, 100\]"),
    ({"generator_hidden": 10**9}, r"generator_hidden must be in \[1, 16384\] \(.*0\.67 G "
                                  r"parameters"),
    ({"backbone_width": 1024, "pretrained": False},
     r"backbone_width must be in \[8, 256\] \(.*about 1\.2 G at 256"),
])
def test_values_no_machine_can_run_are_refused_with_the_reason(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config("smoke", overrides=overrides)


@pytest.mark.parametrize("overrides", [
    {"height": 384, "width": 192},  # the largest common VI-ReID size
    {"height": 1024, "width": 512},
    {"num_identities": 8, "num_instances": 16},  # larger P x K than any baseline
    {"num_identities": 32, "num_instances": 32},
    {"trials": 100},
    {"synthetic_identities": 10000, "synthetic_images_per_camera": 100},
    {"generator_hidden": 4096},
    {"backbone_width": 128, "pretrained": False},
])
def test_research_settings_stay_inside_the_bounds(overrides):
    cfg = make_config("paper", overrides=overrides)
    assert all(getattr(cfg, k) == v for k, v in overrides.items())


@pytest.mark.parametrize("make, message", [
    (lambda f: make_config("smoke", overrides={"profile": "quick"}),
     r"profile 'quick' from the overrides conflicts with profile 'smoke' from the profile "
     r"argument: a profile sets the defaults every other key starts from"),
    (lambda f: make_config("smoke", overrides={"profile": "quick"}, profile_source="--profile"),
     r"profile 'quick' from the key=value overrides conflicts with profile 'smoke' from "
     r"--profile: .*; choose it with --profile alone \(--profile quick or --profile smoke\) and "
     r"drop profile=quick from the key=value overrides$"),
    (lambda f: make_config("smoke", yaml_files=[f]),
     r"profile 'quick' from configuration file .*q\.yaml conflicts with profile 'smoke'.*drop "
     r"profile: quick from configuration file"),
    (lambda f: make_config(yaml_files=[f], overrides={"profile": "paper"}),
     r"profile 'paper' from the overrides conflicts with profile 'quick' from configuration file"),
])
def test_a_second_different_profile_is_refused_not_dropped(tmp_path, make, message):
    f = tmp_path / "q.yaml"
    f.write_text("profile: quick\nepochs: 3\n")
    with pytest.raises(ConfigError, match=message):
        make(f)


def test_a_profile_named_once_or_alike_everywhere_applies(tmp_path):
    f = tmp_path / "q.yaml"
    f.write_text("profile: quick\nepochs: 3\n")
    assert make_config(yaml_files=[f]).profile == "quick"  # it was always `paper` on the CLI
    assert make_config(overrides={"profile": "smoke"}).profile == "smoke"
    assert make_config("quick", yaml_files=[f], overrides={"profile": "quick"}).epochs == 3
    assert make_config().profile == "paper"


def test_a_key_named_twice_in_a_yaml_file_is_refused(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("epochs: 3\nlr: 0.01\n# a later edit\nepochs: 30\n")
    with pytest.raises(ConfigError, match=rf"^configuration file {f} names 'epochs' twice in one "
                                          r"mapping \(lines 1 and 4\); YAML would keep the second "
                                          r"without a word\. Keep one of them$"):
        make_config("smoke", yaml_files=[f])
    with pytest.raises(ConfigError, match=r"^overrides names 'epochs' twice .*\(lines 1 and 1\)"):
        make_config("smoke", overrides='{"epochs": 3, "epochs": 4}')
    # nested mappings and YAML merge keys: a mapping may override what it merges
    from fmcnet.config import load_unique_yaml

    assert load_unique_yaml("a: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 5\n") == {
        "a": {"x": 1, "y": 2}, "c": {"x": 5, "y": 2}}
    with pytest.raises(yaml.YAMLError, match=r"key 'x' twice \(lines 2 and 3\)"):
        load_unique_yaml("c:\n  x: 1\n  x: 2\n")


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
