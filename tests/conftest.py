"""Shared test set-up: caches and notebook runs go to per-session folders, never to the
user's cache or the checkout's runs/ (which the notebooks under nbval then resume)."""

import os
import signal

import pytest
import torch

# Two cores in CI: keep each test process from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache_and_runs(tmp_path_factory):
    """FMCNET_DATA (caches, generated sets) and FMCNET_RUNS (the notebooks' run folders,
    e.g. notebook 01's MD pair that `figures` trains) in this session's temporary folder:
    a pair trained here on a test data set was resumed by notebook 01 under nbval."""
    old = {key: os.environ.get(key) for key in ("FMCNET_DATA", "FMCNET_RUNS")}
    os.environ["FMCNET_DATA"] = str(tmp_path_factory.mktemp("fmcnet-cache"))
    os.environ["FMCNET_RUNS"] = str(tmp_path_factory.mktemp("fmcnet-runs"))
    yield
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def _interactive_ctrl_c():
    """Ctrl-C as in an interactive session, whoever started the tests: a shell starts a
    background job (`make test &`) with SIGINT ignored, and Python then leaves it ignored,
    so the interrupt tests' `signal.raise_signal(SIGINT)` would do nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """A tiny synthetic VI-ReID set in the SYSU-MM01 layout (shared by the slow tests)."""
    from fmcnet.data.synthetic import synthesize

    return synthesize(tmp_path_factory.mktemp("synthetic") / "set", identities=16, seed=0,
                      images_per_camera=2, image_size=(32, 16), progress=False)


@pytest.fixture(scope="session")
def synthetic_dataset(synthetic_root):
    from fmcnet.data import load_dataset

    return load_dataset("sysu", synthetic_root, trials=2)
