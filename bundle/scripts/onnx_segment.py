"""The command-line tools live in the bundle's ``commands/`` folder; the old path refuses, naming the new one."""

import shlex
import sys
from pathlib import Path

new = Path(__file__).resolve().parents[1] / "commands" / Path(__file__).name
sys.exit(f"error: scripts/{new.name} is now commands/{new.name}: run\n  python {shlex.join([str(new), *sys.argv[1:]])}")
