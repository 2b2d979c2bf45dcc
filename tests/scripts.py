"""The experiments/ scripts as a user runs them: a fresh Python process from the repository."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(name, *flags):
  """``python experiments/NAME FLAGS`` from the repository root, output captured."""
  return subprocess.run([sys.executable, os.path.join(REPO, "experiments", name), *flags],
                        capture_output=True, text=True, timeout=300, cwd=REPO, check=False)
