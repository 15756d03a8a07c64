import sys

import numpy as np

from .cli import main

np.seterr(all="ignore")
sys.exit(main())
