import sys
from pathlib import Path

# Tests import tests.fake_graph and tests.harness as modules of this package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
