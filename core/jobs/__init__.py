"""Background jobs: the long work of the pages (ingest a library folder, train a run, build the demo, train
classifiers, compute clusters, compute musicnn tags, compare two runs' neighbourhoods, fingerprint a run's
tracks) in a detached process that outlives the page.

The package, one job per module::

    registry   the one registry: each kind of job, its config class and the function that does its work
    start      checks a job's arguments with its kind's config and starts it (one job at a time on the same data)
    runner     the job's folder, process, status, progress and cancellation; runs only what the registry names
    processes  is a job's process still running (Linux's /proc tells a reused pid and a zombie from a live one)

``python -m core.jobs run JOB_DIR`` is the job's process. A front end writes ``from core import jobs`` and uses
the names below.
"""
from core.jobs.registry import ANALYSIS_KINDS, KINDS, LIBRARY_KINDS, LISTEN_KINDS, MAP_KINDS, JobKind, job_kind
from core.jobs.runner import (
    ACTIVE,
    FINAL,
    JobCancelled,
    StatusWriter,
    cancel_job,
    job_log,
    job_status,
    jobs_dir,
    list_jobs,
    run_job,
)
from core.jobs.start import (
    find_agreement_job,
    find_analysis_job,
    find_demo_job,
    find_fingerprint_job,
    start_agreement_job,
    start_analysis_job,
    start_demo_job,
    start_fingerprint_job,
    start_job,
)

__all__ = [
    "ACTIVE", "ANALYSIS_KINDS", "FINAL", "KINDS", "LIBRARY_KINDS", "LISTEN_KINDS", "MAP_KINDS", "JobCancelled",
    "JobKind", "StatusWriter", "cancel_job", "find_agreement_job", "find_analysis_job", "find_demo_job",
    "find_fingerprint_job", "job_kind", "job_log", "job_status", "jobs_dir", "list_jobs", "run_job",
    "start_agreement_job", "start_analysis_job", "start_demo_job", "start_fingerprint_job", "start_job",
]
