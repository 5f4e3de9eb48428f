"Shared pytest setup: run from any folder, import the package from this checkout."
import os, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
# Keep CPU runs reproducible and polite on small machines.
os.environ.setdefault('OMP_NUM_THREADS', str(min(os.cpu_count() or 1, 2)))
os.environ.setdefault('MPLBACKEND', 'Agg')
