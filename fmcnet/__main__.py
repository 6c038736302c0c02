"""`python -m fmcnet`: the command line (`fmcnet.cli`), CPU thread behaviour set first."""

import os

# OpenMP reads its wait policy once, when torch loads the runtime (`import torch`), so it
# is set here, before anything imports torch. PASSIVE: a thread that waits for work
# sleeps instead of spinning. On a busy machine spinning threads steal the cores the
# others need; see BENCHMARKS.md ("CPU threads and the demo step") for the measurement.
# A value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from fmcnet.cli import main  # noqa: E402  (after the environment is set)

raise SystemExit(main())
