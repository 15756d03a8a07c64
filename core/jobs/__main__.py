"""``python -m core.jobs run JOB_DIR``: the process of one background job (:func:`core.jobs.runner.run_job`)."""
import sys

from core.jobs.runner import main

sys.exit(main())
