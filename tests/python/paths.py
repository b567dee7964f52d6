"""Where the tests find the repository's files and the CLI (ctest sets both variables)."""
import os
import subprocess

ROOT = os.environ.get("VITQ_SOURCE_DIR",
                      os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BINARY = os.environ.get("VITQ_BINARY", os.path.join(ROOT, "build", "vitq"))
MODEL = os.path.join(ROOT, "models", "deit-tiny")
VAL = os.path.join(ROOT, "data", "imagenet-samples", "val")
CALIB = os.path.join(ROOT, "data", "imagenet-samples", "calib")
REF = os.path.join(ROOT, "data", "imagenet-samples", "reference-deit-tiny")


def cli(*args):
    """Runs the vitq CLI; returns the CompletedProcess (text stdout and stderr)."""
    return subprocess.run([BINARY, *args], capture_output=True, text=True)
