"""The local services and `make run`, standard library only apart from `run.py`.

    python3 deploy/local/services.py up      # or python -m deploy.local.services up
    python -m deploy.local.run               # make run (the project's virtual environment)

`services.py` runs before any virtual environment exists, with the system python3, by path;
`processes.py` is the one place child processes are started in, and stopped with, process
groups of their own (`make run`'s supervisor, the services, the tests and the benchmarks).
"""
