from tests.workflows.cohort_run import cohort_run  # noqa: F401  (session fixture shared with tests/workflows)
