"""Shared test set-up: caches go to a per-session folder, never to the user's cache."""

import os
import signal

import pytest
import torch

# Two cores in CI: keep each test process from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    old = os.environ.get("FMCNET_DATA")
    os.environ["FMCNET_DATA"] = str(tmp_path_factory.mktemp("fmcnet-cache"))
    yield
    if old is None:
        os.environ.pop("FMCNET_DATA", None)
    else:
        os.environ["FMCNET_DATA"] = old


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
